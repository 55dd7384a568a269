//! Converts every file of the corpus (tests/corpus/make-corpus.sh) with the `convert`
//! subcommand and checks the result: decodable files give an mp3 with the right rate, channels
//! and exact sample count (decoded by ffmpeg, which honours the LAME tag's delay and padding);
//! undecodable ones fail permanently with a clear reason; nothing crashes or hangs.
//!
//! Needs Debian's `ffmpeg` and `ffprobe` on PATH.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Exact lengths of the corpus clips (3 s).
const AT_44K: u64 = 132_300;
const AT_48K: u64 = 144_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Native,
    Ffmpeg,
}

#[derive(Debug)]
enum Expect {
    Converts {
        rate: u32,
        channels: u32,
        samples: u64,
        decoder: Decoder,
    },
    Fails {
        code: &'static str,
    },
}

use Decoder::{Ffmpeg, Native};

fn converts(rate: u32, channels: u32, samples: u64, decoder: Decoder) -> Expect {
    Expect::Converts {
        rate,
        channels,
        samples,
        decoder,
    }
}

/// What each corpus file must give. Where the sample count is not the clip's exact length, the
/// container cannot say where the codec's padding is, and the count is what ffmpeg itself
/// decodes from the source (checked against ffmpeg below):
fn expectations() -> Vec<(&'static str, Expect)> {
    vec![
        // MP4/MOV edit lists give the AAC priming and the exact length.
        (
            "mp4_aac_44k_stereo_faststart.mp4",
            converts(44100, 2, AT_44K, Native),
        ),
        ("mp4_aac_48k_mono.mp4", converts(48000, 1, AT_48K, Native)),
        ("mov_aac_48k_stereo.mov", converts(48000, 2, AT_48K, Native)),
        ("mov_aac_44k_mono.mov", converts(44100, 1, AT_44K, Native)),
        // ffmpeg's fragmented MP4 has no edit list: 1024 samples of AAC priming and 820 of
        // padding stay in (+1844, 42 ms), exactly as ffmpeg decodes it.
        (
            "mp4_aac_44k_fragmented.mp4",
            converts(44100, 2, AT_44K + 1844, Native),
        ),
        (
            "m4a_alac_44k_stereo.m4a",
            converts(44100, 2, AT_44K, Native),
        ),
        ("mp4_mp3_44k_stereo.mp4", converts(44100, 2, AT_44K, Native)),
        // Matroska: Opus pre-skip (CodecDelay) and DiscardPadding are applied.
        (
            "mkv_opus_48k_stereo.mkv",
            converts(48000, 2, AT_48K, Native),
        ),
        (
            "webm_vp9_opus_48k_stereo.webm",
            converts(48000, 2, AT_48K, Native),
        ),
        (
            "mkv_flac_44k_stereo.mkv",
            converts(44100, 2, AT_44K, Native),
        ),
        // Vorbis in Matroska carries no end padding information: +372 (8 ms), as ffmpeg.
        (
            "mkv_vorbis_44k_stereo.mkv",
            converts(44100, 2, AT_44K + 372, Native),
        ),
        // AC-3 and E-AC-3 in Matroska: no delay/padding signalling; +384 (8 ms), as ffmpeg.
        (
            "mkv_ac3_48k_stereo.mkv",
            converts(48000, 2, AT_48K + 384, Ffmpeg),
        ),
        (
            "mkv_eac3_48k_stereo.mkv",
            converts(48000, 2, AT_48K + 384, Ffmpeg),
        ),
        (
            "ogg_vorbis_44k_stereo.ogg",
            converts(44100, 2, AT_44K, Native),
        ),
        ("ogg_opus_48k_mono.opus", converts(48000, 1, AT_48K, Native)),
        ("wav_pcm_44k_stereo.wav", converts(44100, 2, AT_44K, Native)),
        // 96 kHz is not an MP3 rate: resampled to 48 kHz, exactly half the samples.
        ("flac_96k_stereo.flac", converts(48000, 2, AT_48K, Native)),
        ("mp3_44k_stereo.mp3", converts(44100, 2, AT_44K, Native)),
        // AVI and FLV cannot carry the MP3's LAME tag: its delay and padding stay (+1332, 30 ms).
        (
            "avi_mpeg4_mp3_44k_stereo.avi",
            converts(44100, 2, AT_44K + 1332, Ffmpeg),
        ),
        (
            "flv_mp3_44k_stereo.flv",
            converts(44100, 2, AT_44K + 1332, Ffmpeg),
        ),
        // 5.1 AAC: ffmpeg downmixes; the MP4 edit list still gives the exact length.
        ("mp4_aac_48k_5.1.mp4", converts(48000, 2, AT_48K, Ffmpeg)),
        // MPEG-TS cannot signal AAC priming or padding: +1844 (42 ms), as ffmpeg.
        (
            "ts_aac_44k_stereo.ts",
            converts(44100, 2, AT_44K + 1844, Ffmpeg),
        ),
        // Damaged: what ffmpeg recovers (checked against ffmpeg's own decode below).
        (
            "truncated_with_moov.mp4",
            converts(44100, 2, 78_848, Ffmpeg),
        ),
        ("garbage_in_mdat.mp4", converts(44100, 2, 126_976, Ffmpeg)),
        ("mp4_no_audio.mp4", Expect::Fails { code: "no_audio" }),
        (
            "truncated_without_moov.mp4",
            Expect::Fails { code: "not_media" },
        ),
        ("image.png", Expect::Fails { code: "not_media" }),
        ("text.txt", Expect::Fails { code: "not_media" }),
        (
            "empty.bin",
            Expect::Fails {
                code: "empty_input",
            },
        ),
    ]
}

