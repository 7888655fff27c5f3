#!/usr/bin/env bash
# Zero-downtime reload and recycling, measured with real load tools against the release `hello`
# cluster:
#   ab -c 32 (a new connection per request) and wrk -c 64 (keep-alive), each while the master
#   receives SIGHUP twice; ab -k -c 32 (HTTP/1.0 keep-alive, as nginx's
#   `proxy_http_version 1.0` upstreams speak it) while the master receives SIGHUP 8 times; and
#   ab -k against a cluster that recycles its workers every 500 requests
#   (CLUSTER_MAX_REQUESTS=500). Prints requests, failures, non-2xx and whether every worker pid
#   changed.
# Usage: benches/reload.sh            (WORKERS=2 by default; installs ab and wrk when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools ab wrk

cargo build --release --quiet --example hello
work=$(mktemp -d)
master=
stop_master() {
  [ -n "$master" ] && kill -TERM "$master" 2>/dev/null && wait "$master" 2>/dev/null || true
  master=
}
cleanup() {
  stop_master
  rm -rf "$work"
}
trap cleanup EXIT

# Starts `hello` with the environment given as arguments (VAR=value…); sets $master and $url.
start_master() {
  env CLUSTER_WORKERS="$WORKERS" PORT=0 RUST_LOG=warn "$@" target/release/examples/hello \
    >"$work/out" 2>"$work/err" &
  master=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
  url="$(grep -o 'http://[0-9.:]*' "$work/out")/"
}
workers() { pgrep -P "$master" | sort | xargs; }
changed() { # workers before, workers after
  [ -z "$(comm -12 <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2"))" ] && echo yes || echo no
}

reload_during() { # count, pid of the load tool
  local count=$1 tool=$2
  sleep 1
  for _ in $(seq "$count"); do
    kill -HUP "$master"
    sleep 1
  done
  wait "$tool"
}

# One table row from ab's report in $work/ab.
ab_row() { # label, workers before, workers after
  local req failed non2xx rps
  req=$(awk '/Complete requests/ {print $3}' "$work/ab")
  failed=$(awk '/Failed requests/ {print $3}' "$work/ab")
  non2xx=$(awk '/Non-2xx responses/ {print $3}' "$work/ab"); non2xx=${non2xx:-0}
  rps=$(awk '/Requests per second/ {print $4}' "$work/ab")
  echo "| $1 | $req | $failed | $non2xx | $rps | $(changed "$2" "$3") |"
}

echo "| tool | requests | failed | non-2xx | requests/s | pids changed |"
echo "|---|---|---|---|---|---|"

start_master
before=$(workers)
ab -q -n 60000 -c 32 "$url" >"$work/ab" 2>&1 &
reload_during 2 $!
ab_row "ab -c 32 (new connections), 2 reloads" "$before" "$(workers)"

before=$(workers)
ab -q -k -n 1000000 -c 32 "$url" >"$work/ab" 2>&1 &
reload_during 8 $!
ab_row "ab -k -c 32 (HTTP/1.0 keep-alive), 8 reloads" "$before" "$(workers)"

before=$(workers)
wrk -t 2 -c 64 -d 10s "$url" >"$work/wrk" 2>&1 &
reload_during 2 $!
after=$(workers)
req=$(awk '/requests in/ {print $1}' "$work/wrk")
errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk"); errors=${errors:-0}
non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk"); non2xx=${non2xx:-0}
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
echo "| wrk -c 64 (keep-alive), 2 reloads | $req | $errors | $non2xx | $rps | $(changed "$before" "$after") |"
stop_master

start_master CLUSTER_MAX_REQUESTS=500
before=$(workers)
ab -q -k -n 50000 -c 32 "$url" >"$work/ab" 2>&1
ab_row "ab -k -c 32, CLUSTER_MAX_REQUESTS=500" "$before" "$(workers)"
