#!/usr/bin/env bash
# Every scheduling policy against single-process baselines (and Node's cluster when `node` is
# installed), in ROUNDS interleaved rounds on this machine (every server once per round, so a
# noisy neighbour hits them all alike); each figure is the median over the rounds:
#   wrk -t1 -c64 -d${SECONDS_PER_RUN}s (keep-alive)  and  ab -n ${AB_REQUESTS} -c32 (a new connection per request)
# For each: requests/s, p99 latency, server CPU microseconds per request (user+system time of
# every server process, from /proc: on a small machine the load generator takes a core, so
# throughput alone misleads), and the peak RSS of all server processes summed.
# COMPARE=LABEL:PATH adds the `rr` and `shared` policies of another build of the `hello` example
# (e.g. the previous commit's) to the same rounds, as LABEL-rr and LABEL-shared.
# Writes benches/results/policies.md and benches/results/policies.svg.
# Usage: benches/policies.sh   (WORKERS=2 ROUNDS=5 SECONDS_PER_RUN=5 AB_REQUESTS=20000; installs wrk and ab when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}; ROUNDS=${ROUNDS:-5}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}; AB_REQUESTS=${AB_REQUESTS:-20000}
. benches/tools.sh
need_ab_and_wrk
cargo build --release --quiet --example hello --example baseline
work=$(mktemp -d); server=
cleanup() { [ -n "$server" ] && kill -TERM "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
hz=$(getconf CLK_TCK)

cat >"$work/node-cluster.js" <<'JS'
const cluster = require('node:cluster'), http = require('node:http');
const n = Number(process.env.CLUSTER_WORKERS) || 2;
if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  let ready = 0;
  for (let i = 0; i < n; i++) cluster.fork();
  cluster.on('listening', (_, address) => {
    if (++ready === n) console.log(`listening on http://127.0.0.1:${address.port}`);
  });
  process.on('SIGTERM', () => { for (const id in cluster.workers) cluster.workers[id].kill(); process.exit(0); });
} else {
  http.createServer((_, res) => res.end('hello world\n')).listen(0, '127.0.0.1');
}
JS

pids() { echo "$server $(pgrep -P "$server" | xargs)"; }
cpu_ticks() { local total=0; for p in $(pids); do
  total=$((total + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0))); done; echo $total; }
peak_rss_mb() { local kb=0; for p in $(pids); do
  kb=$((kb + $(awk '/VmHWM/ {print $2}' /proc/"$p"/status 2>/dev/null || echo 0))); done; echo $((kb / 1024)); }
micros_per() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'; }
# wrk prints 725.00us, 4.41ms or 1.02s: milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }

results="$work/results"; : >"$results"
measure() { # name, command...
  local name=$1; shift
  "$@" >"$work/out" 2>"$work/err" & server=$!
  for _ in $(seq 200); do grep -q "listening on" "$work/out" && break; sleep 0.05; done
  local url; url="$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)/"
  local before after; before=$(cpu_ticks)
  wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" --latency "$url" >"$work/wrk"
  after=$(cpu_ticks)
  local wrk_n wrk_rps wrk_p99; wrk_n=$(awk '/requests in/ {print $1}' "$work/wrk")
  wrk_rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk"); wrk_p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/wrk")")
  local wrk_cpu; wrk_cpu=$(micros_per $((after - before)) "$wrk_n")
  before=$(cpu_ticks)
  ab -q -n "$AB_REQUESTS" -c 32 "$url" >"$work/ab"
  after=$(cpu_ticks)
  local ab_rps ab_p99 ab_cpu; ab_rps=$(awk '/Requests per second/ {printf "%.0f", $4}' "$work/ab")
  ab_p99=$(awk '$1 == "99%" {print $2}' "$work/ab"); ab_cpu=$(micros_per $((after - before)) "$AB_REQUESTS")
  local rss; rss=$(peak_rss_mb)
  kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=
  echo "$name $wrk_rps $wrk_p99 $wrk_cpu $ab_rps $ab_p99 $ab_cpu $rss" >>"$results"
}

