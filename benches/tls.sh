#!/usr/bin/env bash
# HTTPS from the release `hello` cluster, checked with curl --cacert (HTTP/1.1 and HTTP/2 by
# ALPN) and measured with h2load: h2 over keep-alive TLS connections, and a new TLS connection
# with a full handshake per request (h2load resumes no session; -n equal to -c).
# Usage: benches/tls.sh        (WORKERS=2 by default; installs curl, openssl and h2load when
#                               missing)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-2}

. benches/tools.sh
need_tools curl openssl h2load

cargo build --release --quiet --example hello
work=$(mktemp -d)
master=
cleanup() {
  [ -n "$master" ] && kill -TERM "$master" 2>/dev/null && wait "$master" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

test_certificate "$work"

env CLUSTER_WORKERS="$WORKERS" PORT=0 RUST_LOG=warn \
  CLUSTER_TLS_CERT="$work/cert.pem" CLUSTER_TLS_KEY="$work/key.pem" \
  target/release/examples/hello >"$work/out" 2>"$work/err" &
master=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
port=$(grep -o 'https://[0-9.]*:[0-9]*' "$work/out" | head -1 | sed 's/.*://')
url="https://localhost:$port/"

echo "curl --cacert, HTTP/1.1: $(curl -sS --cacert "$work/cert.pem" --http1.1 "$url")"
echo "curl --cacert, HTTP/2:   $(curl -sS --cacert "$work/cert.pem" --http2 -o /dev/null -w '%{http_version}' "$url")"

echo "| h2load | requests | succeeded | req/s |"
echo "|---|---|---|---|"
row() { # label, h2load arguments…
  local label=$1; shift
  h2load "$@" "$url" >"$work/h2load" 2>&1 || true
  local done ok rps
  done=$(awk '/^requests:/ {print $2}' "$work/h2load")
  ok=$(awk '/^requests:/ {print $8}' "$work/h2load")
  rps=$(awk '/^finished in/ {print $4}' "$work/h2load")
  echo "| $label | $done | $ok | $rps |"
}
row "h2 keep-alive, -c 32 -m 32" -n 200000 -c 32 -m 32
row "a new TLS connection per request (full handshakes)" -n 2000 -c 2000 -m 1
