#!/bin/sh
# Prints the path of the versitygw S3 server the S3 tests start, building it
# from the Go module proxy the first time (a few minutes on 2 cores) and
# caching it outside the repo, keyed by version.
set -eu
version=${VERSITYGW_VERSION:-v1.8.0}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/versitygw-$version/versitygw
if [ ! -x "$bin" ]; then
  echo "versitygw.sh: building versitygw $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/versitygw-$version"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath "github.com/versity/versitygw/cmd/versitygw@$version"
  mv "$tmp/versitygw" "$bin"
  rmdir "$tmp"
fi
echo "$bin"
