#!/usr/bin/env bash
# Fair scheduling between accounts (issue 15): user A queues JOBS_A jobs, then user B one. How
# long B's job waits, in units of one job's time, against what first come, first served would
# have made it wait in the same run.
#
#   converter/benches/fairness.sh [WORK_DIR]
#
# Needs the services of scripts/services (RabbitMQ with its management API, the MongoDB-wire
# server), ffmpeg, curl and the project's Python venv (pymongo). Uses a throwaway RabbitMQ vhost
# and Mongo database and removes both. Runs `vid2mp3-converter serve --roles storage,worker` as
# shipped (prefetch 1), with the queued-jobs quota raised to fit A's backlog and one encoder
# thread (so a job is one core's work and the order is not blurred by two jobs sharing a core).
#
# Settings: JOBS_A (default 30), ROUNDS (default 3), CLIP_SECONDS (default 60: one minute of MP3
# at 64 kbit/s, 480 kB: quick to store, a real job to convert), PROFILE (release or debug;
# default release), BUILD=0 to use the binary already built.
#
# Per round it prints, from the jobs' records (created_at = stored and queued, started_at,
# updated_at = done):
#   job        the median conversion time of A's jobs (started → done): the unit below
#   B waited   B's started − B's created, in jobs
#   FIFO       A's jobs stored but not started when B's was stored: B's wait in jobs had the
#              queue served arrival order (the baseline, from the same run)
#   A ran      A's jobs that ended between B's arrival and B's end
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
target=${CARGO_TARGET_DIR:-$root/target}
jobs_a=${JOBS_A:-30}
rounds=${ROUNDS:-3}
clip_seconds=${CLIP_SECONDS:-60}
profile=${PROFILE:-release}
venv=${VID2MP3_VENV:-$HOME/.cache/vid2mp3/venv}
mgmt=${VID2MP3_RABBITMQ_MANAGEMENT:-http://127.0.0.1:15672}
mongo_url=${VID2MP3_MONGO_URL:-mongodb://127.0.0.1:27017}

if [[ $profile == release ]]; then
    [[ ${BUILD:-1} == 0 ]] || (cd "$root" && cargo build --release -p vid2mp3-converter --bin vid2mp3-converter >&2)
    bin=$target/release/vid2mp3-converter
else
    [[ ${BUILD:-1} == 0 ]] || (cd "$root" && cargo build -p vid2mp3-converter --bin vid2mp3-converter >&2)
    bin=$target/debug/vid2mp3-converter
fi

clip=$work/clip.mp3
if [[ ! -s $clip ]]; then
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "aevalsrc=exprs='0.4*sin(2*PI*440*t)+0.05*sin(2*PI*3520*t)|0.4*sin(2*PI*554*t)':s=44100:d=$clip_seconds" \
        -c:a libmp3lame -b:a 64k "$clip"
fi

id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
vhost="vid2mp3-bench-$id"
db="vid2mp3_bench_$id"
token="bench-$id"
port=$((20000 + RANDOM % 20000))
curl -fsS -u guest:guest -X PUT "$mgmt/api/vhosts/$vhost" >/dev/null
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' \
    -d '{"configure":".*","write":".*","read":".*"}' "$mgmt/api/permissions/$vhost/guest" >/dev/null

VID2MP3_STORAGE_TOKEN=$token VID2MP3_MONGO_DB=$db VID2MP3_STORAGE_LISTEN=127.0.0.1:$port \
    VID2MP3_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost" \
    VID2MP3_JOB_EVENTS_CHANNEL="vid2mp3.bench.$id" RUST_LOG=warn \
    VID2MP3_QUOTA_QUEUED_JOBS=$((jobs_a + 1)) VID2MP3_ENCODE_WORKERS=1 \
    "$bin" serve --roles storage,worker >"$work/serve.log" 2>&1 &
serve_pid=$!
cleanup() {
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    curl -fsS -u guest:guest -X DELETE "$mgmt/api/vhosts/$vhost" >/dev/null || true
    "$venv/bin/python" -c "import pymongo,sys; pymongo.MongoClient(sys.argv[1]).drop_database(sys.argv[2])" "$mongo_url" "$db" || true
    rm -f "$work/serve.log"
}
trap cleanup EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

uuid() { "$venv/bin/python" -c 'import uuid; print(uuid.uuid4())'; }

# Stores the clip as job $1 of owner $2; fails the bench on anything but 201.
put() {
    curl -fsS -o /dev/null -X PUT -H "authorization: Bearer $token" \
        -H "x-vid2mp3-owner-id: $2" -H "x-vid2mp3-owner-email: bench@example.com" \
        -H "content-type: audio/mpeg" --data-binary "@$clip" "$base/internal/v1/jobs/$1/video"
}

echo "clip: $(stat -c %s "$clip") bytes, $clip_seconds s of audio; A queues $jobs_a jobs, then B one; $profile build"
for round in $(seq "$rounds"); do
    owner_a=$(uuid)
    owner_b=$(uuid)
    for _ in $(seq "$jobs_a"); do put "$(uuid)" "$owner_a"; done
    job_b=$(uuid)
    put "$job_b" "$owner_b"
    # Every job of the round done (or failed, which ends the bench).
    "$venv/bin/python" - "$mongo_url" "$db" "$owner_a" "$owner_b" "$job_b" "$round" <<'PY'
import statistics, sys, time
from datetime import datetime
from pymongo import MongoClient

url, db, owner_a, owner_b, job_b, round_ = sys.argv[1:7]
jobs = MongoClient(url, serverSelectionTimeoutMS=5000)[db]["jobs"]
deadline = time.monotonic() + 1800
while True:
    states = [j["status"] for j in jobs.find({"owner_id": {"$in": [owner_a, owner_b]}}, {"status": 1})]
    if "failed" in states:
        sys.exit("a job failed; see the serve log")
    if states and all(s == "done" for s in states):
        break
    if time.monotonic() > deadline:
        sys.exit("the jobs did not finish within 30 minutes")
    time.sleep(0.5)

def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

def times(job):
    return at(job["created_at"]), at(job["started_at"]), at(job["updated_at"])

a = [times(j) for j in jobs.find({"owner_id": owner_a})]
b_created, b_started, b_ended = times(jobs.find_one({"_id": job_b}))
unit = statistics.median(end - start for _, start, end in a)
waiting = sum(1 for _, start, _ in a if start > b_created)
ran = sum(1 for _, _, end in a if b_created < end <= b_ended)
wait = b_started - b_created
print(f"round {round_}: job {unit:.3f} s; B waited {wait:.3f} s = {wait / unit:.2f} jobs; "
      f"FIFO baseline {waiting} jobs ({waiting * unit:.1f} s); A ran {ran} jobs between B's arrival and end")
PY
done
