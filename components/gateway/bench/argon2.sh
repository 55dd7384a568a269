#!/usr/bin/env bash
# The argon2id cost, measured through the real auth component (numbers, not a test).
#
#   components/gateway/bench/argon2.sh [seconds] [MEMORY_KIB:PASSES ...]
#
# For each parameter set (default: OWASP's equivalent argon2id settings that auth accepts, plus
# RFC 9106's 64 MiB / 3 passes) it restarts the platform's runtime-host with
# SPIN_VARIABLE_PASSWORD_HASH_MEMORY_KIB / _PASSES, signs up a fresh account (a login verifies with
# the parameters stored in the account's hash, so every set needs its own account), checks the
# stored hash carries those parameters, then logs in with wrk at concurrency 1 and 16 for SECONDS
# each (POST /api/v1/sessions: gateway → auth → MySQL + argon2id + Ed25519) and reports
# p50/p99, requests/s and runtime-host's peak RSS during the concurrency-16 run. On exit
# runtime-host is restarted without the overrides, as scripts/up left it.
#
# Needs the platform running (VID2MP3_PROFILE=release scripts/up), wrk, curl and the mariadb
# client. runtime-host is restarted with the program path and arguments it runs with now and
# the environment scripts/up gives it (lib.sh).
set -euo pipefail
SECS="${1:-10}"
shift || true
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(19456:2 47104:1 12288:3 9216:4 65536:3)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
BASE="http://127.0.0.1:${VID2MP3_HTTP_PORT:-3000}"
"$VID2MP3_ROOT/scripts/install" run bench
curl -fsS "$BASE/readyz" >/dev/null || die "the platform is not ready at $BASE: run scripts/up first"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/components/gateway/bench/lib.sh"
bench_capture_runtime_host

WORK="$(mktemp -d)"
finish() {
  log "restarting runtime-host with the manifest's argon2id defaults"
  bench_restart_runtime_host
  rm -rf "$WORK"
}
trap finish EXIT

# "50%  12.34ms" etc. from wrk --latency, as "p50 p99 req/s". --timeout: wrk's default of 2 s
# would drop the slowest logins of the costly sets from the percentiles instead of counting them.
wrk_login() { # connections, lua script
  wrk -t"$(($1 < 2 ? 1 : 2))" -c"$1" -d"${SECS}s" --timeout 30s --latency -s "$2" "$BASE/api/v1/sessions" >"$WORK/wrk.out"
  if grep -q 'Non-2xx' "$WORK/wrk.out"; then
    cat "$WORK/wrk.out" >&2
    die "some logins failed"
  fi
  if grep -q 'Socket errors' "$WORK/wrk.out"; then
    warn "wrk reports socket errors (c=$1): $(grep 'Socket errors' "$WORK/wrk.out")"
  fi
  awk '$1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} $1 == "Requests/sec:" {rps = $2}
       END {printf "%s %s %s\n", p50, p99, rps}' "$WORK/wrk.out"
}

echo "load before: $(uptime)"
printf '\n%-8s %-6s %-16s %-9s %-9s %-8s %-9s %-9s %-8s %s\n' memory passes stored \
  "c1 p50" "c1 p99" "c1 r/s" "c16 p50" "c16 p99" "c16 r/s" "c16 peak RSS"
for set in "${SETS[@]}"; do
  memory="${set%%:*}"
  passes="${set##*:}"
  bench_restart_runtime_host SPIN_VARIABLE_PASSWORD_HASH_MEMORY_KIB="$memory" SPIN_VARIABLE_PASSWORD_HASH_PASSES="$passes"
  email="argon2-bench-$memory-$passes-$(date +%s%N)@example.com"
  password="a bench password, long enough"
  sign_up_confirmed "$BASE" "$email" "$password"
  # The PHC string's parameter field (m=...,t=...,p=...), not the hash.
  stored="$(mariadb -h 127.0.0.1 -P "$VID2MP3_MYSQL_PORT" -u "$VID2MP3_MYSQL_USER" -p"$VID2MP3_MYSQL_PASSWORD" \
    -N -B vid2mp3_auth -e "SELECT password_hash FROM users WHERE email = '$email'" | cut -d'$' -f4)"
  [ "$stored" = "m=$memory,t=$passes,p=1" ] || die "the stored hash has $stored, not m=$memory,t=$passes"
  cat >"$WORK/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"$email","password":"$password"}'
LUA
  read -r c1_p50 c1_p99 c1_rps < <(wrk_login 1 "$WORK/login.lua")
  echo 5 >"/proc/$RH_PID/clear_refs" # VmHWM from here: the concurrent logins' peak
  read -r c16_p50 c16_p99 c16_rps < <(wrk_login 16 "$WORK/login.lua")
  peak="$(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$RH_PID/status")"
  printf '%-8s %-6s %-16s %-9s %-9s %-8s %-9s %-9s %-8s %s\n' "$memory" "$passes" "$stored" \
    "$c1_p50" "$c1_p99" "$c1_rps" "$c16_p50" "$c16_p99" "$c16_rps" "$peak"
done
echo "load after: $(uptime)"
