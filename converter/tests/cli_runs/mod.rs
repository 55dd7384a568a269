//! Running ffmpeg and `vid2mp3-converter convert` from the tag and loudness tests.

use std::path::Path;
use std::process::Command;

/// ffmpeg with `args`, which must succeed (making test media).
pub use vid2mp3_test_support::test_media::ffmpeg;

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
