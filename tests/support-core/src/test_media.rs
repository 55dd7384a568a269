//! Media for tests, made with Debian's ffmpeg (which `scripts/services install` provides), and a
//! scratch directory to put it in.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temp dir of the test's own, removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new() -> ScratchDir {
        let dir = std::env::temp_dir().join(crate::unique_name("vid2mp3-scratch-"));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        ScratchDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for ScratchDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ffmpeg with `args` (quiet, overwriting), which must succeed: how every test makes its media.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs (scripts/services installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A video with a stereo tone: MPEG-4 video + Opus audio (48 kHz) in Matroska, what a phone or
/// a screen recorder hands over, `seconds` long.
pub fn make_mkv(path: &Path, seconds: u32) {
    let d = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=160x120:rate=15:d={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=48000:d={d}"),
        "-c:v",
        "mpeg4",
        "-q:v",
        "15",
        "-c:a",
        "libopus",
        "-b:a",
        "96k",
        path.to_str().expect("utf-8 path"),
    ]);
}

/// A video of about `bytes` that is cheap to make and to convert: uncompressed 640×480 frames
/// (460,800 bytes each, 25 a second) with an Opus tone, in Matroska. The size is in the video;
/// the converter only decodes the few seconds of audio.
pub fn make_large_mkv(path: &Path, bytes: u64) {
    const FRAME_BYTES: u64 = 640 * 480 * 3 / 2;
    let frames = bytes.div_ceil(FRAME_BYTES).max(25);
    let d = format!("{:.2}", frames as f64 / 25.0);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=640x480:rate=25:d={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=48000:d={d}"),
        "-c:v",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "libopus",
        "-b:a",
        "96k",
        path.to_str().expect("utf-8 path"),
    ]);
}

/// Audio only (AAC-LC in MP4, 44.1 kHz stereo), for long jobs that must be quick to make.
pub fn make_m4a(path: &Path, seconds: u32) {
    let d = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=44100:d={d}"),
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        path.to_str().expect("utf-8 path"),
    ]);
}

/// Samples per channel ffmpeg decodes from `file` as stereo (for an mp3 it applies the LAME
/// tag's delay and padding, so this is the playable length).
pub fn decoded_samples(file: &Path) -> u64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-vn", "-ac", "2", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg runs (scripts/services installs it)");
    assert!(
        out.status.success(),
        "ffmpeg cannot decode {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len() as u64 / 4
}

/// ffprobe's JSON for `file`: `format` (with its tags), `streams`, `chapters`.
pub fn ffprobe_json(file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-show_chapters",
        ])
        .args(["-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs (scripts/services installs ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON")
}

/// What mutagen (a Python ID3 library, in the tools venv) reads from an mp3's ID3v2 tag:
/// `{"version": [2, 4, 0], "size": bytes, "text": {"TIT2": "..."}, "comments": [...],
/// "pictures": [{"mime", "type", "bytes", "sha256"}], "chapters": [{"id", "start", "end",
/// "title"}], "tocs": [{"id", "top_level", "ordered", "children"}]}`.
pub fn id3_tag(file: &Path) -> serde_json::Value {
    const READ_TAG: &str = r#"
import hashlib, json, sys
from mutagen.id3 import ID3
tag = ID3(sys.argv[1], translate=False)
out = {"version": list(tag.version), "size": tag.size, "text": {}, "comments": [],
       "pictures": [], "chapters": [], "tocs": []}
for frame in tag.values():
    fid = frame.FrameID
    if fid == "COMM":
        out["comments"].append({"lang": frame.lang, "text": str(frame)})
    elif fid == "APIC":
        out["pictures"].append({"mime": frame.mime, "type": int(frame.type),
                                "bytes": len(frame.data),
                                "sha256": hashlib.sha256(frame.data).hexdigest()})
    elif fid == "CHAP":
        title = frame.sub_frames.get("TIT2")
        out["chapters"].append({"id": frame.element_id, "start": frame.start_time,
                                "end": frame.end_time, "title": str(title) if title else None})
    elif fid == "CTOC":
        out["tocs"].append({"id": frame.element_id, "top_level": bool(frame.flags & 2),
                            "ordered": bool(frame.flags & 1),
                            "children": list(frame.child_element_ids)})
    elif fid.startswith("T"):
        out["text"][fid] = str(frame)
out["chapters"].sort(key=lambda c: c["start"])
print(json.dumps(out))
"#;
    let python = crate::workspace::tools_venv().join("bin").join("python");
    let out = Command::new(&python)
        .arg("-c")
        .arg(READ_TAG)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs ({e}); run `scripts/services install` for mutagen",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "mutagen cannot read {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reader prints JSON")
}

/// Loudness as ffmpeg's `ebur128` filter measures it (an independent BS.1770 meter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// LUFS; ffmpeg reports −70 for silence.
    pub integrated_lufs: f64,
    /// dBTP (4× oversampled); `-inf` for digital silence.
    pub true_peak_dbtp: f64,
}

pub fn ebur128(file: &Path) -> Loudness {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:a:0",
            "-filter:a",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg runs (scripts/services installs it)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ebur128 on {}: {log}", file.display());
    // The summary comes last: "Integrated loudness: I: -16.0 LUFS" ... "True peak: Peak: -1.2 dBFS".
    let summary = log.rsplit_once("Summary:").map_or("", |(_, s)| s);
    let value = |label: &str| {
        summary
            .split_once(label)
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(|v| match v {
                "-inf" => f64::NEG_INFINITY,
                v => v.parse::<f64>().unwrap_or(f64::NAN),
            })
            .unwrap_or_else(|| panic!("no {label:?} in ebur128's summary: {summary}"))
    };
    Loudness {
        integrated_lufs: value("I:"),
        true_peak_dbtp: value("Peak:"),
    }
}
