#!/usr/bin/env bash
# The performance benchmark, in one command: every scheduling policy of the `hello` cluster
# against single-process references, in ROUNDS interleaved rounds (every server once per round,
# so a noisy neighbour hits them all alike); each figure is the median over the rounds.
#
# Servers: the same axum app in one process (`baseline`, current_thread and multi_thread),
# WORKERS bare hyper processes sharing the port with SO_REUSEPORT (`hyper-reuseport`, the floor
# with no master in the path), the same processes fed by a bare parent that accepts and hands
# off descriptors (`hyper-handoff`, HANDOFF=1: the floor of `rr`), the cluster under every
# policy, Node's cluster (when `node` is installed) and, with COMPARE=LABEL:PATH, the `rr` and
# `shared` policies of another build of `hello` (e.g. the previous commit's).
#
# Loads, one after the other against each server:
#   keep-alive   wrk -t1 -c64 -d${SECONDS_PER_RUN}s
#   new-conn     ab -n ${AB_REQUESTS} -c32 (a new connection per request)
#   h2           h2load -c16 -m32 -D ${SECONDS_PER_RUN} (HTTP/2 prior knowledge; Node's server
#                speaks HTTP/1 only)
# For each: requests/s, latency (p99 for wrk and ab, mean for h2load), and the server's CPU
# microseconds per request (run time of every thread of every process of the server, from /proc,
# `cpu_ns` in benches/tools.sh: on a small machine the load generator takes a core, so
# throughput alone misleads). Memory: the peak
# RSS of all server processes summed (which counts the pages of the binary and libc once per
# process), their PSS summed after the loads (shared pages divided among their users) and their
# USS summed (private pages only: what each process adds).
#
# Then, for the cluster under `rr`:
#   handoff capacity  connect_flood (FLOOD connections, connect and reset, no HTTP): the master's
#                     CPU per connection, and what one master core could hand out at that cost
#   idle              wake-ups (context switches, every thread) per second of each idle worker
#                     and of the master, over 10 s
#
# Writes benches/results/policies.md (tables, with the goals of issue 23) and
# benches/results/policies.svg (CPU per new connection).
# Usage: benches/policies.sh   (WORKERS=2 ROUNDS=5 SECONDS_PER_RUN=5 AB_REQUESTS=20000
#        FLOOD=50000 POLICIES="rr least sticky shared reuseport" COMPARE_POLICIES="rr shared";
#        installs wrk, ab and h2load when missing; the goals need rr and reuseport)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}; ROUNDS=${ROUNDS:-5}; SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
AB_REQUESTS=${AB_REQUESTS:-20000}; FLOOD=${FLOOD:-50000}
POLICIES=${POLICIES:-rr least sticky shared reuseport}; COMPARE_POLICIES=${COMPARE_POLICIES:-rr shared}
. benches/tools.sh
need_tools ab wrk h2load
cargo build --release --quiet --example hello --example baseline --example hyper_reuseport \
  --example connect_flood
