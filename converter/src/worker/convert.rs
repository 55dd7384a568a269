//! One attempt at a job: GridFS video → transcoder (on a blocking thread) → GridFS mp3, with
//! progress in Redis, a time limit, and the owner's media minutes claimed once the media state
//! their duration (`crate::quota::media`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lapin::Channel;
use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vid2mp3_contracts::progress::{JobProgress, PROGRESS_TTL_SECS, progress_key};
use vid2mp3_contracts::storage_api::JobStatus;
use vid2mp3_contracts::{ErrorCode, VideoJob, error_chain};

use super::events;
use super::shared::{Deps, Unsettled};
use crate::gridfs::writer::GridFsMp3Sink;
use crate::gridfs::{GridFsError, GridFsReader, GridFsWriter};
use crate::queue::{VIDEO_DEAD_QUEUE, retry_queue_name};
use crate::quota::{QuotaError, QuotaExceeded};
use crate::transcode::{
    FailureKind, MediaInput, TagOptions, TranscodeError, TranscodeOptions, TranscodeReport,
    transcode,
};

/// How often progress may be written to Redis.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The contract's code for a transcoder failure.
pub fn error_code(error: &TranscodeError) -> ErrorCode {
    match error {
        TranscodeError::EmptyInput | TranscodeError::NotMedia(_) => ErrorCode::NotMedia,
        TranscodeError::NoAudio => ErrorCode::NoAudio,
        TranscodeError::Undecodable(_)
        | TranscodeError::Encoder(_)
        | TranscodeError::Loudness(_)
        | TranscodeError::Resample(_) => ErrorCode::Undecodable,
        TranscodeError::Timeout(_) => ErrorCode::TimedOut,
        TranscodeError::DecoderUnavailable(_)
        | TranscodeError::Input(_)
        | TranscodeError::Output(_) => ErrorCode::RetriesExhausted,
    }
}

/// What the uploader is told.
pub fn user_message(code: ErrorCode, error: &str) -> String {
    match code {
        ErrorCode::NotMedia => format!(
            "The file is not a video or audio file we can read ({error}). Upload a video with sound."
        ),
        ErrorCode::NoAudio => "The video has no sound to convert.".to_owned(),
        ErrorCode::Undecodable => format!(
            "The sound in this file cannot be decoded ({error}). It may be damaged or use a format we do not support."
        ),
        ErrorCode::TimedOut => {
            "Converting took far longer than a file this long should; we gave up.".to_owned()
        }
        _ => {
            format!("The conversion failed several times ({error}). Please upload it again later.")
        }
    }
}

enum Attempt {
    // Boxed: the report (tags, chapters, loudness) and the writer outweigh the other outcomes.
    Converted(Box<(TranscodeReport, GridFsWriter)>),
    Failed(TranscodeError),
    /// Stopped because the worker is shutting down.
    Stopped,
    /// Its partial mp3 could not be removed: MongoDB is away.
    Unsettled(GridFsError),
    /// The media are longer than the owner's minutes left today.
    Refused(QuotaExceeded),
    /// The minutes could not be claimed (MongoDB away): handed back like a stop.
    Unclaimed(mongodb::error::Error),
}

