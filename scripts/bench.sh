#!/usr/bin/env bash
# bench.sh TOFU: `make bench`. One table, every row measured side by side in
# this run on the same generated trees:
#   - tofu plan of an immutable_artifact, cold (no stat cache; files in the
#     page cache) and warm (stat cache primed);
#   - the same plan over an empty directory: tofu's fixed overhead;
#   - the HCL idiom sha256(join("", [for f in fileset(d, "**") :
#     filesha256("${d}/${f}")])) over the same tree, and over an empty one;
#   - sha256 of as many bytes, file by file, on all cores with no I/O: the
#     limit (one file is one sequential hash, so a single file gets one core).
# "beyond" is a plan's time minus its empty-directory plan's.
# Then peak RSS while hashing a 4 GiB file and a 100,000-file tree.
#
# BENCH_TREES picks trees (default "10000x100 100000x1 1x1048576", files x KiB),
# BENCH_RUNS how many plans each row takes the median of (default 3),
# BENCH_RSS=0 skips the RSS measurements.
set -euo pipefail
tofu=$1
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
trees=${BENCH_TREES:-"10000x100 100000x1 1x1048576"}
work=${BENCH_DIR:-build/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh "$work/mirror")
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
go build -o "$work/benchtool" ./scripts/benchtool
mkdir -p "$work/empty"

config() { # dir body
  local d=$1
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
artifact() { echo "resource \"immutable_artifact\" \"t\" {
  source = \"$1\"
}"; }
idiom() { echo "output \"h\" {
  value = sha256(join(\"\", [for f in fileset(\"$1\", \"**\") : filesha256(\"$1/\${f}\")]))
}"; }

ms() { echo $(( $(date +%s%N) / 1000000 )); }
plan_ms() { # dir [env...] -> median ms of $runs plans
  local d=$1 times=()
  shift
  for _ in $(seq "$runs"); do
    local s e
    s=$(ms)
    (cd "$d" && env "$@" "$tofu" plan -input=false -lock=false -refresh=false >/dev/null)
    e=$(ms)
    times+=("$((e - s))")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

config "$work/cfg-empty-artifact" "$(artifact "$work/empty")"
config "$work/cfg-empty-idiom" "$(idiom "$work/empty")"
# Untimed plans first: the freshly built provider and tofu come off disk.
for d in cfg-empty-artifact cfg-empty-idiom; do
  (cd "$work/$d" && "$tofu" plan -input=false -lock=false -refresh=false >/dev/null)
done
empty_p=$(runs=$((runs + 2)) plan_ms "$work/cfg-empty-artifact" IMMUTABLE_STAT_CACHE=off)
empty_i=$(runs=$((runs + 2)) plan_ms "$work/cfg-empty-idiom")

sec() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 1; printf "%.1fx", a / b }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); printf "%s", ok ? "met" : "MISSED" }'; }

out=$work/table.txt
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $("$tofu" version | head -1); median of $runs plans"
  echo "tofu's fixed overhead: empty-directory plan $(sec "$empty_p") s with the provider, $(sec "$empty_i") s for the idiom"
  echo "beyond = plan minus its empty-directory plan, at least 0.02 s (below that it is only noise)"
  printf '\n%-18s %-30s %9s %10s %14s\n' "tree" "case" "plan (s)" "beyond (s)" "ratio"
} > "$out"

for t in $trees; do
  files=${t%x*} kib=${t#*x}
  tree=$work/tree-$t
  if [ ! -f "$work/tree-$t.done" ]; then
    echo "generating $files files of $kib KiB in $tree" >&2
    rm -rf "$tree"
    "$work/benchtool" gen -dir "$tree" -files "$files" -kib "$kib"
    touch "$work/tree-$t.done"
  fi
  find "$tree" -type f -exec cat {} + > /dev/null # into the page cache
  config "$work/cfg-artifact-$t" "$(artifact "$tree")"
  config "$work/cfg-idiom-$t" "$(idiom "$tree")"
  cache=$work/statcache-$t
  rm -rf "$cache"

  idiom_ms=$(plan_ms "$work/cfg-idiom-$t")
  cold_ms=$(plan_ms "$work/cfg-artifact-$t" IMMUTABLE_STAT_CACHE=off)
  (cd "$work/cfg-artifact-$t" && IMMUTABLE_CACHE_DIR=$cache "$tofu" plan -lock=false -refresh=false >/dev/null) # prime
  warm_ms=$(plan_ms "$work/cfg-artifact-$t" IMMUTABLE_CACHE_DIR="$cache")
  limit_ms=$("$work/benchtool" limit -dir "$tree" | awk '{ printf "%d", $1 * 1000 }')

  bi=$((idiom_ms - empty_i)) bc=$((cold_ms - empty_p)) bw=$((warm_ms - empty_p))
  # A plan within 20 ms of the empty one is tofu's overhead alone: count
  # it as 20 ms rather than divide by noise.
  floor=20
  [ "$bc" -ge "$floor" ] || bc=$floor
  [ "$bw" -ge "$floor" ] || bw=$floor
  size=$(awk -v f="$files" -v k="$kib" 'BEGIN { v = f * k / 1024; if (v >= 1024) printf "%.0f GiB", v / 1024; else printf "%.0f MiB", v }')
  label="$files x ${kib}K"
  {
    printf '%-18s %-30s %9s %10s %14s\n' "$label" "HCL idiom" "$(sec "$idiom_ms")" "$(sec "$bi")" "1.0x"
    printf '%-18s %-30s %9s %10s %14s\n' "($size)" "immutable_artifact, cold" "$(sec "$cold_ms")" "$(sec "$bc")" "$(ratio "$bi" "$bc") faster"
    printf '%-18s %-30s %9s %10s %14s\n' "" "immutable_artifact, warm" "$(sec "$warm_ms")" "$(sec "$bw")" "$(ratio "$bi" "$bw") faster"
    printf '%-18s %-30s %9s %10s %14s\n' "" "sha256 limit, $(nproc) cores" "" "$(sec "$limit_ms")" "cold $(ratio "$bc" "$limit_ms")"
    if [ "$t" = 10000x100 ]; then
      cr=$(awk -v a="$bi" -v b="$bc" 'BEGIN { print a / b }')
      lr=$(awk -v a="$bc" -v b="$limit_ms" 'BEGIN { print a / b }')
      wr=$(awk -v a="$bi" -v b="$bw" 'BEGIN { print a / b }')
      printf '%-18s targets: cold >= 8x the idiom: %s; cold <= 1.5x the limit: %s; warm >= 25x the idiom: %s\n' "" \
        "$(verdict "$cr" ">=" 8)" "$(verdict "$lr" "<=" 1.5)" "$(verdict "$wr" ">=" 25)"
    fi
  } >> "$out"
done

if [ "${BENCH_RSS:-1}" != 0 ]; then
  big=$work/rss-4g.bin
  [ -f "$big" ] || truncate -s 4G "$big" # sparse: reads are real, the disk stays free
  mkdir -p "$work/rss-tree"
  [ -d "$work/tree-100000x1" ] || "$work/benchtool" gen -dir "$work/tree-100000x1" -files 100000 -kib 1
  {
    echo
    echo "peak RSS (target: under 64 MiB for the 4 GiB file):"
    "$work/benchtool" rss -path "$big"
    "$work/benchtool" rss -path "$work/tree-100000x1"
  } >> "$out"
fi
echo
cat "$out"