cluster() { # name, hello binary, policy
  measure "$1" env CLUSTER_SCHED_POLICY="$3" CLUSTER_WORKERS="$WORKERS" PORT=0 RUST_LOG=warn "$2"
}
for round in $(seq "$ROUNDS"); do
  measure "baseline-current_thread" env FLAVOR=current_thread PORT=0 target/release/examples/baseline
  measure "baseline-multi_thread" env FLAVOR=multi_thread PORT=0 target/release/examples/baseline
  for policy in rr least sticky shared reuseport; do
    cluster "cluster-$policy" target/release/examples/hello "$policy"
  done
  if [ -n "${COMPARE:-}" ]; then
    for policy in rr shared; do cluster "${COMPARE%%:*}-$policy" "${COMPARE#*:}" "$policy"; done
  fi
  if command -v node >/dev/null; then
    measure "node-cluster-rr" env CLUSTER_WORKERS="$WORKERS" node "$work/node-cluster.js"
  fi
  echo "round $round of $ROUNDS measured" >&2
done

# The median of every column, per server, in the order first measured.
medians="$work/medians"
awk '!seen[$1]++ { order[++n] = $1 } { for (c = 2; c <= NF; c++) v[$1, c, ++k[$1, c]] = $c; cols = NF }
  function median(name, c,    m, i, j, t, a) {
    m = k[name, c]; for (i = 1; i <= m; i++) a[i] = v[name, c, i]
    for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END { for (i = 1; i <= n; i++) { line = order[i]; for (c = 2; c <= cols; c++) line = line " " median(order[i], c); print line } }' \
  "$results" >"$medians"

base_ka=$(awk '$1 == "baseline-current_thread" {print $4}' "$medians")
base_nc=$(awk '$1 == "baseline-current_thread" {print $7}' "$medians")
node_nc=$(awk '$1 == "node-cluster-rr" {print $7}' "$medians")
{
  echo "Workers: $WORKERS; medians of $ROUNDS interleaved rounds; wrk -t1 -c64 -d${SECONDS_PER_RUN}s (keep-alive); ab -n $AB_REQUESTS -c32 (new connections); $(nproc) cores, load generator on the same machine."
  echo
  echo "| server | keep-alive req/s | p99 ms | CPU µs/req | new-conn req/s | p99 ms | CPU µs/conn | peak RSS MB | CPU/req vs current_thread | CPU/conn vs current_thread | CPU/conn: node ÷ this |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  while read -r name wrk_rps wrk_p99 wrk_cpu ab_rps ab_p99 ab_cpu rss; do
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f×", a / b; else print "-" }'; }
    echo "| $name | $wrk_rps | $wrk_p99 | $wrk_cpu | $ab_rps | $ab_p99 | $ab_cpu | $rss | $(ratio "$wrk_cpu" "$base_ka") | $(ratio "$ab_cpu" "$base_nc") | $(ratio "${node_nc:-0}" "$ab_cpu") |"
  done <"$medians"
} | tee benches/results/policies.md

# A bar chart of server CPU per new connection.
awk -v width=640 'BEGIN { bar = 24 } { name[NR] = $1; v[NR] = $7; if ($7 > max) max = $7 }
  END {
    h = NR * (bar + 8) + 40
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", width, h
    printf "<text x=\"10\" y=\"18\" font-weight=\"bold\">Server CPU per new connection (µs, median, lower is better)</text>\n"
    for (i = 1; i <= NR; i++) {
      y = 30 + (i - 1) * (bar + 8); w = (width - 260) * v[i] / max
      printf "<text x=\"10\" y=\"%d\">%s</text>\n", y + 16, name[i]
      printf "<rect x=\"190\" y=\"%d\" width=\"%.0f\" height=\"%d\" fill=\"%s\"/>\n", y, w, bar, (name[i] ~ /^cluster/ ? "#2b6cb0" : "#a0aec0")
      printf "<text x=\"%.0f\" y=\"%d\">%s</text>\n", 196 + w, y + 16, v[i]
    }
    print "</svg>"
  }' "$medians" > benches/results/policies.svg
echo "wrote benches/results/policies.md and benches/results/policies.svg" >&2
