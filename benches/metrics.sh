#!/usr/bin/env bash
# The cluster's /metrics checked by Prometheus's own tool, and what a scrape costs.
#   For WORKERS in 2 and 8: the `count` example (release) takes N visits over new connections
#   (ab -c8); then `promtool check metrics` reads the master's /metrics (a parse error fails
#   the script, lint findings are printed), visits_total is compared with what ab counted, and
#   ab -k -c1 times 2,000 scrapes.
# Usage: benches/metrics.sh   (N=20000; installs ab and promtool — Debian's `prometheus`)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
. benches/tools.sh
need_tools ab promtool
cargo build --release --quiet --example count
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for workers in 2 8; do
  CLUSTER_WORKERS=$workers PORT=0 RUST_LOG=warn CLUSTER_METRICS_ADDR=127.0.0.1:0 \
    target/release/examples/count >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
  app=$(grep -o 'listening on http://[0-9.:]*' "$work/out" | sed 's/listening on //')
  metrics=$(grep -o 'metrics on http://[0-9.:]*/metrics' "$work/out" | sed 's/metrics on //')
  ab -q -c 8 -n "$N" "$app/" >"$work/ab" 2>&1
  failed=$(awk '/Failed requests/ {print $3}' "$work/ab")
  curl -s "$metrics" >"$work/metrics"
  status=0
  promtool check metrics <"$work/metrics" >"$work/promtool" 2>&1 || status=$?
  # promtool: 1 = the exposition does not parse, 3 = it parses with lint findings.
  [ "$status" -eq 1 ] && { cat "$work/promtool"; echo "promtool: /metrics does not parse" >&2; exit 1; }
  visits=$(awk '$1 == "visits_total" {print $2}' "$work/metrics")
  ab -q -k -c 1 -n 2000 "$metrics" >"$work/scrape" 2>&1
  per_scrape=$(awk '/Time per request/ {print $4; exit}' "$work/scrape")
  printf 'workers %d: %d visits (%s failed), visits_total %s; promtool: %s; %d bytes of metrics, %s ms a scrape\n' \
    "$workers" "$N" "$failed" "$visits" "$( [ -s "$work/promtool" ] && tr '\n' ' ' <"$work/promtool" || echo clean)" \
    "$(wc -c <"$work/metrics")" "$per_scrape"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
