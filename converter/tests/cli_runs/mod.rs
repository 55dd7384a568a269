//! Running ffmpeg and `vid2mp3-converter convert` from the tag and loudness tests.

use std::path::Path;
use std::process::Command;

/// ffmpeg with `args`, which must succeed (making test media).
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Converts with the production pipeline; the `convert` report line.
pub fn convert(input: &Path, output: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vid2mp3-converter"))
        .arg("convert")
        .arg(input)
        .arg(output)
        .args(extra)
        .output()
        .expect("the converter runs");
    assert!(
        out.status.success(),
        "convert {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
