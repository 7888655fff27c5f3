#!/usr/bin/env bash
# Zero-downtime reload, measured with real load tools against the release `hello` cluster:
#   ab  -c 32 (a new connection per request) and wrk -c 64 (keep-alive), each while the master
#   receives SIGHUP twice. Prints requests, failures, non-2xx and whether every worker pid changed.
# Usage: benches/reload.sh            (WORKERS=2 by default; installs ab and wrk when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools ab wrk

cargo build --release --quiet --example hello
work=$(mktemp -d)
master=
cleanup() {
  [ -n "$master" ] && kill -TERM "$master" 2>/dev/null && wait "$master" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

CLUSTER_WORKERS=$WORKERS PORT=0 RUST_LOG=warn target/release/examples/hello >"$work/out" 2>"$work/err" &
master=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
url="$(grep -o 'http://[0-9.:]*' "$work/out")/"
workers() { pgrep -P "$master" | sort | xargs; }

reload_twice_during() { # pid of the load tool
  sleep 2; kill -HUP "$master"; sleep 3; kill -HUP "$master"; wait "$1"
}

echo "| tool | requests | failed | non-2xx | requests/s | pids changed |"
echo "|---|---|---|---|---|---|"

before=$(workers)
ab -q -n 60000 -c 32 "$url" >"$work/ab" 2>&1 &
reload_twice_during $!
after=$(workers)
req=$(awk '/Complete requests/ {print $3}' "$work/ab")
failed=$(awk '/Failed requests/ {print $3}' "$work/ab")
non2xx=$(awk '/Non-2xx responses/ {print $3}' "$work/ab"); non2xx=${non2xx:-0}
rps=$(awk '/Requests per second/ {print $4}' "$work/ab")
changed=$([ -z "$(comm -12 <(tr ' ' '\n' <<<"$before") <(tr ' ' '\n' <<<"$after"))" ] && echo yes || echo no)
echo "| ab -c 32 (new connections) | $req | $failed | $non2xx | $rps | $changed |"

before=$(workers)
wrk -t 2 -c 64 -d 10s "$url" >"$work/wrk" 2>&1 &
reload_twice_during $!
after=$(workers)
req=$(awk '/requests in/ {print $1}' "$work/wrk")
errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk"); errors=${errors:-0}
non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk"); non2xx=${non2xx:-0}
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
changed=$([ -z "$(comm -12 <(tr ' ' '\n' <<<"$before") <(tr ' ' '\n' <<<"$after"))" ] && echo yes || echo no)
echo "| wrk -c 64 (keep-alive) | $req | $errors | $non2xx | $rps | $changed |"
