//! The fallback decoder: Debian's `ffmpeg` CLI, used as a decoder only.
//!
//! It covers what the fast path does not (AVI, FLV, MPEG-TS, ASF/WMA, AC-3/E-AC-3, multichannel
//! AAC, HE-AAC, damaged files it can partly recover). It writes raw f32 PCM to a pipe and our
//! own encoder does the rest, so both paths give the same kind of mp3. Each run is bounded: a
//! wall-clock limit (the process is killed) and an address-space limit (`RLIMIT_AS`).
//!
//! Each run is also confined to the one file it is given: `-protocol_whitelist file` (no
//! network, no `concat:`/`subfile:`/`pipe:` tricks; the path is passed as a `file:` URL, so a
//! name that looks like a protocol is still a file), and `-format_whitelist` with the demuxers
//! of the container the sniffer named, so a playlist or script demuxer (HLS, ffconcat), which
//! would open other local files by name with the `file` protocol alone, is never used. The
//! output is a pipe ffmpeg writes; input options do not apply to it.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::error::TranscodeError;
use super::input::MediaInput;
use super::pcm::PcmFormat;
use super::tags::SourceMetadata;
use super::tags::from_ffprobe::{ProbeJson, seconds};

/// Bounds on one ffmpeg run.
#[derive(Debug, Clone)]
pub struct FfmpegLimits {
    /// Wall-clock limit for each ffprobe and ffmpeg run: a backstop. The job worker's own limit
    /// follows the media's duration, which is learned only after ffprobe, and it ends a run
    /// through `cancel`.
    pub timeout: Duration,
    /// Address-space limit. Debian's ffmpeg maps ~200 MB of shared libraries before it starts;
    /// 512 MiB was measured to be enough to decode, 1 GiB leaves room for large containers.
    pub max_address_space: u64,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Set by the caller to kill a running ffprobe or ffmpeg: a child that hangs without output
    /// would otherwise hold the job until `timeout`, since nothing reads or writes to notice.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for FfmpegLimits {
    fn default() -> Self {
        FfmpegLimits {
            timeout: Duration::from_secs(600),
            max_address_space: 1 << 30,
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            cancel: None,
        }
    }
}

/// How often a running child's watchdog looks at the caller's cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Keeps the tail of a child's stderr: the last lines say why it failed.
const STDERR_KEEP: usize = 4096;

/// Every ffmpeg and ffprobe run starts here (the decoder, the probe, the cover), so what confines
/// one confines all.
pub(crate) fn limited(program: &Path, limits: &FfmpegLimits) -> Command {
    let mut cmd = Command::new(program);
    let max = limits.max_address_space as libc::rlim_t;
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit, which is
    // async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: max,
                rlim_max: max,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Input options that confine a run to `path`, opened with one of `demuxers` (module docs).
pub(crate) fn confined_input(cmd: &mut Command, demuxers: &str) {
    cmd.args(["-protocol_whitelist", "file", "-format_whitelist", demuxers]);
}

/// `path` as a `file:` URL: ffmpeg would read `concat:a|b` or `http:x` as a protocol otherwise.
pub(crate) fn file_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    url
}

/// Kills a child if it is still running when the deadline passes or the caller cancels.
struct Watchdog {
    stop: Option<Sender<()>>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn start(pid: u32, timeout: Duration, cancel: Option<Arc<AtomicBool>>) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let deadline = Instant::now() + timeout;
        let thread = thread::spawn(move || {
            let due = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let step = if cancel.is_some() {
                    left.min(CANCEL_POLL)
                } else {
                    left
                };
                match stopped.recv_timeout(step) {
                    Err(RecvTimeoutError::Timeout) => {
                        let cancelled = cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
                        if cancelled || Instant::now() >= deadline {
                            break true;
                        }
                    }
                    // Disarmed (or its owner is gone).
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break false,
                }
            };
            if due {
                flag.store(true, Ordering::SeqCst);
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: plain syscall; the pid is our own child, not yet reaped (the
                    // owner disarms the watchdog before waiting on it).
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        });
        Watchdog {
            stop: Some(stop),
            fired,
            thread: Some(thread),
        }
    }

    /// Stops the watchdog; returns whether it had already killed the child.
    fn disarm(&mut self) -> bool {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.fired.load(Ordering::SeqCst)
    }
}

fn collect_stderr(stderr: ChildStderr) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        let mut stderr = stderr;
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * STDERR_KEEP {
                        tail.drain(..tail.len() - STDERR_KEEP);
                    }
                }
            }
        }
        let text = String::from_utf8_lossy(&tail);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines[lines.len().saturating_sub(3)..].join("; ")
    })
}

