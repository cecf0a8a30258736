#!/bin/sh
# Prints the path of the OpenTofu CLI pinned in tools/tofu/go.mod, building
# it from the Go module proxy the first time (about 5 minutes on 2 cores).
# The binary is cached outside the repo, keyed by version, and reused.
#
# TOFU_VERSION=v1.10.6 ./scripts/tofu.sh prints (and builds, once) another
# release instead, to run the suite against it (README, "Tested versions"):
# a scratch module under the cache requires that release and copies the
# replace directives of its own go.mod, as tools/tofu/go.mod does for the pin.
set -eu
cd "$(dirname "$0")/.."
pinned=$(sed -n 's|^require github.com/opentofu/opentofu \(v[^ ]*\)$|\1|p' tools/tofu/go.mod)
[ -n "$pinned" ] || { echo "tofu.sh: no OpenTofu version in tools/tofu/go.mod" >&2; exit 1; }
version=${TOFU_VERSION:-$pinned}
case $version in v*) ;; *) version=v$version ;; esac
if ! printf '%s\n' "$version" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$'; then
  echo "tofu.sh: TOFU_VERSION=$TOFU_VERSION is not a release version such as v1.10.6" >&2
  exit 1
fi
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/tofu-$version/tofu
if [ ! -x "$bin" ]; then
  echo "tofu.sh: building OpenTofu $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/tofu-$version"
  module=tools/tofu
  if [ "$version" != "$pinned" ]; then
    module=$cache/tofu-$version/src.$$
    rm -rf "$module"
    mkdir -p "$module"
    trap 'rm -rf "$module"' EXIT
    upstream=$(cd "$module" && go mod download -json "github.com/opentofu/opentofu@$version" |
      sed -n 's|^[[:space:]]*"GoMod": "\(.*\)",*$|\1|p')
    [ -f "$upstream" ] || { echo "tofu.sh: the Go module proxy gave no go.mod for OpenTofu $version" >&2; exit 1; }
    # replace OLD [VER] => NEW [VER], on one line or inside a replace ( ) block.
    replaces=$(awk '
      /^replace[[:space:]]*\($/ { block = 1; next }
      block && /^\)/ { block = 0; next }
      block || /^replace[[:space:]]/ {
        sub(/^[[:space:]]+/, ""); sub(/^replace[[:space:]]+/, ""); sub(/[[:space:]]*\/\/.*$/, "")
        split($0, side, /[[:space:]]*=>[[:space:]]*/)
        n = split(side[1], o, /[[:space:]]+/); m = split(side[2], w, /[[:space:]]+/)
        old = o[1]; if (n > 1 && o[2] != "") old = old "@" o[2]
        new = w[1]; if (m > 1 && w[2] != "") new = new "@" w[2]
        if (old != "" && new != "") print "-replace=" old "=" new
      }' "$upstream")
    printf 'module tofu%s\n\ngo 1.24\n\nrequire github.com/opentofu/opentofu %s\n' "$(echo "$version" | tr -c '0-9\n' _)" "$version" >"$module/go.mod"
    printf '//go:build tools\n\npackage tofu\n\nimport _ "github.com/opentofu/opentofu/cmd/tofu"\n' >"$module/tools.go"
    # shellcheck disable=SC2086 # one -replace=... word per directive, no spaces inside
    (cd "$module" && { [ -z "$replaces" ] || go mod edit $replaces; } && go mod tidy)
  fi
  (cd "$module" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$bin.tmp.$$" github.com/opentofu/opentofu/cmd/tofu)
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
