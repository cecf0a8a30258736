#!/usr/bin/env bash
# bench-gc.sh: the collector's tables of `make bench`, each row measured
# side by side with the peer a user would pick instead, in this run
# (BenchmarkGC in internal/gc):
#   - S3: a store of BENCH_GC_OBJECTS (default 200000) objects on
#     versitygw behind a Go proxy adding BENCH_S3_RTT (default 20ms) per
#     request, half of which the policy deletes: the dry run, the
#     collection (mark phase included), and `mc rm --recursive --force`
#     of as many objects through the same proxy (mc from scripts/mc.sh);
#     BENCH_GC_S3=0 skips it;
#   - the local store: the dry run and the collection against `rm -rf` +
#     `sync` of as many files in the same layout;
#   - the collector's live heap in a dry run at a quarter of the objects
#     and at all of them, and the slope between the two per million.
# Start with a small count (BENCH_GC_OBJECTS=5000): building the big
# store takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-build/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
out=$work/gc-table.txt
raw=$work/gc-bench.txt
mc_path=$(scripts/mc.sh 2>"$work/mc-build.log") || {
  mc_path=
  echo "note: mc could not be built (see $work/mc-build.log): the mc rm row is skipped"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
VERSITYGW_PATH=${VERSITYGW_PATH:-$(scripts/versitygw.sh)} MC_PATH=$mc_path \
  go test -run '^$' -bench '^BenchmarkGC$' -benchtime 1x -timeout 120m ./internal/gc/ | tee "$raw"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# A row: the case, seconds, and its metrics by unit.
row() { grep -E "^BenchmarkGC/objects=[0-9]+/$1-[0-9]+ " "$raw" || true; }
metric() { awk -v u="$2" '{ for (i = 4; i < NF; i++) if ($(i + 1) == u) print $i }' <<<"$1"; }
secs() { awk '{ printf "%.2f", $3 / 1e9 }' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
{
  echo "collector: BenchmarkGC (load average before $load_before, after $load_after; $(nproc) cores)"
  printf '%-34s %9s %9s %9s %8s\n' "case" "objects" "time (s)" "requests" "ratio"
  s3dry=$(row s3/dry-run) s3gc=$(row s3/collect) mcrm=$(row s3/mc-rm)
  if [ -n "$s3gc" ]; then
    echo "S3 (versitygw, ${BENCH_S3_RTT:-20ms} added per request); objects in the store: $(sed -E 's#^BenchmarkGC/objects=([0-9]+).*#\1#' <<<"$s3gc")"
    printf '%-34s %9s %9s %9s %8s\n' "dry run" "$(metric "$s3dry" objects)" "$(secs "$s3dry")" "$(metric "$s3dry" req/op)" ""
    if [ -n "$mcrm" ]; then
      printf '%-34s %9s %9s %9s %8s\n' "mc rm --recursive --force" "$(metric "$mcrm" objects)" "$(secs "$mcrm")" "$(metric "$mcrm" req/op)" "1.0x"
    else
      echo "mc rm: skipped (no mc)"
    fi
    r=$( [ -n "$mcrm" ] && ratio "$(awk '{print $3}' <<<"$s3gc")" "$(awk '{print $3}' <<<"$mcrm")" || echo "-")
    printf '%-34s %9s %9s %9s %8s\n' "gc (mark phase included)" "$(metric "$s3gc" objects)" "$(secs "$s3gc")" "$(metric "$s3gc" req/op)" "$r"
    printf '%-34s %9s\n' "  of which DeleteObjects requests" "$(metric "$s3gc" DeleteObjects)"
    printf '%-34s %9s\n' "  DELETE requests (markers)" "$(metric "$s3gc" DELETE)"
    [ -n "$mcrm" ] && awk -v a="$(awk '{print $3}' <<<"$s3gc")" -v b="$(awk '{print $3}' <<<"$mcrm")" \
      'BEGIN { printf "target: gc <= 1.5x mc rm: %s\n", (a / b <= 1.5) ? "met" : "MISSED" }'
  fi
  gc=$(row local/collect) rm=$(row 'local/rm-rf\+sync')
  echo "local store; objects in the store: $(sed -E 's#^BenchmarkGC/objects=([0-9]+).*#\1#' <<<"$gc")"
  ldry=$(row local/dry-run | tail -1)
  printf '%-34s %9s %9s\n' "dry run" "$(metric "$ldry" objects)" "$(secs "$ldry")"
  printf '%-34s %9s %9s %9s %8s\n' "rm -rf + sync" "$(metric "$rm" objects)" "$(secs "$rm")" "" "1.0x"
  printf '%-34s %9s %9.2f\n' "  of which rm -rf" "" "$(metric "$rm" s-rm)"
  printf '%-34s %9s %9s %9s %8s\n' "gc (mark phase included)" "$(metric "$gc" objects)" "$(secs "$gc")" "" \
    "$(ratio "$(awk '{print $3}' <<<"$gc")" "$(awk '{print $3}' <<<"$rm")")"
  awk -v a="$(awk '{print $3}' <<<"$gc")" -v b="$(awk '{print $3}' <<<"$rm")" \
    'BEGIN { printf "target: gc <= 1.5x rm -rf + sync: %s\n", (a / b <= 1.5) ? "met" : "MISSED" }'
  echo "collector's live heap in a dry run (local store):"
  row local/dry-run | awk '{
      n = $1; sub(/^BenchmarkGC\/objects=/, "", n); sub(/\/.*/, "", n)
      for (i = 4; i < NF; i++) if ($(i + 1) == "MiB-heap") h = $i
      printf "  %9d objects: %8.1f MiB\n", n, h
      ns[NR] = n; hs[NR] = h
    }
    END {
      if (NR >= 2 && ns[NR] + 0 > ns[1] + 0) printf "  slope: %.0f MiB per million objects (measured between %d and %d)\n", (hs[NR] - hs[1]) / (ns[NR] - ns[1]) * 1e6, ns[1], ns[NR]
    }'
  [ -n "$s3dry" ] && printf '  S3 dry run: %s MiB at %s objects\n' "$(metric "$s3dry" MiB-heap)" "$(sed -E 's#^BenchmarkGC/objects=([0-9]+).*#\1#' <<<"$s3dry")"
  echo
} > "$out"
echo
cat "$out"
