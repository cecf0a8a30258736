#!/bin/sh
# Prints the path of fake-gcs-server, the Google Cloud Storage server the GCS
# tests start on 127.0.0.1, building it from the Go module proxy the first
# time and caching it outside the repo, keyed by version.
set -eu
version=${FAKE_GCS_SERVER_VERSION:-v1.56.1}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/fake-gcs-server-$version/fake-gcs-server
if [ ! -x "$bin" ]; then
  echo "fake-gcs-server.sh: building fake-gcs-server $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/fake-gcs-server-$version"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath "github.com/fsouza/fake-gcs-server@$version"
  mv "$tmp/fake-gcs-server" "$bin"
  rmdir "$tmp"
fi
echo "$bin"
