//! The transcoder: one upload in, one gapless mp3 out.
//!
//! [`transcode`] sniffs the container, tries the in-process fast path ([`decode_native`]) when
//! the container and codec are on its whitelist, and otherwise (or when the fast path gives up)
//! decodes with the ffmpeg CLI ([`decode_ffmpeg`]). Either way the PCM goes through the same
//! segment-parallel LAME encoder ([`encode`]) into an [`Mp3Sink`].

pub mod decode_ffmpeg;
pub mod decode_native;
pub mod encode;
pub mod error;
pub mod input;
pub mod mkv_padding;
pub mod mp4_edits;
pub mod pcm;
pub mod profile;
pub mod sink;
pub mod sniff;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

use self::decode_ffmpeg::FfmpegDecode;
pub use self::decode_ffmpeg::FfmpegLimits;
use self::decode_native::NativeDecode;
use self::encode::{EncodeFailure, EncodeOutcome, EncodeParams, encode_stream};
pub use self::error::{FailureKind, TranscodeError};
pub use self::input::MediaInput;
use self::mp4_edits::{EditInfo, read_audio_edit};
use self::pcm::{PcmFormat, RateConverter, mp3_rate_for};
pub use self::profile::Profile;
pub use self::sink::Mp3Sink;
use self::sniff::{Container, SNIFF_LEN, sniff};

/// How to convert.
#[derive(Debug, Clone)]
pub struct TranscodeOptions {
    pub profile: Profile,
    pub ffmpeg: FfmpegLimits,
    /// Length of the segments encoded in parallel. 5 s was measured to give 1.85–1.9× on 2 cores.
    pub segment_seconds: f64,
    /// LAME instances at once; `None` for one per core.
    pub workers: Option<usize>,
    /// Told the media's duration as soon as the container (or ffprobe) states it, so the caller
    /// can bound the conversion by it while it runs.
    pub stated_duration: StatedDuration,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        TranscodeOptions {
            profile: Profile::Standard,
            ffmpeg: FfmpegLimits::default(),
            segment_seconds: 5.0,
            workers: None,
            stated_duration: StatedDuration::default(),
        }
    }
}

/// The duration the media says it has, shared between the transcoder (on its blocking thread)
/// and whoever waits for it. The first value stated wins: a fast path that gives up and the
/// ffmpeg fallback describe the same file, and a limit must not move twice.
#[derive(Debug, Clone, Default)]
pub struct StatedDuration(Arc<(OnceLock<Duration>, Notify)>);

impl StatedDuration {
    /// Records `duration` unless one was stated before.
    pub fn set(&self, duration: Duration) {
        if self.0.0.set(duration).is_ok() {
            // notify_one keeps a permit when no one waits yet, so a later `known` sees it too.
            self.0.1.notify_one();
        }
    }

    pub fn get(&self) -> Option<Duration> {
        self.0.0.get().copied()
    }

    /// Waits until a duration is stated (forever for media that never states one).
    pub async fn known(&self) -> Duration {
        loop {
            if let Some(duration) = self.get() {
                return duration;
            }
            self.0.1.notified().await;
        }
    }
}

/// `samples` at `rate` as a duration; `None` when it cannot be one (no rate, or a length no
/// `Duration` holds), which callers treat as "not stated".
pub fn samples_to_duration(samples: u64, rate: u32) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    Duration::try_from_secs_f64(samples as f64 / f64::from(rate)).ok()
}

/// Which decoder produced the PCM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodePath {
    Native {
        codec: &'static str,
    },
    /// ffmpeg, and why the fast path was not used.
    Ffmpeg {
        reason: String,
    },
}

/// A finished conversion.
#[derive(Debug, Clone)]
pub struct TranscodeReport {
    pub container: Container,
    pub decoder: DecodePath,
    pub source_rate: u32,
    pub sample_rate: u32,
    pub channels: u8,
    /// Samples per channel in the mp3, encoder delay and padding excluded.
    pub samples: u64,
    pub frames: u32,
    pub bytes: u64,
}

impl TranscodeReport {
    pub fn duration_secs(&self) -> f64 {
        self.samples as f64 / f64::from(self.sample_rate)
    }
}