work=$(mktemp -d); server=
cleanup() { [ -n "$server" ] && kill -TERM "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

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

mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
# wrk prints 725.00us, 4.41ms or 1.02s: milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
start() { # command... : starts the server, sets $server and $url
  "$@" >"$work/out" 2>"$work/err" & server=$!
  for _ in $(seq 200); do grep -q "listening on" "$work/out" && break; sleep 0.05; done
  url="$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)/"
}
stop() { kill -TERM "$server"; wait "$server" 2>/dev/null || true; server=; }

results="$work/results"; : >"$results"
measure() { # name, command...
  local name=$1; shift
  start "$@"
  local before after
  before=$(cpu_ns "$server")
  wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" --latency "$url" >"$work/wrk"
  after=$(cpu_ns "$server")
  local wrk_n wrk_rps wrk_p99 wrk_cpu; wrk_n=$(awk '/requests in/ {print $1}' "$work/wrk")
  wrk_rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk"); wrk_p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/wrk")")
  wrk_cpu=$(micros_per $((after - before)) "$wrk_n")
  before=$(cpu_ns "$server")
  ab -q -n "$AB_REQUESTS" -c 32 "$url" >"$work/ab"
  after=$(cpu_ns "$server")
  local ab_rps ab_p99 ab_cpu; ab_rps=$(awk '/Requests per second/ {printf "%.0f", $4}' "$work/ab")
  ab_p99=$(awk '$1 == "99%" {print $2}' "$work/ab"); ab_cpu=$(micros_per $((after - before)) "$AB_REQUESTS")
  before=$(cpu_ns "$server")
  h2load -c 16 -m 32 -D "$SECONDS_PER_RUN" "$url" >"$work/h2" 2>&1 || true
  after=$(cpu_ns "$server")
  local h2_n h2_rps h2_mean h2_cpu
  h2_n=$(awk '/^requests:/ {print $8 + 0}' "$work/h2"); h2_n=${h2_n:-0}
  if [ "$h2_n" -gt 0 ]; then
    h2_rps=$(awk '/^finished in/ {printf "%.0f", $4}' "$work/h2")
    h2_mean=$(awk '/^time for request:/ { v = $6; n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }' "$work/h2")
    h2_cpu=$(micros_per $((after - before)) "$h2_n")
  else h2_rps=-; h2_mean=-; h2_cpu=-; fi
  local rss pss uss; read -r pss uss rss _ <<<"$(memory_kib "$server")"
  rss=$(mb "$rss"); pss=$(mb "$pss"); uss=$(mb "$uss")
  stop
  echo "$name $wrk_rps $wrk_p99 $wrk_cpu $ab_rps $ab_p99 $ab_cpu $h2_rps $h2_mean $h2_cpu $rss $pss $uss" >>"$results"
}

