#!/usr/bin/env bash
# CPU per new TLS connection: the release `hello` cluster (WORKERS workers, shared ticket keys)
# against one process with tokio-rustls and the same certificate (`tls_baseline`), in ROUNDS
# interleaved rounds. Each round, `openssl s_time` makes connections for SECONDS against each
# server: full handshakes (TLS 1.3, `-new`) and resumed ones (TLS 1.2 tickets, `-reuse`). CPU is
# the user+system time of every process of the server (from /proc), per connection, in µs;
# prints each round and the median ratio cluster/baseline.
# Usage: benches/tls_cpu.sh    (ROUNDS=5 SECONDS_EACH=3 WORKERS=2 POLICY=rr; installs openssl
#                                if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-3}
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools openssl

cargo build --release --quiet --example hello --example tls_baseline
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
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
export CLUSTER_TLS_CERT="$work/cert.pem" CLUSTER_TLS_KEY="$work/key.pem"

start() { # name, binary, env…
  local name=$1 binary=$2; shift 2
  env PORT=0 RUST_LOG=warn "$@" "$binary" >"$work/$name.out" 2>"$work/$name.err" &
  servers+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 100); do grep -q "listening on" "$work/$name.out" && break; sleep 0.1; done
  eval "${name}_port=$(grep -o ':[0-9]*$' "$work/$name.out" | head -1 | tr -d :)"
}
start cluster target/release/examples/hello CLUSTER_WORKERS="$WORKERS" CLUSTER_SCHED_POLICY="${POLICY:-rr}"
start baseline target/release/examples/tls_baseline

ticks() { # pid: CPU ticks of it and its children
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# µs of server CPU per connection for one s_time run: name, s_time mode arguments…
measure() {
  local name=$1; shift
  local pid port before after conns
  pid=$(eval echo "\$${name}_pid"); port=$(eval echo "\$${name}_port")
  before=$(ticks "$pid")
  conns=$(openssl s_time -connect "127.0.0.1:$port" "$@" -time "$SECONDS_EACH" 2>/dev/null \
    | awk '/connections in .* real seconds/ {print $1}' | tail -1)
  after=$(ticks "$pid")
  local hz; hz=$(getconf CLK_TCK)
  awk -v t=$((after - before)) -v c="$conns" -v hz="$hz" 'BEGIN {printf "%.1f", t * 1000000 / hz / c}'
}

full=(); resumed=()
echo "| round | full: cluster µs | full: one process µs | ratio | resumed: cluster µs | resumed: one process µs | ratio |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  cf=$(measure cluster -new); bf=$(measure baseline -new)
  cr=$(measure cluster -reuse -tls1_2); br=$(measure baseline -reuse -tls1_2)
  rf=$(awk -v a="$cf" -v b="$bf" 'BEGIN {printf "%.3f", a / b}')
  rr=$(awk -v a="$cr" -v b="$br" 'BEGIN {printf "%.3f", a / b}')
  full+=("$rf"); resumed+=("$rr")
  echo "| $round | $cf | $bf | $rf | $cr | $br | $rr |"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "median ratio, full handshakes: $(median "${full[@]}"); resumed: $(median "${resumed[@]}")"
