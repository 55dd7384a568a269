//! The video worker: consumes `video`, converts GridFS to GridFS, records the outcome and
//! publishes a job event on `mp3`, and only then acks.
//!
//! Outcomes:
//! - done: state `done`, a `Done` event (confirmed), ack;
//! - permanent failure (not media, no audio, undecodable): state `failed`, a `Failed` event, ack;
//! - transient failure: the job goes to the retry queue of its attempt (confirmed) and is acked;
//!   after the last attempt it goes to `video.dead` with a `Failed` (`retries_exhausted`) event;
//! - the backing services failing around the conversion (MongoDB for the state, the broker for
//!   the event): the message is handed back (nack, requeue) after a pause, not counted as an
//!   attempt — the same job converts once they are back.
//!
//! A redelivered job whose mp3 exists (its state says done, or an mp3 file carries its id) is
//! not converted again: its event is published again and the message acked.

mod convert;
mod events;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use mongodb::bson::oid::ObjectId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use vid2mp3_contracts::messages::VIDEO_QUEUE;
use vid2mp3_contracts::storage_api::JobStatus;
use vid2mp3_contracts::{ErrorCode, VideoJob};

use crate::gridfs::GridFsError;
use crate::job_state::JobStateError;
use crate::queue::{Backoff, QueueError, connect, declare_topology};
use crate::service::{Services, pause};

pub use self::convert::{error_code, job_timeout, user_message};

/// Why a message could not be settled: it goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum Unsettled {
    #[error("job state: {0}")]
    State(#[from] JobStateError),
    #[error("GridFS: {0}")]
    GridFs(#[from] GridFsError),
    #[error("broker: {0}")]
    Queue(#[from] QueueError),
    #[error("the worker is shutting down")]
    ShuttingDown,
}

/// Pause before a message whose services failed is handed back (no hot redelivery loop).
const REQUEUE_PAUSE: Duration = Duration::from_secs(2);

/// Runs the worker until `shutdown`, reconnecting with backoff whenever the broker goes away.
pub async fn run(services: Arc<Services>, shutdown: CancellationToken) -> anyhow::Result<()> {
    if services.config.sweep_orphans_at_start {
        let services = Arc::clone(&services);
        tokio::spawn(async move {
            // Only chunks older than any job could run: other workers may be writing now.
            for bucket in [&services.mp3s, &services.videos] {
                match bucket.sweep_orphans(Duration::from_secs(6 * 3600)).await {
                    Ok(0) => {}
                    Ok(n) => info!(bucket = bucket.name(), chunks = n, "removed orphan chunks"),
                    Err(error) => warn!(bucket = bucket.name(), %error, "orphan sweep failed"),
                }
            }
        });
    }
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match consume(&services, &shutdown, &mut backoff).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                let delay = backoff.next_delay();
                warn!(%error, retry_in_ms = delay.as_millis() as u64, "worker lost RabbitMQ; reconnecting");
                if !pause(&shutdown, delay).await {
                    return Ok(());
                }
            }
        }
    }
}

