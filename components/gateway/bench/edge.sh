#!/usr/bin/env bash
# The public edge under big and hostile clients (issue 15; numbers, not a test: nothing here
# passes or fails on speed).
#
#   components/gateway/bench/edge.sh [upload_mib] [slow_clients] [samples]
#
# Needs the platform running (VID2MP3_PROFILE=release scripts/up for representative numbers),
# curl, jq, ffmpeg and python3. Prints, in one run against that platform:
#   upload  a video of UPLOAD_MIB (default 2048: uncompressed frames and a few minutes of sound,
#           cheap to make and convert) sent three ways, UPLOAD_RUNS times each (default 2) in
#           rotating order (ABCD, DCBA, ...): straight to the storage API (the baseline), as the raw
#           body of POST /api/v1/jobs, with the course's `curl -F file=@...` to POST /upload, and
#           as a resumable upload (tus: created first, untimed, then one PATCH of the whole file).
#           For each: time, MB/s, and the peak RSS (VmHWM, reset before each upload) of
#           runtime-host and of the converter during the upload. Then each one's highest peaks,
#           and the form's and the resumable upload's throughput as shares of the raw route's.
#   slow    a normal user's log-in + job status, one pair after the other, SAMPLES times (default
#           40) alone, then SAMPLES times while SLOW_CLIENTS (default 300) slow clients
#           (slow_clients.py: a third silent, a third sending headers a byte a second, a third a
#           16 KB sign-up body a byte a second; from 10 loopback addresses other than the user's)
#           hold connections, reconnecting whenever they are cut off; SLOW_ROUNDS (default 2)
#           times in that order. Prints p50/p99 of each block (a pair refused with 503 is
#           counted, not timed), then of all unloaded and all loaded pairs, their ratio, and what
#           the slow clients held and got.
# PHASES (default "upload slow") picks some of them. STORE_RESTART, when set, is a command run
# before each upload (e.g. one that restarts a private MongoDB-wire server, which slows with every
# GiB it takes in); never point it at the shared services.
set -euo pipefail
UPLOAD_MIB="${1:-2048}"
SLOW_CLIENTS="${2:-300}"
SAMPLES="${3:-40}"
UPLOAD_RUNS="${UPLOAD_RUNS:-2}"
SLOW_ROUNDS="${SLOW_ROUNDS:-2}"
PHASES="${PHASES:-upload slow}"
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
CONVERTER_PID="$(cat "$VID2MP3_RUN/converter.pid")"
kill -0 "$CONVERTER_PID" 2>/dev/null || die "the converter (pid file $VID2MP3_RUN/converter.pid) is not running"
STORAGE_TOKEN="$(cat "$VID2MP3_DATA/secrets/storage-token")"
SLOW="$ROOT/components/gateway/bench/slow_clients.py"

WORK="$(mktemp -d)"
ATTACK=
trap 'if [ -n "$ATTACK" ]; then kill "$ATTACK" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT
want() { [[ " $PHASES " == *" $1 "* ]]; }
EMAIL="bench-$(date +%s%N)@example.com"
PASSWORD="a bench password, long enough"
sign_up_confirmed "$BASE" "$EMAIL" "$PASSWORD"
TOKEN="$(curl -fsS -X POST "$BASE/login" -u "$EMAIL:$PASSWORD")"

mib() { awk -v b="$1" 'BEGIN {printf "%.0f MiB", b/1048576}'; }
kb_of() { awk -v f="$2" '$1 == f {print $2 * 1024}' "/proc/$1/status"; }
# Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
reset_peaks() { echo 5 >"/proc/$RH_PID/clear_refs"; echo 5 >"/proc/$CONVERTER_PID/clear_refs"; }
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
echo "runtime-host pid $RH_PID ($(readlink "/proc/$RH_PID/exe")), converter pid $CONVERTER_PID; load: $(uptime)"

