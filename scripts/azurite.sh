#!/bin/sh
# Prints the path of Azurite's blob server (azurite-blob), the Azure Blob
# Storage emulator the azblob tests start, installing it with npm the
# first time (runs on the machine's Node) and caching it outside the repo,
# keyed by version.
set -eu
version=${AZURITE_VERSION:-3.35.0}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
dir=$cache/azurite-$version
bin=$dir/node_modules/.bin/azurite-blob
if [ ! -x "$bin" ]; then
  echo "azurite.sh: installing azurite $version into $dir (once; about a minute)" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/azurite-$version.XXXXXX")
  npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error "azurite@$version" >&2
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
echo "$bin"