const EXIT_PERMANENT: i32 = 2;
/// Far above the ~1 s any corpus file takes; only a hang reaches it.
const PER_FILE_LIMIT: Duration = Duration::from_secs(120);

fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Drain both pipes while waiting, or a chatty child blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                panic!("{cmd:?} hung for more than {limit:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn make_corpus(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/make-corpus.sh");
    let out = run_limited(
        Command::new("bash").arg(&script).arg(dir),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "make-corpus.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Samples per channel ffmpeg decodes from `file` (the mp3 decoder applies the LAME tag).
fn ffmpeg_sample_count(file: &Path, channels: u32) -> u64 {
    let out = run_limited(
        Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "quiet", "-i"])
            .arg(file)
            .args([
                "-map",
                "0:a:0",
                "-ac",
                &channels.to_string(),
                "-f",
                "f32le",
                "-",
            ]),
        PER_FILE_LIMIT,
    );
    assert!(
        out.status.success(),
        "ffmpeg cannot decode {}",
        file.display()
    );
    out.stdout.len() as u64 / 4 / u64::from(channels)
}

fn probe_rate_and_channels(file: &Path) -> (u32, u32) {
    let out = run_limited(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "a:0"])
            .args(["-show_entries", "stream=sample_rate,channels,codec_name"])
            .args(["-of", "csv=p=0"])
            .arg(file),
        PER_FILE_LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let fields: Vec<&str> = text.split(',').collect();
    assert_eq!(fields.first(), Some(&"mp3"), "{}: {text}", file.display());
    let rate = fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let channels = fields.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
    (rate, channels)
}

/// The corpus, made once per test binary.
fn corpus() -> &'static Path {
    static CORPUS: OnceLock<tempfile::TempDir> = OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            make_corpus(dir.path());
            dir
        })
        .path()
}