/// What a bounded run printed.
pub(crate) enum Captured {
    /// Everything it printed on stdout.
    Output(Vec<u8>),
    /// It printed more than the caller takes; it was stopped.
    TooLong,
}

/// Runs `cmd` (made by [`limited`]) to its end and keeps its stdout, at most `max_stdout` bytes:
/// a child that prints more is killed and the run reports [`Captured::TooLong`]. Fails with the
/// tail of its stderr when it exits unsuccessfully, and with a timeout past `limits.timeout`.
pub(crate) fn run_bounded(
    mut cmd: Command,
    limits: &FfmpegLimits,
    max_stdout: usize,
) -> Result<Captured, TranscodeError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(TranscodeError::DecoderUnavailable)?;
    let mut watchdog = Watchdog::start(child.id(), limits.timeout, limits.cancel.clone());
    let stderr = child.stderr.take().map(collect_stderr);
    let mut stdout = Vec::new();
    let read = match child.stdout.take() {
        Some(out) => {
            let limit = u64::try_from(max_stdout)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            out.take(limit).read_to_end(&mut stdout).map(|_| ())
        }
        None => Ok(()),
    };
    let too_long = stdout.len() > max_stdout;
    if too_long {
        let _ = child.kill();
    }
    let timed_out = watchdog.disarm();
    let status = child.wait().map_err(TranscodeError::DecoderUnavailable)?;
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if timed_out {
        return Err(TranscodeError::Timeout(limits.timeout));
    }
    if too_long {
        return Ok(Captured::TooLong);
    }
    read.map_err(TranscodeError::DecoderUnavailable)?;
    if !status.success() {
        return Err(TranscodeError::Undecodable(if stderr.is_empty() {
            format!(
                "{} exited with {status}",
                cmd.get_program().to_string_lossy()
            )
        } else {
            stderr
        }));
    }
    Ok(Captured::Output(stdout))
}

/// What ffprobe says about the first audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbedAudio {
    pub sample_rate: u32,
    pub channels: u32,
    /// What the stream or container states; decoding may find more or less.
    pub duration: Option<Duration>,
}

/// What ffprobe prints for one file at most. A source with tens of thousands of chapters prints
/// more; it is probed again without them ([`probe`]).
const MAX_PROBE_JSON: usize = 4 << 20;

/// What one ffprobe run says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// The first audio stream; `None` when the file is media without audio.
    pub audio: Option<ProbedAudio>,
    pub metadata: SourceMetadata,
}

/// Runs ffprobe once for the audio format, the metadata, the chapters and the pictures, opening
/// the file with one of `demuxers` only. When its answer is larger than [`MAX_PROBE_JSON`] (a
/// crafted chapter list), it runs again without the chapters, which are then left out.
pub fn probe(path: &Path, demuxers: &str, limits: &FfmpegLimits) -> Result<Probed, TranscodeError> {
    let run = |with_chapters: bool| {
        let mut cmd = limited(&limits.ffprobe, limits);
        cmd.args(["-v", "error"]);
        confined_input(&mut cmd, demuxers);
        cmd.args(["-show_format", "-show_streams"]);
        if with_chapters {
            cmd.arg("-show_chapters");
        }
        cmd.args(["-of", "json"]).arg(file_url(path));
        run_bounded(cmd, limits, MAX_PROBE_JSON).map_err(|e| match e {
            TranscodeError::Undecodable(why) => TranscodeError::NotMedia(why),
            other => other,
        })
    };
    let json = match run(true)? {
        Captured::Output(json) => json,
        Captured::TooLong => {
            warn!(
                "ffprobe's answer is over {MAX_PROBE_JSON} bytes; probing again without chapters"
            );
            match run(false)? {
                Captured::Output(json) => json,
                Captured::TooLong => {
                    return Err(TranscodeError::NotMedia(format!(
                        "ffprobe describes this file in more than {MAX_PROBE_JSON} bytes"
                    )));
                }
            }
        }
    };
    parse_probe(&json)
}

