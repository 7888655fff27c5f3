#!/usr/bin/env bash
# The fleet on Redis: broadcast latency and counter increments per second with three members
# (`clustered-redis/examples/fleet_bench.rs`), against a redis-server on a Unix socket started
# here (Debian's package: apt-get install redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "apt-get install redis-server" >&2; exit 1; }
dir=$(mktemp -d)
redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no --dir "$dir" >/dev/null &
redis=$!
trap 'kill $redis 2>/dev/null; wait $redis 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
cargo build --release -q -p clustered-redis --example fleet_bench
CLUSTER_REDIS_URL="redis+unix://$dir/redis.sock" target/release/examples/fleet_bench
