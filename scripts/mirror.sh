#!/bin/sh
# mirror.sh DIR [TAGS]: build the provider into a filesystem mirror under DIR
# (DIR/mirror, laid out by install.sh for both registry hosts) and write
# DIR/cli.tfrc, a CLI configuration that installs immutable-infra/immutable
# from it with no registry access. DIR is relative to the repository.
# Use it with TF_CLI_CONFIG_FILE=DIR/cli.tfrc (OpenTofu reads that too).
# TAGS (or MIRROR_TAGS) are Go build tags, for tests only: the release race
# test builds with "immutable_testhooks" to get the publish barrier, which
# release builds never contain.
set -eu
dir=$1
tags=${2:-${MIRROR_TAGS:-}}
cd "$(dirname "$0")/.."
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/mirror"
scripts/install.sh "$dir/mirror" "$tags" >/dev/null
cat > "$dir/cli.tfrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$dir/mirror"
    include = ["registry.opentofu.org/immutable-infra/immutable", "registry.terraform.io/immutable-infra/immutable"]
  }
}
CFG
echo "$dir/cli.tfrc"