if want upload; then
  # Uncompressed 640x480 frames (460,800 bytes, 25 a second) with an Opus tone: the size is in
  # the video, and the converter decodes only the sound.
  # 16 MiB below UPLOAD_MIB for the sound and Matroska's framing, so that the default 2048 stays
  # under the gateway's 2 GiB limit (the whole frames alone came to 2,150,240,699 bytes, a 413).
  frames=$(((UPLOAD_MIB * 1048576 - 16777216) / 460800))
  secs="$(awk -v f="$frames" 'BEGIN {printf "%.2f", f / 25}')"
  ffmpeg -nostdin -v error -f lavfi -i "testsrc=size=640x480:rate=25:d=$secs" \
    -f lavfi -i "aevalsrc=exprs='0.4*sin(2*PI*440*t)':s=48000:d=$secs" \
    -c:v rawvideo -pix_fmt yuv420p -c:a libopus -b:a 64k "$WORK/big.mkv"
  SIZE="$(stat -c %s "$WORK/big.mkv")"
  declare -A SECS_OF=() HOST_PEAK=() CONV_PEAK=()
  rate() { awk -v s="$SIZE" -v t="$1" 'BEGIN {printf "%.1f MB/s", s/t/1e6}'; }
  fresh_store() {
    [ -n "${STORE_RESTART:-}" ] || return 0
    bash -c "$STORE_RESTART" >/dev/null 2>&1 || die "STORE_RESTART failed: $STORE_RESTART"
    for _ in $(seq 150); do
      curl -fsS "$STORAGE/readyz" >/dev/null 2>&1 && return 0
      sleep 0.2
    done
    die "the storage API is not ready after STORE_RESTART"
  }
  # One upload: how, the curl arguments; records its time and both peaks, then waits for its
  # conversion (so the next upload has the cores) and deletes it.
  upload() {
    local how="$1" code time job host_peak conv_peak
    shift
    fresh_store
    reset_peaks
    # `Expect:` off on all three: they are timed the same way.
    read -r code time < <(curl -sS -o "$WORK/up.json" -w '%{http_code} %{time_total}\n' -H 'Expect:' "$@")
    host_peak="$(kb_of "$RH_PID" VmHWM:)"
    conv_peak="$(kb_of "$CONVERTER_PID" VmHWM:)"
    printf '%-7s HTTP %s in %6.1fs = %s; peak RSS: runtime-host %s, converter %s\n' "$how" "$code" "$time" \
      "$(rate "$time")" "$(mib "$host_peak")" "$(mib "$conv_peak")"
    case "$how" in
      direct) [ "$code" = 201 ] || die "the storage API answered $code: $(cat "$WORK/up.json")"; job="$DIRECT_JOB" ;;
      raw) [ "$code" = 202 ] || die "POST /api/v1/jobs answered $code: $(cat "$WORK/up.json")"; job="$(jq -r .id "$WORK/up.json")" ;;
      form) [ "$code" = 200 ] || die "POST /upload answered $code: $(cat "$WORK/up.json")"; job="$(jq -r .id "$WORK/up.json")" ;;
      tus) [ "$code" = 204 ] || die "PATCH $TUS_UPLOAD answered $code: $(cat "$WORK/up.json")"; job="${TUS_UPLOAD##*/}" ;;
    esac
    SECS_OF[$how]+="$time "
    HOST_PEAK[$how]+="$host_peak "
    CONV_PEAK[$how]+="$conv_peak "
    wait_settled "$job"
    if [ "$how" = direct ]; then
      curl -fsS -X DELETE "$STORAGE/internal/v1/jobs/$job" -H "authorization: Bearer $STORAGE_TOKEN" >/dev/null
    else
      curl -fsS -X DELETE "$BASE/api/v1/jobs/$job" -H "authorization: Bearer $TOKEN" >/dev/null
    fi
  }
  direct() {
    DIRECT_JOB="$(cat /proc/sys/kernel/random/uuid)"
    upload direct -X PUT "$STORAGE/internal/v1/jobs/$DIRECT_JOB/video" -H "authorization: Bearer $STORAGE_TOKEN" \
      -H 'content-type: video/x-matroska' -H 'x-vid2mp3-profile: fast' \
      -H "x-vid2mp3-owner-id: $(cat /proc/sys/kernel/random/uuid)" -H "x-vid2mp3-owner-email: $EMAIL" \
      -H 'x-vid2mp3-original-name: big.mkv' -T "$WORK/big.mkv"
  }
  raw() {
    upload raw -X POST "$BASE/api/v1/jobs?name=big.mkv&profile=fast" -H "authorization: Bearer $TOKEN" \
      -H 'content-type: video/x-matroska' -T "$WORK/big.mkv"
  }
  # The course's command (curl -F), to the course's route.
  form() {
    upload form -X POST -F "file=@$WORK/big.mkv" -H "Authorization: Bearer $TOKEN" "$BASE/upload"
  }
  # A resumable upload: begun (not timed: one small request), then the whole file as one piece.
  tus() {
    TUS_UPLOAD="$(curl -fsS -D - -o /dev/null -X POST "$BASE/api/v1/uploads" -H "authorization: Bearer $TOKEN" \
      -H 'tus-resumable: 1.0.0' -H "upload-length: $SIZE" \
      -H "upload-metadata: filename $(printf big.mkv | base64),profile $(printf fast | base64)" |
      tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')"
    [ -n "$TUS_UPLOAD" ] || die "POST /api/v1/uploads gave no Location"
    upload tus -X PATCH "$BASE$TUS_UPLOAD" -H "authorization: Bearer $TOKEN" -H 'tus-resumable: 1.0.0' \
      -H 'content-type: application/offset+octet-stream' -H 'upload-offset: 0' -T "$WORK/big.mkv"
  }
  printf '\n== upload: %s bytes, %s runs each, in rotating order\n' "$SIZE" "$UPLOAD_RUNS"
  for run in $(seq "$UPLOAD_RUNS"); do
    if ((run % 2)); then direct; raw; form; tus; else tus; form; raw; direct; fi
  done
  for how in direct raw form tus; do
    # shellcheck disable=SC2086 # word splitting wanted: the recorded values
    printf '%-7s mean %s; highest peaks: runtime-host %s, converter %s\n' "$how" \
      "$(rate "$(echo ${SECS_OF[$how]} | tr ' ' '\n' | awk '{s += $1} END {print s / NR}')")" \
      "$(mib "$(echo ${HOST_PEAK[$how]} | tr ' ' '\n' | sort -n | tail -1)")" \
      "$(mib "$(echo ${CONV_PEAK[$how]} | tr ' ' '\n' | sort -n | tail -1)")"
  done
  # shellcheck disable=SC2086
  awk -v raw="$(echo ${SECS_OF[raw]} | tr ' ' '\n' | awk '{s += $1} END {print s / NR}')" \
    -v form="$(echo ${SECS_OF[form]} | tr ' ' '\n' | awk '{s += $1} END {print s / NR}')" \
    'BEGIN {printf "form throughput / raw throughput: %.1f %%\n", raw / form * 100}'
  # shellcheck disable=SC2086
  awk -v raw="$(echo ${SECS_OF[raw]} | tr ' ' '\n' | awk '{s += $1} END {print s / NR}')" \
    -v tus="$(echo ${SECS_OF[tus]} | tr ' ' '\n' | awk '{s += $1} END {print s / NR}')" \
    'BEGIN {printf "resumable (one piece) throughput / raw throughput: %.1f %%\n", raw / tus * 100}'
