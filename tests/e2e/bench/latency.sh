#!/usr/bin/env bash
# Upload → email latency, split by stage (numbers, not a test: nothing passes or fails on speed).
#
#   tests/e2e/bench/latency.sh [runs] [profile]
#
# Needs the platform running (VID2MP3_PROFILE=release scripts/up), curl, jq, ffmpeg and the
# project's Python venv (pymongo, installed by scripts/services). Makes a 60-s test video
# (640x360 H.264 + AAC-LC 128k 44.1 kHz stereo), signs up one user, then RUNS times (default
# 10), one after the other: uploads it through the gateway (POST /api/v1/jobs?profile=PROFILE,
# default standard = VBR V2) and waits until Mailpit has the job's email. Each stage is
# measured between timestamps the system records, not guessed from polling:
#   upload        client start → the gateway's 202 (curl's time_total)
#   queue wait    the converter's job record created (video stored, `video` message about to be
#                 published) → the worker starts the attempt (`started_at`), both in MongoDB
#   conversion    `started_at` → the record marked done (`updated_at` of the done record)
#   notification  done → Mailpit's `Created` time of the email (relay → Redis → notifier → mail API)
#   total         client start → Mailpit's `Created`
# The converter's record is created before the 202 reaches the client (the publish confirm and
# the gateway's answer come after it), so the stages overlap by that much and their sum is a
# little over the total. While a job runs the script only polls Mailpit, from one Python process
# every 100 ms, so its own load is small; it reads the job's timestamps once, after the email is in.
# Prints each run and p50/p95 (linear interpolation between ranks) per stage.
set -euo pipefail
RUNS="${1:-10}"
PROFILE="${2:-standard}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/../../.. source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
BASE="http://127.0.0.1:${VID2MP3_HTTP_PORT:-3000}"
MAILPIT="$VID2MP3_MAILPIT_URL"
MONGO_DB="${VID2MP3_MONGO_DB:-vid2mp3}"
PYTHON="$VID2MP3_VENV/bin/python3"
"$VID2MP3_ROOT/scripts/install" run bench
"$PYTHON" -c 'import pymongo' 2>/dev/null || die "no pymongo in $VID2MP3_VENV: run scripts/services install"
curl -fsS "$BASE/readyz" >/dev/null || die "the platform is not ready at $BASE: run scripts/up first"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Two different tones per channel so the encoder has real stereo to code; the video is a
# moving test pattern. faststart: the moov box first, as web-ready MP4s have it.
ffmpeg -nostdin -v error \
  -f lavfi -i "testsrc2=size=640x360:rate=25:duration=60" \
  -f lavfi -i "aevalsrc=exprs='0.3*sin(2*PI*440*t)+0.05*sin(2*PI*3520*t)|0.3*sin(2*PI*554*t)+0.05*sin(2*PI*2217*t)':s=44100:d=60" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 128k -ar 44100 -ac 2 \
  -movflags +faststart -shortest "$WORK/video.mp4"
VIDEO_BYTES="$(stat -c %s "$WORK/video.mp4")"
ffprobe -v error -show_entries stream=codec_name,profile,width,height,sample_rate,channels,bit_rate \
  -show_entries format=duration -of compact "$WORK/video.mp4" >&2

EMAIL="latency-$(date +%s%N)@example.com"
PASSWORD="a bench password, long enough"
sign_up_confirmed "$BASE" "$EMAIL" "$PASSWORD"
TOKEN="$(curl -fsS -X POST "$BASE/login" -u "$EMAIL:$PASSWORD")"

# The converter's record of a job: created, started, done (its updated_at once done), status.
mongo_times() {
  "$PYTHON" - "$VID2MP3_MONGO_URL" "$MONGO_DB" "$1" <<'PY'
import sys
from pymongo import MongoClient
url, db, job = sys.argv[1:4]
r = MongoClient(url, serverSelectionTimeoutMS=5000)[db]["jobs"].find_one({"_id": job})
if r is None or r.get("status") != "done" or not r.get("started_at"):
    sys.exit(f"job {job}: no done record with started_at: {r and r.get('status')}")
print(r["created_at"], r["started_at"], r["updated_at"], r["attempts"])
PY
}

# Mailpit's `Created` time of the email to $1 whose subject names $2, polled every 100 ms for up
# to 60 s. The stages come from recorded timestamps, so the polling rate does not change them.
wait_for_email() {
  "$PYTHON" - "$MAILPIT" "$1" "$2" <<'PY'
import json, sys, time, urllib.parse, urllib.request
base, to, name = sys.argv[1:4]
url = f"{base}/api/v1/search?" + urllib.parse.urlencode({"query": f"to:{to}"})
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    with urllib.request.urlopen(url, timeout=5) as response:
        messages = json.load(response).get("messages") or []
    for message in messages:
        if f'"{name}"' in message.get("Subject", ""):
            print(message["Created"])
            sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
PY
}

# Seconds since the epoch (fractional) of an RFC 3339 time.
epoch() { date -u -d "$1" +%s.%N; }

echo "video: $VIDEO_BYTES bytes; profile $PROFILE; $RUNS runs; load before: $(uptime)" >&2
printf 'run\tupload_s\tqueue_s\tconvert_s\tnotify_s\ttotal_s\tattempts\n' >"$WORK/runs.tsv"
for run in $(seq "$RUNS"); do
  name="latency-$run.mp4"
  start="$(date +%s.%N)"
  read -r code upload_s < <(curl -sS -o "$WORK/up.json" -w '%{http_code} %{time_total}\n' -X POST \
    "$BASE/api/v1/jobs?name=$name&profile=$PROFILE" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: video/mp4' --data-binary @"$WORK/video.mp4")
  [ "$code" = 202 ] || die "run $run: the gateway answered $code: $(cat "$WORK/up.json")"
  job="$(jq -r .id "$WORK/up.json")"
  # The email's subject names the file, so each run's email is told apart from the others. One
  # process polls Mailpit for the whole wait: the earlier curl | jq every 50 ms cost 34 ms of
  # CPU per poll (100 polls: 3.44 s user + sys), nearly half a core taken from the conversion
  # being measured.
  created="$(wait_for_email "$EMAIL" "$name")" || die "run $run: no email for job $job within 60 s"
  read -r stored_at started_at done_at attempts < <(mongo_times "$job")
  awk -v run="$run" -v up="$upload_s" -v start="$start" -v stored="$(epoch "$stored_at")" \
    -v started="$(epoch "$started_at")" -v done="$(epoch "$done_at")" -v mail="$(epoch "$created")" \
    -v attempts="$attempts" \
    'BEGIN {printf "%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\n", run, up, started - stored, done - started, mail - done, mail - start, attempts}' |
    tee -a "$WORK/runs.tsv"
done

python3 - "$WORK/runs.tsv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def pct(values, p):
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
print(f"\n{'stage':<14}{'p50 s':>8}{'p95 s':>8}{'min s':>8}{'max s':>8}")
for key, label in [("upload_s", "upload"), ("queue_s", "queue wait"), ("convert_s", "conversion"),
                   ("notify_s", "notification"), ("total_s", "total")]:
    v = [float(r[key]) for r in rows]
    print(f"{label:<14}{pct(v, 50):>8.3f}{pct(v, 95):>8.3f}{min(v):>8.3f}{max(v):>8.3f}")
PY
echo "load after: $(uptime)" >&2
