#!/usr/bin/env bash
# bench-build.sh TOFU: the build table of `make bench`. examples/build-pipeline
# (five steps: cat, tar, a cross-compiled `go build` zipped for Lambda, tr,
# tar) with immutable_build, side by side in this run with the same pipeline
# written the usual way: terraform_data + local-exec provisioners with
# triggers_replace on filesha256() of the inputs and on the upstream step.
# Each row is `tofu apply` (plan + apply) in seconds, median of BENCH_RUNS
# (default 3), and the steps that ran:
#   - first build: fresh state, empty store / empty build directory;
#   - clean machine, nothing changed: a fresh working directory with no
#     state (a new CI runner, a teammate) — immutable_build on the store CI
#     filled, the peer from scratch (and with an empty Go build cache);
#   - nothing changed, and config/a.conf changed: the first build's working
#     directory again;
#   - plugin floor: a configuration of one resource, applied before, with
#     nothing changed: one immutable_artifact of an empty directory against
#     one terraform_data. What any provider plugin costs tofu (hashing the
#     binary against the lock file, three plugin starts, the schema, the
#     RPCs of one resource), against a resource built into tofu.
# Both keep Go's build cache between runs (the example's caches =
# { GOCACHE = "go-build" }, the peer's GOCACHE): empty for the first build
# and on the clean machine, warm after. The peer needs zip(1).
set -euo pipefail
tofu=$1
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
work=${BENCH_DIR:-build/bench}/build
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
command -v zip >/dev/null || { echo "bench-build: the peer pipeline zips with zip(1): apt-get install zip" >&2; exit 1; }
export TF_CLI_CONFIG_FILE
TF_CLI_CONFIG_FILE=$(scripts/mirror.sh "$work/mirror")
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1000 }'; }

# The peer: the same steps as terraform_data + local-exec.
peer=$work/peer-template
mkdir -p "$peer"
cp -R examples/build-pipeline/config examples/build-pipeline/function "$peer/"
tarc="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner"
cat > "$peer/main.tf" <<TF
variable "gocache" {
  type = string
}

resource "terraform_data" "proc_a" {
  triggers_replace = [filesha256("\${path.module}/config/a.conf"), filesha256("\${path.module}/config/b.conf")]
  provisioner "local-exec" {
    command = "rm -rf build/proc_a && mkdir -p build/proc_a && cat config/a.conf config/b.conf > build/proc_a/settings.conf"
  }
}

resource "terraform_data" "image_a" {
  triggers_replace = [terraform_data.proc_a.id]
  provisioner "local-exec" {
    command = "$tarc -cf build/image-a.tar -C build/proc_a ."
  }
}

resource "terraform_data" "image_b" {
  triggers_replace = [
    terraform_data.proc_a.id,
    sha256(join("", [for f in sort(fileset("\${path.module}/function", "**")) : filesha256("\${path.module}/function/\${f}")])),
  ]
  provisioner "local-exec" {
    command     = "rm -rf build/image_b && mkdir -p build/image_b/bundle && cp -R function build/image_b/src && cp build/proc_a/settings.conf build/image_b/src/ && (cd build/image_b/src && go build -trimpath -buildvcs=false -o ../bundle/bootstrap .) && (cd build/image_b/bundle && zip -X -q ../bundle.zip bootstrap)"
    environment = { GOCACHE = var.gocache, CGO_ENABLED = "0", GOOS = "linux", GOARCH = "arm64", GOTOOLCHAIN = "local" }
  }
}

resource "terraform_data" "proc_b" {
  triggers_replace = [filesha256("\${path.module}/config/c.conf")]
  provisioner "local-exec" {
    command = "mkdir -p build && tr a-z A-Z < config/c.conf > build/c.upper"
  }
}

resource "terraform_data" "image_c" {
  triggers_replace = [terraform_data.proc_b.id]
  provisioner "local-exec" {
    command = "$tarc -cf build/image-c.tar -C build c.upper"
  }
}
TF

# The plugin floor: one resource each, nothing to do.
floor=$work/floor-template
mkdir -p "$floor/immutable/empty" "$floor/peer"
cat > "$floor/immutable/main.tf" <<'TF'
terraform {
  required_providers {
    immutable = {
      source = "immutable-infra/immutable"
    }
  }
}

variable "store" {
  type = string
}

provider "immutable" {
  store = var.store
}

resource "immutable_artifact" "empty" {
  source = "${path.module}/empty"
}
TF
cat > "$floor/peer/main.tf" <<'TF'
resource "terraform_data" "empty" {
  input = "empty"
}
TF

# fresh KIND DIR: a new working directory of KIND (immutable, peer,
# floor-immutable or floor-peer), initialised.
fresh() {
  rm -rf "$2"
  case $1 in
    immutable) cp -R examples/build-pipeline "$2" ;;
    peer) cp -R "$peer" "$2" ;;
    floor-*) cp -R "$floor/${1#floor-}" "$2" ;;
  esac
  (cd "$2" && "$tofu" init -input=false >/dev/null)
}
# apply KIND DIR VARS...: one timed `tofu apply`; prints "ms steps".
apply() {
  local kind=$1 dir=$2 log=$work/apply.log
  shift 2
  local t0 t1
  t0=$(ms)
  (cd "$dir" && TF_LOG_PROVIDER=INFO TF_LOG_PATH="$log.provider" "$tofu" apply -input=false -auto-approve -no-color "$@" >"$log" 2>&1) ||
    { cat "$log" >&2; exit 1; }
  t1=$(ms)
  local steps
  if [ "$kind" = immutable ]; then
    steps=$(grep -c 'running a build step' "$log.provider" || true)
  else
    steps=$(grep -c "Provisioning with 'local-exec'" "$log" || true)
  fi
  rm -f "$log.provider"
  echo "$((t1 - t0)) $steps"
}

