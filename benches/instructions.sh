#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind (repeatable on a noisy machine, where
# CPU time is not): each server runs under callgrind twice, with FEW and MANY requests from ab,
# and the difference divided by MANY - FEW is the cost of one request without start and stop.
#   keep-alive   ab -k -c4: the one-process baseline (axum::serve, current_thread), and the
#                `hello` cluster with one worker: its worker's count, then the same app without
#                `ClusterLayer` (the serve path alone)
#   new-conn     ab -c8: the baseline, the `rr` worker and master, the `reuseport` worker
# Prints a table; `callgrind_annotate` on the files it names shows where the instructions go.
# Usage: benches/instructions.sh   (FEW=2000 MANY=12000; needs valgrind, installs ab)
set -euo pipefail
cd "$(dirname "$0")/.."
FEW=${FEW:-2000}; MANY=${MANY:-12000}
. benches/tools.sh
need_tools ab valgrind
cargo build --release --quiet --example hello --example baseline
work=$(mktemp -d)
cleanup() { [ -f "$work/hello.rs" ] && cp "$work/hello.rs" examples/hello.rs; rm -rf "$work"; }
trap cleanup EXIT

# `hello` without ClusterLayer: the example is edited for one build, then put back.
cp examples/hello.rs "$work/hello.rs"
sed -i 's/^        \.layer(ClusterLayer::new());$/        ;/' examples/hello.rs
grep -q 'ClusterLayer::new()' examples/hello.rs && { echo "hello.rs changed: cannot drop its layer" >&2; exit 1; }
cargo build --release --quiet --example hello 2>/dev/null
cp target/release/examples/hello "$work/hello-without-layer"
cp "$work/hello.rs" examples/hello.rs
cargo build --release --quiet --example hello

# run LABEL N AB_ARGS ENV... BINARY: callgrind files of every process, largest first
run() {
  local label=$1 n=$2 ab_args=$3; shift 3
  local dir="$work/$label-$n"; mkdir -p "$dir"
  env "$@" PORT=0 RUST_LOG=warn FLAVOR=current_thread CLUSTER_WORKERS=1 \
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
    "${BINARY}" >"$dir/out" 2>"$dir/err" &
  local pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
  # shellcheck disable=SC2086
  ab -q $ab_args -n "$n" "$(grep -o 'http://[0-9.:]*' "$dir/out" | head -1)/" >/dev/null
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; sleep 1
}
# total LABEL N ROLE: instructions of the master (the process that printed the address) or the
# worker (any other process), from the callgrind summary
total() {
  local dir="$work/$1-$2" role=$3 file master
  master=$(ls "$dir"/cg.* | sort -t. -k2 -n | head -1)
  for file in "$dir"/cg.*; do
    if { [ "$role" = master ] && [ "$file" = "$master" ]; } || { [ "$role" = worker ] && [ "$file" != "$master" ]; }; then
      awk '/^(summary|totals):/ {print $2; exit}' "$file"
    fi
  done | head -1
}
per_request() { # LABEL ROLE
  awk -v a="$(total "$1" "$FEW" "$2")" -v b="$(total "$1" "$MANY" "$2")" -v n=$((MANY - FEW)) \
    'BEGIN { printf "%.0f", (b - a) / n }'
}
measure() { # LABEL AB_ARGS BINARY ENV...
  local label=$1 ab_args=$2; BINARY=$3; shift 3
  run "$label" "$FEW" "$ab_args" "$@"
  run "$label" "$MANY" "$ab_args" "$@"
}

measure ka-baseline "-k -c 4" target/release/examples/baseline
measure ka-hello "-k -c 4" target/release/examples/hello
measure ka-bare "-k -c 4" "$work/hello-without-layer"
measure nc-baseline "-c 8" target/release/examples/baseline
measure nc-rr "-c 8" target/release/examples/hello CLUSTER_SCHED_POLICY=rr
measure nc-reuseport "-c 8" target/release/examples/hello CLUSTER_SCHED_POLICY=reuseport

ka_base=$(per_request ka-baseline master)
nc_base=$(per_request nc-baseline master)
row() { # what, instructions, baseline
  echo "| $1 | $2 | $(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f×", a / b }') |"
}
{
  echo "Instructions per request (callgrind, $((MANY - FEW)) requests after $FEW, one worker)."
  echo
  echo "| what | instructions | vs the one-process baseline |"
  echo "|---|---:|---:|"
  row "keep-alive: baseline (axum::serve, current_thread)" "$ka_base" "$ka_base"
  row "keep-alive: \`hello\` worker (ClusterLayer, serve)" "$(per_request ka-hello worker)" "$ka_base"
  row "keep-alive: the same without ClusterLayer" "$(per_request ka-bare worker)" "$ka_base"
  row "new connection: baseline" "$nc_base" "$nc_base"
  row "new connection: \`reuseport\` worker" "$(per_request nc-reuseport worker)" "$nc_base"
  row "new connection: \`rr\` worker" "$(per_request nc-rr worker)" "$nc_base"
  row "new connection: \`rr\` master" "$(per_request nc-rr master)" "$nc_base"
  row "new connection: \`rr\` master and worker" \
    "$(($(per_request nc-rr master) + $(per_request nc-rr worker)))" "$nc_base"
} | tee benches/results/instructions.md
