#!/usr/bin/env bash
# The public API under load (numbers, not a test: nothing here passes or fails on speed).
#
#   components/gateway/bench/api.sh [seconds] [connections] [upload_mib]
#
# Needs the platform running (VID2MP3_PROFILE=release scripts/up for representative numbers),
# wrk, curl, jq and ffmpeg. Prints, all in one run against that platform:
#   baseline  GET /healthz                 the gateway alone: no token, no backing service
#   login     POST /api/v1/sessions        one account, CONNS at once (argon2id dominates)
#   status    GET /api/v1/jobs/{id}        token check + MySQL + the storage API (a done job),
#             with its same-run baseline: GET /internal/v1/jobs/{id} straight to the storage API,
#             and its ceiling: an unknown id (token check + ownership query, no storage)
#   upload    UPLOAD_MIB straight to the storage API (the baseline) and through the gateway,
#             in ABBA order, UPLOAD_RUNS times each (default 2); their conversions use the `fast`
#             profile only to get the cores back sooner
# PHASES (default "baseline login status upload") picks some of them.
# and runtime-host's peak RSS (VmHWM) for each phase: the peak is reset before each phase
# (/proc/PID/clear_refs), so the upload's figure is not the login phase's argon2 memory.
# The argon2id cost sweep is components/gateway/bench/argon2.sh.
set -euo pipefail
SECS="${1:-10}"
CONNS="${2:-16}"
UPLOAD_MIB="${3:-1024}"
UPLOAD_RUNS="${UPLOAD_RUNS:-2}"
PHASES="${PHASES:-baseline login status upload}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
BASE="http://127.0.0.1:${VID2MP3_HTTP_PORT:-3000}"
STORAGE="http://127.0.0.1:${VID2MP3_STORAGE_PORT:-8081}"
"$VID2MP3_ROOT/scripts/install" run bench
curl -fsS "$BASE/readyz" >/dev/null || die "the platform is not ready at $BASE: run scripts/up first"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/components/gateway/bench/lib.sh"
bench_capture_runtime_host
STORAGE_TOKEN="$(cat "$VID2MP3_DATA/secrets/storage-token")"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
want() { [[ " $PHASES " == *" $1 "* ]]; }
EMAIL="bench-$(date +%s%N)@example.com"
PASSWORD="a bench password, long enough"
sign_up_confirmed "$BASE" "$EMAIL" "$PASSWORD"
TOKEN="$(curl -fsS -X POST "$BASE/login" -u "$EMAIL:$PASSWORD")"

mib() { awk -v kb="$1" 'BEGIN {printf "%.0f MiB", kb/1024}'; }
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$RH_PID/status"; }
now_kb() { awk '/VmRSS/ {print $2}' "/proc/$RH_PID/status"; }
# Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0): each phase's own peak.
reset_peak() { echo 5 >"/proc/$RH_PID/clear_refs"; }
phase_peak() { echo "runtime-host RSS: peak $(mib "$(peak_kb)") in this phase, $(mib "$(now_kb)") now"; }
# --timeout: wrk's default of 2 s would drop slow logins from the percentiles instead of counting them.
run_wrk() { # name, wrk args...
  local name="$1"
  shift
  printf '\n== %s\n' "$name"
  reset_peak
  wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 30s --latency "$@" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
  phase_peak
}

echo "runtime-host pid $RH_PID ($(readlink "/proc/$RH_PID/exe")), RSS $(mib "$(now_kb)")"
echo "$CONNS connections, ${SECS}s per run; load: $(uptime)"
want baseline && run_wrk "baseline: GET /healthz" "$BASE/healthz"

cat >"$WORK/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"$EMAIL","password":"$PASSWORD"}'
LUA
want login && run_wrk "login: POST /api/v1/sessions" -s "$WORK/login.lua" "$BASE/api/v1/sessions"

# A job's processing state, through the storage API (what the gateway itself asks).
storage_status() {
  curl -fsS "$STORAGE/internal/v1/jobs/$1" -H "authorization: Bearer $STORAGE_TOKEN" | jq -r .status
}
wait_settled() {
  local status
  for _ in $(seq 1200); do
    status="$(storage_status "$1")"
    case "$status" in done | failed) return 0 ;; esac
    sleep 0.5
  done
  die "job $1 did not finish within 10 minutes"
}

