#!/usr/bin/env bash
# bench-image.sh TOFU: the image tables of `make bench`. The CNCF registry
# (scripts/registry.sh) runs on 127.0.0.1 behind a proxy that logs every
# request with its body's size (benchtool registry); immutable_image, through
# `tofu apply`, is measured side by side in this run with the peer a user
# would pick instead: crane (go-containerregistry's CLI, scripts/crane.sh),
# run on the same files and the same registry, each push to a fresh
# repository:
#   (a) the image of examples/container: its Go server (built once, before
#       the runs) at /server and a site tree (BENCH_IMAGE_SITE, files x KiB,
#       default 400x8) at /srv/www, with the example's config. Provider:
#       `tofu apply` (both published as artifacts to an empty file store, the
#       image built and pushed) — first push, nothing changed, one file of
#       the site changed. crane: `tar` of each layer + `crane append -f
#       server.tar -f site.tar` + `crane mutate` setting the same config,
#       the same three times. Best of BENCH_RUNS (default 3), interleaved.
#   (b) an image of BENCH_IMAGE_LAYERS (layers x MiB, default 20x25: 500 MiB)
#       of incompressible files, pushed once; then per run one file of one
#       layer changes: provider `tofu apply` against `tar` of that layer +
#       `crane append -b <previous image> -f layer.tar` (crane's cheapest
#       update: the layer added on top) and against rebuilding the image with
#       `crane append` of all its layers (the same image the provider makes).
#       Seconds (best of BENCH_RUNS) and the requests of the re-push.
#   (c) peak RSS pushing an image of one layer of BENCH_IMAGE_BIG MiB
#       (default 2048; 0 skips) of incompressible files: the provider process
#       (started in debug mode, tofu attached to it, VmHWM read from /proc
#       before it stops) over `tofu apply` of the image (plan + push; the
#       artifact stored by an earlier apply), against crane append of a tar
#       of the same tree (its rusage). One run each.
set -euo pipefail
tofu=$1
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
site_spec=${BENCH_IMAGE_SITE:-400x8}
layers_spec=${BENCH_IMAGE_LAYERS:-20x25}
big_mib=${BENCH_IMAGE_BIG:-2048}
bench=${BENCH_DIR:-build/bench}
mkdir -p "$bench"
bench=$(cd "$bench" && pwd)
work=$bench/image
rm -rf "$work"
mkdir -p "$work"
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh "$work/mirror")
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
provider=$(echo "$work"/mirror/mirror/registry.opentofu.org/immutable-infra/immutable/*/*/terraform-provider-immutable_v*)
go build -o "$work/benchtool" ./scripts/benchtool
crane=$(scripts/crane.sh)
regbin=$(scripts/registry.sh)
command -v tar >/dev/null || { echo "bench-image: the crane side tars its layers with GNU tar" >&2; exit 1; }

# The registry, behind the logging proxy; stopped (by its pid) on exit,
# with its storage removed (gigabytes after (c)).
coproc REG { exec "$work/benchtool" registry -bin "$regbin" -dir "$work/registry"; }
reg_pid=$REG_PID
trap 'kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; rm -rf "$work/registry/storage" "$work/big-store" "$work/big.tar"' EXIT
read -r -t 60 host <&"${REG[0]}" || { echo "bench-image: the registry did not start (see $work/registry/registry.log)" >&2; exit 1; }
reqlog=$work/registry/requests.log

