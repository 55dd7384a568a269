#!/usr/bin/env bash
# Benchmarks `vid2mp3-converter convert` against the ffmpeg commands it replaces, in the same
# run, on a 10-minute AAC MP4 (ISSUE 5's benchmark, local files only).
#
#   converter/benches/transcode.sh [WORK_DIR]
#
# Needs ffmpeg and GNU time (/usr/bin/time). Builds the release binary first. Prints, per
# command: wall seconds, CPU seconds (user + system) and peak RSS, as /usr/bin/time -v reports.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
target=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}

(cd "$root" && cargo build --release -p vid2mp3-converter >&2)
bin=$target/release/vid2mp3-converter

input=$work/ten-minutes.mp4
if [[ ! -s $input ]]; then
    # Music-like and deterministic: a chord with vibrato and tremolo, plus pink noise.
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc=size=320x240:rate=10:d=600" \
        -f lavfi -i "aevalsrc=exprs='0.25*sin(2*PI*(220+3*sin(2*PI*5*t))*t)*(0.6+0.4*sin(2*PI*0.3*t))+0.15*sin(2*PI*330*t)+0.1*sin(2*PI*495*t)|0.25*sin(2*PI*(277+3*sin(2*PI*4*t))*t)*(0.6+0.4*sin(2*PI*0.2*t))+0.15*sin(2*PI*415*t)+0.1*sin(2*PI*660*t)':s=44100:d=600" \
        -f lavfi -i "anoisesrc=color=pink:seed=42:amplitude=0.08:r=44100:d=600" \
        -filter_complex "[2:a]aformat=channel_layouts=stereo[n];[1:a][n]amix=inputs=2:normalize=0[a]" \
        -map 0:v -map "[a]" -c:v mpeg4 -q:v 8 -c:a aac -b:a 160k -movflags +faststart "$input"
fi

measure() {
    local label=$1
    shift
    local best_wall='' best_line=''
    for ((i = 0; i < runs; i++)); do
        /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
            cat "$work/stderr.txt" >&2
            return 1
        }
        local wall user sys rss
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s}' "$work/time.txt")
        user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
        sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
        local line
        line=$(printf '%-34s wall %6.2f s   cpu %6.2f s   peak rss %6.1f MB' "$label" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "scale=1; $rss / 1024" | bc)")
        if [[ -z $best_wall ]] || (( $(echo "$wall < $best_wall" | bc) )); then
            best_wall=$wall
            best_line=$line
        fi
    done
    echo "$best_line   (best of $runs)"
}

echo "input: $input ($(ffprobe -v error -show_entries format=duration -of csv=p=0 "$input") s), $(nproc) cores"
measure "convert --profile standard" "$bin" convert "$input" "$work/standard.mp3" --profile standard
measure "ffmpeg -threads 1 -q:a 2" ffmpeg -nostdin -y -threads 1 -i "$input" -vn -c:a libmp3lame -q:a 2 "$work/ffmpeg-v2.mp3"
measure "convert --profile fast" "$bin" convert "$input" "$work/fast.mp3" --profile fast
measure "ffmpeg -threads 1 -b:a 128k" ffmpeg -nostdin -y -threads 1 -i "$input" -vn -c:a libmp3lame -b:a 128k "$work/ffmpeg-128k.mp3"
ls -l "$work"/*.mp3 | awk '{print $5, $9}'
