#!/usr/bin/env bash
# bench-publish.sh TOFU: the publishing tables of `make bench`, each row
# measured side by side with the peer a user would pick instead, in this
# run, on the same trees:
#   - local store: `tofu apply` of a saved plan that publishes a tree of
#     BENCH_LOCAL_TREE (default 10000x100: files x KiB) into an empty
#     store, against `cp -r` of the same tree + `sync`, and the same apply
#     of an empty tree (tofu's own cost); best of BENCH_RUNS (default 5),
#     interleaved;
#   - S3: the store's publish to versitygw behind a Go proxy adding
#     BENCH_S3_RTT (default 20ms) per request, first publish and one file
#     changed, against `mc mirror` of the same tree through the same proxy
#     (BenchmarkS3Publish; BENCH_S3_FILES, default "2000 10000";
#     BENCH_S3=0 skips it).
set -euo pipefail
tofu=$1
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-5}
tree_spec=${BENCH_LOCAL_TREE:-10000x100}
work=${BENCH_DIR:-build/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh "$work/mirror")
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
go build -o "$work/benchtool" ./scripts/benchtool

ms() { echo $(( $(date +%s%N) / 1000000 )); }
sec() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }

files=${tree_spec%x*} kib=${tree_spec#*x}
tree=$work/tree-$tree_spec
if [ ! -f "$tree.done" ]; then
  echo "generating $files files of $kib KiB in $tree" >&2
  rm -rf "$tree"
  "$work/benchtool" gen -dir "$tree" -files "$files" -kib "$kib"
  touch "$tree.done"
fi
cfg=$work/cfg-publish
rm -rf "$cfg"
mkdir -p "$cfg"
cat > "$cfg/main.tf" <<TF
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = "file://$work/publish-store"
}
resource "immutable_artifact" "t" {
  source = "$tree"
}
TF
(cd "$cfg" && "$tofu" init -input=false >/dev/null)
# The same apply of an empty tree: what tofu itself costs, for the row
# below it.
cfg0=$work/cfg-publish-empty
rm -rf "$cfg0" "$work/empty-tree"
mkdir -p "$cfg0" "$work/empty-tree"
sed "s#$tree#$work/empty-tree#; s#publish-store#publish-store-empty#" "$cfg/main.tf" > "$cfg0/main.tf"
(cd "$cfg0" && "$tofu" init -input=false >/dev/null)
export IMMUTABLE_CACHE_DIR=$work/publish-statcache

best_apply= best_cp= best_empty=
for i in $(seq "$runs"); do
  rm -rf "$work/publish-store-empty" "$cfg0/terraform.tfstate"* "$cfg0/p.tfplan"
  (cd "$cfg0" && "$tofu" plan -input=false -lock=false -out=p.tfplan >/dev/null)
  s=$(ms)
  (cd "$cfg0" && "$tofu" apply -input=false -lock=false p.tfplan >/dev/null)
  e=$(ms)
  t=$((e - s))
  [ -z "$best_empty" ] || [ "$t" -lt "$best_empty" ] && best_empty=$t
  # immutable: plan (untimed, it primes the stat cache as a real plan
  # does), then the timed apply of the saved plan into an empty store.
  rm -rf "$work/publish-store" "$cfg/terraform.tfstate"* "$cfg/p.tfplan"
  (cd "$cfg" && "$tofu" plan -input=false -lock=false -out=p.tfplan >/dev/null)
  sync
  s=$(ms)
  (cd "$cfg" && "$tofu" apply -input=false -lock=false p.tfplan >/dev/null)
  e=$(ms)
  t=$((e - s))
  [ -z "$best_apply" ] || [ "$t" -lt "$best_apply" ] && best_apply=$t
  # The peer: copy the tree and make it durable.
  rm -rf "$work/cp-copy"
  sync
  s=$(ms)
  cp -r "$tree" "$work/cp-copy"
  sync
  e=$(ms)
  t=$((e - s))
  [ -z "$best_cp" ] || [ "$t" -lt "$best_cp" ] && best_cp=$t
done
rm -rf "$work/cp-copy"
# What the store does that cp does not: hash every byte it stores to
# verify it, at best the sha256 limit of the tree on all cores.
limit=$("$work/benchtool" limit -dir "$tree" | awk '{ printf "%d", $1 * 1000 }')

out=$work/publish-table.txt
{
  echo "publishing, local store: $files files x $kib KiB, best of $runs (interleaved)"
  printf '%-44s %9s %8s\n' "case" "time (s)" "ratio"
  printf '%-44s %9s %8s\n' "cp -r + sync" "$(sec "$best_cp")" "1.0x"
  printf '%-44s %9s %8s\n' "tofu apply of a saved plan (first publish)" "$(sec "$best_apply")" \
    "$(awk -v a="$best_apply" -v b="$best_cp" 'BEGIN { printf "%.2fx", a / b }')"
  printf '%-44s %9s\n' "  of which tofu's fixed cost (empty tree)" "$(sec "$best_empty")"
  printf '%-44s %9s %8s\n' "  publish beyond that" "$(sec $((best_apply - best_empty)))" \
    "$(awk -v a="$((best_apply - best_empty))" -v b="$best_cp" 'BEGIN { printf "%.2fx", a / b }')"
  printf '%-44s %9s\n' "  sha256 of the tree, $(nproc) cores (verifying)" "$(sec "$limit")"
  # A miss says by how much, and how much of it is tofu's own cost (the
  # apply of an empty tree: plugin starts, state, plan file) and the
  # verification cp does not do (hashing every stored byte, at best the
  # sha256 limit), which no publishing code may remove.
  awk -v a="$best_apply" -v b="$best_cp" -v z="$best_empty" -v h="$limit" 'BEGIN {
    if (a <= b) { printf "target: the whole apply <= 1.0x cp -r + sync: met (%.2fx)\n", a / b; exit }
    printf "target: the whole apply <= 1.0x cp -r + sync: MISSED by %.2f s (%.0f%%). Why: tofu'"'"'s fixed cost is %.2f s", (a - b) / 1000, 100 * (a / b - 1), z / 1000
    printf " and verifying the stored bytes at least %.2f s (cp verifies nothing)", h / 1000
    r = a - z - h - b
    if (r <= 0) printf "; beyond those, copying and flushing are no slower than cp'"'"'s\n"
    else printf "; the rest, %.2f s, is copying and flushing beyond cp'"'"'s\n", r / 1000
  }'
  echo
} > "$out"

if [ "${BENCH_S3:-1}" = 0 ]; then
  cat "$out"
  exit 0
fi
mc_path=$(scripts/mc.sh 2>"$work/mc-build.log") || {
  mc_path=
  echo "note: mc could not be built (see $work/mc-build.log): the mc mirror rows are skipped" >> "$out"
}
VERSITYGW_PATH=${VERSITYGW_PATH:-$(scripts/versitygw.sh)} MC_PATH=$mc_path \
  go test -run '^$' -bench S3Publish -benchtime 1x -timeout 60m ./internal/store/s3store/ | tee "$work/s3-bench.txt"
{
  echo "publishing, S3 (versitygw, ${BENCH_S3_RTT:-20ms} added per request), from $work/s3-bench.txt:"
  grep '^BenchmarkS3Publish' "$work/s3-bench.txt" | awk '{ printf "%-52s %9.2f s %8s req\n", $1, $3 / 1e9, $5 }'
  grep -A1 -- '--- SKIP' "$work/s3-bench.txt" || true
} >> "$out"
echo
cat "$out"
