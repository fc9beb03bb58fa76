#!/usr/bin/env bash
# For a machine that cannot pull node:20-bookworm-slim (no registry of images reachable) but has Debian's packages
# and Node.js 20 installed: assembles a stand-in from a debootstrap'd Debian 12 (minbase) and this machine's own
# Node.js, npm and Node headers, with user node (uid 1000), and tags it localhost/node:20-bookworm-slim. Then
# deploy/image/build-local.sh builds the Dockerfile on it. Needs root, debootstrap and buildah.
set -euo pipefail

rootfs="${ROOTFS:-/var/tmp/mycelium-bookworm-rootfs}"
node_bin="$(command -v node)"
case "$("$node_bin" --version)" in v20.*) ;; *) echo "local-base-image: needs Node.js 20 on PATH, found $("$node_bin" --version)" >&2; exit 1 ;; esac
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
headers="$(dirname "$(dirname "$node_bin")")/include/node"
[ -f "$headers/node.h" ] || { echo "local-base-image: no Node.js headers at $headers" >&2; exit 1; }

if [ ! -x "$rootfs/bin/sh" ]; then
  mkdir -p "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
fi
container="$(buildah from scratch)"
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
mount="$(buildah mount "$container")"
cp -a "$rootfs/." "$mount/"
mkdir -p "$mount/usr/local/bin" "$mount/usr/local/lib/node_modules" "$mount/usr/local/include"
cp "$node_bin" "$mount/usr/local/bin/node"
cp -a "$npm_dir" "$mount/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mount/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mount/usr/local/bin/npx"
cp -a "$headers" "$mount/usr/local/include/node"
chroot "$mount" groupadd -g 1000 node
chroot "$mount" useradd -u 1000 -g node -s /bin/bash -m node
rm -rf "$mount/var/cache/apt/archives/"*.deb "$mount/var/lib/apt/lists/"*
buildah umount "$container"
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$container"
buildah commit "$container" localhost/node:20-bookworm-slim
