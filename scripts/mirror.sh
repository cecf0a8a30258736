#!/bin/sh
# mirror.sh DIR [TAGS]: build the provider into a filesystem mirror under DIR and
# write DIR/cli.tfrc, a CLI configuration that installs
# immutable-infra/immutable from it with no registry access. OpenTofu
# resolves the short source under registry.opentofu.org and Terraform under
# registry.terraform.io, so the mirror holds both.
# Use it with TF_CLI_CONFIG_FILE=DIR/cli.tfrc (OpenTofu reads that too).
# TAGS (or MIRROR_TAGS) are Go build tags, for tests only: the release race
# test builds with "immutable_testhooks" to get the publish barrier, which
# release builds never contain.
set -eu
dir=$1
tags=${2:-${MIRROR_TAGS:-}}
version=${PROVIDER_VERSION:-0.1.0}
cd "$(dirname "$0")/.."
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
target=$(go env GOOS)_$(go env GOARCH)
rm -rf "$dir/mirror"
bin=$dir/terraform-provider-immutable_v$version
CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "-X main.version=$version" -o "$bin" .
for host in registry.opentofu.org registry.terraform.io; do
  d=$dir/mirror/$host/immutable-infra/immutable/$version/$target
  mkdir -p "$d"
  cp "$bin" "$d/"
done
cat > "$dir/cli.tfrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$dir/mirror"
    include = ["registry.opentofu.org/immutable-infra/immutable", "registry.terraform.io/immutable-infra/immutable"]
  }
}
CFG
echo "$dir/cli.tfrc"
