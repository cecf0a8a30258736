#!/bin/sh
# Prints the path of the golangci-lint pinned in tools/golangci/go.mod,
# building it from the Go module proxy the first time (a few minutes on 2
# cores). The binary is cached outside the repo, keyed by version, and reused.
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's|^require github.com/golangci/golangci-lint/v2 \(v[^ ]*\)$|\1|p' tools/golangci/go.mod)
[ -n "$version" ] || { echo "golangci-lint.sh: no golangci-lint version in tools/golangci/go.mod" >&2; exit 1; }
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/golangci-lint-$version/golangci-lint
if [ ! -x "$bin" ]; then
  echo "golangci-lint.sh: building golangci-lint $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/golangci-lint-$version"
  # The version stamp is what `golangci-lint version` prints (the release
  # builds set it the same way).
  (cd tools/golangci && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=${version#v}" \
    -o "$bin.tmp.$$" github.com/golangci/golangci-lint/v2/cmd/golangci-lint)
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