/// One connection's life: consume until shutdown (Ok) or the connection fails (Err).
async fn consume(
    services: &Arc<Services>,
    shutdown: &CancellationToken,
    backoff: &mut Backoff,
) -> Result<(), QueueError> {
    let config = &services.config;
    let conn = connect(
        &config.amqp_url_with_heartbeat(),
        "vid2mp3-converter worker",
    )
    .await?;
    let channel = conn.create_channel().await?;
    declare_topology(&channel, &config.retry_delays).await?;
    channel
        .basic_qos(config.worker_prefetch, BasicQosOptions::default())
        .await?;
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            VIDEO_QUEUE.into(),
            format!("worker-{}", uuid::Uuid::new_v4().simple()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    backoff.reset();
    info!(
        prefetch = config.worker_prefetch,
        "worker consuming {VIDEO_QUEUE}"
    );
    // Cancelled when in-flight jobs must stop (shutdown grace over).
    let stop_jobs = CancellationToken::new();
    let mut in_flight = JoinSet::new();
    let result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    in_flight.spawn(handle_delivery(
                        Arc::clone(services),
                        publish.clone(),
                        delivery,
                        stop_jobs.clone(),
                    ));
                }
                Some(Err(error)) => break Err(QueueError::from(error)),
                None => break Err(QueueError::ConsumerEnded),
            }
        }
    };
    if result.is_ok() {
        // Stop taking work, then give the jobs in flight their grace period.
        let _ = channel
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await;
        if !in_flight.is_empty() {
            info!(
                jobs = in_flight.len(),
                "shutting down: waiting for jobs in flight"
            );
        }
    }
    // After a lost connection the jobs in flight still finish (their acks fail; the broker
    // redelivers and the redelivery finds the mp3): wait for them so a job never runs twice
    // in this process.
    let grace = if result.is_ok() {
        config.shutdown_grace
    } else {
        Duration::from_secs(24 * 3600)
    };
    let drained = tokio::time::timeout(grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            jobs = in_flight.len(),
            "jobs still converting after the grace period; handing them back"
        );
        stop_jobs.cancel();
        while in_flight.join_next().await.is_some() {}
    }
    // Whatever is still unacked goes back to the queue when the connection closes.
    let _ = conn.close(200, "worker stopping".into()).await;
    result
}

async fn handle_delivery(
    services: Arc<Services>,
    publish: Channel,
    delivery: Delivery,
    stop: CancellationToken,
) {
    let job: VideoJob = match serde_json::from_slice(&delivery.data) {
        Ok(job) => job,
        Err(e) => {
            error!(error = %e, bytes = delivery.data.len(), "unreadable video message; dead-lettering it");
            services.metrics.job("unreadable");
            // No requeue: the queue dead-letters it to video.dead, where it can be looked at.
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    if let Some(published) = delivery.properties.timestamp() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        services
            .metrics
            .queue_lag_seconds
            .observe(now.saturating_sub(*published) as f64);
    }
    let span = info_span!("job", job_id = %job.job_id, attempt = job.attempt);
    async {
        match process(&services, &publish, &job, &stop).await {
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
    services: &Arc<Services>,
    publish: &Channel,
    job: &VideoJob,
    stop: &CancellationToken,
) -> Result<(), Unsettled> {
    let Some(record) = services.jobs.get(&job.job_id).await? else {
        info!("the job was deleted; dropping its message");
        services.metrics.job("deleted");
        return Ok(());
    };
    let job_key = job.job_id.to_string();
    match record.status {
        JobStatus::Done if record.mp3_fid.is_some() => {
            info!("already done; publishing its event again");
            services.metrics.job("duplicate");
            return events::publish_done(services, publish, job, &record).await;
        }
        JobStatus::Failed => {
            info!("already failed; publishing its event again");
            let (code, message) = record.error.as_ref().map_or(
                (ErrorCode::Internal, "the conversion failed".to_owned()),
                |e| (e.code, e.message.clone()),
            );
            return events::publish_failed(services, publish, job, code, &message).await;
        }
        _ => {}
    }
    // An attempt that wrote its mp3 and died before recording it: use that mp3.
    if let Some(file) = services.mp3s.find_by_metadata("job_id", &job_key).await? {
        info!(mp3_fid = %file.id, "the mp3 exists already; recording it instead of converting");
        services.metrics.job("duplicate");
        let duration_ms = file.metadata.get_i64("duration_ms").unwrap_or(0);
        let Some(record) = services
            .jobs
            .mark_done(
                &job.job_id,
                &file.id.to_hex(),
                file.length,
                u64::try_from(duration_ms).unwrap_or(0),
            )
            .await?
        else {
            services.mp3s.delete(file.id).await?;
            return Ok(());
        };
        return events::publish_done(services, publish, job, &record).await;
    }
    // The chunks an attempt that died mid-write left behind.
    if let Some(partial) = record.partial_mp3_fid.as_deref()
        && let Ok(id) = ObjectId::parse_str(partial)
    {
        let removed = services.mp3s.delete_chunks(id).await?;
        if removed > 0 {
            info!(
                chunks = removed,
                "removed the partial mp3 of an earlier attempt"
            );
        }
    }
    convert::convert_job(services, publish, job, stop).await
}