ms() { echo $(( $(date +%s%N) / 1000000 )); }
sec() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
mark() { wc -l < "$reqlog"; }
# since LINE: "requests uploads MiB" logged after line LINE: every request,
# blob uploads committed, MiB of request bodies.
since() {
  tail -n +"$(($1 + 1))" "$reqlog" | awk '
    { n++; bytes += $4 }
    $1 == "PUT" && $2 ~ /\/blobs\/uploads\// { up++ }
    END { printf "%d %d %.1f\n", n, up, bytes / 1048576 }'
}
# GNU tar, reproducible: the same tree gives the same bytes (so crane's
# layer digest is the same, and it asks instead of uploading).
tarc() { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner "$@"; }
# run LOG CMD...: run quietly, show the log and fail if it fails.
run() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "bench-image: failed: $*" >&2; exit 1; }
}
# traced DIR VARS...: one more `tofu apply` (untimed), its provider calls
# logged; prints the seconds the provider spent in calls for the image
# (plan, apply) and for the other resources, summed over calls.
traced() {
  local dir=$1 log=$work/trace.log
  shift
  rm -f "$log"
  (cd "$dir" && TF_LOG_PROVIDER=TRACE TF_LOG_PATH=$log run "$work/apply.log" "$tofu" apply -input=false -auto-approve -no-color "$@")
  grep 'Received downstream response' "$log" | awk '
    { d = 0; rpc = ""; type = "" 
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^tf_req_duration_ms=/) d = substr($i, 20)
        if ($i ~ /^tf_rpc=/) rpc = substr($i, 8)
        if ($i ~ /^tf_resource_type=/) type = substr($i, 18)
      }
      if (type == "immutable_image" && rpc == "PlanResourceChange") plan += d
      else if (type == "immutable_image" && rpc == "ApplyResourceChange") apply += d
      else other += d }
    END { printf "%.2f %.2f %.2f\n", plan / 1000, apply / 1000, other / 1000 }'
  rm -f "$log"
}
gen() { # DIR FILES KIB SEED
  "$work/benchtool" gen -dir "$1" -files "$2" -kib "$3" -seed "$4"
}
tf_header() {
  cat <<TF
terraform {
  required_providers {
    immutable = { source = "immutable-infra/immutable" }
  }
}
variable "store" {
  type = string
}
variable "repository" {
  type = string
}
provider "immutable" {
  store = "file://\${var.store}"
}
TF
}
# best NAME MS: keep the least of NAME's times; stat NAME "req up MiB".
declare -A best stats
keep() {
  if [ -z "${best[$1]:-}" ] || [ "$2" -lt "${best[$1]}" ]; then best[$1]=$2; fi
  if [ -n "${3:-}" ]; then stats[$1]=$3; fi
}

