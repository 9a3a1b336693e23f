#!/usr/bin/env bash
# Builds the project's image from its own Dockerfile without a Docker engine, for the real test
# node: `buildah bud` with vfs storage and --pull=never, on a base image made here (debootstrap
# --variant=minbase of Debian bookworm plus the Node binary of the npm `node` package the project
# already brings, and npm from the npm registry) and tagged as the Dockerfile's NODE_IMAGE.
# Writes the image as an OCI archive that `ctr images import` takes.
#   scripts/node-image.sh OUT.tar    # prints OUT.tar's image reference on stdout (last line)
# Cached outside the checkout: the base image by Debian suite + Node + npm version, the built
# archive by a hash of everything the Dockerfile copies in; buildah's own layer cache keeps the
# `npm ci` layers while package*.json stay the same.
# Anywhere with a Docker engine the same image is `docker build -t nodepulse:0.1.0 .`.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUT.tar" >&2; exit 2; }
archive_out="$1"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${NODEPULSE_BASE_SUITE:-bookworm}"
# The real executable behind the `node` package's bin (a copy or a launcher, depending on how npm laid it out).
node_binary="$("$repo/node_modules/.bin/node" -p process.execPath 2>/dev/null)" \
  || { echo "error: $repo/node_modules/.bin/node does not run: run npm ci first (the node package brings Node 24)" >&2; exit 1; }
NODE_VERSION="$("$node_binary" --version)"
NPM_VERSION="${NODEPULSE_BASE_NPM:-$(npm --version)}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

missing=()
for tool in buildah debootstrap runc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[ -r "$ca_bundle" ] || missing+=(ca-certificates)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: ${missing[*]} not found; install them (Debian: apt-get install buildah debootstrap runc ca-certificates)" >&2
  exit 1
fi

cache_root="${NODEPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodepulse}"
log() { echo "[image] $*" >&2; }
# buildah's store lives in the cache, apart from any other container storage on the machine.
storage=(--root "$cache_root/containers/storage" --runroot "$cache_root/containers/run" --storage-driver vfs)
bah() { buildah "${storage[@]}" "$@"; }
start=$SECONDS

base="localhost/nodepulse-base:$SUITE-node-$NODE_VERSION-npm-$NPM_VERSION"
if ! bah inspect --type image "$base" >/dev/null 2>&1; then
  log "making $base (debootstrap --variant=minbase $SUITE)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  # libstdc++6: Node's binary links it; ca-certificates: a CA bundle where npm looks for one.
  debootstrap --variant=minbase --include=libstdc++6,ca-certificates "$SUITE" "$rootfs" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; log "debootstrap $SUITE failed (see above)"; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  install -m 0755 "$node_binary" "$rootfs/usr/local/bin/node"
  (cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null) \
    || { log "cannot fetch npm@$NPM_VERSION from the npm registry"; exit 1; }
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" --strip-components=1 -C "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # npm trusts the system bundle, which the build replaces with the host's (see below).
  printf 'cafile=%s\n' "$ca_bundle" > "$rootfs/usr/local/etc/npmrc"
  # The official node images' `node` user (1000:1000), which the Dockerfile runs as.
  echo 'node:x:1000:1000::/home/node:/bin/sh' >> "$rootfs/etc/passwd"
  echo 'node:x:1000:' >> "$rootfs/etc/group"
  mkdir -p "$rootfs/home/node" && chown 1000:1000 "$rootfs/home/node"
  tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
  container="$(bah from --pull-never scratch)"
  bah add "$container" "$work/rootfs.tar" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$container"
  bah commit --rm "$container" "$base" >/dev/null
  rm -rf "$work"
  trap - EXIT
  log "base image made after $((SECONDS - start))s"
fi

# Everything the Dockerfile copies in decides the image.
inputs=(Dockerfile package.json package-lock.json tsconfig.json common agent controller)
content_hash="$(cd "$repo" && find "${inputs[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
ref="localhost/nodepulse:build-$content_hash"
archive="$cache_root/images/nodepulse-$content_hash-$(echo "$base" | sha256sum | cut -c1-8).oci.tar"
if [ ! -s "$archive" ]; then
  log "building $ref from the Dockerfile (buildah bud)"
  mkdir -p "$cache_root/images"
  # --network host: the build's `npm ci` reaches the registry as this machine does, with this
  # machine's CA bundle mounted (the registries may be reached through a TLS-inspecting path).
  (cd "$repo" && bah bud --pull-never --layers --isolation chroot --network host \
    --volume "$ca_bundle:$ca_bundle:ro" --build-arg "NODE_IMAGE=$base" -t "$ref" -f Dockerfile .) >&2 \
    || { log "buildah bud failed (see above)"; exit 1; }
  bah push "$ref" "oci-archive:$archive.partial:$ref" >&2
  mv -f "$archive.partial" "$archive"
  # vfs keeps a full copy of the tree per layer (GBs per build); past a bound, keep only the base
  # (the next build then runs every step again, npm ci included).
  if [ "$(du -sm "$cache_root/containers/storage" | cut -f1)" -gt "${NODEPULSE_IMAGE_STORE_MAX_MIB:-16384}" ]; then
    log "image store over its bound: removing every image but $base"
    bah images --format '{{.ID}} {{.Name}}:{{.Tag}}' | awk -v keep="$base" '$2 != keep {print $1}' | sort -u | xargs -r buildah "${storage[@]}" rmi --force >/dev/null || true
  fi
  log "image built after $((SECONDS - start))s"
fi
ln -f "$archive" "$archive_out" 2>/dev/null || cp -f "$archive" "$archive_out"
echo "$ref"
