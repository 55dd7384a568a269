//! The messages the worker publishes: job events (to `mp3` and `webhooks`), retries, dead letters. Every one is
//! confirmed by the broker before the job's message is acked.

use lapin::Channel;
use tracing::info;
use vid2mp3_contracts::messages::{JobOutcome, MESSAGE_VERSION, MP3_QUEUE};
use vid2mp3_contracts::{ErrorCode, FileId, JobEvent, VideoJob};

use super::shared::Unsettled;
use crate::job_state::JobRecord;
use crate::queue::{message_properties, publish_confirmed, publish_job_event};

fn event(job: &VideoJob, mp3_fid: Option<FileId>, outcome: JobOutcome) -> JobEvent {
    JobEvent {
        version: MESSAGE_VERSION,
        message_id: uuid::Uuid::now_v7(),
        job_id: job.job_id,
        video_fid: job.video_fid.clone(),
        mp3_fid,
        username: job.username.clone(),
        owner_id: job.owner_id,
        original_name: job.original_name.clone(),
        attempt: job.attempt,
        outcome,
    }
}

/// Publishes a job event through the fanout exchange, so that it reaches `mp3` (the relay) and
/// `webhooks` (the webhook sender).
async fn publish_event(channel: &Channel, event: &JobEvent) -> Result<(), Unsettled> {
    let payload = serde_json::to_vec(event).map_err(|source| Unsettled::Encode {
        queue: MP3_QUEUE.to_owned(),
        source,
    })?;
    let properties = message_properties(&event.message_id.to_string());
    publish_job_event(channel, &payload, properties).await?;
    Ok(())
}

pub(super) async fn publish_done(
    channel: &Channel,
    job: &VideoJob,
    record: &JobRecord,
) -> Result<(), Unsettled> {
    let mp3_fid = record.mp3_fid.as_deref().and_then(|f| f.parse().ok());
    let e = event(
        job,
        mp3_fid,
        JobOutcome::Done {
            mp3_size_bytes: record
                .mp3_size_bytes
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            duration_ms: record
                .duration_ms
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
        },
    );
    publish_event(channel, &e).await?;
    info!(event_id = %e.message_id, "done event published");
    Ok(())
}

pub(super) async fn publish_failed(
    channel: &Channel,
    job: &VideoJob,
    code: ErrorCode,
    message: &str,
) -> Result<(), Unsettled> {
    let e = event(
        job,
        None,
        JobOutcome::Failed {
            code,
            message: message.to_owned(),
        },
    );
    publish_event(channel, &e).await?;
    info!(event_id = %e.message_id, code = code.as_str(), "failed event published");
    Ok(())
}

/// Puts the job on `queue` (a retry queue or the dead-letter queue) as `next`, with `priority`.
pub(super) async fn publish_job(
    channel: &Channel,
    queue: &str,
    next: &VideoJob,
    priority: u8,
) -> Result<(), Unsettled> {
    let payload = serde_json::to_vec(next).map_err(|source| Unsettled::Encode {
        queue: queue.to_owned(),
        source,
    })?;
    let properties = message_properties(&next.message_id.to_string()).with_priority(priority);
    publish_confirmed(channel, queue, &payload, properties).await?;
    Ok(())
}
