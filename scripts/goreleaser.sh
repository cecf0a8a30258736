#!/bin/sh
# Prints the path of the GoReleaser pinned in tools/goreleaser/go.mod,
# building it from the Go module proxy the first time (a few minutes on 2
# cores). The binary is cached outside the repo, keyed by version, and reused.
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's|^require github.com/goreleaser/goreleaser/v2 \(v[^ ]*\)$|\1|p' tools/goreleaser/go.mod)
[ -n "$version" ] || { echo "goreleaser.sh: no GoReleaser version in tools/goreleaser/go.mod" >&2; exit 1; }
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/goreleaser-$version/goreleaser
if [ ! -x "$bin" ]; then
  echo "goreleaser.sh: building GoReleaser $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/goreleaser-$version"
  # main.version is what `goreleaser --version` prints.
  (cd tools/goreleaser && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=$version" \
    -o "$bin.tmp.$$" github.com/goreleaser/goreleaser/v2)
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