pub(super) async fn convert_job(
    deps: &Arc<Deps>,
    publish: &Channel,
    job: &VideoJob,
    priority: u8,
    stop: &CancellationToken,
) -> Result<(), Unsettled> {
    let video_id = ObjectId::parse_str(job.video_fid.as_str()).ok();
    let video = match video_id {
        Some(id) => deps.videos.file(id).await?,
        None => None,
    };
    let Some(video) = video else {
        // The record exists but its video does not (a bug or a hand-made message): final.
        let message = format!("the stored video {} is missing", job.video_fid);
        return fail_permanently(deps, publish, job, ErrorCode::Internal, &message, &message).await;
    };
    let writer = deps.mp3s.writer(true);
    let Some(record) = deps
        .jobs
        .start_attempt(&job.job_id, &writer.id().to_hex())
        .await?
    else {
        info!("the job was deleted; dropping its message");
        writer.abort().await?;
        return super::erased::forget_if_erased(deps, job).await;
    };
    let timeouts = deps.config.job_timeouts;
    let mut limit = timeouts.before_duration(video.length);
    info!(
        video_bytes = video.length,
        state_attempts = record.attempts,
        profile = %job.profile,
        loudness_lufs = job.loudness_lufs.map(|t| t.lufs()),
        limit_s = limit.as_secs(),
        "converting"
    );
    let started = Instant::now();
    let started_at = tokio::time::Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let reader = GridFsReader::new(deps.videos.clone(), video.clone(), Handle::current())
        .with_cancel(Arc::clone(&cancel));
    let read_so_far = reader.progress();
    let sink = GridFsMp3Sink::new(writer, Handle::current(), Arc::clone(&cancel));
    let mut opts = TranscodeOptions {
        profile: job.profile,
        workers: deps.config.encode_workers,
        tags: TagOptions {
            version: deps.config.id3_version,
            frame_cover: deps.config.cover_from_video,
            file_name: Some(job.original_name.clone()),
        },
        loudness: job.loudness_lufs,
        ..TranscodeOptions::default()
    };
    // The job's deadline below moves once the duration is known and ends ffmpeg through the
    // cancel flag; ffmpeg's own limit is only the backstop.
    opts.ffmpeg.timeout = timeouts.max;
    opts.ffmpeg.cancel = Some(Arc::clone(&cancel));
    opts.ffmpeg.ffmpeg = deps.config.ffmpeg.clone();
    opts.ffmpeg.ffprobe = deps.config.ffprobe.clone();
    let stated = opts.stated_duration.clone();
    let len = video.length;
    let mut task = tokio::task::spawn_blocking(move || {
        let mut input = MediaInput::from_reader(reader, Some(len));
        let mut sink = sink;
        let result = transcode(&mut input, &mut sink, &opts);
        (result, sink)
    });
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut timed_out = false;
    let mut stopped = false;
    let mut limit_from_duration = false;
    let mut refused = None;
    let mut unclaimed = None;
    let mut reporter = ProgressReporter::new(
        &deps.config.redis_key_prefix,
        &job.job_id.to_string(),
        len,
        read_so_far,
    );
    let joined = loop {
        tokio::select! {
            // In this order: a duration stated just before the transcoder ended is still
            // claimed against the owner's minutes before the result is looked at.
            biased;
            media = stated.known(), if !limit_from_duration && !timed_out => {
                limit_from_duration = true;
                limit = timeouts.for_duration(media);
                // From the job's start: the time spent probing counts against it.
                deadline.as_mut().reset(started_at + limit);
                info!(
                    media_ms = media.as_millis() as u64,
                    limit_s = limit.as_secs(),
                    "time limit set from the media's duration"
                );
                match deps.quotas.claim_media(&job.job_id, &job.owner_id, media).await {
                    Ok(()) => {}
                    Err(QuotaError::Exceeded(exceeded)) => {
                        warn!(media_ms = media.as_millis() as u64, "longer than the owner's media minutes left today; stopping");
                        refused = Some(exceeded);
                        cancel.store(true, Ordering::Relaxed);
                    }
                    Err(QuotaError::Mongo(error)) => {
                        warn!(%error, "cannot claim the media minutes; handing the job back");
                        unclaimed = Some(error);
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
            }
            joined = &mut task => break joined,
            () = &mut deadline, if !timed_out => {
                warn!(limit_s = limit.as_secs(), "time limit reached; stopping the conversion");
                timed_out = true;
                cancel.store(true, Ordering::Relaxed);
            }
            () = stop.cancelled(), if !stopped => {
                stopped = true;
                cancel.store(true, Ordering::Relaxed);
            }
            () = tokio::time::sleep(PROGRESS_EVERY) => reporter.report(deps).await,
        }
    };
    let attempt = match joined {
        Err(join_error) => Attempt::Failed(TranscodeError::Undecodable(format!(
            "the converter crashed on this file ({join_error})"
        ))),
        // Its partial mp3 stays named in the job's record; the next delivery removes it.
        Ok((_, _)) if stopped => Attempt::Stopped,
        Ok((_, _)) if unclaimed.is_some() => match unclaimed.take() {
            Some(error) => Attempt::Unclaimed(error),
            None => Attempt::Stopped,
        },
        Ok((_, sink)) if refused.is_some() => {
            let exceeded = refused.take();
            match (exceeded, sink.into_writer()) {
                (Some(exceeded), Some(writer)) => match writer.abort().await {
                    Ok(()) => Attempt::Refused(exceeded),
                    Err(e) => {
                        warn!(error = %e, "could not remove a refused attempt's chunks");
                        Attempt::Unsettled(e)
                    }
                },
                (Some(exceeded), None) => Attempt::Refused(exceeded),
                (None, _) => Attempt::Stopped,
            }
        }
        Ok((result, sink)) => {
            // Past the limit the transcoder was cancelled: whatever it returned, the job timed
            // out. A timeout is final and the failure recorded forgets the partial mp3, so its
            // chunks are removed here like any failed attempt's.
            let result = if timed_out {
                Err(TranscodeError::Timeout(limit))
            } else {
                result
            };
            match (result, sink.into_writer()) {
                (Ok(report), Some(writer)) => Attempt::Converted(Box::new((report, writer))),
                (Ok(_), None) => Attempt::Failed(TranscodeError::Output(std::io::Error::other(
                    "the mp3 writer was lost",
                ))),
                (Err(error), Some(writer)) => match writer.abort().await {
                    Ok(()) => Attempt::Failed(error),
                    // MongoDB failed the attempt and is still away: the record keeps naming the
                    // partial mp3 (a failure recorded now would forget it), and the next
                    // attempt removes it.
                    Err(e) => {
                        warn!(error = %e, conversion_error = %error_chain(&error), "could not remove a failed attempt's chunks");
                        Attempt::Unsettled(e)
                    }
                },
                (Err(error), None) => Attempt::Failed(error),
            }
        }
    };
    let settled = match attempt {
        Attempt::Stopped => Err(Unsettled::ShuttingDown),
        Attempt::Converted(converted) => {
            let (report, writer) = *converted;
            finish(deps, publish, job, report, writer, started).await
        }
        Attempt::Failed(error) => handle_failure(deps, publish, job, priority, &error).await,
        Attempt::Unsettled(error) => Err(Unsettled::GridFs(error)),
        Attempt::Refused(exceeded) => {
            deps.metrics
                .quota_refusals
                .with_label_values(&[exceeded.limit.as_str()])
                .inc();
            let detail = exceeded.to_string();
            fail_permanently(
                deps,
                publish,
                job,
                ErrorCode::QuotaExceeded,
                &detail,
                &exceeded.message,
            )
            .await
        }
        Attempt::Unclaimed(error) => Err(Unsettled::Quota(error)),
    };
    // Only once the record has moved on: cleared while the mp3 was still being closed, a status
    // read in between saw a converting job with no progress, and its bar went from 99 back to 0.
    reporter.clear(deps).await;
    // Failing here leaves the message unacked; its redelivery finds no record and tries again.
    super::erased::forget_if_erased(deps, job).await?;
    settled
}

async fn finish(
    deps: &Arc<Deps>,
    publish: &Channel,
    job: &VideoJob,
    report: TranscodeReport,
    writer: GridFsWriter,
    started: Instant,
) -> Result<(), Unsettled> {
    let job_key = job.job_id.to_string();
    // Another worker (after a lost connection) may have finished the same job meanwhile.
    if let Some(theirs) = deps.mp3s.find_by_metadata("job_id", &job_key).await? {
        info!(mp3_fid = %theirs.id, "another attempt finished first; keeping its mp3");
        writer.abort().await?;
        return Ok(());
    }
    let duration_ms = (report.duration_secs() * 1000.0).round() as u64;
    // What was converted counts against the owner's minutes, if more than the media stated
    // (or if they stated nothing); before the files document, so a failure here leaves the
    // partial mp3 to the next attempt like any.
    deps.quotas
        .settle_media(
            &job.job_id,
            &job.owner_id,
            Duration::from_millis(duration_ms),
        )
        .await
        .map_err(Unsettled::Quota)?;
    let stem = job
        .original_name
        .rsplit_once('.')
        .map_or(job.original_name.as_str(), |(stem, _)| stem);
    let stem = if stem.is_empty() { "audio" } else { stem };
    let file = writer
        .close(
            &format!("{stem}.mp3"),
            doc! {
                "job_id": &job_key,
                "owner_id": job.owner_id.to_string(),
                "video_fid": job.video_fid.as_str(),
                "duration_ms": i64::try_from(duration_ms).unwrap_or(i64::MAX),
                "profile": job.profile.as_str(),
                "loudness_lufs": job.loudness_lufs.map(|t| t.lufs()),
                "gain_db": report.levelling.map(|l| (l.gain_db * 10.0).round() / 10.0),
            },
        )
        .await?;
    let Some(record) = deps
        .jobs
        .mark_done(&job.job_id, &file.id.to_hex(), file.length, duration_ms)
        .await?
    else {
        info!("the job was deleted while converting; removing its mp3");
        deps.mp3s.delete(file.id).await?;
        return Ok(());
    };
    let wall = started.elapsed().as_secs_f64();
    let m = &deps.metrics;
    m.job("done");
    m.job_seconds.observe(wall);
    m.realtime_factor
        .observe(report.duration_secs() / wall.max(1e-6));
    m.add_bytes("mp3_written", file.length);
    info!(
        mp3_fid = %file.id,
        mp3_bytes = file.length,
        duration_ms,
        wall_ms = (wall * 1000.0) as u64,
        realtime = format!("{:.0}", report.duration_secs() / wall.max(1e-6)),
        tag = %report.tag,
        gain_db = report.levelling.map(|l| format!("{:.1}", l.gain_db)),
        "converted"
    );
    events::publish_done(publish, job, &record).await
}

async fn fail_permanently(
    deps: &Arc<Deps>,
    publish: &Channel,
    job: &VideoJob,
    code: ErrorCode,
    detail: &str,
    message: &str,
) -> Result<(), Unsettled> {
    warn!(
        code = code.as_str(),
        error = detail,
        "the job failed permanently"
    );
    let recorded = deps
        .jobs
        .mark_failure(&job.job_id, JobStatus::Failed, code, message)
        .await?;
    if recorded.is_none() {
        // Deleted (its video may have gone mid-read): nobody is left to tell.
        info!("the job was deleted while converting; no failure to report");
        return Ok(());
    }
    deps.metrics.job("failed");
    events::publish_failed(publish, job, code, message).await
}

async fn handle_failure(
    deps: &Arc<Deps>,
    publish: &Channel,
    job: &VideoJob,
    priority: u8,
    error: &TranscodeError,
) -> Result<(), Unsettled> {
    // Logged only: the whole chain (e.g. the loudness meter's own error), not just the text
    // the uploader is shown.
    let detail = format!("{} [{}]", error_chain(error), error.code());
    if error.kind() == FailureKind::Permanent {
        let code = error_code(error);
        let message = user_message(code, &error.to_string());
        return fail_permanently(deps, publish, job, code, &detail, &message).await;
    }
    let delays = &deps.config.retry_delays;
    let index = usize::try_from(job.attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    if let Some(delay) = delays.get(index) {
        let next = VideoJob {
            attempt: job.attempt + 1,
            ..job.clone()
        };
        let queue = retry_queue_name(*delay);
        // The state before the retry: when MongoDB is what failed, this fails too and the
        // message goes back whole. Published first, the retry would sit beside the requeued
        // message and the job would run twice.
        let recorded = deps
            .jobs
            .mark_failure(
                &job.job_id,
                JobStatus::Queued,
                ErrorCode::Unavailable,
                &format!("attempt {} failed ({error}); retrying", job.attempt),
            )
            .await?;
        if recorded.is_none() {
            info!("the job was deleted while converting; no retry");
            return Ok(());
        }
        events::publish_job(publish, &queue, &next, priority).await?;
        warn!(error = %detail, retry_in_ms = delay.as_millis() as u64, "transient failure; retrying");
        deps.metrics.job("retried");
        return Ok(());
    }
    // Out of attempts: keep the job for inspection, tell the owner.
    events::publish_job(publish, VIDEO_DEAD_QUEUE, job, priority).await?;
    deps.metrics.job("dead_lettered");
    let code = ErrorCode::RetriesExhausted;
    let message = user_message(code, &error.to_string());
    warn!(error = %detail, attempts = job.attempt, "retries exhausted; dead-lettered");
    let recorded = deps
        .jobs
        .mark_failure(&job.job_id, JobStatus::Failed, code, &message)
        .await?;
    if recorded.is_none() {
        info!("the job was deleted while converting; no failure to report");
        return Ok(());
    }
    events::publish_failed(publish, job, code, &message).await
}

/// Writes `JobProgress` to Redis, at most once per [`PROGRESS_EVERY`] and only on change.
struct ProgressReporter {
    key: String,
    len: u64,
    read: Arc<AtomicU64>,
    started: Instant,
    last_percent: Option<u8>,
}

impl ProgressReporter {
    fn new(prefix: &str, job: &str, len: u64, read: Arc<AtomicU64>) -> ProgressReporter {
        ProgressReporter {
            key: progress_key_of(prefix, job),
            len,
            read,
            started: Instant::now(),
            last_percent: None,
        }
    }

    async fn report(&mut self, deps: &Deps) {
        let read = self.read.load(Ordering::Relaxed);
        let percent = percent_of(read, self.len);
        if self.last_percent == Some(percent) {
            return;
        }
        let elapsed = self.started.elapsed().as_millis() as u64;
        let eta_ms = (percent > 0)
            .then(|| elapsed.saturating_mul(u64::from(100 - percent)) / u64::from(percent));
        let progress = JobProgress { percent, eta_ms };
        let Ok(text) = serde_json::to_string(&progress) else {
            return;
        };
        let write = async {
            let mut conn = deps.redis.get().await?;
            redis::cmd("SET")
                .arg(&self.key)
                .arg(text)
                .arg("EX")
                .arg(PROGRESS_TTL_SECS)
                .query_async::<()>(&mut conn)
                .await
        };
        match write.await {
            Ok(()) => self.last_percent = Some(percent),
            // Advisory: a lost update only makes the bar lag.
            Err(error) => warn!(%error, "cannot write progress to Redis"),
        }
    }

    async fn clear(&self, deps: &Deps) {
        if let Ok(mut conn) = deps.redis.get().await {
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(&self.key)
                .query_async(&mut conn)
                .await;
        }
    }
}

fn progress_key_of(prefix: &str, job: &str) -> String {
    match job.parse() {
        Ok(id) => progress_key(prefix, &id),
        Err(_) => format!("{prefix}progress:{job}"),
    }
}

/// Share of the input read, 0–99 (100 only once the job is done).
fn percent_of(read: u64, len: u64) -> u8 {
    if len == 0 {
        return 0;
    }
    ((read.min(len) as u128 * 100 / len as u128) as u8).min(99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_stays_below_100_until_done() {
        assert_eq!(percent_of(0, 1000), 0);
        assert_eq!(percent_of(500, 1000), 50);
        assert_eq!(percent_of(1000, 1000), 99);
        assert_eq!(percent_of(5000, 1000), 99);
        assert_eq!(percent_of(5, 0), 0);
    }

    #[test]
    fn permanent_failures_map_to_their_codes() {
        assert_eq!(error_code(&TranscodeError::NoAudio), ErrorCode::NoAudio);
        assert_eq!(error_code(&TranscodeError::EmptyInput), ErrorCode::NotMedia);
        assert_eq!(
            error_code(&TranscodeError::Timeout(Duration::from_secs(1))),
            ErrorCode::TimedOut
        );
        assert!(user_message(ErrorCode::NoAudio, "x").contains("no sound"));
    }
}