fi

if want slow; then
  ffmpeg -nostdin -v error -f lavfi -i "aevalsrc=exprs='0.4*sin(2*PI*440*t)':s=44100:d=2" -c:a aac "$WORK/clip.m4a"
  JOB="$(curl -fsS -X POST "$BASE/api/v1/jobs?name=clip.m4a" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: audio/mp4' --data-binary @"$WORK/clip.m4a" | jq -r .id)"
  wait_settled "$JOB"
  # Times on stdout; how many pairs were refused (503) on stderr, shown with the block.
  measure() {
    python3 "$SLOW" measure "$BASE" --email "$EMAIL" --password "$PASSWORD" --job "$JOB" --samples "$SAMPLES" \
      2>"$WORK/refused"
  }
  percentile() { # fraction, file of ms values
    sort -n "$2" | awk -v q="$1" '{v[NR] = $1} END {print v[int((NR - 1) * q) + 1]}'
  }
  percentiles() { # label, file
    printf '%-34s n=%d  p50 %7.1f ms  p99 %7.1f ms\n' "$1" "$(wc -l <"$2")" "$(percentile 0.50 "$2")" "$(percentile 0.99 "$2")"
  }
  printf '\n== slow: log-in + status pairs, %s per block; %s slow clients in the loaded blocks\n' "$SAMPLES" "$SLOW_CLIENTS"
  : >"$WORK/unloaded"
  : >"$WORK/loaded"
  for round in $(seq "$SLOW_ROUNDS"); do
    measure >"$WORK/block"
    percentiles "round $round, alone" "$WORK/block"
    sed 's/^/    /' "$WORK/refused"
    cat "$WORK/block" >>"$WORK/unloaded"
    # Until the block is done (SIGTERM), at most 10 minutes.
    python3 "$SLOW" attack "127.0.0.1:${VID2MP3_HTTP_PORT:-3000}" --clients "$SLOW_CLIENTS" --seconds 600 \
      >"$WORK/attack.out" 2>&1 &
    ATTACK=$!
    # A few seconds for every slow client to connect and start holding its request.
    sleep 5
    measure >"$WORK/block"
    percentiles "round $round, with slow clients" "$WORK/block"
    sed 's/^/    /' "$WORK/refused"
    cat "$WORK/block" >>"$WORK/loaded"
    kill -TERM "$ATTACK" 2>/dev/null || true
    wait "$ATTACK" 2>/dev/null || true
    ATTACK=
    sed 's/^/    /' "$WORK/attack.out"
    # Their connections are gone, so their instances end; a moment for that.
    sleep 3
  done
  percentiles "all alone" "$WORK/unloaded"
  percentiles "all with slow clients" "$WORK/loaded"
  awk -v alone="$(percentile 0.99 "$WORK/unloaded")" -v loaded="$(percentile 0.99 "$WORK/loaded")" \
    'BEGIN {printf "p99 with slow clients / p99 alone: %.2fx\n", loaded / alone}'
fi
echo "load: $(uptime)"
