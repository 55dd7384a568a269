//! The video worker: consumes `video`, converts GridFS to GridFS, records the outcome and
//! publishes a job event on `mp3`, and only then acks.
//!
//! Outcomes:
//! - done: state `done`, a `Done` event (confirmed), ack;
//! - permanent failure (not media, no audio, undecodable): state `failed`, a `Failed` event, ack;
//! - transient failure: the job goes to the retry queue of its attempt (confirmed, with the
//!   priority it had) and is acked;
//!   after the last attempt it goes to `video.dead` with a `Failed` (`retries_exhausted`) event;
//! - the backing services failing around the conversion (MongoDB for the state, the broker for
//!   the event): the message is handed back (nack, requeue) after a pause, not counted as an
//!   attempt — the same job converts once they are back.
//!
//! A redelivered job whose mp3 exists (its state says done, or an mp3 file carries its id) is
//! not converted again: its event is published again and the message acked.

mod convert;
mod erased;
mod events;
mod shared;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions, ConfirmSelectOptions};
use lapin::{Channel, Connection};
use mongodb::bson::oid::ObjectId;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use vid2mp3_contracts::messages::VIDEO_QUEUE;
use vid2mp3_contracts::storage_api::JobStatus;
use vid2mp3_contracts::{ErrorCode, VideoJob};

use crate::queue::QueueError;
use crate::queue::consume::{Consumer, DeliveryHandler};
use crate::shutdown::pause;

pub use self::shared::{Deps, Unsettled};

/// Pause before a message whose services failed is handed back (no hot redelivery loop).
const REQUEUE_PAUSE: Duration = Duration::from_secs(2);

/// Runs the worker until `shutdown`, reconnecting with backoff whenever the broker goes away.
/// After a shutdown, jobs in flight get `VID2MP3_SHUTDOWN_GRACE_SECS` to finish before they are
/// stopped and handed back.
pub async fn run(deps: Arc<Deps>, shutdown: CancellationToken) -> anyhow::Result<()> {
    if deps.config.sweep_orphans_at_start {
        let deps = Arc::clone(&deps);
        tokio::spawn(async move {
            // Only chunks older than any job could run: other workers may be writing now.
            // A resumable upload's video has no files document until its last byte: kept.
            let assembling = match deps.resumable.unfinished_files().await {
                Ok(ids) => ids,
                Err(error) => {
                    warn!(%error, "cannot list the resumable uploads under way; orphan sweep skipped");
                    return;
                }
            };
            for bucket in [&deps.mp3s, &deps.videos] {
                match bucket
                    .sweep_orphans(Duration::from_secs(6 * 3600), &assembling)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => info!(bucket = bucket.name(), chunks = n, "removed orphan chunks"),
                    Err(error) => warn!(bucket = bucket.name(), %error, "orphan sweep failed"),
                }
            }
        });
    }
    tokio::spawn(crate::queue::legacy::run(
        Arc::clone(&deps.config),
        deps.quotas.clone(),
        shutdown.clone(),
    ));
    let config = &deps.config;
    let consumer = Consumer {
        role: "worker",
        queue: VIDEO_QUEUE,
        amqp_url: config.amqp_url_with_heartbeat(),
        prefetch: config.worker_prefetch,
        retry_delays: config.retry_delays.clone(),
        shutdown_grace: config.shutdown_grace,
    };
    consumer
        .run(
            &VideoJobs {
                deps: Arc::clone(&deps),
            },
            &shutdown,
        )
        .await;
    Ok(())
}

struct VideoJobs {
    deps: Arc<Deps>,
}

impl DeliveryHandler for VideoJobs {
    /// Events, retries and dead letters are published on a confirm-mode channel of the
    /// consuming connection.
    type PerConnection = Channel;

    async fn open(&self, conn: &Connection) -> Result<Channel, QueueError> {
        let publish = conn.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(publish)
    }

    fn handle(
        &self,
        publish: &Channel,
        delivery: Delivery,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        handle_delivery(Arc::clone(&self.deps), publish.clone(), delivery, stop)
    }
}

async fn handle_delivery(
    deps: Arc<Deps>,
    publish: Channel,
    delivery: Delivery,
    stop: CancellationToken,
) {
    let job: VideoJob = match serde_json::from_slice(&delivery.data) {
        Ok(job) => job,
        Err(e) => {
            error!(error = %e, bytes = delivery.data.len(), "unreadable video message; dead-lettering it");
            deps.metrics.job("unreadable");
            // No requeue: the queue dead-letters it to video.dead, where it can be looked at.
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    if let Some(published) = delivery.properties.timestamp() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        deps.metrics
            .queue_lag_seconds
            .observe(now.saturating_sub(*published) as f64);
    }
    // Kept for a retry: the job's place among other accounts' jobs stays what it was.
    let priority = delivery.properties.priority().unwrap_or(0);
    let span = info_span!("job", job_id = %job.job_id, attempt = job.attempt, priority);
    async {
        match process(&deps, &publish, &job, priority, &stop).await {
            Ok(()) => {
                if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                    warn!(%error, "ack failed; the job will be redelivered and not converted twice");
                }
            }
            Err(Unsettled::ShuttingDown) => {
                info!("handed back to the queue (shutting down)");
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await;
            }
            Err(error) => {
                warn!(%error, "services failed around the job; handing it back");
                pause(&stop, REQUEUE_PAUSE).await;
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Does everything the message asks for; Ok means it may be acked.
async fn process(
    deps: &Arc<Deps>,
    publish: &Channel,
    job: &VideoJob,
    priority: u8,
    stop: &CancellationToken,
) -> Result<(), Unsettled> {
    let Some(record) = deps.jobs.get(&job.job_id).await? else {
        info!("the job was deleted; dropping its message");
        deps.metrics.job("deleted");
        return erased::forget_if_erased(deps, job).await;
    };
    let job_key = job.job_id.to_string();
    match record.status {
        JobStatus::Done if record.mp3_fid.is_some() => {
            info!("already done; publishing its event again");
            deps.metrics.job("duplicate");
            return events::publish_done(publish, job, &record).await;
        }
        JobStatus::Failed => {
            info!("already failed; publishing its event again");
            let (code, message) = record.error.as_ref().map_or(
                (ErrorCode::Internal, "the conversion failed".to_owned()),
                |e| (e.code, e.message.clone()),
            );
            return events::publish_failed(publish, job, code, &message).await;
        }
        _ => {}
    }
    // An attempt that wrote its mp3 and died before recording it: use that mp3.
    if let Some(file) = deps.mp3s.find_by_metadata("job_id", &job_key).await? {
        info!(mp3_fid = %file.id, "the mp3 exists already; recording it instead of converting");
        deps.metrics.job("duplicate");
        let duration_ms = file.metadata.get_i64("duration_ms").unwrap_or(0);
        let Some(record) = deps
            .jobs
            .mark_done(
                &job.job_id,
                &file.id.to_hex(),
                file.length,
                u64::try_from(duration_ms).unwrap_or(0),
            )
            .await?
        else {
            deps.mp3s.delete(file.id).await?;
            return Ok(());
        };
        return events::publish_done(publish, job, &record).await;
    }
    // The chunks an attempt that died mid-write left behind.
    if let Some(partial) = record.partial_mp3_fid.as_deref()
        && let Ok(id) = ObjectId::parse_str(partial)
    {
        let removed = deps.mp3s.delete_chunks(id).await?;
        if removed > 0 {
            info!(
                chunks = removed,
                "removed the partial mp3 of an earlier attempt"
            );
        }
    }
    convert::convert_job(deps, publish, job, priority, stop).await
}
