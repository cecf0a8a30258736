#!/usr/bin/env bash
# Proves the layout guard in .golangci.yml still bites: a package outside
# internal/provider that imports Terraform's plugin libraries must be
# refused by depguard. Without this a typo in the rule's file globs would
# turn the guard off silently and `make lint` would stay green. The probe
# package lives in build/ (the scratch folder, ignored by git) and is
# removed afterwards. Run by `make lint`; $1 is the golangci-lint binary.
set -euo pipefail
cd "$(dirname "$0")/.."
golangci_lint=$1
probe=build/layout-guard
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe"
cat >"$probe/probe.go" <<'GO'
// Package probe is planted by scripts/check-layout.sh; it must not lint clean.
package probe

import "github.com/hashicorp/terraform-plugin-log/tflog"

// Probe uses the import.
var Probe = tflog.Info
GO
if out=$("$golangci_lint" run "./$probe/" 2>&1); then
  echo "check-layout: golangci-lint accepted a terraform-plugin import outside internal/provider:" >&2
  echo "the depguard rule in .golangci.yml no longer applies; fix its files globs" >&2
  exit 1
fi
if ! grep -q 'terraform-glue-only-in-provider' <<<"$out"; then
  echo "check-layout: golangci-lint failed on the probe, but not with the layout rule:" >&2
  echo "$out" >&2
  exit 1
fi
echo "check-layout: the depguard layout rule refuses framework imports outside internal/provider"
