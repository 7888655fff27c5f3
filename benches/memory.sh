#!/usr/bin/env bash
# Memory of the `hello` cluster (master and WORKERS workers) against the same app in one process
# (`baseline`, current_thread), each built three ways (BUILDS):
#   default   as cargo builds it: a position-independent executable (PIE, the default on Linux)
#   non-pie   with `-C relocation-model=static`: a non-PIE executable, whose relocated data is
#             fixed at link time and so stays shared with the file in every process, where a
#             PIE's is copied into each process at load time
#   lto       the release profile the README recommends (fat LTO, one codegen unit)
# Each server answers 2,000 keep-alive requests (ab -k -c4), then its processes' PSS (shared
# pages divided among their users), USS (private pages) and peak RSS are summed from /proc.
# ROUNDS rounds, every server once per round; medians. Writes benches/results/memory.md.
# Usage: benches/memory.sh   (WORKERS=2 ROUNDS=5 BUILDS="default non-pie lto"; installs ab;
#        the other builds go to target/non-pie and target/lto: a first build of each takes a few
#        minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}; ROUNDS=${ROUNDS:-5}; BUILDS=${BUILDS:-default non-pie lto}
. benches/tools.sh
need_tools ab
host=$(rustc -vV | sed -n 's/^host: //p')
# examples BUILD: builds `hello` and `baseline` that way; prints the directory they are in.
examples() {
  local examples=(--example hello --example baseline)
  case $1 in
    default) cargo build --release --quiet "${examples[@]}"; echo target/release/examples ;;
    # `--target` keeps the flag off the build scripts and proc-macros, which cannot be static.
    non-pie) RUSTFLAGS="-C relocation-model=static" CARGO_TARGET_DIR=target/non-pie \
        cargo build --release --quiet --target "$host" "${examples[@]}"
      echo "target/non-pie/$host/release/examples" ;;
    lto) CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_TARGET_DIR=target/lto \
        cargo build --release --quiet "${examples[@]}"
      echo target/lto/release/examples ;;
    *) echo "BUILDS are default, non-pie and lto, not $1" >&2; exit 2 ;;
  esac
}
case " $BUILDS " in *" default "*) ;; *) echo "BUILDS must include default, which the copies are compared with" >&2; exit 2 ;; esac
declare -A dir
for build in $BUILDS; do dir[$build]=$(examples "$build"); done
work=$(mktemp -d); servers=()
cleanup() { [ ${#servers[@]} -gt 0 ] && kill -TERM "${servers[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# measure LABEL BINARY [COPIES]: starts COPIES (default 1) servers of BINARY side by side, sends
# each 2,000 keep-alive requests, and appends "PSS USS HWM PROCESSES" (KiB, summed over every
# process of every copy) to $work/LABEL
measure() {
  local label=$1 binary=$2 copies=${3:-1} copy url
  servers=()
  for copy in $(seq "$copies"); do
    env PORT=0 RUST_LOG=warn CLUSTER_WORKERS="$WORKERS" "$binary" >"$work/out$copy" 2>"$work/err$copy" &
    servers+=($!)
  done
  for copy in $(seq "$copies"); do
    for _ in $(seq 100); do grep -q "listening on" "$work/out$copy" && break; sleep 0.1; done
    url=$(grep -o 'http://[0-9.:]*' "$work/out$copy" | head -1)
    [ -n "$url" ] || { echo "$label did not start: $(cat "$work/err$copy")" >&2; exit 1; }
    ab -q -k -c 4 -n 2000 "$url/" >/dev/null
  done
  sleep 0.5
  memory_kib "${servers[@]}" >>"$work/$label"
  kill -TERM "${servers[@]}"; wait "${servers[@]}" 2>/dev/null || true; servers=()
}
for round in $(seq "$ROUNDS"); do
  for build in $BUILDS; do
    measure "baseline-$build" "${dir[$build]}/baseline"
    measure "cluster-$build" "${dir[$build]}/hello"
  done
  # The floor of any design with WORKERS + 1 processes of one binary: as many copies of the
  # one-process server, each serving.
  measure "baseline-default-x$((WORKERS + 1))" "${dir[default]}/baseline" $((WORKERS + 1))
  echo "round $round of $ROUNDS measured" >&2
done

# median LABEL COLUMN: MiB
median() {
  cut -d' ' -f"$2" "$work/$1" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1024 }'
}
# row NAME LABEL BASE: LABEL's medians, and its PSS against BASE's
row() {
  echo "| $1 | $(cut -d' ' -f4 "$work/$2" | head -1) | $(median "$2" 1) | $(median "$2" 2) |" \
    "$(median "$2" 3) | $(awk -v a="$(median "$2" 1)" -v b="$(median "$3" 1)" 'BEGIN { printf "%.2f×", a / b }') |"
}
{
  echo "$(date -u +%F), commit $(git rev-parse --short HEAD), \`WORKERS=$WORKERS ROUNDS=$ROUNDS BUILDS=\"$BUILDS\" benches/memory.sh\`"
  echo
  echo "Summed over the server's processes after 2,000 keep-alive requests, medians of $ROUNDS rounds."
  echo
  echo "| server | processes | PSS MiB | USS MiB | peak RSS MiB | PSS vs the one process (same build) |"
  echo "|---|---:|---:|---:|---:|---:|"
  for build in $BUILDS; do
    row "baseline-$build" "baseline-$build" "baseline-$build"
    row "cluster-$build" "cluster-$build" "baseline-$build"
  done
  row "$((WORKERS + 1)) copies of baseline-default, each serving" "baseline-default-x$((WORKERS + 1))" baseline-default
} | tee benches/results/memory.md
