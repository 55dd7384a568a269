//! RabbitMQ: the converter's connection, the queue topology it declares, and publishing with
//! confirms.
//!
//! Topology (all durable, declared by every role at start; declaring is idempotent):
//!
//! | queue | what |
//! |---|---|
//! | `video.fair` | jobs to convert, a priority queue (`x-max-priority` 10); rejected messages dead-letter to `video.dead` |
//! | `video.fair.retry.<ms>` | one per retry delay: messages wait `<ms>` (queue TTL), then dead-letter back to `video.fair` |
//! | `video.dead` | jobs that failed after every retry, or could not be read at all |
//! | `mp3` | job events for the relay; rejected (unreadable) events dead-letter to `mp3.dead` |
//! | `mp3.dead` | events that could not be read |
//! | `webhooks` | job events for the webhook sender; rejected (unreadable) events dead-letter to `webhooks.dead` |
//! | `webhooks.dead` | events that could not be read, and deliveries that failed after every retry |
//! | `webhooks.retry.<ms>` | declared by the webhook role, one per retry delay: deliveries wait, then go back to `webhooks` |
//!
//! Job events are published to the fanout exchange `vid2mp3.job-events`, bound to `mp3` and
//! `webhooks`: the relay and the webhook sender each get every event, one publish and one confirm
//! covers both (the broker confirms a persistent message once every queue it was routed to has
//! it). A converter from before webhooks publishes straight to `mp3`; its events reach the relay
//! as before and no webhook.
//!
//! A retry queue per delay (rather than a per-message TTL on one queue) keeps delays exact: a
//! queue only expires messages at its head, so one queue with mixed TTLs would hold a short
//! delay behind a long one.
//!
//! **Fair scheduling.** A job's priority comes from its owner's backlog when it is stored
//! ([`video_priority`]: 10 for an account with nothing else waiting or converting, one less per
//! job it has in flight, 0 from ten on); a retry keeps its job's priority. With the worker's
//! small prefetch, the broker hands out the highest priority first, so one account's fifty jobs
//! hold another account's first job back by about the one job converting when it arrives (and
//! the one or two the first account published before its backlog grew). The priority lives in
//! the persistent message, so the order survives a restart of the converter or the broker.
//!
//! **The queues before.** `video` and `video.retry.<ms>` were a first-come, first-served queue;
//! RabbitMQ refuses to declare an existing queue with other arguments, so the priority queue has a
//! new name and the old ones are drained into it ([`legacy`]).

pub mod consume;
pub mod legacy;

use std::time::Duration;

use lapin::ExchangeKind;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::Mutex;
use tracing::{info, warn};
use vid2mp3_contracts::messages::{
    JOB_EVENTS_EXCHANGE, LEGACY_VIDEO_QUEUE, MP3_QUEUE, VIDEO_QUEUE, WEBHOOK_QUEUE,
};

pub const VIDEO_DEAD_QUEUE: &str = "video.dead";
pub const MP3_DEAD_QUEUE: &str = "mp3.dead";
pub const WEBHOOK_DEAD_QUEUE: &str = "webhooks.dead";

/// The highest priority of a `video.fair` message. RabbitMQ keeps a sub-queue per level and
/// recommends at most 10; more levels would separate backlogs longer than anyone has.
pub const VIDEO_MAX_PRIORITY: u8 = 10;

/// The priority of a job whose owner has `backlog` other jobs waiting or converting.
pub fn video_priority(backlog: u64) -> u8 {
    VIDEO_MAX_PRIORITY - u8::try_from(backlog.min(u64::from(VIDEO_MAX_PRIORITY))).unwrap_or(0)
}

/// How long a publish waits for the broker's confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);
/// How long connecting may take before it counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ did not answer within {0:?}")]
    Timeout(Duration),
    #[error("RabbitMQ refused the message (nack) for queue {0}")]
    Nacked(String),
    #[error("RabbitMQ could not route the message: queue {0} does not exist")]
    Unroutable(String),
    #[error("the channel has no publisher confirms")]
    NotConfirmed,
    #[error("the broker ended the consumer (queue deleted or connection closed)")]
    ConsumerEnded,
}

/// The retry queue for one delay.
pub fn retry_queue_name(delay: Duration) -> String {
    format!("{VIDEO_QUEUE}.retry.{}", delay.as_millis())
}

/// The retry queue an older converter declared for one delay (it dead-letters to `video`).
pub fn legacy_retry_queue_name(delay: Duration) -> String {
    format!("{LEGACY_VIDEO_QUEUE}.retry.{}", delay.as_millis())
}

pub(crate) fn dead_letter_to(queue: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString(LongString::from("")),
    );
    args.insert(
        ShortString::from("x-dead-letter-routing-key"),
        AMQPValue::LongString(LongString::from(queue)),
    );
    args
}

