//! The event relay: Spin has no AMQP trigger, so job events go from the `mp3` queue to the
//! notifier through a Redis channel (ARCHITECTURE.md, flow 4).
//!
//! For each event: if the notifier's delivery ack (`delivery_ack_key(message_id)`) is already
//! there, ack at once (an earlier delivery was handled, our ack was lost). Otherwise PUBLISH the
//! event's JSON; a PUBLISH that reached no subscriber did not deliver anything. Then poll for
//! the ack key, with backoff, up to `VID2MP3_RELAY_ACK_TIMEOUT_MS`. The AMQP message is acked
//! only once the key exists; otherwise, after a pause that grows per message, it is handed back
//! to the queue (nack, requeue) and delivered again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};
use vid2mp3_contracts::JobEvent;
use vid2mp3_contracts::messages::{MP3_QUEUE, delivery_ack_key};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::QueueError;
use crate::queue::consume::{Consumer, DeliveryHandler};
use crate::redis_conn::RedisConnection;
use crate::shutdown::pause;

/// What the relay uses: its settings, Redis (the event channel, the notifier's delivery acks)
/// and the metrics.
pub struct Deps {
    pub config: Arc<Config>,
    pub redis: Arc<RedisConnection>,
    pub metrics: Metrics,
}

/// The longest pause before an undelivered event is handed back.
const MAX_REDELIVER_DELAY: Duration = Duration::from_secs(30);

/// Per message id: how many times it was handed back (for a growing pause).
type Attempts = Arc<Mutex<HashMap<uuid::Uuid, u32>>>;

/// Runs the relay until `shutdown`, reconnecting with backoff whenever the broker goes away.
/// A shutdown ends the waits for delivery acks at once; what is not acked is requeued when the
/// connection closes.
pub async fn run(deps: Arc<Deps>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = &deps.config;
    info!(channel = %config.job_events_channel, "relay publishes job events");
    let consumer = Consumer {
        role: "relay",
        queue: MP3_QUEUE,
        amqp_url: config.amqp_url_with_heartbeat(),
        prefetch: config.relay_prefetch,
        retry_delays: config.retry_delays.clone(),
        shutdown_grace: Duration::ZERO,
    };
    let events = JobEvents {
        deps: Arc::clone(&deps),
        attempts: Attempts::default(),
    };
    consumer.run(&events, &shutdown).await;
    Ok(())
}

struct JobEvents {
    deps: Arc<Deps>,
    /// Kept across reconnects: a message handed back keeps its growing pause.
    attempts: Attempts,
}

impl DeliveryHandler for JobEvents {
    type PerConnection = ();

    async fn open(&self, _conn: &Connection) -> Result<(), QueueError> {
        Ok(())
    }

    fn handle(
        &self,
        _: &(),
        delivery: Delivery,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        relay_one(
            Arc::clone(&self.deps),
            delivery,
            stop,
            Arc::clone(&self.attempts),
        )
    }
}

enum Outcome {
    Delivered,
    NotDelivered(String),
    ShuttingDown,
}

async fn relay_one(
    deps: Arc<Deps>,
    delivery: Delivery,
    stop: CancellationToken,
    attempts: Attempts,
) {
    let event: JobEvent = match serde_json::from_slice(&delivery.data) {
        Ok(e) => e,
        Err(e) => {
            error!(error = %e, "unreadable job event; dead-lettering it");
            deps.metrics.events.with_label_values(&["unreadable"]).inc();
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    let span = info_span!("event", job_id = %event.job_id, event_id = %event.message_id, kind = event.kind());
    async {
        match deliver(&deps, &event, &delivery.data, &stop).await {
            Outcome::Delivered => {
                if let Ok(mut map) = attempts.lock() {
                    map.remove(&event.message_id);
                }
                deps
                    .metrics
                    .events
                    .with_label_values(&["delivered"])
                    .inc();
                match delivery.ack(BasicAckOptions::default()).await {
                    Ok(_) => info!("event delivered"),
                    Err(error) => warn!(%error, "ack failed; the event will come again and be acked at once"),
                }
            }
            Outcome::ShuttingDown => {}
            Outcome::NotDelivered(why) => {
                let n = attempts
                    .lock()
                    .map(|mut map| {
                        let n = map.entry(event.message_id).or_insert(0);
                        *n += 1;
                        *n
                    })
                    .unwrap_or(1);
                let delay = redeliver_delay(deps.config.relay_redeliver_delay, n);
                warn!(reason = %why, times = n, retry_in_ms = delay.as_millis() as u64, "event not delivered; handing it back");
                deps
                    .metrics
                    .events
                    .with_label_values(&["redelivered"])
                    .inc();
                if pause(&stop, delay).await {
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
    .instrument(span)
    .await;
}

/// `base × 2^(n-1)`, at most [`MAX_REDELIVER_DELAY`].
fn redeliver_delay(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(MAX_REDELIVER_DELAY)
}

async fn deliver(
    deps: &Deps,
    event: &JobEvent,
    payload: &[u8],
    stop: &CancellationToken,
) -> Outcome {
    let key = delivery_ack_key(&deps.config.redis_key_prefix, &event.message_id);
    let mut conn = match deps.redis.get().await {
        Ok(c) => c,
        Err(e) => return Outcome::NotDelivered(format!("Redis: {e}")),
    };
    match redis::cmd("EXISTS")
        .arg(&key)
        .query_async::<u32>(&mut conn)
        .await
    {
        Ok(n) if n > 0 => return Outcome::Delivered,
        Ok(_) => {}
        Err(e) => return Outcome::NotDelivered(format!("Redis: {e}")),
    }
    let receivers: u64 = match redis::cmd("PUBLISH")
        .arg(&deps.config.job_events_channel)
        .arg(payload)
        .query_async(&mut conn)
        .await
    {
        Ok(n) => n,
        Err(e) => return Outcome::NotDelivered(format!("Redis: {e}")),
    };
    if receivers == 0 {
        return Outcome::NotDelivered(format!(
            "no one subscribes to {}",
            deps.config.job_events_channel
        ));
    }
    let deadline = Instant::now() + deps.config.relay_ack_timeout;
    let mut wait = Duration::from_millis(25);
    loop {
        match redis::cmd("EXISTS")
            .arg(&key)
            .query_async::<u32>(&mut conn)
            .await
        {
            Ok(n) if n > 0 => return Outcome::Delivered,
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot check the delivery ack"),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::NotDelivered(format!(
                "no delivery ack within {:?}",
                deps.config.relay_ack_timeout
            ));
        }
        if !pause(stop, wait.min(left)).await {
            return Outcome::ShuttingDown;
        }
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_pauses_grow_to_a_ceiling() {
        let base = Duration::from_secs(1);
        assert_eq!(redeliver_delay(base, 1), Duration::from_secs(1));
        assert_eq!(redeliver_delay(base, 2), Duration::from_secs(2));
        assert_eq!(redeliver_delay(base, 4), Duration::from_secs(8));
        assert_eq!(redeliver_delay(base, 40), MAX_REDELIVER_DELAY);
    }
}
