#!/usr/bin/env bash
# Builds (once) and caches the test control plane: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, the kubelet (for the real node: test/cluster/realNode.ts), etcd and
# kwok, all from Go modules, plus kwok's default "fast"
# simulation stages (kwok-stages.yaml, rendered from the pinned kwok module), keyed by version
# outside the checkout so fresh clones reuse them. Builds only what the cache lacks.
# Prints the bin directory on stdout (last line).
#
# Bring your own binaries instead: set KUBEBUILDER_ASSETS (envtest layout: kube-apiserver,
# etcd, kubectl) or KUBE_APISERVER / ETCD / KUBECTL / KUBE_CONTROLLER_MANAGER /
# KUBE_SCHEDULER / KWOK (and KWOK_STAGES for the stages file); the test harness uses those
# before this cache.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

cache_root="${NODEPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodepulse}"
bin_dir="$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)

have() { for b in "$@"; do [ -s "$bin_dir/$b" ] || return 1; done; }
if have "${k8s_bins[@]}" etcd kwok kwok-stages.yaml; then echo "$bin_dir"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
error: the test control plane is not cached in $bin_dir and Go is not installed to build it.
fix:   install Go 1.26+ (https://go.dev/dl/ or your distribution's golang package), or point
       KUBEBUILDER_ASSETS at an envtest assets folder (kube-apiserver, etcd, kubectl).
MSG
  exit 1
fi

log() { echo "[control-plane] $*" >&2; }
work="$(mktemp -d)"
out="$work/out"
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin_dir" "$out"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
start=$SECONDS
# Each finished artifact is moved into the cache on its own, so an interrupted build keeps what it finished.
publish() { for f in "$@"; do mv -f "$out/$f" "$bin_dir/$f"; done; }

build_kubernetes() {
  # Kubernetes: its go.mod replaces ~30 staging modules with ./staging paths that a dependent
  # module cannot use, so require the release and replace each staging module with its
  # published v0.Y.Z. The list comes from the release's own replace block.
  log "resolving k8s.io/kubernetes@$K8S_VERSION"
  mkdir -p "$work/k8s"
  gomod_file="$(cd "$work/k8s" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -f "$gomod_file" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION through the Go module proxy"; exit 1; }
  staging_version="v0.${K8S_VERSION#v1.}"
  {
    echo "module nodepulse.local/k8sbuild"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$gomod_file" | awk '/=> \.\/staging/ {print "\t" $1 " => " $1 " '"$staging_version"'"}'
    echo ")"
  } > "$work/k8s/go.mod"
  cat > "$work/k8s/tools.go" <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
    ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$work/k8s" && go mod tidy -e >/dev/null 2>&1 || true)
  # Only what the cache lacks: a cache made before the kubelet was added gains it in ~70 s.
  local wanted=()
  for b in "${k8s_bins[@]}"; do have "$b" || wanted+=("$b"); done
  local pkgs=()
  for b in "${wanted[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  log "building ${wanted[*]} (one go build)"
  (cd "$work/k8s" && go build -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}") \
    || { log "go build of Kubernetes $K8S_VERSION failed (see above); a newer Go may be needed: try GOTOOLCHAIN=go1.27.3"; exit 1; }
  publish "${wanted[@]}"
  log "kubernetes built after $((SECONDS - start))s"
}
if ! have "${k8s_bins[@]}"; then build_kubernetes; fi

# etcd and kwok carry their own dependency graphs; each builds from its own module.
tool_module() { # dir module version: a scratch module requiring module@version
  mkdir -p "$work/$1"
  printf 'module nodepulse.local/%s\ngo 1.26\n' "$1" > "$work/$1/go.mod"
  (cd "$work/$1" && go get "$2@$3" >"$work/$1.log" 2>&1) \
    || { cat "$work/$1.log" >&2; log "cannot fetch $2@$3 through the Go module proxy (see above)"; exit 1; }
}
build_tool() { # dir module version package output extra-ldflags
  tool_module "$1" "$2" "$3"
  (cd "$work/$1" && go build -trimpath -ldflags "-s -w $6" -o "$out/$5" "$4") \
    || { log "go build of $2@$3 failed (see above)"; exit 1; }
  publish "$5"
}
if ! have etcd; then
  log "building etcd $ETCD_VERSION"
  build_tool etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd ""
fi
if ! have kwok; then
  log "building kwok $KWOK_VERSION"
  build_tool kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
fi
# The kwok binary simulates nothing without stages; its module ships the default "fast" set
# (nodes become Ready and keep their lease, pods become Ready) as a kustomization.
if ! have kwok-stages.yaml; then
  log "rendering kwok $KWOK_VERSION default stages"
  if [ ! -d "$work/kwok" ]; then tool_module kwok sigs.k8s.io/kwok "$KWOK_VERSION"; fi
  kwok_dir="$(cd "$work/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  "$bin_dir/kubectl" kustomize "$kwok_dir/kustomize/stage/fast" > "$out/kwok-stages.yaml" \
    || { log "cannot render $kwok_dir/kustomize/stage/fast"; exit 1; }
  publish kwok-stages.yaml
fi

log "control plane ready in $bin_dir after $((SECONDS - start))s"
echo "$bin_dir"
