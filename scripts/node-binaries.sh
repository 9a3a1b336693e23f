#!/usr/bin/env bash
# Builds (once) and caches what the real test node (test/cluster/realNode.ts) runs beside the
# kubelet, which comes from control-plane-binaries.sh (the same Kubernetes module build):
# containerd v2 with its runc shim and ctr, the CNI plugins loopback, bridge and host-local, and
# a pause image (registry.k8s.io cannot be reached here) made from scripts/pause/pause.go as an
# OCI archive that `ctr images import` takes. runc is the distribution's (Debian's runc).
# Keyed by version (the pause image by its source's hash) outside the checkout, so fresh
# clones reuse them. Prints the directory on stdout (last line).
set -euo pipefail

CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pause_src="$here/pause/pause.go"
pause_hash="$(sha256sum "$pause_src" | cut -c1-12)"
cache_root="${NODEPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodepulse}"
bin_dir="$cache_root/node/containerd-$CONTAINERD_VERSION-cni-$CNI_PLUGINS_VERSION-pause-$pause_hash"
containerd_bins=(containerd containerd-shim-runc-v2 ctr)
cni_bins=(loopback bridge host-local)

have() { for b in "$@"; do [ -s "$bin_dir/$b" ] || return 1; done; }
if have "${containerd_bins[@]}" "${cni_bins[@]}" pause pause.oci.tar pause.ref; then echo "$bin_dir"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the node binaries are not cached in $bin_dir and Go is not installed to build them; install Go 1.26+" >&2
  exit 1
fi

log() { echo "[node] $*" >&2; }
work="$(mktemp -d)"
out="$work/out"
trap 'rm -rf "$work"' EXIT
mkdir -p "$bin_dir" "$out"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
start=$SECONDS
publish() { for f in "$@"; do mv -f "$out/$f" "$bin_dir/$f"; done; }

module() { # dir module version: a scratch module requiring module@version
  mkdir -p "$work/$1"
  printf 'module nodepulse.local/%s\ngo 1.26\n' "$1" > "$work/$1/go.mod"
  (cd "$work/$1" && go get "$2@$3" >"$work/$1.log" 2>&1) \
    || { cat "$work/$1.log" >&2; log "cannot fetch $2@$3 through the Go module proxy (see above)"; exit 1; }
}

if ! have "${containerd_bins[@]}"; then
  log "building containerd $CONTAINERD_VERSION (containerd, containerd-shim-runc-v2, ctr)"
  module containerd github.com/containerd/containerd/v2 "$CONTAINERD_VERSION"
  pkgs=(); for b in "${containerd_bins[@]}"; do pkgs+=("github.com/containerd/containerd/v2/cmd/$b"); done
  # The snapshotters this node does not use need cgo and their libraries: built out.
  (cd "$work/containerd" && go build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" -o "$out/" "${pkgs[@]}") \
    || { log "go build of containerd $CONTAINERD_VERSION failed (see above)"; exit 1; }
  publish "${containerd_bins[@]}"
  log "containerd built after $((SECONDS - start))s"
fi

if ! have "${cni_bins[@]}"; then
  log "building CNI plugins $CNI_PLUGINS_VERSION (${cni_bins[*]})"
  module cni github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION"
  pkgs=(github.com/containernetworking/plugins/plugins/main/loopback github.com/containernetworking/plugins/plugins/main/bridge
    github.com/containernetworking/plugins/plugins/ipam/host-local)
  (cd "$work/cni" && go build -trimpath -ldflags "-s -w" -o "$out/" "${pkgs[@]}") \
    || { log "go build of the CNI plugins $CNI_PLUGINS_VERSION failed (see above)"; exit 1; }
  publish "${cni_bins[@]}"
  log "CNI plugins built after $((SECONDS - start))s"
fi

if ! have pause pause.oci.tar pause.ref; then
  log "building the pause image ($pause_hash)"
  mkdir -p "$work/pause" "$work/rootfs" "$work/oci/blobs/sha256"
  printf 'module nodepulse.local/pause\ngo 1.26\n' > "$work/pause/go.mod"
  cp "$pause_src" "$work/pause/"
  (cd "$work/pause" && go build -trimpath -ldflags "-s -w" -o "$out/pause" .)
  cp "$out/pause" "$work/rootfs/pause"
  # An OCI image of one layer holding /pause, written by hand: reproducible, no image tool needed.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/rootfs" -cf "$work/layer.tar" pause
  diff_id="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
  gzip -n -9 "$work/layer.tar"
  blob() { # file: stores it under its digest, prints "digest size"
    local digest; digest="$(sha256sum "$1" | cut -d' ' -f1)"
    cp "$1" "$work/oci/blobs/sha256/$digest"
    echo "$digest $(stat -c %s "$1")"
  }
  read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" > "$work/config.json"
  read -r config_digest config_size < <(blob "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$work/manifest.json"
  read -r manifest_digest manifest_size < <(blob "$work/manifest.json")
  ref="localhost/nodepulse/pause:$pause_hash"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$ref" "$pause_hash" > "$work/oci/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/oci" -cf "$out/pause.oci.tar" oci-layout index.json blobs
  echo "$ref" > "$out/pause.ref"
  publish pause pause.oci.tar pause.ref
fi

log "node binaries ready in $bin_dir after $((SECONDS - start))s"
echo "$bin_dir"
