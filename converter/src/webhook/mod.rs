//! The webhook sender: POSTs each job event to its callback URL (the job's own, named by its
//! upload, else the account's webhook),
//! signed, at least once per outcome until the receiver takes it, and never to an address of
//! the platform's own network (`send`).
//!
//! Events come from the `webhooks` queue (the fanout exchange puts every job event there and on
//! `mp3`). For each: no webhook → ack. Already delivered (an earlier event of the same outcome
//! was taken) → ack. Otherwise sign and send. A 2xx is recorded and acked. A refusal (an address
//! not allowed) is logged and dead-lettered to `webhooks.dead` at once, nothing sent. Any other
//! failure is retried: the event goes to `webhooks.retry.<ms>` (a TTL queue that hands it back
//! to `webhooks` after `<ms>`) with its attempt number in a header, and after the last delay it
//! is logged and dead-lettered. The delivery id (`<job id>-<done|failed>`) is the same for every
//! attempt and every duplicate of the event, so a receiver can ignore repeats.

mod send;
pub mod sign;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicRejectOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use vid2mp3_contracts::messages::WEBHOOK_QUEUE;
use vid2mp3_contracts::storage_api::JobError;
use vid2mp3_contracts::webhook::{WebhookJob, WebhookPayload, delivery_id};
use vid2mp3_contracts::{JobEvent, JobOutcome};

use self::send::{Limits, SendError};
use self::store::WebhookStore;
use crate::config::{Config, WebhookSettings};
use crate::queue::consume::{Consumer, DeliveryHandler};
use crate::queue::{QueueError, dead_letter_to, message_properties, publish_confirmed};
use crate::shutdown::pause;

/// The header that carries a delivery's attempt number through the retry queues.
const ATTEMPT_HEADER: &str = "x-webhook-attempt";

/// What the webhook sender uses: its settings and where webhooks are stored.
pub struct Deps {
    pub config: Arc<Config>,
    pub store: WebhookStore,
}

/// The retry queue for one delay.
pub fn retry_queue_name(delay: Duration) -> String {
    format!("{WEBHOOK_QUEUE}.retry.{}", delay.as_millis())
}

/// Runs the sender until `shutdown`, reconnecting whenever the broker goes away.
pub async fn run(deps: Arc<Deps>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = &deps.config.webhooks;
    if !settings.allowed_hosts.is_empty() {
        warn!(allowed = ?settings.allowed_hosts, "webhooks may reach the listed hosts whatever their address (VID2MP3_WEBHOOK_ALLOWED_HOSTS)");
    }
    let consumer = Consumer {
        role: "webhook",
        queue: WEBHOOK_QUEUE,
        amqp_url: deps.config.amqp_url_with_heartbeat(),
        prefetch: settings.prefetch,
        retry_delays: deps.config.retry_delays.clone(),
        shutdown_grace: Duration::ZERO,
    };
    consumer.run(&Sender { deps }, &shutdown).await;
    Ok(())
}

struct Sender {
    deps: Arc<Deps>,
}

impl DeliveryHandler for Sender {
    /// A confirm-mode channel to put failed deliveries on a retry queue.
    type PerConnection = Channel;

    async fn open(&self, conn: &Connection) -> Result<Channel, QueueError> {
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare_retry_queues(&channel, &self.deps.config.webhooks.retry_delays).await?;
        Ok(channel)
    }

    fn handle(
        &self,
        publish: &Channel,
        delivery: Delivery,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        handle_one(Arc::clone(&self.deps), publish.clone(), delivery, stop)
    }
}

async fn declare_retry_queues(channel: &Channel, delays: &[Duration]) -> Result<(), QueueError> {
    for delay in delays {
        let mut args = dead_letter_to(WEBHOOK_QUEUE);
        args.insert(
            ShortString::from("x-message-ttl"),
            AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
        );
        channel
            .queue_declare(
                retry_queue_name(*delay).into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;
    }
    Ok(())
}

fn attempt_of(delivery: &Delivery) -> u32 {
    delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPT_HEADER))
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(*n),
            AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
            _ => None,
        })
        .unwrap_or(1)
}

