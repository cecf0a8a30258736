#!/bin/sh
# Prints the path of MinIO's client, mc, the peer `make bench` measures
# publishing to S3 against (`mc mirror`), building it from the Go module
# proxy the first time (about 3 minutes on 2 cores) and caching it outside
# the repo, keyed by version. mc is only run, as a separate program, by the
# benchmark; nothing of it is linked into or shipped with the provider.
# Exits non-zero, printing why, when it cannot be built: the bench then
# skips its rows with a note.
set -eu
version=${MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/mc-$version/mc
if [ ! -x "$bin" ]; then
  echo "mc.sh: building mc $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/mc-$version"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath "github.com/minio/mc@$version"
  mv "$tmp/mc" "$bin"
  rmdir "$tmp"
fi
echo "$bin"