/// Reads ffprobe's JSON. The duration is the audio stream's when it has one (Matroska often
/// has none there), else the container's; a value no `Duration` can hold (negative, not a
/// number, absurdly long) counts as not stated.
fn parse_probe(json: &[u8]) -> Result<Probed, TranscodeError> {
    let probe: ProbeJson = serde_json::from_slice(json)
        .map_err(|e| TranscodeError::NotMedia(format!("ffprobe's answer does not parse: {e}")))?;
    let metadata = probe.metadata();
    let Some(stream) = probe.first_audio() else {
        return Ok(Probed {
            audio: None,
            metadata,
        });
    };
    let rate = stream
        .sample_rate
        .as_deref()
        .and_then(|r| r.trim().parse::<u32>().ok());
    match (rate, stream.channels) {
        (Some(rate), Some(ch)) if rate > 0 && ch > 0 => Ok(Probed {
            audio: Some(ProbedAudio {
                sample_rate: rate,
                channels: ch,
                duration: stream
                    .duration
                    .as_deref()
                    .and_then(seconds)
                    .or_else(|| probe.format.as_ref()?.duration.as_deref().and_then(seconds)),
            }),
            metadata,
        }),
        _ => Err(TranscodeError::Undecodable(format!(
            "the audio stream has no usable format (sample rate {:?}, channels {:?})",
            stream.sample_rate, stream.channels
        ))),
    }
}

/// A running ffmpeg decode.
pub struct FfmpegDecode {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    watchdog: Watchdog,
    timeout: Duration,
    format: PcmFormat,
    stated_duration: Option<Duration>,
    metadata: SourceMetadata,
    /// Bytes of a sample split across two reads.
    carry: Vec<u8>,
    read_buf: Vec<u8>,
    done: bool,
}

