//! ffmpeg confined to the one file it is given: a crafted HLS playlist or ffconcat script (which
//! would make ffmpeg read other local files by name) is refused by the sniffer, and separately
//! by ffmpeg's own whitelists should anything get past the sniffer; every container the sniffer
//! admits still opens with its own demuxers.
//!
//! Needs Debian's `ffmpeg` and `ffprobe` on PATH.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Owner};
use vid2mp3_contracts::storage_api::JobStatus;
use vid2mp3_contracts::{ErrorCode, JobId, JobOutcome};
use vid2mp3_converter::transcode::decode_ffmpeg::{FfmpegDecode, probe};
use vid2mp3_converter::transcode::sniff::{Container, SNIFF_LEN, sniff};
use vid2mp3_converter::transcode::{
    FfmpegLimits, MediaInput, TranscodeError, TranscodeOptions, transcode,
};
use vid2mp3_test_support::test_media::ffmpeg;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Bytes of f32 PCM plain ffmpeg (no whitelists) decodes from `input`, as an attacker would
/// hope ours does.
fn plain_ffmpeg_decodes(input: &Path) -> usize {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    out.stdout.len()
}

/// The local file the crafted inputs point at (MPEG-TS with AAC, an extension HLS accepts).
fn secret(dir: &Path) -> PathBuf {
    let path = dir.join("secret.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:duration=2",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        path_str(&path),
    ]);
    path
}

/// The crafted inputs: HLS playlists by absolute and by relative path, and an ffconcat script.
fn crafted(dir: &Path, secret: &Path) -> Vec<(&'static str, PathBuf)> {
    let files = [
        (
            "HLS, absolute path",
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{}\n#EXT-X-ENDLIST\n",
                secret.display()
            ),
        ),
        (
            "HLS, relative path",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nsecret.ts\n#EXT-X-ENDLIST\n".into(),
        ),
        ("ffconcat", "ffconcat version 1.0\nfile secret.ts\n".into()),
    ];
    files
        .into_iter()
        .enumerate()
        .map(|(i, (what, text))| {
            let path = dir.join(format!("crafted-{i}.bin"));
            std::fs::write(&path, text).expect("write");
            (what, path)
        })
        .collect()
}

#[test]
fn crafted_playlists_are_refused_by_the_sniffer_and_by_ffmpeg() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = secret(dir.path());
    for (what, file) in crafted(dir.path(), &secret) {
        // Without our flags ffmpeg reads the local file the playlist names: the attack is real.
        assert!(
            plain_ffmpeg_decodes(&file) > 10_000,
            "{what}: plain ffmpeg should read the secret through it"
        );
        let bytes = std::fs::read(&file).expect("read");

        // Layer 1, the sniffer: no container of ours, refused before any decoder is asked,
        // from a local file (`convert`) and from a stream (spooled for ffmpeg, as from GridFS).
        assert_eq!(
            sniff(&bytes[..bytes.len().min(SNIFF_LEN)]),
            Container::Unknown
        );
        let local = MediaInput::open_file(&file).expect("open");
        let len = bytes.len() as u64;
        let streamed = MediaInput::from_reader(Cursor::new(bytes.clone()), Some(len));
        for mut input in [local, streamed] {
            let mut mp3 = Cursor::new(Vec::new());
            match transcode(&mut input, &mut mp3, &TranscodeOptions::default()) {
                Err(TranscodeError::NotMedia(why)) => {
                    assert!(why.contains("no audio or video container"), "{what}: {why}")
                }
                other => panic!("{what}: {other:?}"),
            }
            assert!(mp3.get_ref().is_empty(), "{what}: nothing was encoded");
        }

        // Layer 2, ffmpeg itself: were the sniffer fooled into any container we admit, ffprobe
        // and ffmpeg still refuse a demuxer that is not that container's.
        let limits = FfmpegLimits::default();
        for container in all_containers() {
            let demuxers = container.demuxers().expect("an admitted container");
            match probe(&file, demuxers, &limits) {
                Err(TranscodeError::NotMedia(why)) => assert!(
                    why.contains("whitelist") || why.contains("Invalid data"),
                    "{what} as {container:?}: {why}"
                ),
                other => panic!("{what} as {container:?}: ffprobe gave {other:?}"),
            }
        }
        let mut input = MediaInput::open_file(&file).expect("open");
        match FfmpegDecode::start(&mut input, "mpegts", &limits) {
            Err(TranscodeError::NotMedia(why)) => {
                assert!(why.contains("whitelist"), "{what}: {why}")
            }
            Err(other) => panic!("{what}: {other}"),
            Ok(_) => panic!("{what}: ffmpeg opened it"),
        }
    }
}

/// A local file whose name reads like an ffmpeg protocol is opened as that file, not as the
/// protocol (`concat:` would read both files it names).
#[test]
fn a_file_name_is_never_taken_for_a_protocol() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = secret(dir.path());
    let decoy = dir.path().join("concat:secret.ts|secret.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=1",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        path_str(&decoy),
    ]);
    assert!(secret.exists());
    let out = dir.path().join("out.mp3");
    let run = Command::new(env!("CARGO_BIN_EXE_vid2mp3-converter"))
        .current_dir(dir.path())
        .args(["convert", "concat:secret.ts|secret.ts", "out.mp3"])
        .output()
        .expect("convert runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The decoy is 1 s; the concatenation would be 4 s.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .expect("ffprobe runs");
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .expect("a duration");
    assert!((0.9..1.3).contains(&seconds), "{seconds} s");
}