cluster_env() { echo "CLUSTER_SCHED_POLICY=$1 CLUSTER_WORKERS=$WORKERS PORT=0 RUST_LOG=warn"; }
flood_results="$work/flood"; : >"$flood_results"
flood() { # the master's CPU per connection under a connect flood
  # shellcheck disable=SC2046
  start env $(cluster_env rr) target/release/examples/hello
  local address=${url#http://}; address=${address%/}
  local before after
  before=$(process_ns "$server")
  TARGET=$address CONNECTIONS=$FLOOD target/release/examples/connect_flood >"$work/flood.out"
  after=$(process_ns "$server")
  local per_second; per_second=$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' "$work/flood.out")
  echo "$(micros_per $((after - before)) "$FLOOD") $per_second" >>"$flood_results"
  stop
}

for round in $(seq "$ROUNDS"); do
  measure "baseline-current_thread" env FLAVOR=current_thread PORT=0 target/release/examples/baseline
  measure "baseline-multi_thread" env FLAVOR=multi_thread PORT=0 target/release/examples/baseline
  measure "hyper-reuseport" env PROCESSES="$WORKERS" PORT=0 target/release/examples/hyper_reuseport
  measure "hyper-handoff" env PROCESSES="$WORKERS" HANDOFF=1 PORT=0 target/release/examples/hyper_reuseport
  for policy in $POLICIES; do
    # shellcheck disable=SC2046
    measure "cluster-$policy" env $(cluster_env "$policy") target/release/examples/hello
  done
  if [ -n "${COMPARE:-}" ]; then
    for policy in $COMPARE_POLICIES; do
      # shellcheck disable=SC2046
      measure "${COMPARE%%:*}-$policy" env $(cluster_env "$policy") "${COMPARE#*:}"
    done
  fi
  if command -v node >/dev/null; then
    measure "node-cluster-rr" env CLUSTER_WORKERS="$WORKERS" node "$work/node-cluster.js"
  fi
  flood
  echo "round $round of $ROUNDS measured" >&2
done

# Idle: wake-ups (context switches of every thread, voluntary or not) per second of each worker
# and of the master, over 10 s of no traffic.
# shellcheck disable=SC2046
start env $(cluster_env rr) target/release/examples/hello
sleep 2
switches() { cat /proc/"$1"/task/*/status | awk '/^(non)?voluntary_ctxt_switches/ { t += $2 } END { print t }'; }
workers_switches() { local t=0; for p in $(pgrep -P "$server"); do t=$((t + $(switches "$p"))); done; echo $t; }
w0=$(workers_switches); m0=$(switches "$server"); sleep 10; w1=$(workers_switches); m1=$(switches "$server")
idle_worker=$(awk -v d=$((w1 - w0)) -v n="$WORKERS" 'BEGIN { printf "%.2f", d / n / 10 }')
idle_master=$(awk -v d=$((m1 - m0)) 'BEGIN { printf "%.2f", d / 10 }')
stop

# The median of every column, per server, in the order first measured.
median_columns() {
  awk '!seen[$1]++ { order[++n] = $1 } { for (c = 2; c <= NF; c++) v[$1, c, ++k[$1, c]] = $c; cols = NF }
    function median(name, c,    m, i, j, t, a) {
      m = k[name, c]; for (i = 1; i <= m; i++) a[i] = v[name, c, i]
      if (a[1] == "-") return "-"
      for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
    END { for (i = 1; i <= n; i++) { line = order[i]; for (c = 2; c <= cols; c++) line = line " " median(order[i], c); print line } }' "$1"
}
medians="$work/medians"; median_columns "$results" >"$medians"
flood_median=$(sed 's/^/rr /' "$flood_results" | median_columns /dev/stdin)
flood_cpu=$(echo "$flood_median" | awk '{print $2}'); flood_rate=$(echo "$flood_median" | awk '{print $3}')

col() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$medians"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0 && a > 0) printf "%.2f×", a / b; else print "-" }'; }
verdict() { # value, comparison (<= or >=), goal
  awk -v v="${1%×}" -v op="$2" -v g="$3" 'BEGIN { if (v == "-" || v == "") { print "-"; exit }
    ok = (op == "<=") ? (v + 0 <= g + 0) : (v + 0 >= g + 0); print ok ? "met" : "missed" }'
}
rr_nc=$(col cluster-rr 7); rr_ka=$(col cluster-rr 4); rr_h2=$(col cluster-rr 10)
rr_rss=$(col cluster-rr 11); rr_pss=$(col cluster-rr 12); rr_uss=$(col cluster-rr 13)
base_ka=$(col baseline-current_thread 4); base_nc=$(col baseline-current_thread 7); base_h2=$(col baseline-current_thread 10)
reuse_nc=$(col cluster-reuseport 7); hyper_nc=$(col hyper-reuseport 7); node_nc=$(col node-cluster-rr 7)
handoff_nc=$(col hyper-handoff 7)
capacity=$(awk -v us="$flood_cpu" 'BEGIN { if (us > 0) printf "%.0f", 1e6 / us; else print "-" }')
goal_rows() {
  local r
  r=$(ratio "$rr_nc" "$reuse_nc"); echo "| new connection (ab -c32), \`rr\` vs our \`reuseport\` | $rr_nc µs | $reuse_nc µs | $r | ≤ 1.10× | $(verdict "$r" "<=" 1.10) |"
  r=$(ratio "$rr_nc" "$hyper_nc"); echo "| same, \`rr\` vs $WORKERS bare hyper SO_REUSEPORT processes | $rr_nc µs | $hyper_nc µs | $r | ≤ 1.25× | $(verdict "$r" "<=" 1.25) |"
  r=$(ratio "$rr_nc" "$handoff_nc"); echo "| same, \`rr\` vs the same processes served by a bare parent that accepts and hands off (the floor of \`rr\`'s design) | $rr_nc µs | $handoff_nc µs | $r | | |"
  r=$(ratio "$handoff_nc" "$hyper_nc"); echo "| what handing off costs at the floor: bare parent vs SO_REUSEPORT | $handoff_nc µs | $hyper_nc µs | $r | | |"
  r=$(ratio "${node_nc:--}" "$rr_nc"); echo "| same, Node's cluster (RR) ÷ \`rr\` | ${node_nc:--} µs | $rr_nc µs | $r | ≥ 6× | $(verdict "$r" ">=" 6) |"
  r=$(ratio "$rr_ka" "$base_ka"); echo "| keep-alive (wrk -c64), \`rr\` vs one current_thread process | $rr_ka µs | $base_ka µs | $r | ≤ 1.05× | $(verdict "$r" "<=" 1.05) |"
  r=$(ratio "$rr_h2" "$base_h2"); echo "| HTTP/2 (h2load -c16 -m32), \`rr\` vs the same | $rr_h2 µs | $base_h2 µs | $r | ≤ 1.05× | $(verdict "$r" "<=" 1.05) |"
  r=$(ratio "$rr_pss" "$(col baseline-current_thread 12)")
  echo "| memory, master + $WORKERS workers: PSS summed (shared pages counted once) vs one process | $rr_pss MiB | $(col baseline-current_thread 12) MiB | $r | ≤ 1.5× | $(verdict "$r" "<=" 1.5) |"
  echo "| same, USS summed (private pages) | $rr_uss MiB | $(col baseline-current_thread 13) MiB | $(ratio "$rr_uss" "$(col baseline-current_thread 13)") | | |"
  echo "| same, peak RSS summed (binary and libc counted once per process) | $rr_rss MiB | $(col baseline-current_thread 11) MiB | $(ratio "$rr_rss" "$(col baseline-current_thread 11)") | | |"
  echo "| idle: wake-ups per second of the master | $idle_master | | | ≤ 1 | $(verdict "$idle_master" "<=" 1) |"
  echo "| idle: wake-ups per second of each worker | $idle_worker | | | ≤ 1 | $(verdict "$idle_worker" "<=" 1) |"
  echo "| handoff capacity of one master core (connect flood: master CPU $flood_cpu µs per connection; $flood_rate conn/s on this machine) | $capacity conn/s | | | ≥ 200,000 | $(verdict "$capacity" ">=" 200000) |"
}
{
  echo "Workers: $WORKERS; medians of $ROUNDS interleaved rounds; $(nproc) cores, load generators on the same machine."
  echo "CPU is server CPU per request (every process of the server, from /proc)."
  echo
  echo "## Goals (issue 23)"
  echo
  echo "| measure | ours | reference | ratio | goal | |"
  echo "|---|---:|---:|---:|---:|---|"
  goal_rows
  echo
  echo "## Every server"
  echo
  echo "wrk -t1 -c64 -d${SECONDS_PER_RUN}s (keep-alive); ab -n $AB_REQUESTS -c32 (new connections); h2load -c16 -m32 -D $SECONDS_PER_RUN (HTTP/2)."
  echo
  echo "| server | keep-alive req/s | p99 ms | CPU µs/req | new-conn req/s | p99 ms | CPU µs/conn | h2 req/s | mean ms | CPU µs/req | peak RSS MiB | PSS MiB | USS MiB | keep-alive CPU vs current_thread | new-conn CPU vs current_thread | h2 CPU vs current_thread |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  while read -r name wrk_rps wrk_p99 wrk_cpu ab_rps ab_p99 ab_cpu h2_rps h2_mean h2_cpu rss pss uss; do
    echo "| $name | $wrk_rps | $wrk_p99 | $wrk_cpu | $ab_rps | $ab_p99 | $ab_cpu | $h2_rps | $h2_mean | $h2_cpu | $rss | $pss | $uss | $(ratio "$wrk_cpu" "$base_ka") | $(ratio "$ab_cpu" "$base_nc") | $(ratio "$h2_cpu" "$base_h2") |"
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
