//! MP3 encoding with LAME, split into segments that encode in parallel.
//!
//! The PCM is cut into segments whose lengths are multiples of 1152 samples, so every segment
//! starts on a frame boundary of the single continuous stream. Each segment gets its own LAME
//! instance with the bit reservoir off (no frame borrows bits from its predecessor, so frames
//! from different instances can be spliced), starts [`PRE_ROLL`] samples early to warm up the
//! psychoacoustic model, and runs [`POST_ROLL`] samples past its end so its last frame sees the
//! same look-ahead as in one continuous encode. The frames made from pre- and post-roll are
//! dropped. Measured (ARCHITECTURE.md) and tested below: the spliced frames are bit-identical to
//! one reservoir-off encoder. One Xing/LAME tag for the whole stream carries the exact length.

pub mod frame;
pub mod lame;
pub mod xing;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;

use tracing::debug;

use self::frame::{MpegVersion, split_frames};
use self::lame::{Lame, LameSettings};
use self::xing::{StreamSummary, TagLayout, crc16, seek_table};
use crate::transcode::error::TranscodeError;
use crate::transcode::profile::{Profile, RateControl, rate_control};
use crate::transcode::sink::Mp3Sink;

/// Segment boundaries are multiples of this many samples (one MPEG-1 frame, two MPEG-2 frames).
pub const GRANULE: usize = 1152;
/// Samples encoded before a segment and thrown away: two MPEG-1 frames.
pub const PRE_ROLL: usize = 2 * GRANULE;
/// Samples encoded after a segment and thrown away, covering LAME's look-ahead.
pub const POST_ROLL: usize = 2 * GRANULE;

/// What to encode and how to split the work.
#[derive(Debug, Clone, Copy)]
pub struct EncodeParams {
    pub sample_rate: u32,
    pub channels: u8,
    pub profile: Profile,
    /// Segment length in granules of 1152 samples.
    pub segment_granules: usize,
    /// LAME instances running at once.
    pub workers: usize,
}

