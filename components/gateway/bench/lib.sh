# shellcheck shell=bash
# For the benches in this directory: restart the platform's runtime-host (the one scripts/up
# started, by its pid file) with extra settings, and put it back as it was. Sourced, never run;
# needs scripts/lib/common.sh sourced first.

BENCH_HTTP_PORT="${VID2MP3_HTTP_PORT:-3000}"
BENCH_PIDFILE="$VID2MP3_RUN/runtime-host.pid"

# The command line runtime-host runs with now, from /proc: restarts use the same program path and
# arguments (argv[0], not /proc/PID/exe, which points at a deleted file once a build relinks it).
# When it is not running, the release build's command line as scripts/up gives it.
bench_capture_runtime_host() {
  RH_PID="$(cat "$BENCH_PIDFILE" 2>/dev/null || true)"
  if [ -n "$RH_PID" ] && kill -0 "$RH_PID" 2>/dev/null; then
    mapfile -d '' -t RH_CMD <"/proc/$RH_PID/cmdline"
  else
    warn "runtime-host is not running; starting the release build as scripts/up does"
    RH_CMD=("$CARGO_TARGET_DIR/release/runtime-host" up -f "$VID2MP3_ROOT/spin.toml" --listen "127.0.0.1:$BENCH_HTTP_PORT"
      --priority-route /healthz --priority-route /readyz)
  fi
  # What scripts/up exports for runtime-host.
  ensure_dev_secrets
  export SPIN_VARIABLE_STORAGE_URL="http://127.0.0.1:${VID2MP3_STORAGE_PORT:-8081}"
  export SPIN_VARIABLE_PUBLIC_BASE_URL="${SPIN_VARIABLE_PUBLIC_BASE_URL:-http://127.0.0.1:$BENCH_HTTP_PORT}"
}

# Stops runtime-host (SIGTERM: in-flight requests finish) and starts it again with the captured
# command line, the environment given as NAME=VALUE arguments before `--`, and the runtime-host
# options after it; waits until /readyz answers.
#   bench_restart_runtime_host [NAME=VALUE ...] [-- OPTION ...]
bench_restart_runtime_host() {
  local envs=() opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    envs+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  opts=("$@")
  if [ -n "$RH_PID" ] && kill -0 "$RH_PID" 2>/dev/null; then
    kill "$RH_PID"
    while kill -0 "$RH_PID" 2>/dev/null; do sleep 0.1; done
  fi
  env "${envs[@]}" setsid nohup "${RH_CMD[@]}" "${opts[@]}" >>"$VID2MP3_LOGS/runtime-host.log" 2>&1 </dev/null &
  RH_PID=$!
  echo "$RH_PID" >"$BENCH_PIDFILE"
  local _
  for _ in $(seq 600); do
    curl -fsS "http://127.0.0.1:$BENCH_HTTP_PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$RH_PID" 2>/dev/null || die "runtime-host exited; see $VID2MP3_LOGS/runtime-host.log"
    sleep 0.1
  done
  die "runtime-host did not become ready within 60 s; see $VID2MP3_LOGS/runtime-host.log"
}
