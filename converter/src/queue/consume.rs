//! The consume loop both consuming roles run (the worker on `video`, the relay on `mp3`).
//!
//! One connection's life: connect, declare the topology, set the prefetch, consume, hand each
//! delivery to a task of its own. It ends in one of two ways:
//! - shutdown: stop taking work (cancel the consumer), give the deliveries in flight the grace
//!   period, then cancel them through their `stop` token and wait for them;
//! - the connection fails: wait for the deliveries in flight however long they take (their
//!   acks fail and the broker redelivers them; waiting keeps one process from handling the same
//!   message twice), then reconnect with exponential backoff (250 ms → 30 s). A shutdown while
//!   waiting gives them the grace period, as above.
//!
//! Whatever is still unacked when the connection closes goes back to the queue.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Backoff, QueueError, connect, declare_topology};
use crate::shutdown::pause;

/// What a role does with its deliveries.
pub trait DeliveryHandler: Send + Sync {
    /// What each connection opens for the handler besides the consuming channel (the worker:
    /// a confirm-mode channel to publish on). Handed to every delivery of that connection.
    type PerConnection: Send + Sync;

    fn open(
        &self,
        conn: &Connection,
    ) -> impl Future<Output = Result<Self::PerConnection, QueueError>> + Send;

    /// The task for one delivery. It must settle the delivery (ack, nack or reject) or leave it
    /// to the connection's close; `stop` is cancelled when it has to end early.
    fn handle(
        &self,
        per_connection: &Self::PerConnection,
        delivery: Delivery,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// Where and how a role consumes.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// `worker`, `relay`: in logs, in the connection's name (`vid2mp3-converter worker`, which
    /// the management UI shows) and in the consumer tag.
    pub role: &'static str,
    pub queue: &'static str,
    pub amqp_url: String,
    pub prefetch: u16,
    /// Declared with the rest of the topology (see the module `queue`).
    pub retry_delays: Vec<Duration>,
    /// How long deliveries in flight may run on after a shutdown before they are stopped.
    pub shutdown_grace: Duration,
}

impl Consumer {
    /// Consumes until `shutdown`, reconnecting whenever the broker goes away.
    pub async fn run<H: DeliveryHandler>(&self, handler: &H, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        while !shutdown.is_cancelled() {
            match self.one_connection(handler, shutdown, &mut backoff).await {
                Ok(()) => return,
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(
                        role = self.role,
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "lost RabbitMQ; reconnecting"
                    );
                    if !pause(shutdown, delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Ok after a shutdown, Err when the connection failed (or could not be made).
    async fn one_connection<H: DeliveryHandler>(
        &self,
        handler: &H,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), QueueError> {
        let conn = connect(&self.amqp_url, &format!("vid2mp3-converter {}", self.role)).await?;
        let channel = conn.create_channel().await?;
        declare_topology(&channel, &self.retry_delays).await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let per_connection = handler.open(&conn).await?;
        let mut consumer = channel
            .basic_consume(
                self.queue.into(),
                format!("{}-{}", self.role, uuid::Uuid::new_v4().simple()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        backoff.reset();
        info!(
            role = self.role,
            prefetch = self.prefetch,
            "consuming {}",
            self.queue
        );
        let stop = CancellationToken::new();
        let mut in_flight = JoinSet::new();
        let result = loop {
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(handler.handle(&per_connection, delivery, stop.clone()));
                    }
                    Some(Err(error)) => break Err(QueueError::from(error)),
                    None => break Err(QueueError::ConsumerEnded),
                }
            }
        };
        if result.is_ok() {
            let _ = channel
                .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                .await;
            if !in_flight.is_empty() {
                info!(
                    role = self.role,
                    in_flight = in_flight.len(),
                    "shutting down: waiting for deliveries in flight"
                );
            }
        } else {
            // Lost connection: deliveries in flight run to their end, unless a shutdown comes
            // meanwhile, which gives them the grace period like any other.
            tokio::select! {
                () = drain(&mut in_flight) => {}
                () = shutdown.cancelled() => {}
            }
        }
        if tokio::time::timeout(self.shutdown_grace, drain(&mut in_flight))
            .await
            .is_err()
        {
            if !self.shutdown_grace.is_zero() {
                warn!(
                    role = self.role,
                    in_flight = in_flight.len(),
                    "still in flight after the grace period; handing them back"
                );
            }
            stop.cancel();
            drain(&mut in_flight).await;
        }
        let _ = conn
            .close(200, format!("{} stopping", self.role).as_str().into())
            .await;
        result
    }
}

/// Waits for every task in the set (cancel-safe: dropping it leaves the rest in the set).
async fn drain(in_flight: &mut JoinSet<()>) {
    while in_flight.join_next().await.is_some() {}
}
