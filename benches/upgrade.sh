#!/usr/bin/env bash
# Upgrades of the master itself under load, against the release `hello` cluster: ab -k -c 32
# (HTTP/1.0 keep-alive) and ab -c 32 (a new connection per request), each while the master is
# upgraded 3 times in a row (`clusterctl upgrade`). Prints requests, failures, non-2xx and the
# masters' pids, which change each time.
# Usage: benches/upgrade.sh           (WORKERS=2 by default; installs ab when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools ab

cargo build --release --quiet --example hello
cargo build --release --quiet -p clustered-ctl
work=$(mktemp -d)
socket="$work/control.sock"
ctl() { target/release/clusterctl --socket "$socket" "$@"; }
cleanup() {
  ctl stop >/dev/null 2>&1 || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT

env CLUSTER_WORKERS="$WORKERS" PORT=0 RUST_LOG=warn CLUSTER_CONTROL_SOCKET="$socket" \
  target/release/examples/hello >"$work/out" 2>"$work/err" &
for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
url="$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)/"

# Upgrades the master 3 times while the load tool `$1` runs, then waits for it; the new
# masters' pids go to $work/pids.
upgrade_during() {
  local tool=$1
  : >"$work/pids"
  sleep 1
  for _ in 1 2 3; do
    ctl --json upgrade | awk -F': ' '/"new_pid"/ {gsub(/[^0-9]/, "", $2); printf " %s", $2}' \
      >>"$work/pids"
    sleep 1
  done
  wait "$tool"
}

ab_row() { # label, pids
  local req failed non2xx rps
  req=$(awk '/Complete requests/ {print $3}' "$work/ab")
  failed=$(awk '/Failed requests/ {print $3}' "$work/ab")
  non2xx=$(awk '/Non-2xx responses/ {print $3}' "$work/ab"); non2xx=${non2xx:-0}
  rps=$(awk '/Requests per second/ {print $4}' "$work/ab")
  echo "| $1 | $req | $failed | $non2xx | $rps |$2 |"
}

echo "| tool | requests | failed | non-2xx | requests/s | new masters |"
echo "|---|---|---|---|---|---|"
ab -q -k -n 1000000 -c 32 "$url" >"$work/ab" 2>&1 &
upgrade_during $!
ab_row "ab -k -c 32 (HTTP/1.0 keep-alive), 3 upgrades" "$(cat "$work/pids")"
ab -q -n 100000 -c 32 "$url" >"$work/ab" 2>&1 &
upgrade_during $!
ab_row "ab -c 32 (new connections), 3 upgrades" "$(cat "$work/pids")"
