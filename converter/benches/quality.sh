#!/usr/bin/env bash
# Objective quality of `vid2mp3-converter convert` against ffmpeg's libmp3lame (ISSUE 5's
# benchmark): `standard` against `-q:a 2`, `fast` against `-b:a 128k`, scored with ViSQOL
# (audio mode, PyPI `visqol-python`) on real music and on speech.
#
#   converter/benches/quality.sh [WORK_DIR]
#
# Installs what it needs (`scripts/install run bench`): Debian's wesnoth-1.16-music (freely licensed
# orchestral and folk recordings), espeak-ng and ffmpeg, and visqol-python and numba in the
# project's venv. Nothing it downloads or makes lands in the repo.
#
# Each source excerpt is first made into a container the product gets (MP4 with AAC-LC, or MKV
# with Vorbis). The reference is that container decoded by ffmpeg; every mp3 is scored against it,
# so both encoders start from the same decoded audio. Reference and mp3s are decoded and resampled
# to 48 kHz (ViSQOL's audio mode rate) by the same ffmpeg command. ViSQOL's audio mode averages the
# channels to mono, so stereo coding artefacts weigh little.
#
# Scoring is CPU-heavy and runs under `nice -n 10` (the machine is shared); CLIP_SECONDS (default
# 12) sets the excerpt length, BUILD=0 skips `cargo build`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
target=${CARGO_TARGET_DIR:-$root/target}
seconds=${CLIP_SECONDS:-12}
music=/usr/share/games/wesnoth/1.16/data/core/music
"$root/scripts/install" run bench >&2
# shellcheck source=../../scripts/lib/common.sh
venv=$(source "$root/scripts/lib/common.sh" && echo "$VID2MP3_VENV")

bin=$target/release/vid2mp3-converter
# BUILD=0 uses the binary as it is (e.g. while someone else holds the target directory's lock).
if [[ ${BUILD:-1} != 0 ]]; then
    (cd "$root" && cargo build --release -p vid2mp3-converter >&2)
fi

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# A small video track, so the inputs are what users upload.
video=(-f lavfi -i "testsrc=size=320x240:rate=10:d=$seconds")

# name, source, start second, container.
clips=(
    "battle $music/battle.ogg 30 mp4"
    "knalgan_theme $music/knalgan_theme.ogg 60 mp4"
    "traveling_minstrels $music/traveling_minstrels.ogg 40 mp4"
    "elvish-theme $music/elvish-theme.ogg 20 mkv"
)

make_inputs() {
    local name src start container
    for clip in "${clips[@]}"; do
        read -r name src start container <<<"$clip"
        case $container in
            mp4) [[ -s $work/$name.mp4 ]] || ff "${video[@]}" -ss "$start" -t "$seconds" -i "$src" \
                -map 0:v -map 1:a -c:v mpeg4 -q:v 8 -c:a aac -b:a 192k -ar 44100 -ac 2 \
                -movflags +faststart -shortest "$work/$name.mp4" ;;
            mkv) [[ -s $work/$name.mkv ]] || ff "${video[@]}" -ss "$start" -t "$seconds" -i "$src" \
                -map 0:v -map 1:a -c:v mpeg4 -q:v 8 -c:a libvorbis -q:a 6 -shortest "$work/$name.mkv" ;;
        esac
    done
    # Speech: a male and a female espeak-ng voice, 48 kHz mono AAC in MP4 (a phone video's format).
    local text="The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store: six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."
    if [[ ! -s $work/speech.mp4 ]]; then
        espeak-ng -v en-us -s 150 -w "$work/speech-m.wav" "$text"
        espeak-ng -v en-us+f3 -s 160 -w "$work/speech-f.wav" "$text"
        ff -i "$work/speech-m.wav" -i "$work/speech-f.wav" \
            -filter_complex "[0:a][1:a]concat=n=2:v=0:a=1,aresample=48000,atrim=0:${seconds}[a]" \
            "${video[@]}" -map 2:v -map "[a]" -c:v mpeg4 -q:v 8 -c:a aac -b:a 96k -ac 1 -shortest \
            "$work/speech.mp4"
    fi
}

# The same decode and resampling for the reference and every mp3.
to_wav48() { ff -i "$1" -vn -ar 48000 -c:a pcm_f32le "$2"; }

make_inputs
inputs=()
for clip in "${clips[@]}"; do
    read -r name _ _ container <<<"$clip"
    inputs+=("$work/$name.$container")
done
inputs+=("$work/speech.mp4")

pairs=()
for input in "${inputs[@]}"; do
    base=$(basename "${input%.*}")
    to_wav48 "$input" "$work/$base.ref.wav"
    "$bin" convert "$input" "$work/$base.standard.mp3" --profile standard >/dev/null
    "$bin" convert "$input" "$work/$base.fast.mp3" --profile fast >/dev/null
    ff -threads 1 -i "$input" -vn -c:a libmp3lame -q:a 2 "$work/$base.ffmpeg-q2.mp3"
    ff -threads 1 -i "$input" -vn -c:a libmp3lame -b:a 128k "$work/$base.ffmpeg-128k.mp3"
    for encoder in standard ffmpeg-q2 fast ffmpeg-128k; do
        to_wav48 "$work/$base.$encoder.mp3" "$work/$base.$encoder.wav"
        pairs+=("$base" "$encoder" "$work/$base.ref.wav" "$work/$base.$encoder.wav" "$work/$base.$encoder.mp3")
    done
done

echo "inputs: ${inputs[*]}"
echo "ffmpeg: $(ffmpeg -hide_banner -version | head -n 1)"
echo "visqol-python: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("visqol-python"))')"
nice -n 10 "$venv/bin/python" "$here/quality.py" "${pairs[@]}"