/// Converts `input` into an mp3 in `sink`.
pub fn transcode(
    input: &mut MediaInput,
    sink: &mut dyn Mp3Sink,
    opts: &TranscodeOptions,
) -> Result<TranscodeReport, TranscodeError> {
    let mut head = [0u8; SNIFF_LEN];
    let n = input.read_head(&mut head).map_err(TranscodeError::Input)?;
    let container = sniff(&head[..n]);
    let demuxers = match (container, container.demuxers()) {
        (Container::Empty, _) => return Err(TranscodeError::EmptyInput),
        (Container::NotMedia(what), _) => {
            return Err(TranscodeError::NotMedia(format!("the upload is {what}")));
        }
        (_, Some(demuxers)) => demuxers,
        (_, None) => {
            return Err(TranscodeError::NotMedia(
                "its first bytes match no audio or video container we read".into(),
            ));
        }
    };

    let reason = if container.has_fast_path() {
        match NativeDecode::open(input, container) {
            Ok(mut decode) => {
                let format = decode.format();
                let codec = decode.codec();
                if let Some(duration) = decode.stated_duration() {
                    opts.stated_duration.set(duration);
                }
                match encode_pcm(format, opts, sink, |buf| decode.read(buf)) {
                    Ok((outcome, rate)) => {
                        return Ok(report(
                            container,
                            DecodePath::Native { codec },
                            format,
                            rate,
                            outcome,
                        ));
                    }
                    Err(EncodeFailure::Encode(e)) => return Err(e),
                    Err(EncodeFailure::Source(gave_up)) => {
                        sink.restart().map_err(TranscodeError::Output)?;
                        gave_up.0
                    }
                }
            }
            Err(gave_up) => gave_up.0,
        }
    } else {
        format!("{container:?} has no fast path")
    };
    info!(%reason, ?container, "decoding with ffmpeg");

    // ffmpeg applies the start of an MP4 edit list (the AAC priming) but not its end, so the
    // encoder padding of the last AAC frame would survive; the stated length cuts it.
    let stated_length = if container == Container::IsoMp4 {
        let len = input.len();
        match read_audio_edit(input.reader(), len) {
            Ok(EditInfo::Simple(edit)) => Some(edit),
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "cannot read the MP4 edit list");
                None
            }
        }
    } else {
        None
    };
    let mut decode = FfmpegDecode::start(input, demuxers, &opts.ffmpeg)?;
    let format = decode.format();
    let limit = stated_length.and_then(|e| e.length_samples(format.sample_rate));
    let stated = match limit {
        Some(samples) => samples_to_duration(samples, format.sample_rate),
        None => decode.stated_duration(),
    };
    if let Some(duration) = stated {
        opts.stated_duration.set(duration);
    }
    let ch = usize::from(format.channels);
    let mut emitted = 0u64;
    let result = encode_pcm(format, opts, sink, |buf| {
        let before = buf.len();
        let more = decode.read(buf)?;
        if let Some(limit) = limit {
            let room = limit.saturating_sub(emitted) as usize;
            if (buf.len() - before) / ch > room {
                buf.truncate(before + room * ch);
            }
        }
        emitted += ((buf.len() - before) / ch) as u64;
        Ok(more)
    });
    match result {
        Ok((outcome, rate)) => Ok(report(
            container,
            DecodePath::Ffmpeg { reason },
            format,
            rate,
            outcome,
        )),
        Err(EncodeFailure::Encode(e) | EncodeFailure::Source(e)) => Err(e),
    }
}

fn report(
    container: Container,
    decoder: DecodePath,
    format: PcmFormat,
    rate: u32,
    outcome: EncodeOutcome,
) -> TranscodeReport {
    TranscodeReport {
        container,
        decoder,
        source_rate: format.sample_rate,
        sample_rate: rate,
        channels: format.channels,
        samples: outcome.samples,
        frames: outcome.frames,
        bytes: outcome.bytes,
    }
}

enum Stage<E> {
    Source(E),
    Resample(String),
}

/// Encodes decoded PCM, resampling first when the source rate is not an MP3 rate.
fn encode_pcm<E, P>(
    format: PcmFormat,
    opts: &TranscodeOptions,
    sink: &mut dyn Mp3Sink,
    mut pull: P,
) -> Result<(EncodeOutcome, u32), EncodeFailure<E>>
where
    P: FnMut(&mut Vec<f32>) -> Result<bool, E>,
{
    let rate = mp3_rate_for(format.sample_rate);
    let mut params = EncodeParams::new(rate, format.channels, opts.profile, opts.segment_seconds);
    if let Some(workers) = opts.workers {
        params.workers = workers.max(1);
    }
    if rate == format.sample_rate {
        return encode_stream(params, sink, pull).map(|o| (o, rate));
    }
    let mut converter = RateConverter::new(format.sample_rate, rate, format.channels)
        .map_err(|e| EncodeFailure::Encode(TranscodeError::Encoder(e)))?;
    let mut decoded = Vec::new();
    let mut drained = false;
    let result = encode_stream(params, sink, |buf| {
        if drained {
            return Ok(false);
        }
        decoded.clear();
        let more = pull(&mut decoded).map_err(Stage::Source)?;
        converter.push(&decoded, buf).map_err(Stage::Resample)?;
        if !more {
            converter.finish(buf).map_err(Stage::Resample)?;
            drained = true;
        }
        Ok(true)
    });
    match result {
        Ok(outcome) => Ok((outcome, rate)),
        Err(EncodeFailure::Source(Stage::Source(e))) => Err(EncodeFailure::Source(e)),
        Err(EncodeFailure::Source(Stage::Resample(e))) => {
            Err(EncodeFailure::Encode(TranscodeError::Encoder(e)))
        }
        Err(EncodeFailure::Encode(e)) => Err(EncodeFailure::Encode(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stated_duration_wins_and_wakes_a_waiter() {
        let stated = StatedDuration::default();
        assert_eq!(stated.get(), None);
        let seen = stated.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let waiter = std::thread::spawn(move || {
            stated.set(Duration::from_secs(90));
            stated.set(Duration::from_secs(5));
        });
        let known = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), seen.known()).await });
        waiter.join().unwrap();
        assert_eq!(known, Ok(Duration::from_secs(90)));
        assert_eq!(seen.get(), Some(Duration::from_secs(90)));
    }

    #[test]
    fn sample_counts_become_durations_unless_absurd() {
        assert_eq!(
            samples_to_duration(44_100 * 60, 44_100),
            Some(Duration::from_secs(60))
        );
        assert_eq!(samples_to_duration(1, 0), None);
        // u64::MAX samples at 1 Hz is more seconds than a Duration holds after rounding to f64.
        assert_eq!(samples_to_duration(u64::MAX, 1), None);
        assert!(samples_to_duration(u64::MAX, 48_000).is_some());
    }
}
