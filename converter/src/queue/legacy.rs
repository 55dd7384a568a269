//! Draining the queues an older converter used (`video`, `video.retry.<ms>`, first-come,
//! first-served) into the priority queue `video.fair`.
//!
//! Every worker does it at start, then once a minute while `video` exists: each message is
//! taken (`basic.get`), published to `video.fair` with its owner's priority (confirmed), and only
//! then acked, so nothing is lost and a duplicate is handled like any redelivery. A message that
//! is not a job goes to `video.dead`. A retry queue is removed once it is empty and nothing
//! consumes it (an older worker whose retry then finds no queue hands its job back to `video`,
//! and it is drained from there). `video` itself is left for the operator to delete once no
//! older converter runs (converter README, "Upgrading"): during a rolling upgrade an older
//! storage API still publishes to it, and a retry queue of a delay no longer configured still
//! dead-letters into it; RabbitMQ drops what dead-letters to a queue that does not exist.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vid2mp3_contracts::VideoJob;
use vid2mp3_contracts::messages::{LEGACY_VIDEO_QUEUE, VIDEO_QUEUE};

use super::{
    QueueError, VIDEO_DEAD_QUEUE, connect, legacy_retry_queue_name, message_properties,
    publish_confirmed, video_priority,
};
use crate::config::Config;
use crate::quota::QuotaStore;
use crate::shutdown::pause;

/// How often the legacy queue is looked at again while it exists.
const PERIOD: Duration = Duration::from_secs(60);

/// What one pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Jobs moved into `video.fair`.
    pub moved: u64,
    /// Messages that were not jobs, moved to `video.dead`.
    pub unreadable: u64,
    /// Whether `video` still exists (and so another pass is due).
    pub legacy_queue_exists: bool,
}

/// Drains at once and then every minute until `video` is gone or the worker stops.
pub async fn run(config: Arc<Config>, quotas: QuotaStore, shutdown: CancellationToken) {
    let mut told_empty = false;
    loop {
        match drain(&config, &quotas).await {
            Ok(drained) => {
                if drained.moved > 0 || drained.unreadable > 0 {
                    info!(
                        moved = drained.moved,
                        unreadable = drained.unreadable,
                        "drained the legacy queue {LEGACY_VIDEO_QUEUE} into {VIDEO_QUEUE}"
                    );
                }
                if !drained.legacy_queue_exists {
                    return;
                }
                if drained.moved == 0 && !told_empty {
                    told_empty = true;
                    info!(
                        "the legacy queue {LEGACY_VIDEO_QUEUE} is empty; delete it once no older \
                         converter runs (rabbitmqctl delete_queue {LEGACY_VIDEO_QUEUE})"
                    );
                }
            }
            Err(error) => warn!(%error, "could not drain the legacy queue; trying again later"),
        }
        if !pause(&shutdown, PERIOD).await {
            return;
        }
    }
}

/// One pass over the legacy queues (retry queues first: they dead-letter into `video`).
pub async fn drain(config: &Config, quotas: &QuotaStore) -> Result<Drained, QueueError> {
    let conn = connect(
        &config.amqp_url_with_heartbeat(),
        "vid2mp3-converter legacy-drain",
    )
    .await?;
    let result = drain_on(config, quotas, &conn).await;
    let _ = conn.close(200, "drained".into()).await;
    result
}

async fn drain_on(
    config: &Config,
    quotas: &QuotaStore,
    conn: &Connection,
) -> Result<Drained, QueueError> {
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut drained = Drained {
        moved: 0,
        unreadable: 0,
        legacy_queue_exists: false,
    };
    let retry_queues = config
        .retry_delays
        .iter()
        .map(|d| legacy_retry_queue_name(*d));
    for queue in retry_queues.chain([LEGACY_VIDEO_QUEUE.to_owned()]) {
        // A passive declare of a queue that does not exist closes its channel: one per queue.
        let channel = conn.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
            .is_err()
        {
            continue;
        }
        move_all(quotas, &channel, &publish, &queue, &mut drained).await?;
        if queue == LEGACY_VIDEO_QUEUE {
            drained.legacy_queue_exists = true;
        } else {
            let only_if_idle = QueueDeleteOptions {
                if_unused: true,
                if_empty: true,
                ..QueueDeleteOptions::default()
            };
            if channel
                .queue_delete(queue.as_str().into(), only_if_idle)
                .await
                .is_ok()
            {
                info!(queue, "removed an empty legacy retry queue");
            }
        }
    }
    Ok(drained)
}

async fn move_all(
    quotas: &QuotaStore,
    from: &Channel,
    publish: &Channel,
    queue: &str,
    drained: &mut Drained,
) -> Result<(), QueueError> {
    while let Some(message) = from
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
    {
        let delivery = message.delivery;
        match serde_json::from_slice::<VideoJob>(&delivery.data) {
            Ok(job) => {
                // The job's own record counts among its owner's jobs in flight. With MongoDB
                // away the job goes first: it has waited in the old queue already.
                let in_flight = quotas.active_jobs(&job.owner_id).await.unwrap_or(0);
                let properties = message_properties(&job.message_id.to_string())
                    .with_priority(video_priority(in_flight.saturating_sub(1)));
                publish_confirmed(publish, VIDEO_QUEUE, &delivery.data, properties).await?;
                drained.moved += 1;
            }
            Err(error) => {
                warn!(queue, %error, "an unreadable message in a legacy queue; dead-lettering it");
                let id = uuid::Uuid::now_v7().to_string();
                publish_confirmed(
                    publish,
                    VIDEO_DEAD_QUEUE,
                    &delivery.data,
                    message_properties(&id),
                )
                .await?;
                drained.unreadable += 1;
            }
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}
