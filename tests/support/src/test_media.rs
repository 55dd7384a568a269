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

fn ffmpeg(args: &[&str]) {
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