/// What happened to one delivery.
enum Outcome {
    /// Nothing to send (no webhook) or already delivered.
    Nothing,
    Delivered(u16),
    Refused(String),
    Failed(String),
}

async fn handle_one(
    deps: Arc<Deps>,
    publish: Channel,
    delivery: Delivery,
    stop: CancellationToken,
) {
    let event: JobEvent = match serde_json::from_slice(&delivery.data) {
        Ok(e) => e,
        Err(e) => {
            error!(error = %e, "unreadable job event; dead-lettering it");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    let attempt = attempt_of(&delivery);
    let id = delivery_id(&event.job_id, event.kind());
    let span = info_span!("webhook", job_id = %event.job_id, delivery_id = %id, attempt);
    async {
        match deliver(&deps, &event, &id).await {
            Outcome::Nothing => {
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
            Outcome::Delivered(status) => {
                info!(status, "webhook delivered");
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
            Outcome::Refused(why) => {
                warn!(reason = %why, "webhook refused; nothing was sent (dead-lettered to webhooks.dead)");
                let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            }
            Outcome::Failed(why) => {
                retry_or_give_up(&deps.config.webhooks, &publish, &delivery, attempt, &why, &stop)
                    .await;
            }
        }
    }
    .instrument(span)
    .await;
}

async fn retry_or_give_up(
    settings: &WebhookSettings,
    publish: &Channel,
    delivery: &Delivery,
    attempt: u32,
    why: &str,
    stop: &CancellationToken,
) {
    let Some(delay) = usize::try_from(attempt.saturating_sub(1))
        .ok()
        .and_then(|i| settings.retry_delays.get(i))
    else {
        error!(reason = %why, attempts = attempt, "webhook not delivered after its last attempt; dead-lettered to webhooks.dead");
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        return;
    };
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(ATTEMPT_HEADER),
        AMQPValue::LongUInt(attempt.saturating_add(1)),
    );
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let properties = message_properties(&message_id).with_headers(headers);
    let queue = retry_queue_name(*delay);
    match publish_confirmed(publish, &queue, &delivery.data, properties).await {
        Ok(()) => {
            warn!(reason = %why, retry_in_ms = delay.as_millis() as u64, "webhook not delivered; retrying");
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(e) => {
            // Not lost: handed back to `webhooks` and tried again.
            warn!(reason = %why, error = %e, "webhook not delivered, and its retry could not be queued; handing it back");
            if pause(stop, Duration::from_secs(1)).await {
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await;
            }
        }
    }
}

async fn deliver(deps: &Deps, event: &JobEvent, id: &str) -> Outcome {
    // The job's own callback, else the account's webhook.
    let (url, secret) = match deps.store.job(&event.job_id).await {
        Ok(Some(w)) => (w.url, w.secret),
        Ok(None) => match deps.store.get(&event.owner_id).await {
            Ok(Some(w)) => (w.url, w.secret),
            Ok(None) => return Outcome::Nothing,
            Err(e) => return Outcome::Failed(format!("MongoDB: {e}")),
        },
        Err(e) => return Outcome::Failed(format!("MongoDB: {e}")),
    };
    match deps.store.was_delivered(id).await {
        Ok(true) => {
            info!("already delivered; not sending it again");
            return Outcome::Nothing;
        }
        Ok(false) => {}
        Err(e) => return Outcome::Failed(format!("MongoDB: {e}")),
    }
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = match serde_json::to_vec(&payload(event, id, timestamp)) {
        Ok(b) => b,
        Err(e) => return Outcome::Refused(format!("the payload cannot be encoded: {e}")),
    };
    let signature = match sign::signature(&secret, id, timestamp, &body) {
        Ok(s) => s,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let settings = &deps.config.webhooks;
    let limits = Limits {
        allowed: settings.allowed_hosts.clone(),
        connect_timeout: settings.connect_timeout,
        request_timeout: settings.request_timeout,
    };
    let delivery = send::Delivery {
        url: &url,
        id,
        timestamp,
        signature: &signature,
        body,
    };
    match send::send(delivery, &limits).await {
        Ok(status) => {
            if let Err(e) = deps.store.mark_delivered(id, rfc3339(timestamp)).await {
                // Delivered all the same; a duplicate may follow, with the same id.
                warn!(error = %e, "cannot record the delivery");
            }
            Outcome::Delivered(status)
        }
        Err(SendError::Refused(why)) => Outcome::Refused(why),
        Err(SendError::Failed(why)) => Outcome::Failed(why),
    }
}

fn rfc3339(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The event as the receiver gets it: the job as the API shows it.
fn payload(event: &JobEvent, id: &str, timestamp: u64) -> WebhookPayload {
    let (mp3_size_bytes, duration_ms, error, download) = match &event.outcome {
        JobOutcome::Done {
            mp3_size_bytes,
            duration_ms,
        } => (
            Some(*mp3_size_bytes),
            Some(*duration_ms),
            None,
            Some(format!("/api/v1/jobs/{}/mp3", event.job_id)),
        ),
        JobOutcome::Failed { code, message } => (
            None,
            None,
            Some(JobError {
                code: *code,
                message: message.clone(),
            }),
            None,
        ),
    };
    WebhookPayload {
        r#type: format!("job.{}", event.kind()),
        delivery_id: id.to_owned(),
        timestamp: rfc3339(timestamp),
        data: WebhookJob {
            id: event.job_id,
            status: event.kind().to_owned(),
            original_name: event.original_name.clone(),
            mp3_fid: event.mp3_fid.clone(),
            mp3_size_bytes,
            duration_ms,
            download,
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vid2mp3_contracts::messages::MESSAGE_VERSION;
    use vid2mp3_contracts::{ErrorCode, JobId, UserId};

    fn event(outcome: JobOutcome) -> JobEvent {
        JobEvent {
            version: MESSAGE_VERSION,
            message_id: uuid::Uuid::now_v7(),
            job_id: JobId::new(),
            video_fid: "65f0c0ffee65f0c0ffee65f0".parse().unwrap(),
            mp3_fid: None,
            username: "ada@example.com".into(),
            owner_id: UserId::new(),
            original_name: "talk.mkv".into(),
            attempt: 1,
            outcome,
        }
    }

    #[test]
    fn the_payload_shows_the_job_and_never_the_owners_address() {
        let done = event(JobOutcome::Done {
            mp3_size_bytes: 10,
            duration_ms: 20,
        });
        let id = delivery_id(&done.job_id, done.kind());
        let value = serde_json::to_value(payload(&done, &id, 0)).unwrap();
        assert_eq!(value["type"], "job.done");
        assert_eq!(value["delivery_id"], id.as_str());
        assert_eq!(value["data"]["status"], "done");
        assert_eq!(
            value["data"]["download"],
            format!("/api/v1/jobs/{}/mp3", done.job_id)
        );
        assert!(!value.to_string().contains("ada@example.com"));
        let failed = event(JobOutcome::Failed {
            code: ErrorCode::NoAudio,
            message: "the video has no sound".into(),
        });
        let value = serde_json::to_value(payload(&failed, "x", 0)).unwrap();
        assert_eq!(value["type"], "job.failed");
        assert_eq!(value["data"]["error"]["code"], "no_audio");
        assert!(value["data"]["download"].is_null());
    }

    #[test]
    fn retry_queues_are_named_by_their_delay() {
        assert_eq!(
            retry_queue_name(Duration::from_secs(10)),
            "webhooks.retry.10000"
        );
    }
}
