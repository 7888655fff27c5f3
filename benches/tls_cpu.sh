#!/usr/bin/env bash
# CPU per new TLS connection: the release `hello` cluster (WORKERS workers, shared ticket keys)
# against one process with tokio-rustls and the same certificate (`tls_baseline`), in ROUNDS
# interleaved rounds. Each round makes connections for SECONDS_EACH against each server, each
# with one `GET /`: full handshakes and resumed ones,
#   - one at a time: `openssl s_time -www /` (full: TLS 1.3 `-new`; resumed: TLS 1.2 tickets
#     `-reuse`; the GET is HTTP/1.0, so the server closes after it — before 2026-12-04 there was
#     no request, and the client hung up as the handshake ended);
#   - CONCURRENCY at a time: `tls_load` (benches/tls_load.rs; TLS 1.3, full, or resumed with one
#     session store, so a ticket from one worker is offered to whichever takes the next).
# CPU is the run time of every thread of every process of the server (from /proc, `cpu_ns` in
# benches/tools.sh), per connection, in µs; prints each round and the median ratio cluster/baseline.
# SERVER_CPUS and CLIENT_CPUS (taskset lists, e.g. 0 and 1) pin the servers and the clients
# apart, so that a client never takes a server's core: then one process and a one-worker
# cluster each have one core, and the ratio is the cost of being in a cluster alone.
# FLOOR=1 measures a third server in the same rounds: the floor of POLICY's design with WORKERS
# processes, the one process's code run WORKERS times under a bare parent (`tls_baseline`
# with `PROCESSES`), each with its own `SO_REUSEPORT` listener for `reuseport` and `shared`,
# and fed by a parent that accepts every connection and hands it over (`HANDOFF=1`) for the
# policies where the master accepts; each cell then adds the floor's µs and its ratio to the
# one process, and the medians the cluster's ratio to the floor. FLOOR=epoll: the same, but its
# parent accepts on a tokio event loop (`HANDOFF=epoll`), the floor of a master that does.
# COUNT=syscalls or COUNT=switches measures, in place of CPU time, the system calls or the
# context switches of every process of the server per connection (`perf stat`, attached for the
# client's run; counts, so they repeat where CPU time on a shared machine does not).
# Usage: benches/tls_cpu.sh    (ROUNDS=5 SECONDS_EACH=3 WORKERS=2 POLICY=rr CONCURRENCY=16
#                                SERVER_CPUS= CLIENT_CPUS= FLOOR= COUNT=; installs openssl,
#                                and perf for COUNT, if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-3}
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools openssl
case ${COUNT:-} in
  '') ;;
  syscalls) event=raw_syscalls:sys_enter ;;
  switches) event=context-switches ;;
  *) echo "COUNT=$COUNT: say syscalls or switches" >&2; exit 2 ;;
esac
[ -z "${COUNT:-}" ] || need_tools perf

cargo build --release --quiet --example hello --example tls_baseline --example tls_load
tls_bench_setup

start() { # name, binary, env…
  start_server "$@"
  eval "${1}_pid=$server_pid ${1}_port=$server_port"
}
start cluster target/release/examples/hello CLUSTER_WORKERS="$WORKERS" CLUSTER_SCHED_POLICY="${POLICY:-rr}"
start baseline target/release/examples/tls_baseline
if [ -n "${FLOOR:-}" ]; then
  case ${POLICY:-rr} in
    reuseport | shared) handoff=0 ;;
    *) handoff=$([ "$FLOOR" = epoll ] && echo epoll || echo 1) ;;
  esac
  start floor target/release/examples/tls_baseline PROCESSES="$WORKERS" HANDOFF=$handoff
fi

# µs of server CPU (or COUNT's events) per connection for one run: name, then `s_time` and its
# mode arguments…, or `load` and full|resumed
measure() {
  local name=$1 client=$2; shift 2
  local pid port before after conns perf_pid
  pid=$(eval echo "\$${name}_pid"); port=$(eval echo "\$${name}_port")
  if [ -n "${COUNT:-}" ]; then
    local children
    children=$(pgrep -P "$pid" | paste -sd, || true)
    perf stat -x, -e "$event" -p "$pid${children:+,$children}" -o "$work/perf" 2>/dev/null &
    perf_pid=$!
    sleep 0.3 # attached
  fi
  before=$(cpu_ns "$pid")
  if [ "$client" = s_time ]; then
    conns=$(${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} openssl s_time -connect "127.0.0.1:$port" -www / "$@" -time "$SECONDS_EACH" 2>/dev/null \
      | awk '/connections in .* real seconds/ {print $1}' | tail -1)
  else
    conns=$(MODE=$1 SECONDS=$SECONDS_EACH CONCURRENCY=${CONCURRENCY:-16} CA="$work/cert.pem" \
      TARGET="127.0.0.1:$port" ${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} target/release/examples/tls_load \
      | sed -n 's/^connections=\([0-9]*\) resumed=\([0-9]*\) failed=0 .*/\1/p')
    [ -n "$conns" ] || { echo "tls_load failed against $name" >&2; exit 1; }
  fi
  after=$(cpu_ns "$pid")
  if [ -n "${COUNT:-}" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    awk -F, -v n="$conns" '/^[0-9]/ {printf "%.2f", $1 / n}' "$work/perf"
  else
    micros_per $((after - before)) "$conns"
  fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
modes=("s_time -new" "s_time -reuse -tls1_2" "load full" "load resumed")
# Ratios per mode, as space-separated lists: cluster/one process, floor/one process, cluster/floor.
ratios=("" "" "" ""); floor_ratios=("" "" "" ""); over_floor=("" "" "" "")
echo "| round | full, one at a time: cluster ${COUNT:-µs} / one process ${COUNT:-µs} = ratio | resumed, one at a time | full, ${CONCURRENCY:-16} at a time | resumed, ${CONCURRENCY:-16} at a time |"
echo "|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  row="| $round |"
  for m in 0 1 2 3; do
    # shellcheck disable=SC2086 # the mode's words are the client's arguments
    c=$(measure cluster ${modes[$m]}); b=$(measure baseline ${modes[$m]})
    ratios[$m]+=" $(ratio "$c" "$b")"
    cell=" $c / $b = $(ratio "$c" "$b")"
    if [ -n "${FLOOR:-}" ]; then
      # shellcheck disable=SC2086
      f=$(measure floor ${modes[$m]})
      floor_ratios[$m]+=" $(ratio "$f" "$b")"; over_floor[$m]+=" $(ratio "$c" "$f")"
      cell+=" (floor $f = $(ratio "$f" "$b"))"
    fi
    row+="$cell |"
  done
  echo "$row"
done
# shellcheck disable=SC2086 # each list's words are its ratios
summary() { # label, the four lists…
  local label=$1; shift
  echo "$label, one at a time: full $(median $1), resumed $(median $2)"
  echo "$label, ${CONCURRENCY:-16} at a time: full $(median $3), resumed $(median $4)"
}
echo
summary "median ratio" "${ratios[@]}"
if [ -n "${FLOOR:-}" ]; then
  summary "median ratio of the floor to the one process" "${floor_ratios[@]}"
  summary "median ratio of the cluster to the floor" "${over_floor[@]}"
fi