# A job to ask about: a 2-s clip, converted before the run so every request sees the same state.
if want status; then
  ffmpeg -nostdin -v error -f lavfi -i "aevalsrc=exprs='0.4*sin(2*PI*440*t)':s=44100:d=2" -c:a aac "$WORK/clip.m4a"
  JOB="$(curl -fsS -X POST "$BASE/api/v1/jobs?name=clip.m4a" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: audio/mp4' --data-binary @"$WORK/clip.m4a" | jq -r .id)"
  wait_settled "$JOB"
  run_wrk "status: GET /api/v1/jobs/$JOB" -H "authorization: Bearer $TOKEN" "$BASE/api/v1/jobs/$JOB"
  run_wrk "status baseline: GET /internal/v1/jobs/$JOB straight to the storage API" \
    -H "authorization: Bearer $STORAGE_TOKEN" "$STORAGE/internal/v1/jobs/$JOB"
  # The same route for an id nobody owns: the token check and the ownership query, then 404
  # without asking storage. What the gateway's own work allows, however fast storage were.
  run_wrk "status ceiling: GET /api/v1/jobs/<unknown id> (token + ownership query, 404)" \
    -H "authorization: Bearer $TOKEN" "$BASE/api/v1/jobs/$(cat /proc/sys/kernel/random/uuid)"
fi
want upload || exit 0

# A WAV of UPLOAD_MIB: real media, so the gateway's checks pass and storage keeps it.
SECONDS_OF_AUDIO=$((UPLOAD_MIB * 1024 * 1024 / 176400))
ffmpeg -nostdin -v error -f lavfi -i "anoisesrc=d=$SECONDS_OF_AUDIO:r=44100:a=0.1" -ac 2 -c:a pcm_s16le "$WORK/big.wav"
SIZE="$(stat -c %s "$WORK/big.wav")"
rate() { awk -v s="$SIZE" -v t="$1" 'BEGIN {printf "%.1f MB/s", s/t/1e6}'; }

# SecantusDB's GridFS writes slow down with every GiB written (52 → 30 → 15 → 11 MB/s over four
# 1 GiB uploads, deleted after each), and a restart brings part of the speed back. RESTART_STORE=1
# restarts it (data kept) before every upload, so each starts from the same state.
fresh_store() {
  [ "${RESTART_STORE:-0}" = 1 ] || return 0
  "$ROOT/scripts/services" stop mongo >/dev/null 2>&1
  "$ROOT/scripts/services" start mongo >/dev/null 2>&1 || die "the MongoDB-wire server did not start again"
  for _ in $(seq 100); do
    curl -fsS "$STORAGE/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "the storage API is not ready after restarting the MongoDB-wire server"
}

# `Expect:` off: curl would otherwise wait for a 100-continue before sending a large body, and
# the two paths must be timed the same way. Each upload's conversion is waited for, so the next
# upload does not share the cores with a transcode.
direct_upload() {
  local job code time
  fresh_store
  job="$(cat /proc/sys/kernel/random/uuid)"
  read -r code time < <(curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -X PUT \
    "$STORAGE/internal/v1/jobs/$job/video" -H "authorization: Bearer $STORAGE_TOKEN" -H 'Expect:' \
    -H 'content-type: audio/wav' -H 'x-vid2mp3-profile: fast' -H "x-vid2mp3-owner-id: $(cat /proc/sys/kernel/random/uuid)" \
    -H "x-vid2mp3-owner-email: $EMAIL" -H 'x-vid2mp3-original-name: big.wav' -T "$WORK/big.wav")
  echo "straight to storage:  HTTP $code in ${time}s = $(rate "$time")"
  [ "$code" = 201 ] || die "the storage API answered $code"
  wait_settled "$job"
  curl -fsS -X DELETE "$STORAGE/internal/v1/jobs/$job" -H "authorization: Bearer $STORAGE_TOKEN" >/dev/null
}
gateway_upload() {
  local job code time
  fresh_store
  reset_peak
  read -r code time < <(curl -sS -o "$WORK/up.json" -w '%{http_code} %{time_total}\n' -X POST \
    "$BASE/api/v1/jobs?name=big.wav&profile=fast" -H "authorization: Bearer $TOKEN" -H 'Expect:' \
    -H 'content-type: audio/wav' -T "$WORK/big.wav")
  echo "through the gateway:  HTTP $code in ${time}s = $(rate "$time"); $(phase_peak)"
  [ "$code" = 202 ] || die "the gateway answered $code: $(cat "$WORK/up.json")"
  job="$(jq -r .id "$WORK/up.json")"
  wait_settled "$job"
  curl -fsS -X DELETE "$BASE/api/v1/jobs/$job" -H "authorization: Bearer $TOKEN" >/dev/null
}

# ABBA (direct, gateway, gateway, direct, ...): the store's drift (fresh_store) costs both alike.
printf '\n== upload: %s bytes, %s runs each, in ABBA order\n' "$SIZE" "$UPLOAD_RUNS"
for run in $(seq "$UPLOAD_RUNS"); do
  if ((run % 2)); then
    direct_upload
    gateway_upload
  else
    gateway_upload
    direct_upload
  fi
done
echo "load: $(uptime)"
