#!/usr/bin/env bash
# Builds the converter's test corpus with Debian's ffmpeg: short, deterministic clips in the
# containers and codecs uploads arrive in, plus damaged and non-media files.
#
#   tests/corpus/make-corpus.sh OUTPUT_DIR
#
# Every audio track is 3 s long (132300 samples at 44.1 kHz, 144000 at 48 kHz) so tests can
# check exact lengths. Sources are lavfi generators (aevalsrc, testsrc): same bytes every run
# with the same ffmpeg.
set -euo pipefail

out=${1:?usage: make-corpus.sh OUTPUT_DIR}
mkdir -p "$out"
cd "$out"

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# A chord that differs per channel, so a swapped or dropped channel is visible.
stereo() { echo "aevalsrc=exprs='0.4*sin(2*PI*440*t)+0.1*sin(2*PI*3000*t)|0.4*sin(2*PI*660*t)+0.1*sin(2*PI*5000*t)':s=$1:d=3"; }
mono() { echo "aevalsrc=exprs='0.4*sin(2*PI*440*t)+0.1*sin(2*PI*3000*t)':s=$1:d=3"; }
surround() { echo "aevalsrc=exprs='0.3*sin(2*PI*440*t)|0.3*sin(2*PI*550*t)|0.3*sin(2*PI*660*t)|0.1*sin(2*PI*60*t)|0.2*sin(2*PI*770*t)|0.2*sin(2*PI*880*t)':s=$1:d=3:c=5.1"; }
video() { echo "testsrc=size=160x120:rate=25:d=3"; }

v=(-f lavfi -i "$(video)")
mpeg4=(-c:v mpeg4 -q:v 10)

# MP4 / MOV with AAC-LC: the fast path, with edit lists for the AAC priming.
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a aac -b:a 128k -movflags +faststart mp4_aac_44k_stereo_faststart.mp4
ff "${v[@]}" -f lavfi -i "$(mono 48000)" "${mpeg4[@]}" -c:a aac -b:a 96k mp4_aac_48k_mono.mp4
ff "${v[@]}" -f lavfi -i "$(stereo 48000)" "${mpeg4[@]}" -c:a aac -b:a 128k mov_aac_48k_stereo.mov
ff "${v[@]}" -f lavfi -i "$(mono 44100)" "${mpeg4[@]}" -c:a aac -b:a 96k mov_aac_44k_mono.mov
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a aac -b:a 128k \
    -movflags frag_keyframe+empty_moov+default_base_moof mp4_aac_44k_fragmented.mp4
# ALAC and MP3 inside MP4.
ff -f lavfi -i "$(stereo 44100)" -c:a alac m4a_alac_44k_stereo.m4a
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a libmp3lame -b:a 128k mp4_mp3_44k_stereo.mp4

# Matroska / WebM.
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a libvorbis -q:a 3 mkv_vorbis_44k_stereo.mkv
ff "${v[@]}" -f lavfi -i "$(stereo 48000)" "${mpeg4[@]}" -c:a libopus -b:a 96k mkv_opus_48k_stereo.mkv
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a flac mkv_flac_44k_stereo.mkv
ff "${v[@]}" -f lavfi -i "$(stereo 48000)" "${mpeg4[@]}" -c:a ac3 -b:a 192k mkv_ac3_48k_stereo.mkv
ff "${v[@]}" -f lavfi -i "$(stereo 48000)" "${mpeg4[@]}" -c:a eac3 -b:a 192k mkv_eac3_48k_stereo.mkv
ff "${v[@]}" -f lavfi -i "$(stereo 48000)" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 200k \
    -c:a libopus -b:a 96k webm_vp9_opus_48k_stereo.webm

# Audio-only containers on the fast path.
ff -f lavfi -i "$(stereo 44100)" -c:a libvorbis -q:a 3 ogg_vorbis_44k_stereo.ogg
ff -f lavfi -i "$(mono 48000)" -c:a libopus -b:a 64k ogg_opus_48k_mono.opus
ff -f lavfi -i "$(stereo 44100)" -c:a pcm_s16le wav_pcm_44k_stereo.wav
ff -f lavfi -i "$(stereo 96000)" -c:a flac flac_96k_stereo.flac
ff -f lavfi -i "$(stereo 44100)" -c:a libmp3lame -b:a 128k mp3_44k_stereo.mp3

# Only ffmpeg decodes these.
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a libmp3lame -b:a 128k avi_mpeg4_mp3_44k_stereo.avi
ff "${v[@]}" -f lavfi -i "$(surround 48000)" "${mpeg4[@]}" -c:a aac -b:a 256k mp4_aac_48k_5.1.mp4
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a aac -b:a 128k -f mpegts ts_aac_44k_stereo.ts
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" -c:v flv -c:a libmp3lame -b:a 128k flv_mp3_44k_stereo.flv

# No audio at all.
ff "${v[@]}" "${mpeg4[@]}" mp4_no_audio.mp4

# Damaged files, cut from 60 % of the stream: with the index first (faststart) ffmpeg recovers
# the start; with the index at the end it has nothing to go on.
size() { stat -c %s "$1"; }
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a aac -b:a 128k -movflags +faststart damaged_base_faststart.mp4
head -c $(( $(size damaged_base_faststart.mp4) * 6 / 10 )) damaged_base_faststart.mp4 > truncated_with_moov.mp4
ff "${v[@]}" -f lavfi -i "$(stereo 44100)" "${mpeg4[@]}" -c:a aac -b:a 128k damaged_base_moov_last.mp4
head -c $(( $(size damaged_base_moov_last.mp4) * 6 / 10 )) damaged_base_moov_last.mp4 > truncated_without_moov.mp4
# 4 KB of garbage in the middle of the media data.
cp damaged_base_faststart.mp4 garbage_in_mdat.mp4
printf 'garbage!%.0s' $(seq 512) | dd of=garbage_in_mdat.mp4 bs=1 seek=$(( $(size garbage_in_mdat.mp4) / 2 )) conv=notrunc status=none
rm damaged_base_faststart.mp4 damaged_base_moov_last.mp4

# Not media.
ff -f lavfi -i "testsrc=size=64x64" -frames:v 1 image.png
printf 'This is a text file, not a video.\n' > text.txt
: > empty.bin
