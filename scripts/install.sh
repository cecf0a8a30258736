#!/bin/sh
# install.sh [DIR [TAGS]]: build the provider and install it into DIR as
# immutable-infra/immutable version PROVIDER_VERSION (default 0.1.0, the
# version CHANGELOG.md is preparing), in the layout Terraform and OpenTofu
# read a provider directory in: HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/. It is
# installed under both hosts the short source "immutable-infra/immutable"
# may mean: registry.opentofu.org (OpenTofu's) and registry.terraform.io
# (Terraform's).
#
# DIR defaults to ~/.terraform.d/plugins, which both CLIs search without
# any CLI configuration (their "implied local mirror"; `make install`).
# Other versions in DIR, and other providers, are left alone; the same
# version is replaced, each file in one rename.
#
# TAGS (or MIRROR_TAGS) are Go build tags, for tests only (see mirror.sh).
set -eu
dir=${1:-${HOME:?install.sh: HOME is not set}/.terraform.d/plugins}
tags=${2:-${MIRROR_TAGS:-}}
version=${PROVIDER_VERSION:-0.1.0}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # before the cd below: DIR is relative to the caller
cd "$(dirname "$0")/.."
target=$(go env GOOS)_$(go env GOARCH)
name=terraform-provider-immutable_v$version
# Built and copied beside the destination, so that each file appears whole.
tmp=$(mktemp -d "$dir/.install-immutable.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# 128 + the signal's number, as a shell reports a death by signal.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
# Built as .goreleaser.yml builds a release: -s -w leave out the symbol
# table and DWARF (50 MB -> 35 MB). Every tofu/terraform command hashes the
# whole provider binary against .terraform.lock.hcl before starting it: a
# debug build made every command slower than what users run
# (scripts/bench-build.sh measures through this script).
CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "-s -w -X main.version=$version" -o "$tmp/$name" .
replaced=
for host in registry.opentofu.org registry.terraform.io; do
  d=$dir/$host/immutable-infra/immutable/$version/$target
  mkdir -p "$d"
  if [ -e "$d/$name" ] && ! cmp -s "$tmp/$name" "$d/$name"; then replaced=1; fi
  cp "$tmp/$name" "$tmp/$host"
  mv -f "$tmp/$host" "$d/$name"
done
echo "installed immutable-infra/immutable $version ($target) in $dir,"
echo "for registry.opentofu.org and registry.terraform.io"
if [ -n "$replaced" ]; then
  cat <<EOF
This replaced a different build of $version. A directory that ran init with
the earlier one has its checksum in .terraform.lock.hcl, and plan there says
the provider does not match it (init -upgrade does not help: the version is
the same). Record this build's checksum there with
  tofu providers lock -fs-mirror="$dir" immutable-infra/immutable
(or terraform providers lock ...).
EOF
fi
