#!/usr/bin/env bash
# bench.sh TOFU: time `tofu plan` of an immutable_artifact over a generated
# tree against the HCL idiom
#   sha256(join("", [for f in fileset(d, "**") : filesha256("${d}/${f}")]))
# over the same tree, side by side in one run, and print the ratio.
# BENCH_FILES and BENCH_KIB size the tree (default 10,000 x 100 KiB);
# BENCH_RUNS is how many plans each row takes the median of (default 3).
set -euo pipefail
tofu=$1
cd "$(dirname "$0")/.."
files=${BENCH_FILES:-10000}
kib=${BENCH_KIB:-100}
runs=${BENCH_RUNS:-3}
work=${BENCH_DIR:-build/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
tree=$work/tree-${files}x${kib}k
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh "$work/mirror")
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

if [ ! -f "$tree/.complete" ]; then
  echo "generating $files files of $kib KiB in $tree" >&2
  rm -rf "$tree"
  go run ./scripts/gentree -dir "$tree" -files "$files" -kib "$kib"
  touch "$tree/.complete"
fi
mkdir -p "$work/empty"

config() { # name body
  local d=$work/cfg-$1
  rm -rf "$d"
  mkdir -p "$d"
  cat > "$d/main.tf" <<TF
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
provider "immutable" {
  store = "file://$work/store"
}
$2
TF
  (cd "$d" && "$tofu" init -input=false >/dev/null)
}
config provider "resource \"immutable_artifact\" \"t\" {
  source   = \"$tree\"
  excludes = [\".complete\"]
}"
config idiom "output \"h\" {
  value = sha256(join(\"\", [for f in fileset(\"$tree\", \"**\") : filesha256(\"$tree/\${f}\")]))
}"
config idiom-empty "output \"h\" {
  value = sha256(join(\"\", [for f in fileset(\"$work/empty\", \"**\") : filesha256(\"$work/empty/\${f}\")]))
}"
config empty "resource \"immutable_artifact\" \"t\" {
  source = \"$work/empty\"
}"

plan_seconds() { # config dir -> median seconds of $runs plans
  local d=$work/cfg-$1 times=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N)
    (cd "$d" && "$tofu" plan -input=false -lock=false -refresh=false >/dev/null)
    e=$(date +%s%N)
    times+=("$(( (e - s) / 1000000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

# Warm the page cache so both sides read from memory.
cat "$tree"/*/* > /dev/null 2>&1 || true
idiom=$(plan_seconds idiom)
prov=$(plan_seconds provider)
empty=$(plan_seconds empty)
idiom_empty=$(plan_seconds idiom-empty)
gb=$(awk -v f="$files" -v k="$kib" 'BEGIN { printf "%.2f", f * k / 1024 / 1024 }')
echo
echo "tree: $files files x $kib KiB = $gb GiB, $(nproc) cores; median of $runs plans each"
printf '%-44s %10s %10s\n' "case" "plan (s)" "vs idiom"
row() { printf '%-44s %10.2f %9.1fx\n' "$1" "$(awk -v m="$2" 'BEGIN{print m/1000}')" "$(awk -v i="$idiom" -v m="$2" 'BEGIN{print i/m}')"; }
row "HCL idiom (fileset + filesha256)" "$idiom"
row "immutable_artifact" "$prov"
row "HCL idiom over an empty dir" "$idiom_empty"
row "immutable_artifact over an empty dir" "$empty"
over_i=$(( idiom - idiom_empty )); over_p=$(( prov - empty ))
[ "$over_p" -gt 0 ] || over_p=1
printf '%-44s %10.2f %9.1fx\n' "HCL idiom beyond tofu's overhead" "$(awk -v m="$over_i" 'BEGIN{print m/1000}')" 1
printf '%-44s %10.2f %9.1fx\n' "immutable_artifact beyond tofu's overhead" "$(awk -v m="$over_p" 'BEGIN{print m/1000}')" "$(awk -v i="$over_i" -v m="$over_p" 'BEGIN{print i/m}')"
