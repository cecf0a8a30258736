#!/bin/sh
# demo.sh: a release and a rollback you can watch, offline, on this machine.
# Builds the provider and OpenTofu, copies examples/static-site to
# build/demo, starts a small web server on 127.0.0.1 serving its www/, and:
#   1. publishes site/ as release 1.0.0 (publish/) and deploys it (deploy/);
#   2. edits site/index.html, shows the plan, publishes 1.0.1, deploys it;
#   3. rolls back by pinning 1.0.0: shows the plan (the export updated in
#      place, nothing rebuilt), applies it, and checks the store gained no
#      object.
# After each step it prints the page the server serves, and fails if the
# page, a version or a plan is not what the step says.
# TOFU=terraform make demo runs the same with a Terraform on PATH.
set -eu
cd "$(dirname "$0")/.."
TOFU=${TOFU:-$(scripts/tofu.sh)}
work=$(pwd)/build/demo
rm -rf "$work"
mkdir -p "$work"
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh build/mirror)
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
go build -o "$work/serve" ./examples/static-site/serve
cp -R examples/static-site "$work/static-site"
cd "$work/static-site"
# Leftovers of running the example in place would be copied too.
# serve/ is built above; a copy of its Go source under build/ would be
# one more package for `go test ./...` and the linters.
rm -rf serve www .immutable publish/.terraform deploy/.terraform publish/terraform.tfstate* deploy/terraform.tfstate* \
  publish/.terraform.lock.hcl deploy/.terraform.lock.hcl publish/*.tfplan deploy/*.tfplan

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }
# tf runs the CLI, showing the command as you would type it.
tf() {
  printf '\033[1m$ %s %s\033[0m\n' "$(basename "$TOFU")" "$*" >&2
  "$TOFU" "$@"
}
output() { "$TOFU" "-chdir=$1" output -raw "$2"; }
expect_output() {
  got=$(output "$1" "$2")
  [ "$got" = "$3" ] || fail "$1: output $2 is \"$got\", want \"$3\""
  printf '%s: %s = %s\n' "$1" "$2" "$got"
}

# The web server: serves www/, whatever deploy/ last wrote there.
# -background returns once it listens, printing the URL and the server's
# process id: the URL answers from then on, so there is nothing to wait for
# (reading the URL of a server started with & raced its start).
started=$("$work/serve" -addr 127.0.0.1:0 -dir www -background 2>"$work/serve.log") ||
  fail "the web server did not start: $(cat "$work/serve.log")"
set -- $started
[ $# -eq 2 ] || fail "serve -background printed \"$started\", not a URL and a process id"
url=$1 server=$2
trap 'kill "$server" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

# page EXPECTED WHAT: GET the page, print it, and fail unless it is
# byte for byte EXPECTED.
page() {
  printf '\033[1mGET %s\033[0m   # %s\n' "$url" "$2"
  "$work/serve" -get "$url" >"$work/page.html" || fail "GET $url failed; the server's log: $(cat "$work/serve.log")"
  cat "$work/page.html"
  cmp -s "$work/page.html" "$1" || fail "the served page is not $2"
}

cp site/index.html "$work/index-1.0.0.html"
for ws in publish deploy; do
  "$TOFU" "-chdir=$ws" init -input=false >"$work/init-$ws.log" 2>&1 || { cat "$work/init-$ws.log"; fail "init $ws/ failed"; }
done
step "The example: site/ is the site; publish/ turns it into an artifact and a release; deploy/ writes a release's site into www/, which $url serves. The store is ./.immutable. (init done, offline, from a local provider mirror)"
find site publish deploy -name '.*' -prune -o -type f -print | sort | sed 's/^/  /'

step "1. Publish site/ as release 1.0.0"
tf -chdir=publish apply -input=false -auto-approve
expect_output publish version 1.0.0

step "2. Deploy the latest version: the export writes its site into www/"
tf -chdir=deploy apply -input=false -auto-approve
expect_output deploy deployed_version 1.0.0
page "$work/index-1.0.0.html" "release 1.0.0"

step "3. Edit site/index.html; the plan publishes a new artifact and release 1.0.1"
sed 's/first edition/second edition/' site/index.html >"$work/index-1.0.1.html"
cmp -s site/index.html "$work/index-1.0.1.html" && fail "the edit changed nothing: site/index.html no longer says \"first edition\""
cp "$work/index-1.0.1.html" site/index.html
diff -u "$work/index-1.0.0.html" site/index.html || true
set +e
tf -chdir=publish plan -input=false -detailed-exitcode -out=publish.tfplan
code=$?
set -e
[ "$code" -eq 2 ] || fail "expected a plan with changes (exit 2), got exit $code"

step "4. Publish 1.0.1 (apply that plan); publishing deploys nothing, the server still serves 1.0.0"
tf -chdir=publish apply -input=false publish.tfplan
expect_output publish version 1.0.1
page "$work/index-1.0.0.html" "still release 1.0.0"

step "5. Deploy the latest version, 1.0.1: the export is updated in place"
tf -chdir=deploy apply -input=false -auto-approve
expect_output deploy deployed_version 1.0.1
page "$work/index-1.0.1.html" "release 1.0.1"

step "6. Roll back by pinning 1.0.0: the plan updates the export in place, and nothing else"
find .immutable -type f | sort >"$work/store-before.txt"
tf -chdir=deploy plan -input=false -var deploy_version=1.0.0 -out=rollback.tfplan >"$work/rollback-plan.txt" ||
  { cat "$work/rollback-plan.txt"; fail "the rollback plan failed"; }
cat "$work/rollback-plan.txt"
grep -q '0 to add, 1 to change, 0 to destroy' "$work/rollback-plan.txt" ||
  fail "the rollback plan is not one in-place change"
actions=$("$TOFU" -chdir=deploy show -json rollback.tfplan | grep -o '"actions":\[[^]]*\]' | sort | uniq -c)
printf '%s\n' "$actions" | grep -q '"actions":\["update"\]' || fail "the rollback plan updates nothing: $actions"
printf '%s\n' "$actions" | grep -v -e '"actions":\["update"\]' -e '"actions":\["read"\]' -e '"actions":\["no-op"\]' &&
  fail "the rollback plan does more than update the export: $actions"
printf 'and publish/ has nothing to do: the artifact and the release are not rebuilt\n'
tf -chdir=publish plan -input=false -detailed-exitcode >"$work/publish-plan.txt" ||
  { cat "$work/publish-plan.txt"; fail "publish/ has changes during the rollback"; }
grep 'No changes' "$work/publish-plan.txt"

step "7. Apply the rollback: 1.0.0's exact bytes are served again, and the store gained no object"
tf -chdir=deploy apply -input=false rollback.tfplan
expect_output deploy deployed_version 1.0.0
page "$work/index-1.0.0.html" "release 1.0.0, byte for byte"
find .immutable -type f | sort >"$work/store-after.txt"
cmp -s "$work/store-before.txt" "$work/store-after.txt" || {
  diff "$work/store-before.txt" "$work/store-after.txt" || true
  fail "the rollback changed the store"
}
printf 'store: %s objects before the rollback, the same %s after\n' \
  "$(wc -l <"$work/store-before.txt" | tr -d ' ')" "$(wc -l <"$work/store-after.txt" | tr -d ' ')"

step "demo done"
cat <<EOF
The example ran in $work/static-site: publish/ and deploy/ are the two
workspaces, .immutable/ the store, www/ what is served. To watch it in a
browser, serve it and run the steps again:
  $work/serve -dir $work/static-site/www      # http://127.0.0.1:8080/
  $TOFU -chdir=$work/static-site/deploy apply -var deploy_version=1.0.1
EOF
