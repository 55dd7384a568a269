#!/usr/bin/env bash
# The public API under load (numbers, not a test: nothing here passes or fails on speed).
#
#   components/gateway/bench/api.sh [seconds] [connections] [upload_mib]
#
# Needs the platform running (scripts/up; VID2MP3_PROFILE=release for representative numbers),
# wrk and curl. Prints, all in one run:
#   baseline  GET /healthz                 the gateway alone: no token, no backing service
#   login     POST /api/v1/sessions        one account, CONNS at once (argon2id dominates)
#   status    GET /api/v1/jobs/{id}        token check + MySQL + the storage API + Redis
#   upload    UPLOAD_MIB through the gateway, then the same bytes PUT straight to the storage
#             API (the baseline), with runtime-host's peak RSS (VmHWM) before and after
set -euo pipefail
SECS="${1:-10}"
CONNS="${2:-16}"
UPLOAD_MIB="${3:-1024}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source=../../../scripts/lib/common.sh disable=SC1091
source "$ROOT/scripts/lib/common.sh"
BASE="http://127.0.0.1:${VID2MP3_HTTP_PORT:-3000}"
STORAGE="http://127.0.0.1:${VID2MP3_STORAGE_PORT:-8081}"
command -v wrk >/dev/null || apt_install wrk
curl -fsS "$BASE/readyz" >/dev/null || die "the platform is not ready at $BASE: run scripts/up first"
RH_PID="$(cat "$VID2MP3_RUN/runtime-host.pid")"
STORAGE_TOKEN="$(cat "$VID2MP3_DATA/secrets/storage-token")"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
EMAIL="bench-$(date +%s%N)@example.com"
PASSWORD="a bench password, long enough"
curl -fsS -X POST "$BASE/api/v1/users" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
TOKEN="$(curl -fsS -X POST "$BASE/login" -u "$EMAIL:$PASSWORD")"

rss() { awk '/VmHWM/ {print $2 " kB peak"} /VmRSS/ {print $2 " kB now"}' "/proc/$RH_PID/status" | paste -sd' '; }
run_wrk() { # name, wrk args...
  local name="$1"
  shift
  printf '\n== %s\n' "$name"
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$@" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
}

echo "runtime-host pid $RH_PID, $(rss); $CONNS connections, ${SECS}s per run"
run_wrk "baseline: GET /healthz" "$BASE/healthz"

cat >"$WORK/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"$EMAIL","password":"$PASSWORD"}'
LUA
run_wrk "login: POST /api/v1/sessions" -s "$WORK/login.lua" "$BASE/api/v1/sessions"

# A job to ask about: a 2-s clip.
ffmpeg -nostdin -v error -f lavfi -i "aevalsrc=exprs='0.4*sin(2*PI*440*t)':s=44100:d=2" -c:a aac "$WORK/clip.m4a"
JOB="$(curl -fsS -X POST "$BASE/api/v1/jobs?name=clip.m4a" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: audio/mp4' --data-binary @"$WORK/clip.m4a" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
run_wrk "status: GET /api/v1/jobs/$JOB" -H "authorization: Bearer $TOKEN" "$BASE/api/v1/jobs/$JOB"
echo "runtime-host: $(rss)"

wait_done() {
  for _ in $(seq 600); do
    curl -fsS "$BASE/api/v1/jobs/$1" -H "authorization: Bearer $TOKEN" | grep -qE '"status":"(done|failed)"' && return 0
    sleep 1
  done
}

# A WAV of UPLOAD_MIB: real media, so the gateway's checks pass and storage keeps it.
SECONDS_OF_AUDIO=$((UPLOAD_MIB * 1024 * 1024 / 176400))
ffmpeg -nostdin -v error -f lavfi -i "anoisesrc=d=$SECONDS_OF_AUDIO:r=44100:a=0.1" -ac 2 -c:a pcm_s16le "$WORK/big.wav"
SIZE="$(stat -c %s "$WORK/big.wav")"
printf '\n== upload: %s bytes\n' "$SIZE"
BEFORE="$(rss)"
read -r CODE TIME < <(curl -sS -o "$WORK/up.json" -w '%{http_code} %{time_total}\n' -X POST \
  "$BASE/api/v1/jobs?name=big.wav" -H "authorization: Bearer $TOKEN" -H 'content-type: audio/wav' -T "$WORK/big.wav")
BIG_JOB="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$WORK/up.json")"
echo "through the gateway:  HTTP $CODE in ${TIME}s = $(awk -v s="$SIZE" -v t="$TIME" 'BEGIN {printf "%.0f MB/s", s/t/1e6}')"
echo "runtime-host before: $BEFORE; after: $(rss)"
wait_done "$BIG_JOB"
curl -fsS -X DELETE "$BASE/api/v1/jobs/$BIG_JOB" -H "authorization: Bearer $TOKEN" >/dev/null || true

DIRECT_JOB="$(cat /proc/sys/kernel/random/uuid)"
read -r CODE TIME < <(curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -X PUT \
  "$STORAGE/internal/v1/jobs/$DIRECT_JOB/video" -H "authorization: Bearer $STORAGE_TOKEN" \
  -H 'content-type: audio/wav' -H "x-vid2mp3-owner-id: $(cat /proc/sys/kernel/random/uuid)" \
  -H "x-vid2mp3-owner-email: $EMAIL" -H 'x-vid2mp3-original-name: big.wav' -T "$WORK/big.wav")
echo "straight to storage:  HTTP $CODE in ${TIME}s = $(awk -v s="$SIZE" -v t="$TIME" 'BEGIN {printf "%.0f MB/s", s/t/1e6}')"
sleep 2
curl -fsS -X DELETE "$STORAGE/internal/v1/jobs/$DIRECT_JOB" -H "authorization: Bearer $STORAGE_TOKEN" >/dev/null || true