/// Declares every queue above.
pub async fn declare_topology(
    channel: &Channel,
    retry_delays: &[Duration],
) -> Result<(), QueueError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for dead in [VIDEO_DEAD_QUEUE, MP3_DEAD_QUEUE, WEBHOOK_DEAD_QUEUE] {
        channel
            .queue_declare(dead.into(), durable, FieldTable::default())
            .await?;
    }
    let mut video = dead_letter_to(VIDEO_DEAD_QUEUE);
    video.insert(
        ShortString::from("x-max-priority"),
        AMQPValue::LongInt(i32::from(VIDEO_MAX_PRIORITY)),
    );
    channel
        .queue_declare(VIDEO_QUEUE.into(), durable, video)
        .await?;
    channel
        .queue_declare(MP3_QUEUE.into(), durable, dead_letter_to(MP3_DEAD_QUEUE))
        .await?;
    channel
        .queue_declare(
            WEBHOOK_QUEUE.into(),
            durable,
            dead_letter_to(WEBHOOK_DEAD_QUEUE),
        )
        .await?;
    channel
        .exchange_declare(
            JOB_EVENTS_EXCHANGE.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    for queue in [MP3_QUEUE, WEBHOOK_QUEUE] {
        channel
            .queue_bind(
                queue.into(),
                JOB_EVENTS_EXCHANGE.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    for delay in retry_delays {
        let mut args = dead_letter_to(VIDEO_QUEUE);
        args.insert(
            ShortString::from("x-message-ttl"),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        channel
            .queue_declare(retry_queue_name(*delay).into(), durable, args)
            .await?;
    }
    Ok(())
}

/// Connects with a name the management UI shows (and tests find), within a time limit.
pub async fn connect(url: &str, name: &str) -> Result<Connection, QueueError> {
    let props = ConnectionProperties::default().with_connection_name(LongString::from(name));
    tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, props))
        .await
        .map_err(|_| QueueError::Timeout(CONNECT_TIMEOUT))?
        .map_err(Into::into)
}

/// Properties of every message the converter publishes: persistent JSON with an id and a time.
pub fn message_properties(message_id: &str) -> BasicProperties {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message_id))
        .with_timestamp(now)
}

/// Publishes `payload` to `queue` through the default exchange and waits for the confirm. The
/// publish is mandatory: a queue that does not exist is an error, not a silent drop.
pub async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), QueueError> {
    publish_via(channel, "", queue, payload, properties).await
}

/// Publishes a job event to the `vid2mp3.job-events` exchange (the relay's `mp3` queue and the
/// webhook sender's `webhooks` queue) and waits for the confirm.
pub async fn publish_job_event(
    channel: &Channel,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), QueueError> {
    publish_via(channel, JOB_EVENTS_EXCHANGE, "", payload, properties).await
}

async fn publish_via(
    channel: &Channel,
    exchange: &str,
    queue: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), QueueError> {
    let target = if exchange.is_empty() { queue } else { exchange };
    // One bound over sending and confirming: a broker that blocks publishers (its disk or memory
    // alarm) never completes the send, and a caller must get an error rather than wait forever.
    let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, async {
        channel
            .basic_publish(
                exchange.into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                payload,
                properties,
            )
            .await?
            .await
    })
    .await
    .map_err(|_| QueueError::Timeout(CONFIRM_TIMEOUT))??;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(target.to_owned())),
        Confirmation::Nack(_) => Err(QueueError::Nacked(target.to_owned())),
        Confirmation::NotRequested => Err(QueueError::NotConfirmed),
    }
}

/// A confirm-mode channel on a connection of its own, opened on first use and opened again
/// after a failure. The storage API publishes `video` jobs through it.
pub struct Publisher {
    url: String,
    name: String,
    retry_delays: Vec<Duration>,
    current: Mutex<Option<(Connection, Channel)>>,
}

impl Publisher {
    pub fn new(url: String, name: String, retry_delays: Vec<Duration>) -> Publisher {
        Publisher {
            url,
            name,
            retry_delays,
            current: Mutex::new(None),
        }
    }

    async fn channel(&self) -> Result<Channel, QueueError> {
        let mut current = self.current.lock().await;
        if let Some((conn, channel)) = current.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
            warn!(connection = %self.name, "the publishing connection is down; reconnecting");
        }
        let conn = connect(&self.url, &self.name).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_topology(&channel, &self.retry_delays).await?;
        info!(connection = %self.name, "connected to RabbitMQ");
        *current = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// Publishes (with `priority`, if given) and waits for the confirm; one reconnect is tried
    /// if the connection was lost.
    pub async fn publish(
        &self,
        queue: &str,
        payload: &[u8],
        message_id: &str,
        priority: Option<u8>,
    ) -> Result<(), QueueError> {
        let mut properties = message_properties(message_id);
        if let Some(priority) = priority {
            properties = properties.with_priority(priority);
        }
        let mut last = None;
        for _ in 0..2 {
            let channel = match self.channel().await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match publish_confirmed(&channel, queue, payload, properties.clone()).await {
                Ok(()) => return Ok(()),
                // Not a connection problem: retrying on a new one cannot help.
                Err(e @ (QueueError::Unroutable(_) | QueueError::Nacked(_))) => return Err(e),
                Err(e) => {
                    *self.current.lock().await = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(QueueError::NotConfirmed))
    }

    /// Whether a connection can be had (for `/readyz`).
    pub async fn ready(&self) -> Result<(), QueueError> {
        self.channel().await.map(|_| ())
    }

    pub async fn close(&self) {
        if let Some((conn, _)) = self.current.lock().await.take() {
            let _ = conn.close(200, "shutting down".into()).await;
        }
    }
}

/// Exponential backoff with a ceiling, for reconnect loops.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            next: initial,
            initial,
            max,
        }
    }

    /// The delay to wait now; the next one doubles up to the ceiling.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn retry_queues_are_named_by_their_delay() {
        assert_eq!(
            retry_queue_name(Duration::from_secs(5)),
            "video.fair.retry.5000"
        );
        assert_eq!(
            legacy_retry_queue_name(Duration::from_secs(5)),
            "video.retry.5000"
        );
    }

    #[test]
    fn a_longer_backlog_means_a_lower_priority() {
        let priorities: Vec<u8> = [0, 1, 2, 9, 10, 11, 1000, u64::MAX]
            .into_iter()
            .map(video_priority)
            .collect();
        assert_eq!(priorities, vec![10, 9, 8, 1, 0, 0, 0, 0]);
    }
}
