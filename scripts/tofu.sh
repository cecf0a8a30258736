#!/bin/sh
# Prints the path of the OpenTofu CLI pinned in tools/tofu/go.mod, building
# it from the Go module proxy the first time (about 5 minutes on 2 cores).
# The binary is cached outside the repo, keyed by version, and reused.
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's|^require github.com/opentofu/opentofu \(v[^ ]*\)$|\1|p' tools/tofu/go.mod)
[ -n "$version" ] || { echo "tofu.sh: no OpenTofu version in tools/tofu/go.mod" >&2; exit 1; }
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/tofu-$version/tofu
if [ ! -x "$bin" ]; then
  echo "tofu.sh: building OpenTofu $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/tofu-$version"
  (cd tools/tofu && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$bin.tmp.$$" github.com/opentofu/opentofu/cmd/tofu)
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