impl FfmpegDecode {
    /// Probes the input and starts decoding its first audio stream to interleaved f32, mono kept
    /// mono and anything with more channels downmixed to stereo by ffmpeg's standard matrices.
    /// ffmpeg may open it with one of `demuxers` only (see [`Container::demuxers`]).
    ///
    /// [`Container::demuxers`]: super::sniff::Container::demuxers
    pub fn start(
        input: &mut MediaInput,
        demuxers: &str,
        limits: &FfmpegLimits,
    ) -> Result<Self, TranscodeError> {
        // ffmpeg must be able to seek (an MP4 may keep its index at the end), so a source with
        // no file behind it is spooled to a temporary file first (once: a second pass reuses it).
        let path = input
            .ensure_file()
            .map_err(TranscodeError::Input)?
            .to_owned();
        let probed = probe(&path, demuxers, limits)?;
        let audio = probed.audio.ok_or(TranscodeError::NoAudio)?;
        let channels: u8 = if audio.channels == 1 { 1 } else { 2 };
        let mut cmd = limited(&limits.ffmpeg, limits);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        confined_input(&mut cmd, demuxers);
        cmd.arg("-i")
            .arg(file_url(&path))
            .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
            .args(["-ac", &channels.to_string()])
            .args(["-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        debug!(?cmd, "starting the ffmpeg decoder");
        let mut child = cmd.spawn().map_err(TranscodeError::DecoderUnavailable)?;
        let watchdog = Watchdog::start(child.id(), limits.timeout, limits.cancel.clone());
        let stderr = child.stderr.take().map(collect_stderr);
        let Some(stdout) = child.stdout.take() else {
            return Err(TranscodeError::DecoderUnavailable(io::Error::other(
                "ffmpeg's stdout was not captured",
            )));
        };
        Ok(FfmpegDecode {
            child,
            stdout,
            stderr,
            watchdog,
            timeout: limits.timeout,
            format: PcmFormat {
                sample_rate: audio.sample_rate,
                channels,
            },
            stated_duration: audio.duration,
            metadata: probed.metadata,
            carry: Vec::new(),
            read_buf: vec![0u8; 64 * 1024],
            done: false,
        })
    }

    pub fn format(&self) -> PcmFormat {
        self.format
    }

    /// The duration ffprobe read from the stream or container, if it states one.
    pub fn stated_duration(&self) -> Option<Duration> {
        self.stated_duration
    }

    /// The source's tags, chapters and pictures, from the same ffprobe run.
    pub fn source_metadata(&self) -> &SourceMetadata {
        &self.metadata
    }

    /// Appends the next samples to `out`; `Ok(false)` once ffmpeg has finished successfully.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, TranscodeError> {
        if self.done {
            return Ok(false);
        }
        let n = loop {
            match self.stdout.read(&mut self.read_buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TranscodeError::DecoderUnavailable(e)),
            }
        };
        if n == 0 {
            self.done = true;
            return self.finish().map(|()| false);
        }
        self.carry.extend_from_slice(&self.read_buf[..n]);
        let whole = self.carry.len() / 4 * 4;
        out.extend(
            self.carry[..whole]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        self.carry.drain(..whole);
        Ok(true)
    }

    fn finish(&mut self) -> Result<(), TranscodeError> {
        let timed_out = self.watchdog.disarm();
        let status = self
            .child
            .wait()
            .map_err(TranscodeError::DecoderUnavailable)?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if timed_out {
            return Err(TranscodeError::Timeout(self.timeout));
        }
        if !status.success() {
            let why = match status.signal() {
                // An allocation refused under RLIMIT_AS usually ends in SIGSEGV or SIGABRT.
                Some(sig) => format!("ffmpeg was killed by signal {sig} (memory limit?) {stderr}"),
                None => format!("ffmpeg exited with {status}: {stderr}"),
            };
            return Err(TranscodeError::Undecodable(why));
        }
        if !stderr.is_empty() {
            debug!(%stderr, "ffmpeg recovered from errors");
        }
        Ok(())
    }
}

impl Drop for FfmpegDecode {
    fn drop(&mut self) {
        if !self.done {
            // Abandoned mid-stream (the encoder failed): stop the child and reap it.
            let _ = self.child.kill();
            self.watchdog.disarm();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(json: &str) -> Option<ProbedAudio> {
        parse_probe(json.as_bytes()).unwrap().audio
    }

    #[test]
    fn probe_output_gives_the_stream_duration_or_else_the_containers() {
        let wav = r#"{"streams": [{"index": 0, "codec_type": "audio", "sample_rate": "44100",
                      "channels": 2, "duration": "3.000000"}],
                      "format": {"duration": "3.100000"}}"#;
        assert_eq!(
            audio(wav),
            Some(ProbedAudio {
                sample_rate: 44100,
                channels: 2,
                duration: Some(Duration::from_secs(3)),
            })
        );
        let mkv = r#"{"streams": [{"index": 0, "codec_type": "video"},
                      {"index": 1, "codec_type": "audio", "sample_rate": "48000", "channels": 1}],
                      "format": {"duration": "2.5"}}"#;
        assert_eq!(
            audio(mkv).and_then(|a| a.duration),
            Some(Duration::from_millis(2500))
        );
    }

    #[test]
    fn absurd_durations_count_as_not_stated() {
        for claim in ["-5", "inf", "nan", "1e300", "N/A"] {
            let out = format!(
                r#"{{"streams": [{{"index": 0, "codec_type": "audio", "sample_rate": "8000",
                    "channels": 1, "duration": "{claim}"}}], "format": {{"duration": "{claim}"}}}}"#
            );
            assert_eq!(audio(&out).and_then(|a| a.duration), None, "{claim}");
        }
    }

    #[test]
    fn media_without_audio_has_no_audio_stream() {
        let video_only = r#"{"streams": [{"index": 0, "codec_type": "video"}],
                             "format": {"duration": "1.000000"}}"#;
        let probed = parse_probe(video_only.as_bytes()).unwrap();
        assert_eq!(probed.audio, None);
        assert!(probed.metadata.video);
        let broken = r#"{"streams": [{"index": 0, "codec_type": "audio", "sample_rate": "0",
                         "channels": 2}]}"#;
        assert!(parse_probe(broken.as_bytes()).is_err());
        assert!(matches!(
            parse_probe(b"not json"),
            Err(TranscodeError::NotMedia(_))
        ));
    }

    #[test]
    fn a_bounded_run_stops_a_child_that_prints_too_much() {
        let limits = FfmpegLimits::default();
        let mut cmd = limited(Path::new("yes"), &limits);
        cmd.arg("chapter");
        assert!(matches!(
            run_bounded(cmd, &limits, 4096),
            Ok(Captured::TooLong)
        ));
        let mut cmd = limited(Path::new("printf"), &limits);
        cmd.arg("cover");
        match run_bounded(cmd, &limits, 4096) {
            Ok(Captured::Output(out)) => assert_eq!(out, b"cover"),
            _ => panic!("printf's output"),
        }
        let cmd = limited(Path::new("false"), &limits);
        assert!(matches!(
            run_bounded(cmd, &limits, 4096),
            Err(TranscodeError::Undecodable(_))
        ));
    }

    #[test]
    fn a_cancelled_watchdog_kills_its_child_long_before_its_timeout() {
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut watchdog = Watchdog::start(
            child.id(),
            Duration::from_secs(3600),
            Some(Arc::clone(&cancel)),
        );
        cancel.store(true, Ordering::Relaxed);
        // As the decoder does it: disarm before reaping, so the pid cannot be reused meanwhile.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !watchdog.fired.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the watchdog did not act on the cancel"
            );
            thread::sleep(Duration::from_millis(10));
        }
        assert!(watchdog.disarm(), "the watchdog says it killed the child");
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
