#!/usr/bin/env bash
# Writes a self-contained copy of a workspace package and its production dependencies into a new directory:
# what the container image runs (Dockerfile) and what `deploy/image/pack.sh` turns into an installable tarball.
#
#   deploy/image/build-app.sh <out-dir> [package]        package defaults to @mycelium/cli
#
# It is `pnpm deploy --prod` of that package with a flat (npm-style) node_modules: every @mycelium/* package it
# depends on (for the CLI: the four services too) is copied in with only its "files" (dist/), there are no links
# back into the workspace, and no dev dependencies. Run `pnpm install` and `pnpm build` first.
#
# better-sqlite3 is a native addon. Its install script is not run again here: the binary that `pnpm install`
# compiled for this Node.js is copied in (same version, checked), so the output runs with the Node.js that built it
# (in the image: the build stage's, which is the runtime stage's).
set -euo pipefail

out="${1:?usage: build-app.sh <out-dir> [package]}"
package="${2:-@mycelium/cli}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"

if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "build-app: $out exists and is not empty; give a new directory" >&2
  exit 2
fi
for service in coordinator shard-router replicator node-agent; do
  if [ ! -f "$repo/services/$service/dist/main.js" ]; then
    echo "build-app: services/$service/dist/main.js is missing; run pnpm build first" >&2
    exit 2
  fi
done

cd "$repo"
# --legacy: the workspace does not inject its packages (a built package is seen by the others at once), so pnpm 10
# deploys the legacy way; node-linker=hoisted gives the plain node_modules npm would.
pnpm --filter "$package" deploy --legacy --prod --prefer-offline --ignore-scripts --config.node-linker=hoisted "$out" >"$out.deploy.log" 2>&1 || {
  cat "$out.deploy.log" >&2
  exit 1
}
rm -f "$out.deploy.log"
# The deployed package itself is copied whole; keep what runs.
rm -rf "$out/src" "$out/test" "$out/.turbo" "$out"/tsconfig*.json

# The native addon, from the workspace's install.
addon_dir="$out/node_modules/better-sqlite3"
if [ -d "$addon_dir" ]; then
  built="$(node -p "require('path').dirname(require.resolve('better-sqlite3/package.json', { paths: ['$repo/packages/db'] }))")"
  want="$(node -p "require('$addon_dir/package.json').version")"
  have="$(node -p "require('$built/package.json').version")"
  if [ "$want" != "$have" ] || [ ! -f "$built/build/Release/better_sqlite3.node" ]; then
    echo "build-app: the workspace has better-sqlite3 $have (built: $(test -f "$built/build/Release/better_sqlite3.node" && echo yes || echo no)), the output needs $want; run pnpm install" >&2
    exit 1
  fi
  mkdir -p "$addon_dir/build/Release"
  cp "$built/build/Release/better_sqlite3.node" "$addon_dir/build/Release/"
fi

# Nothing may point outside the output (it is copied into an image or a tarball on its own).
outside="$(cd "$out" && find . -type l -exec sh -c 'for l; do t="$(readlink -f "$l")"; case "$t" in "$PWD"/*) ;; *) echo "$l";; esac; done' sh {} +)"
if [ -n "$outside" ]; then
  echo "build-app: links leading outside $out:" >&2
  echo "$outside" >&2
  exit 1
fi
echo "build-app: $package with its production dependencies in $out ($(du -sh "$out" | cut -f1))"
