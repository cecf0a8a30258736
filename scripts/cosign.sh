#!/bin/sh
# Prints the path of cosign (sigstore's CLI), which the signature tests run
# as a verifier written apart from ours (cosign verify-blob-attestation
# --key) to check the DSSE envelopes, in-toto statements and SLSA provenance
# the provider signs, building it from the Go module proxy the first time
# and caching it outside the repo, keyed by version. It is a test tool only:
# nothing in the provider's go.mod depends on sigstore.
set -eu
version=${COSIGN_VERSION:-v2.6.5}
cache=${IMMUTABLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable-tools}
bin=$cache/cosign-$version/cosign
if [ ! -x "$bin" ]; then
  echo "cosign.sh: building cosign $version into $bin (once; a few minutes)" >&2
  mkdir -p "$cache/cosign-$version"
  tmp=$(mktemp -d)
  CGO_ENABLED=0 GOBIN=$tmp go install -trimpath "github.com/sigstore/cosign/v2/cmd/cosign@$version"
  mv "$tmp/cosign" "$bin"
  rmdir "$tmp"
fi
echo "$bin"
