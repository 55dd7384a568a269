#!/usr/bin/env bash
# HTTP throughput and instantiation time of runtime-host (not a test: numbers, no assertions).
#
#   runtime-host/bench/http.sh [seconds] [connections]
#
# Runs, against one runtime-host process and the fixture-http-probe component:
#   baseline  /.well-known/spin/health   answered by the host, no wasm (same-run baseline)
#   hello     /hello?op=env&name=X       a fresh component instance per request
#   chained   /chain?op=fetch&url=...    the same, reached through http://probe.spin.internal
#   self      /self?op=fetch&url=/hello  the same, reached through a relative URL (http://self)
# and prints requests/s, latency percentiles, the host's CPU time per request (from
# /proc/PID/stat: less sensitive than requests/s to other work on a shared machine), wrk's own
# (GNU time), the rate both together would allow on this machine's cores, and the host's peak
# RSS; then the instantiation percentiles of examples/instantiation.rs, on an idle host.
# Needs: wrk and GNU time (scripts/install bench), the fixture built
# (scripts/build-components), and
#   cargo build --release -p runtime-host --bin runtime-host --example instantiation
# (RUNTIME_HOST picks another binary; its directory's examples/instantiation is used if present).
set -euo pipefail
SECS="${1:-10}"
CONNS="${2:-16}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNTIME_HOST="${RUNTIME_HOST:-$TARGET/release/runtime-host}"
INSTANTIATION="$(dirname "$RUNTIME_HOST")/examples/instantiation"
PROBE="$TARGET/wasm32-wasip2/component/fixture_http_probe.wasm"
[ -x "$RUNTIME_HOST" ] || { echo "no runtime-host binary at $RUNTIME_HOST: cargo build --release -p runtime-host" >&2; exit 1; }
[ -f "$PROBE" ] || { echo "build the wasm components first: scripts/build-components" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install bench)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is not installed (scripts/install bench)" >&2; exit 1; }

WORK="$(mktemp -d)"
PID=
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
cat > "$WORK/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "$PROBE"
allowed_outbound_hosts = ["http://probe.spin.internal", "http://self"]
TOML
echo "== $(date -u '+%F %T UTC'); load: $(uptime | sed 's/.*load average/load average/'); $(nproc) cores"
echo "== binary $RUNTIME_HOST ($(stat -c %y "$RUNTIME_HOST" | cut -d. -f1))"
RUST_LOG=warn "$RUNTIME_HOST" up -f "$WORK/spin.toml" --listen 127.0.0.1:0 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 300); do grep -q Serving "$WORK/out" 2>/dev/null && break; sleep 0.1; done
BASE="$(sed -n 's/^Serving //p' "$WORK/out")"
[ -n "$BASE" ] || { cat "$WORK/err" >&2; exit 1; }

TICK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

run() {
  local name="$1" path="$2" before after out requests
  # A second of warm-up so that the first connections' slot and page setup is not in the figures.
  wrk -t2 -c"$CONNS" -d1s "$BASE$path" > /dev/null
  before="$(cpu_ticks)"
  out="$(/usr/bin/time -o "$WORK/wrk-cpu" -f '%U %S' wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$BASE$path")"
  after="$(cpu_ticks)"
  requests="$(echo "$out" | awk '/requests in/ {print $1}')"
  echo "== $name: $path"
  echo "$out" | grep -E "Requests/sec|Latency  |50%|90%|99%|Non-2xx|errors" || true
  # wrk runs on the same cores, so the rate they allow is set by the host's CPU and wrk's together.
  awk -v t="$((after - before))" -v hz="$TICK" -v n="$requests" \
    -v wrk="$(awk '{print $1 + $2}' "$WORK/wrk-cpu")" -v cores="$(nproc)" 'BEGIN {
      if (n > 0) {
        host = t * 1e6 / hz / n; load = wrk * 1e6 / n
        printf "    host CPU per request: %.1f us; wrk: %.1f us; both: at most %.0f req/s on %d cores\n",
          host, load, cores * 1e6 / (host + load), cores
      }
    }'
}
run baseline "/.well-known/spin/health"
run hello "/hello?op=env&name=X"
run chained "/chain?op=fetch&url=http%3A%2F%2Fprobe.spin.internal%2F%3Fop%3Denv%26name%3DX"
run self "/self?op=fetch&url=%2Fhello%3Fop%3Denv%26name%3DX"
echo "== host peak RSS: $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$PID/status") MiB (VmHWM)"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo "== load after the wrk runs: $(uptime | sed 's/.*load average/load average/')"

if [ -x "$INSTANTIATION" ]; then
  echo "== instantiation ($INSTANTIATION)"
  "$INSTANTIATION" "$PROBE" "${INSTANTIATIONS:-20000}"
else
  echo "== instantiation: no $INSTANTIATION; cargo build --release -p runtime-host --example instantiation"
fi
