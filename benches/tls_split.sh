#!/usr/bin/env bash
# Where a TLS server's CPU goes, parent apart from its children: for each server binary given
# (default: the release `hello`), started side by side with WORKERS workers under POLICY, ROUNDS
# interleaved rounds of SECONDS_EACH seconds of full handshakes, each with one `GET /`, from
# `tls_load` CONCURRENCY at a time (or from `openssl s_time -www /` one at a time when S_TIME
# holds its mode arguments, e.g. S_TIME=-new; HTTP/1.0, so the server closes after the GET).
# Prints per connection, for the parent (the master, or a floor's bare parent) and for its
# children together: µs of CPU (every thread, schedstat, as `cpu_ns` in benches/tools.sh),
# context switches and system calls (`perf stat`, attached to each apart for the client's run).
# A binary built from another commit compares before and after in one run; `tls_baseline`
# (with PROCESSES and HANDOFF in the environment, see benches/floor.rs) gives the floor, and
# `VAR=value,…@binary` runs a binary with variables of its own (`HANDOFF=epoll@…/tls_baseline`
# beside `…/tls_baseline`: both floors in one run).
# PARENT_CPUS (a taskset list) moves each parent, once started, off SERVER_CPUS: the children
# keep those cores to themselves, so a worker's cost is told apart from what its master does to
# the core they share (its caches).
# Usage: benches/tls_split.sh [binary…]   (ROUNDS=5 SECONDS_EACH=4 WORKERS=2 POLICY=rr
#                                          CONCURRENCY=16 S_TIME= SERVER_CPUS= CLIENT_CPUS=
#                                          PARENT_CPUS=; installs openssl and perf if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-4}
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools openssl perf
cargo build --release --quiet --example hello --example tls_baseline --example tls_load
[ $# -gt 0 ] || set -- target/release/examples/hello
binaries=("$@")

tls_bench_setup

pids=() ports=()
for server in "${binaries[@]}"; do
  # VAR=value,…@binary: that binary with those variables besides.
  binary=${server##*@} extra=()
  [ "$binary" = "$server" ] || IFS=, read -r -a extra <<<"${server%@*}"
  start_server "${#pids[@]}" "$binary" CLUSTER_WORKERS="$WORKERS" CLUSTER_SCHED_POLICY="${POLICY:-rr}" "${extra[@]}"
  pids+=("$server_pid")
  ports+=("$server_port")
done
sleep 1 # every worker serves
if [ -n "${PARENT_CPUS:-}" ]; then
  for parent in "${pids[@]}"; do
    for thread in /proc/"$parent"/task/*; do taskset -pc "$PARENT_CPUS" "${thread##*/}" >/dev/null; done
  done
fi

# Connections made against port $1 in one client run.
connections() {
  if [ -n "${S_TIME:-}" ]; then
    # shellcheck disable=SC2086 # S_TIME's words are the client's arguments
    ${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} openssl s_time -connect "127.0.0.1:$1" -www / $S_TIME \
      -time "$SECONDS_EACH" 2>/dev/null | awk '/connections in .* real seconds/ {print $1}' | tail -1
  else
    MODE=full SECONDS=$SECONDS_EACH CONCURRENCY=${CONCURRENCY:-16} CA="$work/cert.pem" \
      TARGET="127.0.0.1:$1" ${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} target/release/examples/tls_load |
      sed -n 's/^connections=\([0-9]*\) resumed=[0-9]* failed=0 .*/\1/p'
  fi
}
# "switches system-calls" per connection from perf's file $1, for $2 connections.
per_connection() {
  awk -F, -v n="$2" '/context-switches/ {cs = $1} /sys_enter/ {sc = $1}
    END {printf "%.3f %.2f", cs / n, sc / n}' "$1"
}

echo "| round | server | connections | parent µs | parent switches | parent system calls | children µs | children switches | children system calls |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for n in "${!pids[@]}"; do
    parent=${pids[$n]}
    children=$(pgrep -P "$parent" | paste -sd, || true)
    perf stat -x, -e context-switches,raw_syscalls:sys_enter -p "$parent" -o "$work/parent.perf" 2>/dev/null &
    parent_perf=$!
    perf stat -x, -e context-switches,raw_syscalls:sys_enter -p "$children" -o "$work/children.perf" 2>/dev/null &
    children_perf=$!
    sleep 0.3 # attached
    # shellcheck disable=SC2086 # the children's pids are words
    parent_before=$(process_ns "$parent"); children_before=$(process_ns ${children//,/ })
    conns=$(connections "${ports[$n]}")
    [ -n "$conns" ] || { echo "the client failed against ${binaries[$n]}" >&2; exit 1; }
    # shellcheck disable=SC2086
    parent_after=$(process_ns "$parent"); children_after=$(process_ns ${children//,/ })
    kill -INT "$parent_perf" "$children_perf"; wait "$parent_perf" "$children_perf" || true
    read -r parent_cs parent_sc <<<"$(per_connection "$work/parent.perf" "$conns")"
    read -r children_cs children_sc <<<"$(per_connection "$work/children.perf" "$conns")"
    echo "| $round | ${binaries[$n]} | $conns | $(micros_per $((parent_after - parent_before)) "$conns") | $parent_cs | $parent_sc | $(micros_per $((children_after - children_before)) "$conns") | $children_cs | $children_sc |"
  done
done
