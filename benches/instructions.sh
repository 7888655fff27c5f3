#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind (repeatable on a noisy machine, where
# CPU time is not): each server runs under callgrind twice, with FEW and MANY requests (or
# connections), and the difference divided by MANY - FEW is the cost of one without start and stop.
#   keep-alive   ab -k -c4: the one-process baseline (axum::serve, current_thread), and the
#                `hello` cluster with one worker: its worker's count, then the same app without
#                `ClusterLayer` (the serve path alone), with tower's `Identity` layer in its place
#                (what axum's `Router::layer` costs for any layer), and without the layer and
#                with `HttpConfig::worker_id_header(false).request_metrics(false)`; and the
#                baseline with axum's ConnectInfo (which the cluster gives every request)
#   h2           h2load -c4 -m32 (HTTP/2 prior knowledge, the same 4 connections in both runs, so
#                the difference is requests alone): the baseline, the `hello` worker, the same
#                without `ClusterLayer`, and that with the header and the metrics off
#   new-conn     ab -c8: the baseline, the `rr` worker and master, the `reuseport` worker
#   TLS          new TLS 1.3 connections with one `GET /` each, from `tls_load` (benches/tls_load.rs,
#                CONCURRENCY=4, CONNECTIONS=TLS_FEW or TLS_MANY), full handshakes and resumed
#                ones (one session store: all but the first few resume): the one-process
#                `tls_baseline` (tokio-rustls, current_thread), the `rr` worker and master and
#                their sum, the `reuseport` worker; a P-256 certificate as benches/tls_cpu.sh
#                makes. It also prints how many connections resumed in each run.
# Prints the tables (HTTP into benches/results/instructions.md, TLS into instructions-tls.md);
# `callgrind_annotate` on the files it names shows where the instructions go: KEEP=1 keeps them
# (the work directory, LABEL-N/cg.PID for each process, is named on stderr at the end).
# TLS=1 (default) measures both, TLS=0 the HTTP rows alone, TLS=only the TLS rows alone: the
# whole run takes about 2 minutes on the 2-core development machine, the TLS rows 1 of them.
# Usage: benches/instructions.sh   (FEW=2000 MANY=12000 TLS_FEW=200 TLS_MANY=1200 TLS=1 KEEP= OUT=;
#                                    needs valgrind, installs ab, h2load and openssl)
set -euo pipefail
cd "$(dirname "$0")/.."
FEW=${FEW:-2000}; MANY=${MANY:-12000}
TLS_FEW=${TLS_FEW:-200}; TLS_MANY=${TLS_MANY:-1200}
TLS=${TLS:-1}
# The binaries cargo builds (CARGO_TARGET_DIR, and the CARGO_PROFILE_RELEASE_* variables, give
# another build, e.g. the release profile the README recommends); OUT: the HTTP table's file.
bin=${CARGO_TARGET_DIR:-target}/release/examples
out=${OUT:-benches/results/instructions.md}
command="FEW=$FEW MANY=$MANY TLS_FEW=$TLS_FEW TLS_MANY=$TLS_MANY TLS=$TLS benches/instructions.sh"
case $TLS in 0 | 1 | only) ;; *) echo "TLS is 0, 1 or only, not $TLS" >&2; exit 2 ;; esac
. benches/tools.sh
need_tools ab h2load valgrind openssl
cargo build --release --quiet --example hello --example baseline --example tls_baseline --example tls_load
work=$(mktemp -d)
cleanup() {
  [ -f "$work/hello.rs" ] && cp "$work/hello.rs" examples/hello.rs
  if [ -n "${KEEP:-}" ]; then echo "callgrind files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# variant NAME SED...: `hello` built with examples/hello.rs edited by each sed expression, as
# $work/NAME (the example is put back after each build).
variant() {
  local name=$1 edit; shift
  for edit in "$@"; do sed -i "$edit" examples/hello.rs; done
  cmp -s examples/hello.rs "$work/hello.rs" && { echo "hello.rs changed: cannot build $name" >&2; exit 1; }
  cargo build --release --quiet --example hello 2>/dev/null
  cp "$bin"/hello "$work/$name"
  cp "$work/hello.rs" examples/hello.rs
}
if [ "$TLS" != only ]; then
  cp examples/hello.rs "$work/hello.rs"
  layer='^        \.layer(ClusterLayer::new());$'
  # The serve path alone; with a layer that does nothing (axum's cost of any `Router::layer`);
  # with `x-worker-id` and the request metrics off as well.
  variant hello-without-layer "s/$layer/        ;/"
  variant hello-identity-layer "s/$layer/        .layer(tower_layer::Identity::new());/"
  variant hello-unmarked "s/$layer/        ;/" \
    's/cluster\.serve(address, app)/cluster.serve_with(address, app, clustered::HttpConfig::default().worker_id_header(false).request_metrics(false))/'
  cargo build --release --quiet --example hello
fi
if [ "$TLS" != 0 ]; then
  test_certificate "$work"
fi

# run LABEL N CLIENT ENV... BINARY: callgrind files of every process, largest first. CLIENT is
# ab's arguments, `h2` for h2load, or `tls full` / `tls resumed` for tls_load (whose line goes
# to LABEL-N/load).
run() {
  local label=$1 n=$2 client=$3; shift 3
  local dir="$work/$label-$n"; mkdir -p "$dir"
  env "$@" PORT=0 RUST_LOG=warn FLAVOR=current_thread CLUSTER_WORKERS=1 \
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
    "${BINARY}" >"$dir/out" 2>"$dir/err" &
  local pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
  local url failed=; url=$(grep -o 'https\?://[0-9.:]*' "$dir/out" | head -1)
  case $client in
    tls\ *)
      MODE=${client#tls } CONCURRENCY=4 CONNECTIONS=$n SECONDS=100000 CA="$work/cert.pem" \
        TARGET=${url#https://} "$bin"/tls_load >"$dir/load"
      local resumed='[0-9]*'; [ "$client" = "tls full" ] && resumed=0
      grep -q "^connections=$n resumed=$resumed failed=0 " "$dir/load" || failed=1 ;;
    h2)
      h2load -c 4 -m 32 -n "$n" "$url/" >"$dir/load" 2>&1 || true
      grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$dir/load" || failed=1 ;;
    *)
      # shellcheck disable=SC2086
      ab -q $client -n "$n" "$url/" >/dev/null ;;
  esac
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; sleep 1
  [ -z "$failed" ] || { echo "$client against $label: $(cat "$dir/load")" >&2; exit 1; }
}
# total LABEL N ROLE: instructions of the master (the process that printed the address) or the
# worker (any other process), from the callgrind summary
total() {
  local dir="$work/$1-$2" role=$3 file master
  master=$(for file in "$dir"/cg.*; do echo "${file##*.} $file"; done | sort -n | head -1 | cut -d' ' -f2-)
  for file in "$dir"/cg.*; do
    if { [ "$role" = master ] && [ "$file" = "$master" ]; } || { [ "$role" = worker ] && [ "$file" != "$master" ]; }; then
      awk '/^(summary|totals):/ {print $2; exit}' "$file"
    fi
  done | head -1
}
per_request() { # LABEL ROLE
  awk -v a="$(total "$1" "$FEW" "$2")" -v b="$(total "$1" "$MANY" "$2")" -v n=$((MANY - FEW)) \
    'BEGIN { printf "%.0f", (b - a) / n }'
}
measure() { # LABEL CLIENT BINARY ENV...
  local label=$1 client=$2; BINARY=$3; shift 3
  run "$label" "$FEW" "$client" "$@"
  run "$label" "$MANY" "$client" "$@"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
row() { # what, instructions, baseline
  echo "| $1 | $2 | $(ratio "$2" "$3") |"
}

if [ "$TLS" != only ]; then
  measure ka-baseline "-k -c 4" "$bin"/baseline
  measure ka-hello "-k -c 4" "$bin"/hello
  measure ka-bare "-k -c 4" "$work/hello-without-layer"
  measure ka-identity "-k -c 4" "$work/hello-identity-layer"
  measure ka-unmarked "-k -c 4" "$work/hello-unmarked"
  measure ka-baseline-connect-info "-k -c 4" "$bin"/baseline CONNECT_INFO=1
  measure h2-baseline h2 "$bin"/baseline
  measure h2-hello h2 "$bin"/hello
  measure h2-bare h2 "$work/hello-without-layer"
  measure h2-unmarked h2 "$work/hello-unmarked"
  measure nc-baseline "-c 8" "$bin"/baseline
  measure nc-rr "-c 8" "$bin"/hello CLUSTER_SCHED_POLICY=rr
  measure nc-reuseport "-c 8" "$bin"/hello CLUSTER_SCHED_POLICY=reuseport

  ka_base=$(per_request ka-baseline master)
  h2_base=$(per_request h2-baseline master)
  nc_base=$(per_request nc-baseline master)
  {
    echo "$(date -u +%F), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!benches/results' \
      || echo ' with uncommitted changes'), $bin: \`$command\`"
    echo
    echo "Instructions per request (callgrind, $((MANY - FEW)) requests after $FEW, one worker)."
    echo
    echo "| what | instructions | vs the one-process baseline |"
    echo "|---|---:|---:|"
    row "keep-alive: baseline (axum::serve, current_thread)" "$ka_base" "$ka_base"
    row "keep-alive: \`hello\` worker (ClusterLayer, serve)" "$(per_request ka-hello worker)" "$ka_base"
    row "keep-alive: the same without ClusterLayer (serve alone)" "$(per_request ka-bare worker)" "$ka_base"
    row "keep-alive: the same with tower's Identity layer instead (axum's cost of any layer)" \
      "$(per_request ka-identity worker)" "$ka_base"
    row "keep-alive: serve alone, \`x-worker-id\` and request metrics off" \
      "$(per_request ka-unmarked worker)" "$ka_base"
    row "keep-alive: baseline with ConnectInfo (into_make_service_with_connect_info)" \
      "$(per_request ka-baseline-connect-info master)" "$ka_base"
    row "HTTP/2 (h2load -c4 -m32): baseline" "$h2_base" "$h2_base"
    row "HTTP/2: \`hello\` worker (ClusterLayer, serve)" "$(per_request h2-hello worker)" "$h2_base"
    row "HTTP/2: the same without ClusterLayer (serve alone)" "$(per_request h2-bare worker)" "$h2_base"
    row "HTTP/2: serve alone, \`x-worker-id\` and request metrics off" \
      "$(per_request h2-unmarked worker)" "$h2_base"
    row "new connection: baseline" "$nc_base" "$nc_base"
    row "new connection: \`reuseport\` worker" "$(per_request nc-reuseport worker)" "$nc_base"
    row "new connection: \`rr\` worker" "$(per_request nc-rr worker)" "$nc_base"
    row "new connection: \`rr\` master" "$(per_request nc-rr master)" "$nc_base"
    row "new connection: \`rr\` master and worker" \
      "$(($(per_request nc-rr master) + $(per_request nc-rr worker)))" "$nc_base"
  } | tee "$out"
fi

if [ "$TLS" != 0 ]; then
  [ "$TLS" = 1 ] && echo
  FEW=$TLS_FEW; MANY=$TLS_MANY
  tls_env=(CLUSTER_TLS_CERT="$work/cert.pem" CLUSTER_TLS_KEY="$work/key.pem")
  for mode in full resumed; do
    measure "tls-$mode-baseline" "tls $mode" "$bin"/tls_baseline "${tls_env[@]}"
    measure "tls-$mode-rr" "tls $mode" "$bin"/hello "${tls_env[@]}" CLUSTER_SCHED_POLICY=rr
    measure "tls-$mode-reuseport" "tls $mode" "$bin"/hello "${tls_env[@]}" CLUSTER_SCHED_POLICY=reuseport
  done
  tls_row() { # what, LABEL ROLE (or `sum`), for full and resumed
    local what=$1 full resumed
    if [ "$3" = sum ]; then
      full=$(($(per_request "tls-full-$2" master) + $(per_request "tls-full-$2" worker)))
      resumed=$(($(per_request "tls-resumed-$2" master) + $(per_request "tls-resumed-$2" worker)))
    else
      full=$(per_request "tls-full-$2" "$3"); resumed=$(per_request "tls-resumed-$2" "$3")
    fi
    echo "| $what | $full | $(ratio "$full" "$full_base") | $resumed | $(ratio "$resumed" "$resumed_base") |"
  }
  resumed_count() { # LABEL N: connections that resumed, from tls_load's line
    sed -n 's/.* resumed=\([0-9]*\) .*/\1/p' "$work/tls-resumed-$1-$2/load"
  }
  full_base=$(per_request tls-full-baseline master)
  resumed_base=$(per_request tls-resumed-baseline master)
  {
    echo "Instructions per new TLS 1.3 connection with one \`GET /\` (callgrind, $((MANY - FEW))" \
      "connections after $FEW, tls_load CONCURRENCY=4, one worker)."
    echo
    echo "| what | full handshake | vs the one-process baseline | resumed | vs the one-process baseline |"
    echo "|---|---:|---:|---:|---:|"
    tls_row "baseline (tls_baseline: tokio-rustls, current_thread)" baseline master
    tls_row "\`reuseport\` worker" reuseport worker
    tls_row "\`rr\` worker" rr worker
    tls_row "\`rr\` master" rr master
    tls_row "\`rr\` master and worker" rr sum
    echo
    echo -n "Resumed connections in resumed mode, of $FEW and of $MANY:"
    echo " baseline $(resumed_count baseline "$FEW") and $(resumed_count baseline "$MANY")," \
      "\`rr\` $(resumed_count rr "$FEW") and $(resumed_count rr "$MANY")," \
      "\`reuseport\` $(resumed_count reuseport "$FEW") and $(resumed_count reuseport "$MANY")" \
      "(none in full mode)."
  } | tee "$work/tls.md"
  { echo "$(date -u +%F), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!benches/results' \
      || echo ' with uncommitted changes'): \`$command\`"; echo; cat "$work/tls.md"; } \
    >benches/results/instructions-tls.md
fi
