#!/usr/bin/env bash
# Builds (once) node-problem-detector from its Go module, for the footprint benchmark
# (bench/footprint.ts), into a cache outside the checkout keyed by version; also makes sure
# `dig` is installed, which the benchmark's NPD DNS plugin script uses. Prints the binary's
# path on stdout (last line).
#
# Bring your own binary instead: set NPD_BIN to a node-problem-detector executable.
set -euo pipefail

NPD_VERSION="${NPD_VERSION:-v1.36.0}"
cache_root="${NODEPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodepulse}"
bin_dir="$cache_root/bench/npd-$NPD_VERSION"
log() { echo "[build-npd] $*" >&2; }

if ! command -v dig >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing dnsutils (dig) for the NPD DNS plugin script"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsutils >&2
  else
    log "dig is missing: install it (Debian/Ubuntu: apt-get install dnsutils) and run again"
    exit 1
  fi
fi

if [ -n "${NPD_BIN:-}" ]; then
  [ -x "$NPD_BIN" ] || { log "NPD_BIN=$NPD_BIN is not an executable file"; exit 1; }
  echo "$NPD_BIN"
  exit 0
fi
if [ -x "$bin_dir/node-problem-detector" ]; then echo "$bin_dir/node-problem-detector"; exit 0; fi

command -v go >/dev/null 2>&1 || {
  log "node-problem-detector is not cached in $bin_dir and Go is not installed to build it: install Go 1.26+ or set NPD_BIN"
  exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work" "$bin_dir.tmp"' EXIT
mkdir -p "$bin_dir.tmp"
log "building k8s.io/node-problem-detector@$NPD_VERSION (CGO off, so without journald support, as its Makefile does with ENABLE_JOURNALD=0)"
# A throwaway module that requires the pinned release and builds its command (`go install
# pkg@version` would also ask the proxy for the module's version list, which it may refuse).
# Same flags as the project's release build, minus journald, which needs cgo and libsystemd
# and serves only the system log monitor, which the benchmark does not run.
printf 'module nodepulse.local/npdbuild\ngo 1.26\nrequire k8s.io/node-problem-detector %s\n' "$NPD_VERSION" > "$work/go.mod"
(cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
  go build -trimpath -ldflags "-X k8s.io/node-problem-detector/pkg/version.version=$NPD_VERSION" \
  -o "$bin_dir.tmp/nodeproblemdetector" k8s.io/node-problem-detector/cmd/nodeproblemdetector) \
  || { log "go build of node-problem-detector $NPD_VERSION failed (see above); a newer Go may be needed: try GOTOOLCHAIN=go1.27.3"; exit 1; }
mv "$bin_dir.tmp/nodeproblemdetector" "$bin_dir.tmp/node-problem-detector"
rm -rf "$bin_dir"
mv "$bin_dir.tmp" "$bin_dir"
log "built $bin_dir/node-problem-detector"
echo "$bin_dir/node-problem-detector"
