#!/bin/sh
# Prints the path of crane (go-containerregistry's CLI), which the registry
# tests run as a separate program to check independently what the provider
# pushed (crane validate --remote, crane manifest), building it from the Go
# module proxy the first time and caching it outside the repo, keyed by
# version. Keep the version the one go.mod requires of go-containerregistry.
set -eu
version=${CRANE_VERSION:-v0.22.1}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/crane-$version/crane
if [ ! -x "$bin" ]; then
  echo "crane.sh: building crane $version into $bin (once; about a minute)" >&2
  mkdir -p "$cache/crane-$version"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath "github.com/google/go-containerregistry/cmd/crane@$version"
  mv "$tmp/crane" "$bin"
  rmdir "$tmp"
fi
echo "$bin"
