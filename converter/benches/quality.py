"""Scores mp3s against their references with ViSQOL (audio mode) and prints two tables.

    python quality.py CLIP ENCODER REF_WAV DEGRADED_WAV MP3 [CLIP ENCODER ...]

Called by quality.sh, which decodes every file to 48 kHz WAV with the same ffmpeg command.
The pairs we compare: our `standard` against ffmpeg's `-q:a 2`, our `fast` against `-b:a 128k`.
"""

import os
import sys

import soundfile
from visqol.api import VisqolApi

COMPARISONS = [("standard", "ffmpeg-q2"), ("fast", "ffmpeg-128k")]


def main(args: list[str]) -> None:
    if not args or len(args) % 5:
        sys.exit(__doc__)
    rows = [args[i : i + 5] for i in range(0, len(args), 5)]

    api = VisqolApi()
    api.create(mode="audio")

    scores: dict[tuple[str, str], float] = {}
    print(f"{'clip':<22} {'encoder':<12} {'kbit/s':>7} {'len diff':>9} {'MOS-LQO':>8}")
    for clip, encoder, ref, degraded, mp3 in rows:
        ref_info = soundfile.info(ref)
        deg_info = soundfile.info(degraded)
        kbps = os.path.getsize(mp3) * 8 / deg_info.duration / 1000
        # Samples at 48 kHz the decoded mp3 has beyond the reference (0 = exact gapless length).
        length_diff = deg_info.frames - ref_info.frames
        mos = api.measure(ref, degraded).moslqo
        scores[(clip, encoder)] = mos
        print(f"{clip:<22} {encoder:<12} {kbps:7.1f} {length_diff:9d} {mos:8.3f}", flush=True)

    clips = list(dict.fromkeys(row[0] for row in rows))
    print()
    for ours, theirs in COMPARISONS:
        deltas = [scores[(c, ours)] - scores[(c, theirs)] for c in clips]
        not_below = sum(d >= 0 for d in deltas)
        listed = ", ".join(f"{c} {d:+.3f}" for c, d in zip(clips, deltas))
        print(f"{ours} - {theirs}: {listed}")
        print(f"  not below on {not_below}/{len(clips)} clips, mean {sum(deltas) / len(deltas):+.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
