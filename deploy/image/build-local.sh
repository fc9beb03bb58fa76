#!/usr/bin/env bash
# Builds the Dockerfile with buildah where no image registry is reachable and the container runtime needs help:
#
#   deploy/image/local-base-image.sh        # once: localhost/node:20-bookworm-slim (see there)
#   deploy/image/build-local.sh [tag]       # default localhost/mycelium:0.1.0
#   podman --runtime /usr/sbin/runc run --rm --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
#     localhost/mycelium:0.1.0 mycelium --help
#
# What it works around, seen on the development machines: crun refuses their hybrid cgroup layout (runc is used);
# the runtimes' default ulimits exceed the machine's hard limits (lower ones are given); the npm registry is reached
# through a proxy whose CA only the host trusts (the host's CA bundle is lent to the build's RUN steps through an
# npmrc mounted at build time; nothing of it lands in the image). With a normal Docker or Podman, plain
# `docker build .` is all it takes.
set -euo pipefail

tag="${1:-localhost/mycelium:0.1.0}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
runtime="$(command -v runc || true)"
[ -n "$runtime" ] || { echo "build-local: needs runc (apt-get install runc)" >&2; exit 1; }
npmrc="$(mktemp)"
trap 'rm -f "$npmrc"' EXIT
echo "cafile=/run/host-ca/ca-certificates.crt" >"$npmrc"
cd "$repo"
buildah bud --runtime "$runtime" --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
  -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca/ca-certificates.crt:ro -v "$npmrc:/root/.npmrc:ro" \
  --network host --layers \
  --build-arg NODE_IMAGE=localhost/node:20-bookworm-slim \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$tag" -f Dockerfile .
