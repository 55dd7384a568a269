#!/usr/bin/env bash
# HTTP throughput of runtime-host with wrk (not a test: numbers, no assertions).
#
#   runtime-host/bench/http.sh [seconds] [connections]
#
# Runs, against one runtime-host process and the fixture-http-probe component:
#   baseline  /.well-known/spin/health   answered by the host, no wasm (same-run baseline)
#   hello     /hello?op=env&name=X       a fresh component instance per request
#   chained   /chain?op=fetch&url=...    the same, reached through http://probe.spin.internal
# and prints requests/s, latency percentiles and the host's peak RSS.
# Needs: wrk (apt-get install wrk), the fixture built (scripts/build-components), and the
# runtime-host binary (cargo build -p runtime-host [--release]; set RUNTIME_HOST to choose).
set -euo pipefail
SECS="${1:-10}"
CONNS="${2:-16}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNTIME_HOST="${RUNTIME_HOST:-$TARGET/debug/runtime-host}"
PROBE="$TARGET/wasm32-wasip2/component/fixture_http_probe.wasm"
[ -x "$RUNTIME_HOST" ] || { echo "no runtime-host binary at $RUNTIME_HOST: cargo build -p runtime-host" >&2; exit 1; }
[ -f "$PROBE" ] || { echo "build the wasm components first: scripts/build-components" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "$PROBE"
allowed_outbound_hosts = ["http://probe.spin.internal"]
TOML
RUST_LOG=warn "$RUNTIME_HOST" up -f "$WORK/spin.toml" --listen 127.0.0.1:0 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -q Serving "$WORK/out" 2>/dev/null && break; sleep 0.1; done
BASE="$(sed -n 's/^Serving //p' "$WORK/out")"
[ -n "$BASE" ] || { cat "$WORK/err" >&2; exit 1; }

run() {
  local name="$1" path="$2"
  echo "== $name: $path"
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$BASE$path" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|errors"
}
run baseline "/.well-known/spin/health"
run hello "/hello?op=env&name=X"
run chained "/chain?op=fetch&url=http%3A%2F%2Fprobe.spin.internal%2F%3Fop%3Denv%26name%3DX"
echo "== host peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print int($2/1024)}') MiB; binary $RUNTIME_HOST"