impl EncodeParams {
    /// Segments of about `seconds`, one worker per core.
    pub fn new(sample_rate: u32, channels: u8, profile: Profile, seconds: f64) -> Self {
        let granules = (seconds * f64::from(sample_rate) / GRANULE as f64).round();
        EncodeParams {
            sample_rate,
            channels,
            profile,
            segment_granules: (granules as usize).max(1),
            workers: thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The finished stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOutcome {
    /// Source samples per channel in the mp3 (what a gapless decoder gives back).
    pub samples: u64,
    /// Audio frames, not counting the tag frame.
    pub frames: u32,
    /// Total bytes written, ID3 tag and Xing frame included.
    pub bytes: u64,
    pub encoder_delay: u32,
    pub padding: u32,
}

/// Why [`encode_stream`] stopped: the PCM source failed (its own error), or encoding did.
#[derive(Debug)]
pub enum EncodeFailure<E> {
    Source(E),
    Encode(TranscodeError),
}

struct Job {
    index: usize,
    pcm: Vec<f32>,
    /// Frames made from pre-roll, to drop.
    skip_frames: usize,
    /// Frames that belong to the segment; `None` for the last segment, which keeps all.
    keep_frames: Option<usize>,
}

struct SegmentFrames {
    bytes: Vec<u8>,
    lens: Vec<u16>,
}

/// Encodes PCM pulled from `pull` into `sink`.
///
/// `pull` appends interleaved samples (`channels` per frame, nominal range ±1) to the buffer it
/// is given and returns `Ok(false)` once the source is exhausted. Bytes reach the sink in order as
/// soon as each segment is done; the tag frame is patched in by [`Mp3Sink::finish`].
pub fn encode_stream<E, P>(
    params: EncodeParams,
    sink: &mut dyn Mp3Sink,
    pull: P,
) -> Result<EncodeOutcome, EncodeFailure<E>>
where
    P: FnMut(&mut Vec<f32>) -> Result<bool, E>,
{
    encode_stream_tagged(params, &[], sink, pull)
}

/// [`encode_stream`] with `id3` (an ID3v2 tag) written first, before the Xing frame.
pub fn encode_stream_tagged<E, P>(
    params: EncodeParams,
    id3: &[u8],
    sink: &mut dyn Mp3Sink,
    mut pull: P,
) -> Result<EncodeOutcome, EncodeFailure<E>>
where
    P: FnMut(&mut Vec<f32>) -> Result<bool, E>,
{
    let encode_err = |e: String| EncodeFailure::Encode(TranscodeError::Encoder(e));
    let version = MpegVersion::for_sample_rate(params.sample_rate).ok_or_else(|| {
        encode_err(format!(
            "{} Hz is not an MP3 sample rate",
            params.sample_rate
        ))
    })?;
    let settings = LameSettings {
        sample_rate: params.sample_rate,
        channels: params.channels,
        rate_control: rate_control(params.profile),
    };
    let choices = Lame::new(settings).map_err(encode_err)?.choices();
    let layout = TagLayout {
        sample_rate: params.sample_rate,
        channels: params.channels,
        cbr_kbps: match settings.rate_control {
            RateControl::Cbr { kbps } => Some(u32::from(kbps)),
            RateControl::Vbr { .. } => None,
        },
        lowpass_hz: choices.lowpass_hz,
        quality: 100u32.saturating_sub(10 * choices.vbr_q + choices.algorithm_quality),
        bitrate_field_kbps: match settings.rate_control {
            RateControl::Cbr { kbps } => u32::from(kbps),
            RateControl::Vbr { .. } => choices.min_bitrate_kbps,
        },
        ath_type: choices.ath_type,
    };
    let tag_len = layout.frame_len().map_err(encode_err)?;

    let ch = usize::from(params.channels);
    let seg_len = params.segment_granules.max(1) * GRANULE;
    let spf = version.samples_per_frame() as usize;
    let workers = params.workers.max(1);
    let failed = AtomicBool::new(false);

    thread::scope(|scope| {
        // Bounded queues keep memory to a few segments however fast the decoder is.
        let (job_tx, job_rx) = sync_channel::<Job>(workers);
        let (done_tx, done_rx) = sync_channel::<(usize, Result<SegmentFrames, String>)>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let failed = &failed;
            scope.spawn(move || encode_worker(settings, spf, &job_rx, &done_tx, failed));
        }
        drop(done_tx);
        let failed_ref = &failed;
        let writer = scope.spawn(move || {
            let written = write_in_order(&mut *sink, id3, tag_len, done_rx, failed_ref);
            (written, sink)
        });

        let split = split_into_segments(&mut pull, &job_tx, ch, seg_len, spf, &failed);
        drop(job_tx);
        let written = writer.join();

        let total = split.map_err(EncodeFailure::Source)?;
        let (written, sink) = match written {
            Ok((w, sink)) => (w.map_err(EncodeFailure::Encode)?, sink),
            Err(_) => return Err(encode_err("the mp3 writer thread panicked".into())),
        };
        if total.samples == 0 {
            return Err(EncodeFailure::Encode(TranscodeError::Undecodable(
                "no audio samples could be decoded".into(),
            )));
        }
        let frames = u32::try_from(written.lens.len()).map_err(|e| encode_err(e.to_string()))?;
        let covered = u64::from(frames) * spf as u64;
        let delay = u64::from(choices.encoder_delay);
        let padding = covered.checked_sub(total.samples + delay).ok_or_else(|| {
            encode_err(format!(
                "{frames} frames cannot hold {} samples",
                total.samples
            ))
        })?;
        let summary = StreamSummary {
            frames,
            audio_bytes: written.audio_bytes,
            audio_crc: written.crc,
            encoder_delay: choices.encoder_delay,
            padding: u32::try_from(padding).map_err(|e| encode_err(e.to_string()))?,
            toc: seek_table(&written.lens, tag_len),
        };
        let xing = layout.build(&summary).map_err(encode_err)?;
        sink.finish(id3.len() as u64, &xing)
            .map_err(|e| EncodeFailure::Encode(TranscodeError::Output(e)))?;
        Ok(EncodeOutcome {
            samples: total.samples,
            frames,
            bytes: id3.len() as u64 + tag_len as u64 + written.audio_bytes,
            encoder_delay: choices.encoder_delay,
            padding: summary.padding,
        })
    })
}

struct SplitTotals {
    samples: u64,
}

/// Pulls PCM and hands out segments (with their pre- and post-roll) as soon as each is complete.
fn split_into_segments<E, P>(
    pull: &mut P,
    jobs: &SyncSender<Job>,
    ch: usize,
    seg_len: usize,
    spf: usize,
    failed: &AtomicBool,
) -> Result<SplitTotals, E>
where
    P: FnMut(&mut Vec<f32>) -> Result<bool, E>,
{
    // `buf` holds samples from sample index `buf_start` (per channel) onwards.
    let mut buf: Vec<f32> = Vec::with_capacity((seg_len + PRE_ROLL + POST_ROLL) * ch * 2);
    let mut buf_start = 0usize;
    let mut next = 0usize;
    let send = |job: Job| {
        // A closed queue means the writer failed; its error is reported by the caller.
        let _ = jobs.send(job);
    };
    loop {
        let more = pull(&mut buf)?;
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let avail_end = buf_start + buf.len() / ch;
        while avail_end >= (next + 1) * seg_len + POST_ROLL {
            let seg_start = next * seg_len;
            let data_start = seg_start.saturating_sub(PRE_ROLL);
            let data_end = seg_start + seg_len + POST_ROLL;
            send(Job {
                index: next,
                pcm: buf[(data_start - buf_start) * ch..(data_end - buf_start) * ch].to_vec(),
                skip_frames: (seg_start - data_start) / spf,
                keep_frames: Some(seg_len / spf),
            });
            next += 1;
            let keep_from = (next * seg_len).saturating_sub(PRE_ROLL);
            buf.drain(..(keep_from - buf_start) * ch);
            buf_start = keep_from;
        }
        if !more {
            break;
        }
    }
    let total = buf_start + buf.len() / ch;
    let seg_start = next * seg_len;
    let data_start = seg_start.saturating_sub(PRE_ROLL).max(buf_start);
    if total > 0 && !failed.load(Ordering::Relaxed) {
        send(Job {
            index: next,
            pcm: buf[(data_start - buf_start) * ch..].to_vec(),
            skip_frames: (seg_start - data_start) / spf,
            keep_frames: None,
        });
    }
    Ok(SplitTotals {
        samples: total as u64,
    })
}

fn encode_worker(
    settings: LameSettings,
    spf: usize,
    jobs: &Mutex<Receiver<Job>>,
    done: &SyncSender<(usize, Result<SegmentFrames, String>)>,
    failed: &AtomicBool,
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = if failed.load(Ordering::Relaxed) {
            Err("abandoned after an earlier failure".to_owned())
        } else {
            encode_segment(settings, spf, &job)
        };
        if done.send((job.index, result)).is_err() {
            return;
        }
    }
}

fn encode_segment(settings: LameSettings, spf: usize, job: &Job) -> Result<SegmentFrames, String> {
    let mut lame = Lame::new(settings)?;
    let mut out = Vec::with_capacity(job.pcm.len() / 4);
    lame.encode(&job.pcm, &mut out)?;
    lame.flush(&mut out)?;
    let lens = split_frames(&out)?;
    let end = match job.keep_frames {
        Some(keep) => job.skip_frames + keep,
        None => lens.len(),
    };
    if end > lens.len() || job.skip_frames > end {
        return Err(format!(
            "segment {} produced {} frames, {} expected (frame size {spf})",
            job.index,
            lens.len(),
            end
        ));
    }
    let start_byte: usize = lens[..job.skip_frames]
        .iter()
        .map(|&l| usize::from(l))
        .sum();
    let len_bytes: usize = lens[job.skip_frames..end]
        .iter()
        .map(|&l| usize::from(l))
        .sum();
    out.truncate(start_byte + len_bytes);
    out.drain(..start_byte);
    Ok(SegmentFrames {
        bytes: out,
        lens: lens[job.skip_frames..end].to_vec(),
    })
}

struct Written {
    lens: Vec<u16>,
    audio_bytes: u64,
    crc: u16,
}

/// Writes `id3` and then segments in order as they finish, behind a placeholder for the tag frame.
fn write_in_order(
    sink: &mut dyn Mp3Sink,
    id3: &[u8],
    tag_len: usize,
    done: Receiver<(usize, Result<SegmentFrames, String>)>,
    failed: &AtomicBool,
) -> Result<Written, TranscodeError> {
    let mut state = Written {
        lens: Vec::new(),
        audio_bytes: 0,
        crc: 0,
    };
    let mut first_error = None;
    let fail = |e: TranscodeError, first_error: &mut Option<TranscodeError>| {
        failed.store(true, Ordering::Relaxed);
        first_error.get_or_insert(e);
    };
    let head = [id3, &vec![0u8; tag_len]].concat();
    if let Err(e) = sink.write_all(&head) {
        fail(TranscodeError::Output(e), &mut first_error);
    }
    let mut pending: BTreeMap<usize, SegmentFrames> = BTreeMap::new();
    let mut next = 0usize;
    // Keep receiving after a failure so no worker blocks on a full queue.
    for (index, result) in done {
        match result {
            Ok(seg) if first_error.is_none() => {
                pending.insert(index, seg);
            }
            Ok(_) => {}
            Err(e) => fail(TranscodeError::Encoder(e), &mut first_error),
        }
        while first_error.is_none() {
            let Some(seg) = pending.remove(&next) else {
                break;
            };
            debug!(segment = next, frames = seg.lens.len(), "segment written");
            if let Err(e) = sink.write_all(&seg.bytes) {
                fail(TranscodeError::Output(e), &mut first_error);
                break;
            }
            state.crc = crc16(state.crc, &seg.bytes);
            state.audio_bytes += seg.bytes.len() as u64;
            state.lens.extend_from_slice(&seg.lens);
            next += 1;
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if !pending.is_empty() => Err(TranscodeError::Encoder(format!(
            "segment {next} never arrived"
        ))),
        None => Ok(state),
    }
}

#[cfg(test)]
mod tests;
