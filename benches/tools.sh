# Sourced by the benchmark scripts: `need_tools ab wrk h2load` installs the load generators
# that are missing, from the system's packages.
package_of() {
  case $1 in
    ab) echo apache2-utils ;;
    h2load) echo nghttp2-client ;;
    promtool) echo prometheus ;;
    perf) echo linux-perf ;;
    *) echo "$1" ;;
  esac
}
need_tools() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$(package_of "$tool")"); done
  [ ${#missing[@]} -eq 0 ] && return
  if command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} from the system's packages" >&2
    (apt-get update -qq && apt-get install -y -qq "${missing[@]}") >/dev/null
  else
    echo "please install ${missing[*]}" >&2
    exit 1
  fi
}

# Nanoseconds on a CPU of process $1 and its children, every thread, from
# /proc/PID/task/TID/schedstat: the scheduler's own count of run time. The utime and stime of
# /proc/PID/stat are not used: on a kernel with CONFIG_TICK_CPU_ACCOUNTING (this machine's,
# 250 Hz) they are samples, a whole tick charged to whichever task the timer interrupt finds
# running, so a process that runs in bursts of a few µs, as a master does, is charged by
# where the ticks land. (A thread that has exited is no longer counted: the servers measured
# keep theirs.)
cpu_ns() {
  # shellcheck disable=SC2046
  process_ns "$1" $(pgrep -P "$1" || true)
}
# The same for the processes named, without their children
process_ns() {
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
    awk '{ t += $1 } END { printf "%.0f\n", t }'
}
# µs per item: nanoseconds $1 over $2 items
micros_per() { awk -v t="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", t / 1000 / n; else print "-" }'; }

# Memory of processes $@ and their children, summed, in KiB: "PSS USS PEAK_RSS PROCESSES". PSS
# from /proc/PID/smaps_rollup (shared pages divided among their users), USS its private pages
# (clean and dirty), peak RSS the VmHWM of /proc/PID/status (which counts the pages of the binary
# and of libc once per process).
memory_kib() {
  local p pss=0 uss=0 hwm=0 n=0
  for p in $(for p in "$@"; do echo "$p"; pgrep -P "$p"; done); do
    pss=$((pss + $(awk '$1 == "Pss:" {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    uss=$((uss + $(awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    hwm=$((hwm + $(awk '$1 == "VmHWM:" {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    n=$((n + 1))
  done
  echo "$pss $uss $hwm $n"
}

# A self-signed certificate for localhost and 127.0.0.1 (P-256, an end entity, one day):
# $1/cert.pem and $1/key.pem.
test_certificate() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# For the TLS benchmarks: a temporary directory, $work, with a test certificate in it (exported
# for the `hello` examples), removed at exit once every server `start_server` started is
# stopped.
tls_bench_setup() {
  work=$(mktemp -d)
  servers=()
  trap 'for pid in "${servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true; rm -rf "$work"' EXIT
  test_certificate "$work"
  export CLUSTER_TLS_CERT="$work/cert.pem" CLUSTER_TLS_KEY="$work/key.pem"
}

# start_server NAME BINARY [ENV…]: starts BINARY on port 0 (on SERVER_CPUS, when set), its
# output in $work/NAME.out and .err, and waits until it listens; sets server_pid and
# server_port.
start_server() {
  local name=$1 binary=$2; shift 2
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} env PORT=0 RUST_LOG=warn "$@" "$binary" \
    >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  servers+=("$server_pid")
  for _ in $(seq 100); do grep -q "listening on" "$work/$name.out" && break; sleep 0.1; done
  server_port=$(grep -o ':[0-9]*$' "$work/$name.out" | head -1 | tr -d :)
}
