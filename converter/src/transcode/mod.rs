//! The transcoder: one upload in, one gapless mp3 out.
//!
//! [`transcode`] sniffs the container, tries the in-process fast path ([`decode_native`]) when
//! the container and codec are on its whitelist, and otherwise (or when the fast path gives up)
//! decodes with the ffmpeg CLI ([`decode_ffmpeg`]). Either way the decoder also reads the
//! source's metadata, which becomes the ID3 tag ([`tags`]) written ahead of the audio; with a
//! loudness target a first pass over the decoded audio measures it ([`loudness`]); then the PCM
//! goes through the same segment-parallel LAME encoder ([`encode`]) into an [`Mp3Sink`].

pub mod decode_ffmpeg;
pub mod decode_native;
pub mod encode;
pub mod error;
pub mod input;
pub mod loudness;
pub mod mkv_padding;
pub mod mp4_edits;
pub mod pcm;
pub mod profile;
pub mod sink;
pub mod sniff;
pub mod tags;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};
pub use vid2mp3_contracts::LoudnessTarget;

use self::decode_ffmpeg::FfmpegDecode;
pub use self::decode_ffmpeg::FfmpegLimits;
use self::decode_native::{GaveUp, NativeDecode};
use self::encode::{EncodeFailure, EncodeOutcome, EncodeParams, encode_stream_tagged};
pub use self::error::{FailureKind, TranscodeError};
pub use self::input::MediaInput;
pub use self::loudness::Levelling;
use self::loudness::{LoudnessMeter, apply};
use self::mp4_edits::{EditInfo, read_audio_edit};
use self::pcm::{PcmFormat, RateConverter, mp3_rate_for};
pub use self::profile::Profile;
pub use self::sink::Mp3Sink;
use self::sniff::{Container, SNIFF_LEN, sniff};
pub use self::tags::{Id3Version, TagOptions, TagSummary};
use self::tags::{SourceMetadata, TagPlan};

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
    pub tags: TagOptions,
    /// Level the audio to this integrated loudness (a second decoding pass); `None` leaves it.
    pub loudness: Option<LoudnessTarget>,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        TranscodeOptions {
            profile: Profile::Standard,
            ffmpeg: FfmpegLimits::default(),
            segment_seconds: 5.0,
            workers: None,
            stated_duration: StatedDuration::default(),
            tags: TagOptions::new(None),
            loudness: None,
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
    pub tag: TagSummary,
    /// What the loudness pass measured and the gain it chose, when the job levels.
    pub levelling: Option<Levelling>,
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
        match fast_path(input, container, demuxers, sink, opts) {
            Ok(report) => return Ok(report),
            Err(FastPathEnd::Failed(e)) => return Err(e),
            Err(FastPathEnd::GaveUp(why)) => why,
            Err(FastPathEnd::GaveUpMidStream(why)) => {
                sink.restart().map_err(TranscodeError::Output)?;
                why
            }
        }
    } else {
        format!("{container:?} has no fast path")
    };
    info!(%reason, ?container, "decoding with ffmpeg");
    ffmpeg_path(input, container, demuxers, reason, sink, opts)
}

/// Why the fast path did not produce the mp3.
enum FastPathEnd {
    /// It declined or stopped before writing; ffmpeg takes over.
    GaveUp(String),
    /// It stopped after the sink had bytes, which must go first.
    GaveUpMidStream(String),
    /// The encoder or the sink failed: ffmpeg would fail the same way.
    Failed(TranscodeError),
}

impl From<GaveUp> for FastPathEnd {
    fn from(gave_up: GaveUp) -> Self {
        FastPathEnd::GaveUp(gave_up.0)
    }
}

