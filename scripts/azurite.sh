#!/bin/sh
# Prints the path of Azurite's blob server (azurite-blob), the Azure Blob
# Storage emulator the azblob tests start, installing it the first time
# (runs on the machine's Node) and caching it outside the repo, keyed by
# version and lockfile.
#
# Every package is pinned, with its integrity hash, by
# tools/azurite/package-lock.json, installed with `npm ci` (the lockfile
# exactly, or nothing) and --ignore-scripts: no package's install script
# runs (none of Azurite's tree has one). To move to another version: edit
# tools/azurite/package.json, then in that directory run
# `npm install --package-lock-only` and commit both files.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tools/azurite
version=$(sed -n 's/^ *"azurite": *"\([^"]*\)".*/\1/p' "$src/package.json")
lockhash=$(sha256sum "$src/package-lock.json" | cut -c1-12)
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
dir=$cache/azurite-$version-$lockhash
bin=$dir/node_modules/.bin/azurite-blob
if [ ! -x "$bin" ]; then
  echo "azurite.sh: installing azurite $version into $dir (once; about a minute)" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/azurite-$version.XXXXXX")
  cp "$src/package.json" "$src/package-lock.json" "$tmp/"
  (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
echo "$bin"
