#!/usr/bin/env bash
# The full GridFS → GridFS job against the local-file transcode, same input, same binary, same
# run (issue 5: "the full GridFS → GridFS job's wall time ≤ 1.25× the local-file transcode").
#
#   converter/benches/gridfs.sh [WORK_DIR]
#
# Needs the services of scripts/services (RabbitMQ with its management API, Redis, the
# MongoDB-wire server), ffmpeg, curl and the project's Python venv (pymongo, to drop the bench
# database). Uses a throwaway RabbitMQ vhost and Mongo database and removes both.
# Prints, per run: the local `convert` wall time, and the worker's job wall time (from
# `vid2mp3_converter_job_duration_seconds_sum`: GridFS read → transcode → GridFS write, state
# and event included; the upload and the queue wait excluded).
# Then the deep-queue throughput: QUEUE_JOBS (default 20) one-minute clips stored back to back, so
# the queue is deep before the worker can drain it, and the time until the last one is done, as
# jobs per minute (and minutes of audio converted per minute). The bench's one owner may have
# QUEUE_JOBS + 1 jobs in flight (the default quota is 20).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
target=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}
queue_jobs=${QUEUE_JOBS:-20}
venv=${VID2MP3_VENV:-$HOME/.cache/vid2mp3/venv}
mgmt=${VID2MP3_RABBITMQ_MANAGEMENT:-http://127.0.0.1:15672}

(cd "$root" && cargo build --release -p vid2mp3-converter --bin vid2mp3-converter >&2)
bin=$target/release/vid2mp3-converter

input=$work/ten-minutes.mp4
if [[ ! -s $input ]]; then
    # The same input as benches/transcode.sh.
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc=size=320x240:rate=10:d=600" \
        -f lavfi -i "aevalsrc=exprs='0.25*sin(2*PI*(220+3*sin(2*PI*5*t))*t)*(0.6+0.4*sin(2*PI*0.3*t))+0.15*sin(2*PI*330*t)+0.1*sin(2*PI*495*t)|0.25*sin(2*PI*(277+3*sin(2*PI*4*t))*t)*(0.6+0.4*sin(2*PI*0.2*t))+0.15*sin(2*PI*415*t)+0.1*sin(2*PI*660*t)':s=44100:d=600" \
        -f lavfi -i "anoisesrc=color=pink:seed=42:amplitude=0.08:r=44100:d=600" \
        -filter_complex "[2:a]aformat=channel_layouts=stereo[n];[1:a][n]amix=inputs=2:normalize=0[a]" \
        -map 0:v -map "[a]" -c:v mpeg4 -q:v 8 -c:a aac -b:a 160k -movflags +faststart "$input"
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
    VID2MP3_QUOTA_QUEUED_JOBS=$((queue_jobs + 1)) \
    "$bin" serve --roles storage,worker >"$work/serve.log" 2>&1 &
serve_pid=$!
cleanup() {
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    curl -fsS -u guest:guest -X DELETE "$mgmt/api/vhosts/$vhost" >/dev/null || true
    "$venv/bin/python" -c "import pymongo,sys; pymongo.MongoClient('mongodb://127.0.0.1:27017').drop_database(sys.argv[1])" "$db" || true
}
trap cleanup EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# Polls job $1 until it ends; exits the bench if it failed.
wait_done() {
    local status
    while :; do
        status=$(curl -fsS -H "authorization: Bearer $token" "$base/internal/v1/jobs/$1" |
            "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
        [[ $status == "done" || $status == "failed" ]] && break
        sleep 0.2
    done
    [[ $status == "done" ]] || { echo "job $1 failed" >&2; exit 1; }
}

job_seconds() {
    curl -fsS "$base/metrics" | awk '/^vid2mp3_converter_job_duration_seconds_sum/ {print $2}'
}

echo "input: $(stat -c %s "$input") bytes, 600 s of audio; $runs runs"
for run in $(seq "$runs"); do
    start=$(date +%s.%N)
    "$bin" convert "$input" "$work/local.mp3" >/dev/null
    local_s=$(python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" "$(date +%s.%N)" "$start")

    before=$(job_seconds)
    job=$(python3 -c 'import uuid; print(uuid.uuid4())')
    curl -fsS -X PUT -H "authorization: Bearer $token" \
        -H "x-vid2mp3-owner-id: 0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11" \
        -H "x-vid2mp3-owner-email: bench@example.com" -H "content-type: video/mp4" \
        --data-binary "@$input" "$base/internal/v1/jobs/$job/video" >/dev/null
    wait_done "$job"
    after=$(job_seconds)
    python3 -c "import sys; r, l, b, a = sys.argv[1:]; g = float(a) - float(b or 0); l = float(l); print(f'run {r}: local convert {l:.2f} s, GridFS->GridFS job {g:.2f} s, ratio {g / l:.2f}')" \
        "$run" "$local_s" "$before" "$after"
done

# Deep queue: one-minute clips of the same input, all stored before the worker can finish many.
clip=$work/one-minute.mp4
[[ -s $clip ]] || ffmpeg -nostdin -hide_banner -loglevel error -y -t 60 -i "$input" -c copy "$clip"
jobs=()
start=$(date +%s.%N)
for _ in $(seq "$queue_jobs"); do
    job=$(python3 -c 'import uuid; print(uuid.uuid4())')
    curl -fsS -X PUT -H "authorization: Bearer $token" \
        -H "x-vid2mp3-owner-id: 0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11" \
        -H "x-vid2mp3-owner-email: bench@example.com" -H "content-type: video/mp4" \
        --data-binary "@$clip" "$base/internal/v1/jobs/$job/video" >/dev/null
    jobs+=("$job")
done
stored=$(date +%s.%N)
for job in "${jobs[@]}"; do
    wait_done "$job"
done
python3 -c "import sys; n, a, b, c = int(sys.argv[1]), *map(float, sys.argv[2:]); t = c - a; print(f'deep queue: {n} one-minute jobs stored in {b - a:.2f} s, all done {t:.2f} s after the first upload: {n * 60 / t:.1f} jobs/min ({n / t * 60:.1f} min of audio per min)')" \
    "$queue_jobs" "$start" "$stored" "$(date +%s.%N)"
