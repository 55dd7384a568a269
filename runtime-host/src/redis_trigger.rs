//! The Redis trigger: one subscription per address covering its channels, a fresh instance per
//! message, and reconnection with capped exponential backoff when the connection drops.
//!
//! A message's instance reaches the app's other components (`http://<id>.spin.internal`) and,
//! when the app serves HTTP, its routes (relative URLs) through the interceptor it is given,
//! which the HTTP trigger makes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use crate::activity::{Activity, Cut};
use crate::manifest::RedisTrigger;
use crate::metrics::{Cause, Invocation, Trigger};
use crate::outbound_hosts::OutboundTarget;
use crate::outbound_http::OutboundInterceptor;
use crate::runtime::{InvokeError, LoadedComponent, Runtime};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a message's instance needs: the runtime, and the interceptor for its own requests.
#[derive(Clone)]
struct Handler {
    runtime: Arc<Runtime>,
    interceptor: Arc<dyn OutboundInterceptor>,
}

/// Subscribers for every `[[trigger.redis]]`, grouped by address. Each stops when `shutdown`
/// becomes true.
pub fn spawn(
    runtime: Arc<Runtime>,
    interceptor: Arc<dyn OutboundInterceptor>,
    triggers: &[RedisTrigger],
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let handler = Handler {
        runtime,
        interceptor,
    };
    let mut by_address: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for t in triggers {
        by_address
            .entry(t.address.clone())
            .or_default()
            .push((t.channel.clone(), t.component.clone()));
    }
    by_address
        .into_iter()
        .map(|(address, routes)| {
            tokio::spawn(subscribe_loop(
                handler.clone(),
                address,
                routes,
                shutdown.clone(),
            ))
        })
        .collect()
}

fn loggable(address: &str) -> String {
    OutboundTarget::parse(address)
        .map(|t| t.authority())
        .unwrap_or_else(|| "<invalid address>".into())
}

async fn subscribe_loop(
    handler: Handler,
    address: String,
    routes: Vec<(String, String)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shown = loggable(&address);
    let mut backoff = BACKOFF_START;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match subscribe(&address, &routes).await {
            Ok(pubsub) => {
                backoff = BACKOFF_START;
                tracing::info!(address = %shown, channels = ?routes.iter().map(|r| &r.0).collect::<Vec<_>>(), "redis trigger subscribed");
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => dispatch(&handler, &routes, message),
                            None => {
                                tracing::warn!(address = %shown, "redis trigger lost its connection; resubscribing");
                                break;
                            }
                        },
                        _ = shutdown.changed() => return,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(address = %shown, error = %e, retry_in_ms = backoff.as_millis() as u64, "redis trigger cannot subscribe");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe(
    address: &str,
    routes: &[(String, String)],
) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(address)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    for (channel, _) in routes {
        pubsub.subscribe(channel).await?;
    }
    Ok(pubsub)
}

fn dispatch(handler: &Handler, routes: &[(String, String)], message: redis::Msg) {
    let channel = message.get_channel_name().to_owned();
    let payload = message.get_payload_bytes().to_vec();
    for (_, component_id) in routes.iter().filter(|(c, _)| *c == channel) {
        let Some(component) = handler.runtime.component(component_id).cloned() else {
            tracing::error!(channel = %channel, component = %component_id, "redis trigger points at an unknown component");
            continue;
        };
        let handler = handler.clone();
        let channel = channel.clone();
        let payload = payload.clone();
        tokio::spawn(async move {
            let message_id: Arc<str> = Arc::from(uuid::Uuid::now_v7().simple().to_string());
            let started = Instant::now();
            let bytes = payload.len();
            let result = handler
                .handle_message(&component, payload, message_id.clone())
                .await;
            let elapsed = started.elapsed();
            let (status, cause) = match &result {
                Ok(()) => ("ok", Cause::Component),
                Err(InvokeError::Guest(_)) => ("error", Cause::Component),
                Err(InvokeError::Timeout(_)) => ("error", Cause::Timeout),
                Err(_) => ("error", Cause::Failed),
            };
            handler.runtime.metrics.record(&Invocation {
                trigger: Trigger::Redis,
                route: &channel,
                component: component.id(),
                status,
                cause,
                elapsed,
            });
            let elapsed_ms = elapsed.as_secs_f64() * 1e3;
            match result {
                Ok(()) => {
                    tracing::info!(message_id = %message_id, channel = %channel, component = %component.id(), bytes, elapsed_ms, outcome = "ok", "redis message")
                }
                Err(e) => {
                    tracing::error!(message_id = %message_id, channel = %channel, component = %component.id(), bytes, elapsed_ms, outcome = "error", error = %e, "redis message")
                }
            }
        });
    }
}

impl Handler {
    /// Runs `component`'s Redis handler for one message.
    async fn handle_message(
        &self,
        component: &LoadedComponent,
        payload: Vec<u8>,
        request_id: Arc<str>,
    ) -> Result<(), InvokeError> {
        let pre = component
            .redis
            .clone()
            .ok_or_else(|| InvokeError::NotRedis(component.id().to_string()))?;
        // A message has no body to stream, so its limit counts from the start.
        let activity = Activity::new();
        let mut held = self
            .runtime
            .instance_store(
                component,
                request_id,
                activity.clone(),
                Some(self.interceptor.clone()),
            )
            .await?;
        let _in_flight = self.runtime.metrics.in_flight(component.id());
        let timeout = self.runtime.config.request_timeout;
        let run = async {
            let instance = pre.instantiate_async(&mut held.store).await?;
            instance
                .fermyon_spin_inbound_redis()
                .call_handle_message(&mut held.store, &payload)
                .await
        };
        match activity.bound(timeout, run).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(InvokeError::Guest(format!("{e:?}"))),
            Ok(Err(e)) => Err(self.runtime.classify(e)),
            Err(Cut::Idle) => Err(InvokeError::Timeout(timeout)),
            // A message has no client to stall.
            Err(Cut::ClientStalled) => Err(InvokeError::ClientTooSlow),
        }
    }
}