# ---------------------------------------------------------------- (a)
site_files=${site_spec%x*} site_kib=${site_spec#*x}
gen "$work/site" "$site_files" "$site_kib" 11
mkdir -p "$work/bin"
(cd examples/container/server && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$work/bin/server" main.go)
bin_kib=$(( $(stat -c %s "$work/bin/server") / 1024 ))
cfga=$work/cfg-example
mkdir -p "$cfga"
{
  tf_header
  cat <<TF
variable "site" {
  type = string
}
resource "immutable_artifact" "site" {
  source = var.site
}
resource "immutable_artifact" "server" {
  source = "$work/bin/server"
}
resource "immutable_image" "web" {
  repository = var.repository
  platform   = "linux/amd64"
  layers = [
    { digest = immutable_artifact.server.digest, path = "/server", file_mode = "0755" },
    { digest = immutable_artifact.site.digest, path = "/srv/www" },
  ]
  config = {
    entrypoint    = ["/server"]
    env           = { PORT = "8080" }
    working_dir   = "/srv/www"
    user          = "65534:65534"
    exposed_ports = ["8080/tcp"]
    labels        = { "org.opencontainers.image.title" = "web" }
  }
}
TF
} > "$cfga/main.tf"
(cd "$cfga" && "$tofu" init -input=false >/dev/null)

# The crane side's pipeline: tar both layers, append them to an empty
# image, set the same config and platform, and tag the result.
crane_example() { # SITE REF
  tarc -cf "$work/server.tar" -C "$work/bin" server
  tarc -cf "$work/site.tar" -C "$1" --transform 's,^\./,srv/www/,;s,^\.$,srv/www,' .
  run "$work/crane.log" "$crane" append -f "$work/server.tar" -f "$work/site.tar" -t "$2"
  run "$work/crane.log" "$crane" mutate "$2" -t "$2" --set-platform linux/amd64 --entrypoint /server --env PORT=8080 \
    --workdir /srv/www --user 65534:65534 --exposed-ports 8080/tcp --label org.opencontainers.image.title=web
}
for i in $(seq "$runs"); do
  # immutable_image: a fresh state, store, machine cache and repository.
  rm -rf "$work/site-p" "$work/store-a" "$work/cache-a" "$cfga"/terraform.tfstate*
  cp -R "$work/site" "$work/site-p"
  # The stat cache in cache-a/stat: the provider keeps its layer cache
  # beside it (cache-a/layers-v1), not inside IMMUTABLE_CACHE_DIR.
  export IMMUTABLE_CACHE_DIR=$work/cache-a/stat
  vars=(-var "store=$work/store-a" -var "repository=$host/prov-a-$i" -var "site=$work/site-p")
  for row in first same change; do
    [ "$row" = change ] && printf 'changed %d\n' "$i" > "$work/site-p/d000/f000000.bin"
    m=$(mark) s=$(ms)
    (cd "$cfga" && run "$work/apply.log" "$tofu" apply -input=false -auto-approve -no-color "${vars[@]}")
    e=$(ms)
    keep "a.$row.p" $((e - s)) "$(since "$m")"
  done
  # crane: the same three pushes of the same files.
  rm -rf "$work/site-c"
  cp -R "$work/site" "$work/site-c"
  for row in first same change; do
    [ "$row" = change ] && printf 'changed %d\n' "$i" > "$work/site-c/d000/f000000.bin"
    m=$(mark) s=$(ms)
    crane_example "$work/site-c" "$host/crane-a-$i:latest"
    e=$(ms)
    keep "a.$row.c" $((e - s)) "$(since "$m")"
  done
done
# Where the provider's time goes: one more changed file, traced.
printf 'changed again\n' > "$work/site-p/d000/f000000.bin"
read -r a_plan a_apply a_other <<<"$(traced "$cfga" "${vars[@]}")"
unset IMMUTABLE_CACHE_DIR
rm -rf "$work/site-p" "$work/site-c" "$work/store-a" "$work/cache-a"

# ---------------------------------------------------------------- (b)
nl=${layers_spec%x*} layer_mib=${layers_spec#*x}
changed=$((nl / 3)) # the layer whose files change
for l in $(seq 0 $((nl - 1))); do
  gen "$work/layers/l$l" "$layer_mib" 1024 $((100 + l))
done
cfgb=$work/cfg-layers
mkdir -p "$cfgb"
{
  tf_header
  cat <<TF
resource "immutable_artifact" "l" {
  count  = $nl
  source = "$work/layers/l\${count.index}"
}
resource "immutable_image" "big" {
  repository = var.repository
  layers = [for i in range($nl) : {
    digest = immutable_artifact.l[i].digest
    path   = "/data/l\${i}"
  }]
}
TF
} > "$cfgb/main.tf"
(cd "$cfgb" && "$tofu" init -input=false >/dev/null)
export IMMUTABLE_CACHE_DIR=$work/cache-b/stat
varsb=(-var "store=$work/store-b" -var "repository=$host/prov-b")
tar_layer() { # L: the tar crane appends for layer L
  tarc -cf "$work/l$1.tar" -C "$work/layers/l$1" --transform "s,^\./,data/l$1/,;s,^\.$,data/l$1," .
}
all_layers() { # the -f flags of every layer, tarred again
  for l in $(seq 0 $((nl - 1))); do
    tar_layer "$l"
    printf -- '-f\n%s\n' "$work/l$l.tar"
  done
}
# The first push of each, once (its time shown for information).
m=$(mark) s=$(ms)
(cd "$cfgb" && run "$work/apply.log" "$tofu" apply -input=false -auto-approve -no-color "${varsb[@]}")
e=$(ms)
keep b.first.p $((e - s)) "$(since "$m")"
m=$(mark) s=$(ms)
mapfile -t flags < <(all_layers)
run "$work/crane.log" "$crane" append "${flags[@]}" -t "$host/crane-b:v0"
e=$(ms)
keep b.first.c $((e - s)) "$(since "$m")"
for i in $(seq "$runs"); do
  # Nothing changed: what tofu and the provider's plan of 21 resources cost.
  m=$(mark) s=$(ms)
  (cd "$cfgb" && run "$work/apply.log" "$tofu" apply -input=false -auto-approve -no-color "${varsb[@]}")
  e=$(ms)
  keep b.same.p $((e - s)) "$(since "$m")"
  # One file of one layer changes; each side pushes the change.
  printf 'changed %d\n' "$i" > "$work/layers/l$changed/d000/f$(printf %06d "$i").bin"
  m=$(mark) s=$(ms)
  (cd "$cfgb" && run "$work/apply.log" "$tofu" apply -input=false -auto-approve -no-color "${varsb[@]}")
  e=$(ms)
  keep b.change.p $((e - s)) "$(since "$m")"
  m=$(mark) s=$(ms)
  tar_layer "$changed"
  run "$work/crane.log" "$crane" append -b "$host/crane-b:v0" -f "$work/l$changed.tar" -t "$host/crane-b:v$i"
  e=$(ms)
  keep b.change.c $((e - s)) "$(since "$m")"
  # The file changes again (so that the layer is new to the repository
  # again), and crane rebuilds the whole image.
  printf 'changed %d again\n' "$i" > "$work/layers/l$changed/d000/f$(printf %06d "$i").bin"
  m=$(mark) s=$(ms)
  mapfile -t flags < <(all_layers)
  run "$work/crane.log" "$crane" append "${flags[@]}" -t "$host/crane-b:all$i"
  e=$(ms)
  keep b.change.r $((e - s)) "$(since "$m")"
  # Back to what the provider pushed, so its next run starts unchanged.
  printf 'changed %d\n' "$i" > "$work/layers/l$changed/d000/f$(printf %06d "$i").bin"
done
printf 'changed again\n' > "$work/layers/l$changed/d000/f000000.bin"
read -r b_plan b_apply b_other <<<"$(traced "$cfgb" "${varsb[@]}")"
unset IMMUTABLE_CACHE_DIR
rm -rf "$work/layers" "$work/store-b" "$work/cache-b" "$work"/l*.tar

# ---------------------------------------------------------------- (c)
if [ "$big_mib" != 0 ]; then
  big=$bench/tree-image-big-$big_mib
  if [ ! -f "$big.done" ]; then
    echo "generating $big_mib MiB of incompressible files in $big" >&2
    rm -rf "$big"
    gen "$big" $((big_mib / 64)) $((64 * 1024)) 7
    touch "$big.done"
  fi
  cfgc=$work/cfg-big
  mkdir -p "$cfgc"
  {
    tf_header
    cat <<TF
resource "immutable_artifact" "big" {
  source = "$big"
}
resource "immutable_image" "big" {
  repository = var.repository
  layers     = [{ digest = immutable_artifact.big.digest, path = "/data" }]
}
TF
  } > "$cfgc/main.tf"
  (cd "$cfgc" && "$tofu" init -input=false >/dev/null)
  export IMMUTABLE_CACHE_DIR=$work/cache-c/stat
  varsc=(-var "store=$work/big-store" -var "repository=$host/prov-c")
  # The artifact first (its peak shown too), then the image alone.
  s=$(ms)
  (cd "$cfgc" && run "$work/apply.log" "$work/benchtool" peak -provider "$provider" -o "$work/peak-artifact" -- \
    "$tofu" apply -input=false -auto-approve -no-color -target=immutable_artifact.big "${varsc[@]}")
  e=$(ms)
  keep c.artifact.p $((e - s))
  m=$(mark) s=$(ms)
  (cd "$cfgc" && run "$work/apply.log" "$work/benchtool" peak -provider "$provider" -o "$work/peak-image" -- \
    "$tofu" apply -input=false -auto-approve -no-color "${varsc[@]}")
  e=$(ms)
  keep c.image.p $((e - s)) "$(since "$m")"
  unset IMMUTABLE_CACHE_DIR
  rm -rf "$work/big-store" "$work/cache-c"
  tarc -cf "$work/big.tar" -C "$big" --transform 's,^\./,data/,;s,^\.$,data,' .
  m=$(mark) s=$(ms)
  run "$work/crane.log" "$work/benchtool" peak -o "$work/peak-crane" -- "$crane" append -f "$work/big.tar" -t "$host/crane-c:v1"
  e=$(ms)
  keep c.image.c $((e - s)) "$(since "$m")"
  rm -f "$work/big.tar"
fi

# ---------------------------------------------------------------- tables
cell() { # KEY: "seconds  req up MiB"
  local st=${stats[$1]:-}
  read -r rq up mib <<<"${st:-- - -}"
  printf '%7s s %5s %3s %7s' "$(sec "${best[$1]}")" "$rq" "$up" "$mib"
}
verdict() { # WHAT A B LIMIT: "met"/"MISSED by" on a <= LIMIT x b
  awk -v what="$1" -v a="$2" -v b="$3" -v lim="$4" 'BEGIN {
    r = a / b
    if (r <= lim) printf "  %s: %.2fx (target <= %.1fx): met\n", what, r, lim
    else printf "  %s: %.2fx (target <= %.1fx): MISSED by %.2f s (%.0f%%)\n", what, r, lim, (a - lim * b) / 1000, 100 * (r / lim - 1)
  }'
}
beyond() { # FLOOR PLAN APPLY OTHER C: where the provider's time goes, against crane's
  awk -v f="${best[$1]}" -v p="$2" -v a="$3" -v o="$4" -v c="${best[$5]}" -v cores="$(nproc)" 'BEGIN {
    printf "    why: a tofu apply with nothing to do takes %.2f s; in a traced re-push the image'"'"'s own provider\n", f / 1000
    printf "    calls took %.2f s (plan, encoding the changed layer: %.2f s; apply, pushing it: %.2f s) against\n", p + a, p, a
    printf "    crane'"'"'s %.2f s for the whole; the other resources'"'"' calls %.2f s (summed: tofu runs\n", c / 1000, o
    printf "    them 10 at a time, on %d cores); the rest is tofu\n", cores
  }'
}
uploads() { read -r _ up _ <<<"${stats[$1]}"; echo "$up"; }
out=$bench/image-table.txt
{
  echo
  printf 'container images: immutable_image (tofu apply) vs crane %s, registry %s on 127.0.0.1\n' \
    "$("$crane" version 2>/dev/null || echo '?')" "$("$regbin" --version 2>/dev/null | awk '{ print $3 }')"
  echo "columns: seconds, requests to the registry, blob uploads committed, MiB sent"
  echo
  echo "(a) examples/container's image: its $bin_kib KiB Go server + a site of $site_files files x $site_kib KiB; best of $runs, interleaved"
  printf '%-34s %-30s %-30s %s\n' "" "provider: tofu apply" "crane: tar + append + mutate" "ratio"
  for row in first same change; do
    case $row in
      first) label="first push" ;;
      same) label="again, nothing changed" ;;
      change) label="one file of the site changed" ;;
    esac
    printf '%-34s %-30s %-30s %s\n' "$label" "$(cell "a.$row.p")" "$(cell "a.$row.c")" "$(ratio "${best[a.$row.p]}" "${best[a.$row.c]}")"
  done
  echo
  echo "(b) $nl layers x $layer_mib MiB of incompressible files; one file of layer $changed changed; best of $runs"
  printf '%-50s %s\n' "" "seconds  req  up     MiB"
  printf '%-50s %s\n' "first push, provider (1 run)" "$(cell b.first.p)"
  printf '%-50s %s\n' "first push, crane append of $nl tars (1 run)" "$(cell b.first.c)"
  printf '%-50s %s\n' "again, nothing changed, provider" "$(cell b.same.p)"
  printf '%-50s %s\n' "re-push, provider: tofu apply" "$(cell b.change.p)"
  printf '%-50s %s\n' "re-push, crane: tar + append -b of the layer" "$(cell b.change.c)"
  printf '%-50s %s\n' "re-push, crane: tar + append of all $nl layers" "$(cell b.change.r)"
  if [ "$big_mib" != 0 ]; then
    echo
    echo "(c) one layer of $big_mib MiB of incompressible files: peak RSS, 1 run"
    printf '%-50s %10s %10s\n' "" "seconds" "peak RSS"
    printf '%-50s %10s %7d MiB\n' "provider: tofu apply of the artifact (store)" "$(sec "${best[c.artifact.p]}")" $(( $(cat "$work/peak-artifact") / 1024 ))
    printf '%-50s %10s %7d MiB\n' "provider: tofu apply of the image (plan + push)" "$(sec "${best[c.image.p]}")" $(( $(cat "$work/peak-image") / 1024 ))
    printf '%-50s %10s %7d MiB\n' "crane append -f layer.tar" "$(sec "${best[c.image.c]}")" $(( $(cat "$work/peak-crane") / 1024 ))
  fi
  echo
  echo "targets:"
  verdict "(a) first push, provider / crane" "${best[a.first.p]}" "${best[a.first.c]}" 1.5
  verdict "(a) one file changed, provider / crane" "${best[a.change.p]}" "${best[a.change.c]}" 1.5
  beyond a.same.p "$a_plan" "$a_apply" "$a_other" a.change.c
  up=$(uploads a.change.p)
  printf '  (a) one file changed uploads the site layer and the config (2 blobs): %s (%s)\n' "$([ "$up" = 2 ] && echo met || echo MISSED)" "$up"
  up=$(uploads b.change.p)
  printf '  (b) re-push uploads one layer and the config (2 blobs): %s (%s)\n' "$([ "$up" = 2 ] && echo met || echo MISSED)" "$up"
  verdict "(b) re-push, provider / crane append -b" "${best[b.change.p]}" "${best[b.change.c]}" 1.5
  beyond b.same.p "$b_plan" "$b_apply" "$b_other" b.change.c
  if [ "$big_mib" != 0 ]; then
    kib=$(cat "$work/peak-image")
    printf '  (c) peak RSS pushing a %d MiB layer < 100 MiB: %s (%d MiB)\n' "$big_mib" "$([ "$kib" -lt $((100 * 1024)) ] && echo met || echo MISSED)" $((kib / 1024))
  fi
} > "$out"
cat "$out"
