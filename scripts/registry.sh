#!/bin/sh
# Prints the path of the CNCF distribution registry (the reference OCI
# registry, Apache-2.0) the registry tests start on 127.0.0.1, building it
# from the Go module proxy the first time (a few minutes on 2 cores) and
# caching it outside the repo, keyed by version. It is only run, as a
# separate program, by the tests; nothing of it is linked into the provider.
set -eu
version=${REGISTRY_VERSION:-v3.1.2}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/registry-$version/registry
if [ ! -x "$bin" ]; then
  echo "registry.sh: building the distribution registry $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/registry-$version"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath "github.com/distribution/distribution/v3/cmd/registry@$version"
  mv "$tmp/registry" "$bin"
  rmdir "$tmp"
fi
echo "$bin"
