#!/usr/bin/env bash
# CPU per new TLS connection: the release `hello` cluster (WORKERS workers, shared ticket keys)
# against one process with tokio-rustls and the same certificate (`tls_baseline`), in ROUNDS
# interleaved rounds. Each round makes connections for SECONDS_EACH against each server, each
# with one `GET /`: full handshakes and resumed ones,
#   - one at a time: `openssl s_time` (full: TLS 1.3 `-new`; resumed: TLS 1.2 tickets `-reuse`);
#   - CONCURRENCY at a time: `tls_load` (benches/tls_load.rs; TLS 1.3, full, or resumed with one
#     session store, so a ticket from one worker is offered to whichever takes the next).
# CPU is the run time of every thread of every process of the server (from /proc, `cpu_ns` in
# benches/tools.sh), per connection, in µs; prints each round and the median ratio cluster/baseline.
# SERVER_CPUS and CLIENT_CPUS (taskset lists, e.g. 0 and 1) pin the servers and the clients
# apart, so that a client never takes a server's core: then one process and a one-worker
# cluster each have one core, and the ratio is the cost of being in a cluster alone.
# Usage: benches/tls_cpu.sh    (ROUNDS=5 SECONDS_EACH=3 WORKERS=2 POLICY=rr CONCURRENCY=16
#                                SERVER_CPUS= CLIENT_CPUS=; installs openssl if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-3}
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools openssl

cargo build --release --quiet --example hello --example tls_baseline --example tls_load
work=$(mktemp -d)
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
export CLUSTER_TLS_CERT="$work/cert.pem" CLUSTER_TLS_KEY="$work/key.pem"

start() { # name, binary, env…
  local name=$1 binary=$2; shift 2
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} env PORT=0 RUST_LOG=warn "$@" "$binary" \
    >"$work/$name.out" 2>"$work/$name.err" &
  servers+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 100); do grep -q "listening on" "$work/$name.out" && break; sleep 0.1; done
  eval "${name}_port=$(grep -o ':[0-9]*$' "$work/$name.out" | head -1 | tr -d :)"
}
start cluster target/release/examples/hello CLUSTER_WORKERS="$WORKERS" CLUSTER_SCHED_POLICY="${POLICY:-rr}"
start baseline target/release/examples/tls_baseline

# µs of server CPU per connection for one run: name, then `s_time` and its mode arguments…,
# or `load` and full|resumed
measure() {
  local name=$1 client=$2; shift 2
  local pid port before after conns
  pid=$(eval echo "\$${name}_pid"); port=$(eval echo "\$${name}_port")
  before=$(cpu_ns "$pid")
  if [ "$client" = s_time ]; then
    conns=$(${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} openssl s_time -connect "127.0.0.1:$port" "$@" -time "$SECONDS_EACH" 2>/dev/null \
      | awk '/connections in .* real seconds/ {print $1}' | tail -1)
  else
    conns=$(MODE=$1 SECONDS=$SECONDS_EACH CONCURRENCY=${CONCURRENCY:-16} CA="$work/cert.pem" \
      TARGET="127.0.0.1:$port" ${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} target/release/examples/tls_load \
      | sed -n 's/^connections=\([0-9]*\) resumed=\([0-9]*\) failed=0 .*/\1/p')
    [ -n "$conns" ] || { echo "tls_load failed against $name" >&2; exit 1; }
  fi
  after=$(cpu_ns "$pid")
  micros_per $((after - before)) "$conns"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
full=(); resumed=(); load_full=(); load_resumed=()
echo "| round | full, one at a time: cluster µs / one process µs = ratio | resumed, one at a time | full, ${CONCURRENCY:-16} at a time | resumed, ${CONCURRENCY:-16} at a time |"
echo "|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  cf=$(measure cluster s_time -new); bf=$(measure baseline s_time -new)
  cr=$(measure cluster s_time -reuse -tls1_2); br=$(measure baseline s_time -reuse -tls1_2)
  lf=$(measure cluster load full); blf=$(measure baseline load full)
  lr=$(measure cluster load resumed); blr=$(measure baseline load resumed)
  full+=("$(ratio "$cf" "$bf")"); resumed+=("$(ratio "$cr" "$br")")
  load_full+=("$(ratio "$lf" "$blf")"); load_resumed+=("$(ratio "$lr" "$blr")")
  echo "| $round | $cf / $bf = $(ratio "$cf" "$bf") | $cr / $br = $(ratio "$cr" "$br") | $lf / $blf = $(ratio "$lf" "$blf") | $lr / $blr = $(ratio "$lr" "$blr") |"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "median ratio, one at a time: full $(median "${full[@]}"), resumed $(median "${resumed[@]}")"
echo "median ratio, ${CONCURRENCY:-16} at a time: full $(median "${load_full[@]}"), resumed $(median "${load_resumed[@]}")"