fn fast_path(
    input: &mut MediaInput,
    container: Container,
    demuxers: &str,
    sink: &mut dyn Mp3Sink,
    opts: &TranscodeOptions,
) -> Result<TranscodeReport, FastPathEnd> {
    let local_file = input.path().map(Path::to_owned);
    let mut decode = NativeDecode::open(input, container)?;
    let metadata = decode.source_metadata().clone();
    let duration = decode.stated_duration();
    if let Some(duration) = duration {
        opts.stated_duration.set(duration);
    }
    // ffmpeg takes the cover frame from a file: a source without one is copied first, and from
    // then on decoded from that copy.
    let mut media = local_file;
    if media.is_none() && metadata.wants_frame_cover(&opts.tags) {
        drop(decode);
        let spooled = input
            .ensure_file()
            .map_err(|e| FastPathEnd::Failed(TranscodeError::Input(e)))?;
        media = Some(spooled.to_owned());
        decode = NativeDecode::open(input, container)?;
    }
    let (id3, tag) = make_tag(&metadata, duration, media.as_deref(), demuxers, opts);
    let levelling = match opts.loudness {
        Some(target) => {
            let measured =
                measure(decode.format(), |buf| decode.read(buf)).map_err(|e| match e {
                    MeasureFailure::Source(g) => FastPathEnd::from(g),
                    MeasureFailure::Meter(e) => FastPathEnd::Failed(e),
                })?;
            drop(decode);
            decode = NativeDecode::open(input, container)?;
            Some(Levelling::new(measured, target))
        }
        None => None,
    };
    let format = decode.format();
    let codec = decode.codec();
    let gain = levelling.map(|l| l.factor());
    match encode_pcm(format, opts, sink, &id3, gain, |buf| decode.read(buf)) {
        Ok((outcome, rate)) => Ok(report(
            container,
            DecodePath::Native { codec },
            format,
            rate,
            outcome,
            tag,
            levelling,
        )),
        Err(EncodeFailure::Encode(e)) => Err(FastPathEnd::Failed(e)),
        Err(EncodeFailure::Source(gave_up)) => Err(FastPathEnd::GaveUpMidStream(gave_up.0)),
    }
}

fn ffmpeg_path(
    input: &mut MediaInput,
    container: Container,
    demuxers: &str,
    reason: String,
    sink: &mut dyn Mp3Sink,
    opts: &TranscodeOptions,
) -> Result<TranscodeReport, TranscodeError> {
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
    let metadata = decode.source_metadata().clone();
    let media: Option<PathBuf> = input.path().map(Path::to_owned);
    let (id3, tag) = make_tag(&metadata, stated, media.as_deref(), demuxers, opts);
    let levelling = match opts.loudness {
        Some(target) => {
            let measured = measure(format, cut_at(limit, format, |buf| decode.read(buf))).map_err(
                |e| match e {
                    MeasureFailure::Source(e) | MeasureFailure::Meter(e) => e,
                },
            )?;
            decode = FfmpegDecode::start(input, demuxers, &opts.ffmpeg)?;
            Some(Levelling::new(measured, target))
        }
        None => None,
    };
    let gain = levelling.map(|l| l.factor());
    let result = encode_pcm(
        format,
        opts,
        sink,
        &id3,
        gain,
        cut_at(limit, format, |buf| decode.read(buf)),
    );
    match result {
        Ok((outcome, rate)) => Ok(report(
            container,
            DecodePath::Ffmpeg { reason },
            format,
            rate,
            outcome,
            tag,
            levelling,
        )),
        Err(EncodeFailure::Encode(e) | EncodeFailure::Source(e)) => Err(e),
    }
}

/// A PCM source that ends after `limit` samples per channel, if given.
fn cut_at<E>(
    limit: Option<u64>,
    format: PcmFormat,
    mut pull: impl FnMut(&mut Vec<f32>) -> Result<bool, E>,
) -> impl FnMut(&mut Vec<f32>) -> Result<bool, E> {
    let ch = usize::from(format.channels).max(1);
    let mut emitted = 0u64;
    move |buf: &mut Vec<f32>| {
        let before = buf.len();
        let more = pull(buf)?;
        if let Some(limit) = limit {
            let room = limit.saturating_sub(emitted) as usize;
            if (buf.len() - before) / ch > room {
                buf.truncate(before + room * ch);
            }
        }
        emitted += ((buf.len() - before) / ch) as u64;
        Ok(more)
    }
}

