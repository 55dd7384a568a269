//! Loudness levelling, checked with an independent meter (ffmpeg's `ebur128` filter): a very
//! quiet and a very loud source land within ±1 LU of the target with the true peak at most
//! −1 dBTP, on the fast path and on the ffmpeg path; silence stays silence; and the gapless
//! length is unchanged.
//!
//! Needs Debian's ffmpeg.

mod cli_runs;

use std::path::Path;
use std::process::Command;

use cli_runs::{convert, ffmpeg};
use vid2mp3_test_support::test_media::{ScratchDir, decoded_samples, ebur128};

/// Speech-like level changes: a chord whose loudness moves with a slow envelope, at `scale`
/// (above 1 it is clipped to 16 bits, as an overdriven phone recording is).
fn voice(scale: f64, rate: u32) -> String {
    format!(
        "aevalsrc=exprs='{scale}*(0.6+0.4*sin(2*PI*0.5*t))*(0.5*sin(2*PI*220*t)+0.3*sin(2*PI*660*t)+0.2*sin(2*PI*1760*t))':s={rate}:d=8,aformat=sample_fmts=s16"
    )
}

fn assert_levelled(mp3: &Path, target: f64, what: &str) {
    let measured = ebur128(mp3);
    assert!(
        (measured.integrated_lufs - target).abs() <= 1.0,
        "{what}: {measured:?}, target {target} LUFS"
    );
    assert!(measured.true_peak_dbtp <= -1.0, "{what}: {measured:?}");
}

#[test]
fn very_quiet_and_very_loud_sources_reach_the_target_on_both_paths() {
    let dir = ScratchDir::new();
    for (name, scale, codec) in [
        ("quiet.wav", 0.025, "pcm_s16le"),
        ("loud.wav", 3.0, "pcm_s16le"),
        ("quiet.mkv", 0.025, "ac3"),
        ("loud.mkv", 3.0, "ac3"),
    ] {
        let source = dir.path(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &voice(scale, 48_000),
            "-c:a",
            codec,
            source.to_str().unwrap(),
        ]);
        let before = ebur128(&source);
        let mp3 = dir.path(&format!("{name}.mp3"));
        let report = convert(&source, &mp3, &["--loudness", "speech"]);
        assert!(report.contains("(target -16 LUFS)"), "{report}");
        assert_levelled(&mp3, -16.0, &format!("{name} (was {before:?})"));
        let plain = dir.path(&format!("{name}.plain.mp3"));
        convert(&source, &plain, &[]);
        assert_eq!(
            decoded_samples(&mp3),
            decoded_samples(&plain),
            "{name}: levelling changes no length"
        );
    }
    // The sources really were far off: about −43 and −4 LUFS.
    assert!(ebur128(&dir.path("quiet.wav")).integrated_lufs < -40.0);
    assert!(ebur128(&dir.path("loud.wav")).integrated_lufs > -6.0);
}

#[test]
fn other_targets_are_met_too() {
    let dir = ScratchDir::new();
    let source = dir.path("talk.flac");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &voice(0.05, 44_100),
        "-c:a",
        "flac",
        source.to_str().unwrap(),
    ]);
    for (target, lufs) in [("broadcast", -23.0), ("-20", -20.0), ("music", -14.0)] {
        let mp3 = dir.path(&format!("{target}.mp3"));
        convert(&source, &mp3, &["--loudness", target]);
        assert_levelled(&mp3, lufs, target);
    }
}

#[test]
fn silence_gets_no_gain_and_stays_silent() {
    let dir = ScratchDir::new();
    let source = dir.path("silence.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=44100:cl=stereo:d=5",
        "-c:a",
        "pcm_s16le",
        source.to_str().unwrap(),
    ]);
    let mp3 = dir.path("silence.mp3");
    let report = convert(&source, &mp3, &["--loudness", "speech"]);
    assert!(
        report.contains("gain +0.0 dB, limited by Silence"),
        "{report}"
    );
    let measured = ebur128(&mp3);
    assert_eq!(measured.true_peak_dbtp, f64::NEG_INFINITY, "{measured:?}");
    assert_eq!(decoded_samples(&mp3), 5 * 44_100);
}

#[test]
fn a_bad_target_is_refused_before_anything_is_written() {
    let dir = ScratchDir::new();
    let source = dir.path("a.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &voice(0.1, 44_100),
        source.to_str().unwrap(),
    ]);
    let mp3 = dir.path("a.mp3");
    let out = Command::new(env!("CARGO_BIN_EXE_vid2mp3-converter"))
        .arg("convert")
        .arg(&source)
        .arg(&mp3)
        .args(["--loudness", "-3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("speech (-16 LUFS)"), "{stderr}");
    assert!(!mp3.exists());
}
