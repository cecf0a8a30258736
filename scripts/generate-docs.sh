#!/bin/sh
# generate-docs.sh TOFU: regenerate docs/ with tfplugindocs. tfplugindocs
# would otherwise download a Terraform CLI to read the schema; instead the
# schema comes from the pinned OpenTofu, through the offline mirror.
set -eu
tofu=$1
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/build/docs
rm -rf "$work/config"
mkdir -p "$work/config"
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh "$work")
cat > "$work/config/main.tf" <<'TF'
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
TF
(cd "$work/config" && "$tofu" init -input=false >/dev/null && "$tofu" providers schema -json) |
  sed 's|"registry.opentofu.org/immutable-infra/immutable"|"immutable"|' > "$work/schema.json"
cd tools
go run -tags generate github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs generate \
  --provider-dir "$root" --provider-name immutable --rendered-provider-name immutable \
  --providers-schema "$work/schema.json"