/// The ID3 tag for `metadata`, its cover made from `media` (opened with one of `demuxers` only).
/// A tag that cannot be written is left out (logged): it never fails the conversion.
fn make_tag(
    metadata: &SourceMetadata,
    duration: Option<Duration>,
    media: Option<&Path>,
    demuxers: &str,
    opts: &TranscodeOptions,
) -> (Vec<u8>, TagSummary) {
    let plan = TagPlan::new(metadata, duration, &opts.tags);
    let cover = match plan.cover_budget() {
        Ok(budget) => tags::cover::make(
            metadata,
            media,
            demuxers,
            duration,
            budget,
            &opts.tags,
            &opts.ffmpeg,
        ),
        Err(e) => {
            warn!(error = %e, "no room for a cover");
            None
        }
    };
    match plan.encode(cover.as_ref()) {
        Ok(tag) => tag,
        Err(e) => {
            warn!(error = %e, "the mp3 gets no ID3 tag");
            (Vec::new(), TagSummary::default())
        }
    }
}

enum MeasureFailure<E> {
    Source(E),
    Meter(TranscodeError),
}

/// The loudness pass: decodes everything once and measures it.
fn measure<E>(
    format: PcmFormat,
    mut pull: impl FnMut(&mut Vec<f32>) -> Result<bool, E>,
) -> Result<loudness::Measurement, MeasureFailure<E>> {
    let meter_error = |e| MeasureFailure::Meter(TranscodeError::Loudness(e));
    let mut meter = LoudnessMeter::new(format).map_err(meter_error)?;
    let ch = usize::from(format.channels).max(1);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let more = pull(&mut buf).map_err(MeasureFailure::Source)?;
        let whole = buf.len() / ch * ch;
        meter.add(&buf[..whole]).map_err(meter_error)?;
        if !more {
            break;
        }
    }
    let measured = meter.finish().map_err(meter_error)?;
    info!(
        integrated_lufs = format!("{:.1}", measured.integrated_lufs),
        true_peak_dbtp = format!("{:.1}", measured.true_peak_dbtp),
        "loudness measured"
    );
    Ok(measured)
}

fn report(
    container: Container,
    decoder: DecodePath,
    format: PcmFormat,
    rate: u32,
    outcome: EncodeOutcome,
    tag: TagSummary,
    levelling: Option<Levelling>,
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
        tag,
        levelling,
    }
}

enum Stage<E> {
    Source(E),
    Resample(pcm::ResampleError),
}

/// Encodes decoded PCM, resampling first when the source rate is not an MP3 rate.
fn encode_pcm<E, P>(
    format: PcmFormat,
    opts: &TranscodeOptions,
    sink: &mut dyn Mp3Sink,
    id3: &[u8],
    gain: Option<f32>,
    mut source: P,
) -> Result<(EncodeOutcome, u32), EncodeFailure<E>>
where
    P: FnMut(&mut Vec<f32>) -> Result<bool, E>,
{
    let rate = mp3_rate_for(format.sample_rate);
    let mut params = EncodeParams::new(rate, format.channels, opts.profile, opts.segment_seconds);
    if let Some(workers) = opts.workers {
        params.workers = workers.max(1);
    }
    let mut pull = |buf: &mut Vec<f32>| {
        let before = buf.len();
        let more = source(buf)?;
        if let Some(factor) = gain {
            apply(&mut buf[before..], factor);
        }
        Ok(more)
    };
    if rate == format.sample_rate {
        return encode_stream_tagged(params, id3, sink, pull).map(|o| (o, rate));
    }
    let mut converter = RateConverter::new(format.sample_rate, rate, format.channels)
        .map_err(|e| EncodeFailure::Encode(TranscodeError::Resample(e)))?;
    let mut decoded = Vec::new();
    let mut drained = false;
    let result = encode_stream_tagged(params, id3, sink, |buf| {
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
            Err(EncodeFailure::Encode(TranscodeError::Resample(e)))
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
