#!/usr/bin/env bash
# Builds (once) and caches the tools the Helm chart and monitoring tests use: helm (from the
# helm.sh/helm/v4 module), prometheus and promtool (from github.com/prometheus/prometheus),
# keyed by version in the same cache root as scripts/control-plane-binaries.sh, outside the
# checkout. Builds only what the cache lacks.
#
#   bash scripts/monitoring-binaries.sh                  # helm, promtool and prometheus
#   bash scripts/monitoring-binaries.sh helm             # only what is named
#
# Prints one `name=path` line per tool asked for on stdout (the last lines).
# Bring your own binaries instead: set HELM / PROMTOOL / PROMETHEUS; the tests use those first.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.1}"
# Prometheus tags its Go module v0.<major*100+minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"

cache_root="${NODEPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodepulse}"
helm_dir="$cache_root/bin/helm-$HELM_VERSION"
prometheus_dir="$cache_root/bin/prometheus-$PROMETHEUS_VERSION"

wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=(helm promtool prometheus)
path_of() {
  case "$1" in
    helm) echo "$helm_dir/helm" ;;
    promtool | prometheus) echo "$prometheus_dir/$1" ;;
    *) echo "error: unknown tool '$1'; name helm, promtool or prometheus" >&2; exit 1 ;;
  esac
}
missing=()
for tool in "${wanted[@]}"; do [ -s "$(path_of "$tool")" ] || missing+=("$tool"); done
report() { for tool in "${wanted[@]}"; do echo "$tool=$(path_of "$tool")"; done; }
if [ "${#missing[@]}" -eq 0 ]; then report; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
error: ${missing[*]} not cached under $cache_root/bin and Go is not installed to build them.
fix:   install Go 1.26.7+ (https://go.dev/dl/ or your distribution's golang package), or set
       HELM / PROMTOOL / PROMETHEUS to existing binaries.
MSG
  exit 1
fi

log() { echo "[monitoring] $*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
start=$SECONDS

module_for() { # dir module version: a scratch module requiring module@version
  mkdir -p "$work/$1"
  printf 'module nodepulse.local/%s\ngo 1.26\n' "$1" > "$work/$1/go.mod"
  (cd "$work/$1" && go get "$2@$3" >"$work/$1.log" 2>&1) \
    || { cat "$work/$1.log" >&2; log "cannot fetch $2@$3 through the Go module proxy (see above)"; exit 1; }
}
# Each binary is built into the scratch folder and moved into the cache when whole, so an
# interrupted build never leaves a truncated binary behind.
install_into() { # dest-dir file...
  local dest="$1"; shift
  mkdir -p "$dest"
  for f in "$@"; do mv -f "$work/out/$f" "$dest/$f"; done
}

needs() { for tool in "${missing[@]}"; do [ "$tool" = "$1" ] && return 0; done; return 1; }

if needs helm; then
  log "building helm $HELM_VERSION"
  module_for helm helm.sh/helm/v4 "$HELM_VERSION"
  (cd "$work/helm" && go build -trimpath -o "$work/out/helm" \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    helm.sh/helm/v4/cmd/helm) || { log "go build of helm $HELM_VERSION failed (see above)"; exit 1; }
  install_into "$helm_dir" helm
  log "helm built after $((SECONDS - start))s"
fi

if needs promtool || needs prometheus; then
  minor="${PROMETHEUS_VERSION#v0.}"; minor="${minor%%.*}"
  release="$((minor / 100)).$((minor % 100)).${PROMETHEUS_VERSION##*.}"
  log "building prometheus and promtool $release ($PROMETHEUS_VERSION)"
  module_for prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION"
  # remove_all_sd: only static, file and HTTP service discovery (the tests scrape loopback
  # targets), which leaves out every cloud SDK and halves the build. Without builtinassets the
  # web UI would be read from disk: the HTTP API, all the tests use, is compiled in either way.
  (cd "$work/prometheus" && go build -trimpath -tags remove_all_sd -o "$work/out/" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=HEAD" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool) \
    || { log "go build of prometheus $PROMETHEUS_VERSION failed (see above)"; exit 1; }
  install_into "$prometheus_dir" prometheus promtool
  log "prometheus and promtool built after $((SECONDS - start))s"
fi

report
