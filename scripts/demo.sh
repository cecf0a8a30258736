#!/bin/sh
# demo.sh: build the provider and OpenTofu, then init, plan and apply
# examples/quickstart offline against the default local store; change one
# file and show the plan that replaces the artifact (old -> new digest).
# TOFU=terraform make demo runs the same with a Terraform on PATH.
set -eu
cd "$(dirname "$0")/.."
TOFU=${TOFU:-$(scripts/tofu.sh)}
work=build/demo
rm -rf "$work"
mkdir -p "$work"
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh build/mirror)
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
cp -R examples/quickstart "$work/quickstart"
cd "$work/quickstart"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
step "$TOFU init"
"$TOFU" init -input=false
step "$TOFU plan"
"$TOFU" plan -input=false
step "$TOFU apply"
"$TOFU" apply -input=false -auto-approve
step "$TOFU plan (nothing changed: an empty plan, even after touch)"
touch site/index.html
"$TOFU" plan -input=false -detailed-exitcode
step "edit site/index.html, then $TOFU plan: the artifact is replaced"
printf '<h2>a change</h2>\n' >> site/index.html
set +e
"$TOFU" plan -input=false -detailed-exitcode
code=$?
set -e
[ "$code" -eq 2 ] || { echo "demo: expected a plan with changes (exit 2), got exit $code" >&2; exit 1; }
step "demo done; the store is $(pwd)/.immutable"