#[test]
fn every_corpus_file_converts_exactly_or_fails_permanently() {
    let dir = tempfile::tempdir().expect("temp dir");
    let corpus = corpus();
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).expect("output dir");

    let cases = expectations();
    let listed: BTreeSet<&str> = cases.iter().map(|(f, _)| *f).collect();
    let made: BTreeSet<String> = std::fs::read_dir(corpus)
        .expect("corpus dir")
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    let made_ref: BTreeSet<&str> = made.iter().map(String::as_str).collect();
    assert_eq!(
        made_ref, listed,
        "every corpus file needs an expectation, and vice versa"
    );

    let bin = env!("CARGO_BIN_EXE_vid2mp3-converter");
    let mut problems = Vec::new();
    for (name, expect) in &cases {
        let input = corpus.join(name);
        let output: PathBuf = out_dir.join(format!("{name}.mp3"));
        let run = run_limited(
            Command::new(bin).arg("convert").arg(&input).arg(&output),
            PER_FILE_LIMIT,
        );
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        match expect {
            Expect::Converts {
                rate,
                channels,
                samples,
                decoder,
            } => {
                if !run.status.success() {
                    problems.push(format!("{name}: failed ({:?}): {stderr}", run.status));
                    continue;
                }
                let used = if stdout.contains(" via native ") {
                    Native
                } else {
                    Ffmpeg
                };
                if used != *decoder {
                    problems.push(format!(
                        "{name}: decoded by {used:?}, expected {decoder:?}: {stdout}"
                    ));
                }
                let got = probe_rate_and_channels(&output);
                if got != (*rate, *channels) {
                    problems.push(format!(
                        "{name}: {got:?} Hz/channels, expected {:?}",
                        (rate, channels)
                    ));
                }
                let decoded = ffmpeg_sample_count(&output, *channels);
                if decoded != *samples {
                    problems.push(format!(
                        "{name}: mp3 decodes to {decoded} samples, expected {samples}"
                    ));
                }
                // Where the expectation is not the clip length, it must be what ffmpeg itself
                // gets from the source; the 5.1 file is mixed down the same way.
                if *samples != AT_44K && *samples != AT_48K {
                    let reference = ffmpeg_sample_count(&input, *channels);
                    if reference != *samples {
                        problems.push(format!("{name}: ffmpeg decodes the source to {reference}, the table says {samples}"));
                    }
                }
                if !stdout.contains(&format!("{samples} samples")) {
                    problems.push(format!(
                        "{name}: report does not state {samples} samples: {stdout}"
                    ));
                }
            }
            Expect::Fails { code } => {
                if run.status.code() != Some(EXIT_PERMANENT) {
                    problems.push(format!(
                        "{name}: exit {:?}, expected a permanent failure; stderr: {stderr}",
                        run.status
                    ));
                }
                if !stderr.contains(&format!("[{code}]")) {
                    problems.push(format!("{name}: expected [{code}] in: {stderr}"));
                }
                if output.exists() || out_dir.join(format!("{name}.mp3.partial")).exists() {
                    problems.push(format!("{name}: a failed conversion left a file behind"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_profile_produces_a_valid_stream_of_the_exact_length() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("clip.wav");
    let generated = run_limited(
        Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*554*t)':s=44100:d=7.5")
            .arg(&input),
        PER_FILE_LIMIT,
    );
    assert!(generated.status.success());
    let bin = env!("CARGO_BIN_EXE_vid2mp3-converter");
    for (profile, cbr) in [
        ("standard", None),
        ("fast", None),
        ("cbr128", Some(128)),
        ("cbr192", Some(192)),
    ] {
        let output = dir.path().join(format!("{profile}.mp3"));
        let run = run_limited(
            Command::new(bin)
                .arg("convert")
                .arg(&input)
                .arg(&output)
                .args(["--profile", profile]),
            PER_FILE_LIMIT,
        );
        assert!(
            run.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(ffmpeg_sample_count(&output, 2), 330_750, "{profile}");
        if let Some(kbps) = cbr {
            let probe = run_limited(
                Command::new("ffprobe")
                    .args([
                        "-v",
                        "error",
                        "-show_entries",
                        "stream=bit_rate",
                        "-of",
                        "csv=p=0",
                    ])
                    .arg(&output),
                PER_FILE_LIMIT,
            );
            let text = String::from_utf8_lossy(&probe.stdout);
            assert_eq!(text.trim(), (kbps * 1000).to_string(), "{profile}");
        }
    }
}

/// Sources without a file behind them (GridFS) take both paths too: the fast path reads the
/// stream in place, ffmpeg gets a spooled copy. The mp3 goes to memory.
#[test]
fn streams_without_a_path_convert_on_both_paths() {
    use std::io::Cursor;
    use vid2mp3_converter::transcode::{DecodePath, MediaInput, TranscodeOptions, transcode};

    for (name, samples, native) in [
        ("mp4_aac_44k_stereo_faststart.mp4", AT_44K, true),
        ("avi_mpeg4_mp3_44k_stereo.avi", AT_44K + 1332, false),
    ] {
        let bytes = std::fs::read(corpus().join(name)).expect("corpus file");
        let len = bytes.len() as u64;
        let mut input = MediaInput::from_reader(Cursor::new(bytes), Some(len));
        let mut mp3 = Cursor::new(Vec::new());
        let report = transcode(&mut input, &mut mp3, &TranscodeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.samples, samples, "{name}");
        assert_eq!(
            matches!(report.decoder, DecodePath::Native { .. }),
            native,
            "{name}"
        );
        assert_eq!(report.bytes, mp3.get_ref().len() as u64, "{name}");
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out.mp3");
        std::fs::write(&out, mp3.get_ref()).expect("write mp3");
        assert_eq!(ffmpeg_sample_count(&out, 2), samples, "{name}");
    }
}