/// Every container the sniffer admits, as it names them.
fn all_containers() -> [Container; 18] {
    [
        Container::IsoMp4,
        Container::Matroska,
        Container::Ogg,
        Container::Wav,
        Container::Flac,
        Container::MpegAudio,
        Container::Avi,
        Container::Flv,
        Container::MpegTs,
        Container::MpegPs,
        Container::Asf,
        Container::Adts,
        Container::Aiff,
        Container::Caf,
        Container::Amr,
        Container::RealMedia,
        Container::Ac3,
        Container::MpegVideo,
    ]
}

/// One second of audio in each container the sniffer admits (as ffmpeg writes them), sniffed
/// as that container and converted through ffmpeg with only that container's demuxers.
#[test]
fn every_admitted_container_converts_with_its_own_demuxers_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"];
    let cases: [(&str, &[&str], Container); 17] = [
        ("a.mp4", &["-c:a", "ac3"], Container::IsoMp4),
        ("a.mkv", &["-c:a", "ac3"], Container::Matroska),
        ("a.ogg", &["-c:a", "libvorbis"], Container::Ogg),
        ("a.wav", &["-c:a", "pcm_s16le"], Container::Wav),
        ("a.flac", &["-c:a", "flac"], Container::Flac),
        ("a.mp3", &["-c:a", "libmp3lame"], Container::MpegAudio),
        ("a.avi", &["-c:a", "libmp3lame"], Container::Avi),
        ("a.flv", &["-c:a", "libmp3lame"], Container::Flv),
        ("a.ts", &["-c:a", "aac", "-f", "mpegts"], Container::MpegTs),
        ("a.mpg", &["-c:a", "mp2", "-f", "mpeg"], Container::MpegPs),
        ("a.wma", &["-c:a", "wmav2"], Container::Asf),
        ("a.aac", &["-c:a", "aac", "-f", "adts"], Container::Adts),
        ("a.aiff", &["-c:a", "pcm_s16be"], Container::Aiff),
        ("a.caf", &["-c:a", "pcm_s16le"], Container::Caf),
        ("a.rm", &["-c:a", "ac3", "-f", "rm"], Container::RealMedia),
        ("a.ac3", &["-c:a", "ac3", "-f", "ac3"], Container::Ac3),
        ("a.eac3", &["-c:a", "eac3", "-f", "eac3"], Container::Ac3),
    ];
    let mut files: Vec<(PathBuf, Container)> = cases
        .iter()
        .map(|(name, codec, container)| {
            let path = dir.path().join(name);
            let mut args: Vec<&str> = tone.to_vec();
            args.extend_from_slice(codec);
            args.push(path_str(&path));
            ffmpeg(&args);
            (path, *container)
        })
        .collect();
    // Debian's ffmpeg has no AMR encoder: fifty 12.2 kbit/s frames of silence, by hand.
    let amr = dir.path().join("a.amr");
    let mut bytes = b"#!AMR\n".to_vec();
    for _ in 0..50 {
        bytes.push(0x3C);
        bytes.extend_from_slice(&[0; 31]);
    }
    std::fs::write(&amr, bytes).expect("write");
    files.push((amr, Container::Amr));

    let limits = FfmpegLimits::default();
    let mut problems = Vec::new();
    for (path, container) in &files {
        let bytes = std::fs::read(path).expect("read");
        let sniffed = sniff(&bytes[..bytes.len().min(SNIFF_LEN)]);
        if sniffed != *container {
            problems.push(format!("{}: sniffed as {sniffed:?}", path.display()));
            continue;
        }
        let demuxers = container.demuxers().expect("admitted");
        match probe(path, demuxers, &limits) {
            Ok(probed) if probed.audio.is_some() => {}
            other => problems.push(format!("{}: ffprobe gave {other:?}", path.display())),
        }
        let mut input = MediaInput::open_file(path).expect("open");
        let mut mp3 = Cursor::new(Vec::new());
        match transcode(&mut input, &mut mp3, &TranscodeOptions::default()) {
            Ok(report) if report.samples > 0 => {}
            other => problems.push(format!("{}: {other:?}", path.display())),
        }
    }
    // A video elementary stream opens (and has no audio).
    let m1v = dir.path().join("a.m1v");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64:duration=1",
        "-c:v",
        "mpeg1video",
        "-f",
        "mpeg1video",
        path_str(&m1v),
    ]);
    match probe(&m1v, "mpegvideo", &limits) {
        Ok(probed) if probed.audio.is_none() => {}
        other => problems.push(format!("m1v: {other:?}")),
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Through the service: a playlist stored by the storage API fails as a job with a clear
/// `not_media` error and a failure event; nothing is converted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_playlist_fails_as_a_job_with_a_clear_error() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = secret(dir.path());
    let service = env.start("storage,worker", &[]).await;
    let owner = Owner::new();
    let mut jobs = Vec::new();
    for (what, file) in crafted(dir.path(), &secret) {
        let job = JobId::new();
        let r = service.put_file(&job, &owner, &file).await;
        assert_eq!(r.status(), 201, "{what}");
        jobs.push((what, job));
    }
    for (what, job) in &jobs {
        let state = service.settled(job).await;
        assert_eq!(state.status, JobStatus::Failed, "{what}");
        let error = state.error.expect("an error");
        assert_eq!(error.code, ErrorCode::NotMedia, "{what}");
        assert!(
            error.message.contains("not a video or audio file"),
            "{what}: {}",
            error.message
        );
        assert_eq!(
            state.attempts, 1,
            "{what}: a permanent failure, not retried"
        );
    }
    for event in env.events(jobs.len()).await {
        assert!(
            matches!(
                event.outcome,
                JobOutcome::Failed {
                    code: ErrorCode::NotMedia,
                    ..
                }
            ),
            "{event:?}"
        );
    }
    assert_eq!(env.count("mp3s.files", mongodb::bson::doc! {}).await, 0);
}
