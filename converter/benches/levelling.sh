#!/usr/bin/env bash
# What loudness levelling and the cover frame cost: `convert --profile standard` (the default:
# ID3 tag with a cover frame) against the same with `--loudness speech` (a second decoding pass
# with the BS.1770 meter) and against `--no-frame-cover` (no ffmpeg run for the cover), in
# interleaved rounds on the 10-minute MP4 of transcode.sh (local files only).
#
#   converter/benches/levelling.sh [WORK_DIR]
#
# Needs ffmpeg and GNU time (/usr/bin/time). Builds the release binary first (BUILD=0: not). Prints, per
# command, the best and median wall and CPU seconds (user + system) over RUNS rounds (default 3)
# and the peak RSS; then the ratios against plain `standard`, and the levelled file's loudness as
# ffmpeg's ebur128 filter measures it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
target=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}

bin=$target/release/vid2mp3-converter
# BUILD=0 uses the binary as it is (e.g. one built earlier into another CARGO_TARGET_DIR).
if [[ ${BUILD:-1} != 0 ]]; then
    (cd "$root" && cargo build --release -p vid2mp3-converter >&2)
fi

input=$work/ten-minutes.mp4
if [[ ! -s $input ]]; then
    # The same input as transcode.sh: a chord with vibrato and tremolo, plus pink noise.
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc=size=320x240:rate=10:d=600" \
        -f lavfi -i "aevalsrc=exprs='0.25*sin(2*PI*(220+3*sin(2*PI*5*t))*t)*(0.6+0.4*sin(2*PI*0.3*t))+0.15*sin(2*PI*330*t)+0.1*sin(2*PI*495*t)|0.25*sin(2*PI*(277+3*sin(2*PI*4*t))*t)*(0.6+0.4*sin(2*PI*0.2*t))+0.15*sin(2*PI*415*t)+0.1*sin(2*PI*660*t)':s=44100:d=600" \
        -f lavfi -i "anoisesrc=color=pink:seed=42:amplitude=0.08:r=44100:d=600" \
        -filter_complex "[2:a]aformat=channel_layouts=stereo[n];[1:a][n]amix=inputs=2:normalize=0[a]" \
        -map 0:v -map "[a]" -c:v mpeg4 -q:v 8 -c:a aac -b:a 160k -movflags +faststart "$input"
fi

labels=("convert --profile standard" "... --loudness speech" "... --no-frame-cover")
command_of() {
    case $1 in
    0) cmd=("$bin" convert "$input" "$work/standard.mp3" --profile standard) ;;
    1) cmd=("$bin" convert "$input" "$work/levelled.mp3" --profile standard --loudness speech) ;;
    2) cmd=("$bin" convert "$input" "$work/no-cover.mp3" --profile standard --no-frame-cover) ;;
    esac
}
declare -A walls cpus rsss
echo "input: $input ($(ffprobe -v error -show_entries format=duration -of csv=p=0 "$input") s), $(nproc) cores, $runs rounds"
echo "load before: $(uptime)"
for ((round = 0; round < runs; round++)); do
    for c in 0 1 2; do
        command_of "$c"
        /usr/bin/time -v -o "$work/time.txt" "${cmd[@]}" >"$work/stdout-$c.txt" 2>"$work/stderr.txt" || {
            cat "$work/stderr.txt" >&2
            exit 1
        }
        walls[$c]+="$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s}' "$work/time.txt") "
        cpus[$c]+="$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {print u + s}' "$work/time.txt") "
        rsss[$c]+="$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$work/time.txt") "
    done
done
echo "load after: $(uptime)"
# shellcheck disable=SC2086 # the lists are meant to split
stats() { printf '%s\n' $1 | sort -n | awk '{v[NR] = $1} END {printf "%s %s\n", v[1], v[int((NR + 1) / 2)]}'; }
declare -A min_wall med_wall min_cpu med_cpu
for c in 0 1 2; do
    read -r min_wall[$c] med_wall[$c] < <(stats "${walls[$c]}")
    read -r min_cpu[$c] med_cpu[$c] < <(stats "${cpus[$c]}")
    # shellcheck disable=SC2086
    max_rss=$(printf '%s\n' ${rsss[$c]} | sort -n | tail -n 1)
    printf '%-30s wall best %6.2f s median %6.2f s   cpu best %6.2f s median %6.2f s   peak rss %5.1f MB\n' \
        "${labels[$c]}" "${min_wall[$c]}" "${med_wall[$c]}" "${min_cpu[$c]}" "${med_cpu[$c]}" "$max_rss"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo "levelled / standard:      wall $(ratio "${min_wall[1]}" "${min_wall[0]}") (best) $(ratio "${med_wall[1]}" "${med_wall[0]}") (median);" \
    "cpu $(ratio "${min_cpu[1]}" "${min_cpu[0]}") (best) $(ratio "${med_cpu[1]}" "${med_cpu[0]}") (median)"
echo "no cover / standard:      wall $(ratio "${min_wall[2]}" "${min_wall[0]}") (best) $(ratio "${med_wall[2]}" "${med_wall[0]}") (median);" \
    "cpu $(ratio "${min_cpu[2]}" "${min_cpu[0]}") (best) $(ratio "${med_cpu[2]}" "${med_cpu[0]}") (median)"
sed -n 's/.*; loudness/loudness/p' "$work/stdout-1.txt"
for f in standard levelled; do
    printf '%-10s ebur128: ' "$f"
    ffmpeg -nostdin -hide_banner -nostats -i "$work/$f.mp3" -filter:a ebur128=peak=true -f null - 2>&1 |
        awk '/Summary:/ {s = 1} s && /I:/ {i = $2} s && /Peak:/ {p = $2} END {printf "I %s LUFS, true peak %s dBTP\n", i, p}'
done
stat -c '%s %n' "$work"/*.mp3