declare -A times steps
record() { # ROW KIND "ms steps"
  # apply exits its command substitution on failure, which set -e does not
  # see in an argument: an empty result is that failure.
  [ -n "$3" ] || { echo "bench-build: the $2 apply of row $1 failed (its log is above)" >&2; exit 1; }
  times[$1.$2]+="${3% *}"$'\n'
  steps[$1.$2]=${3#* }
}
store=$work/store
fresh floor-immutable "$work/floor-im"
fresh floor-peer "$work/floor-peer"
IMMUTABLE_CACHE_DIR=$work/im-cache-floor apply immutable "$work/floor-im" -var "store=file://$work/floor-store" >/dev/null
apply peer "$work/floor-peer" >/dev/null
for i in $(seq "$runs"); do
  # immutable_build: a fresh machine cache (IMMUTABLE_CACHE_DIR: the stat
  # cache and caches = { GOCACHE = "go-build" }) for the first build and
  # for the clean machine.
  rm -rf "$store" "$work/im-cache-ci-$i" "$work/im-cache-clean-$i"
  fresh immutable "$work/im-ci"
  record first immutable "$(IMMUTABLE_CACHE_DIR=$work/im-cache-ci-$i apply immutable "$work/im-ci" -var "store=file://$store")"
  fresh immutable "$work/im-clean"
  record clean immutable "$(IMMUTABLE_CACHE_DIR=$work/im-cache-clean-$i apply immutable "$work/im-clean" -var "store=file://$store")"
  record same immutable "$(IMMUTABLE_CACHE_DIR=$work/im-cache-ci-$i apply immutable "$work/im-ci" -var "store=file://$store")"
  printf 'listen %d\n' "$((9000 + i))" >"$work/im-ci/config/a.conf"
  record change immutable "$(IMMUTABLE_CACHE_DIR=$work/im-cache-ci-$i apply immutable "$work/im-ci" -var "store=file://$store")"
  # terraform_data + local-exec, with the same caches: an empty GOCACHE for
  # the first build and for the clean machine.
  rm -rf "$work/gocache-ci-$i" "$work/gocache-clean-$i"
  fresh peer "$work/peer-ci"
  record first peer "$(apply peer "$work/peer-ci" -var "gocache=$work/gocache-ci-$i")"
  fresh peer "$work/peer-clean"
  record clean peer "$(apply peer "$work/peer-clean" -var "gocache=$work/gocache-clean-$i")"
  record same peer "$(apply peer "$work/peer-ci" -var "gocache=$work/gocache-ci-$i")"
  printf 'listen %d\n' "$((9000 + i))" >"$work/peer-ci/config/a.conf"
  record change peer "$(apply peer "$work/peer-ci" -var "gocache=$work/gocache-ci-$i")"
  record floor immutable "$(IMMUTABLE_CACHE_DIR=$work/im-cache-floor apply immutable "$work/floor-im" -var "store=file://$work/floor-store")"
  record floor peer "$(apply peer "$work/floor-peer")"
done

echo
echo "examples/build-pipeline, tofu apply (plan + apply), median of $runs, seconds (steps run)"
printf '%-44s %22s %30s\n' "" "immutable_build" "terraform_data + local-exec"
for row in first clean same change floor; do
  case $row in
    first) label="first build (empty store / no state)" ;;
    clean) label="clean machine, nothing changed" ;;
    same) label="nothing changed, same machine" ;;
    change) label="config/a.conf changed, same machine" ;;
    floor) label="plugin floor (one resource, nothing changed)" ;;
  esac
  printf '%-44s %16s (%s) %24s (%s)\n' "$label" \
    "$(printf '%s' "${times[$row.immutable]}" | grep . | median)" "${steps[$row.immutable]}" \
    "$(printf '%s' "${times[$row.peer]}" | grep . | median)" "${steps[$row.peer]}"
done
echo "plugin floor: one immutable_artifact of an empty directory against one terraform_data, applied before."
med() { printf '%s' "${times[$1]}" | grep . | median; }
awk -v ci="$(med clean.immutable)" -v cp="$(med clean.peer)" -v xi="$(med change.immutable)" -v xp="$(med change.peer)" \
  -v si="$(med same.immutable)" -v sp="$(med same.peer)" -v fi="$(med floor.immutable)" -v fp="$(med floor.peer)" 'BEGIN {
  printf "target: clean machine >= 10x faster than the peer: %s (%.1fx)\n", (cp / ci >= 10) ? "met" : "MISSED", cp / ci
  if (xi <= xp) { printf "target: one changed config no slower than the peer: met (%.2fx)\n", xi / xp; exit }
  printf "target: one changed config no slower than the peer: MISSED by %.2f s (%.2fx).", xi - xp, xi / xp
  printf " Why: any plugin costs %.2f s more than terraform_data, which runs inside tofu (the floor row:" , fi - fp
  printf " tofu hashes the provider binary and starts it three or four times, each start a new TLS key on both sides);"
  printf " the no-op pipeline costs %.2f s more; the three steps themselves %.2f s against the peer'"'"'s %.2f s.\n", si - sp, xi - si, xp - sp
}'
