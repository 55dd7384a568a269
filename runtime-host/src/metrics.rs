//! Prometheus metrics of the running app: requests and messages per trigger, route and component,
//! their latency, the instance pool, admission refusals and components' outbound calls.
//!
//! Every label value comes from a closed set or from the manifest (route patterns, channels,
//! component ids), never from a request, so the number of series is bounded by the app. Each
//! [`crate::runtime::Runtime`] has its own registry (tests run several apps in one process);
//! `--metrics-listen` serves it ([`crate::metrics_server`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds: a hello request takes well under a millisecond, a conversion
/// upload streams for minutes (the histogram times the answer's head, not the body).
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// What started an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A request on the app's listener.
    Http,
    /// A component's request to a relative URL, routed in-process.
    SelfRequest,
    /// `http://<id>.spin.internal`: service chaining.
    Chained,
    /// A message on a Redis channel.
    Redis,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::SelfRequest => "self",
            Trigger::Chained => "chained",
            Trigger::Redis => "redis",
        }
    }
}

/// Who decided an answer: the component, or the host in its place (and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The component's own response (or, for a Redis message, its own result).
    Component,
    /// `/.well-known/spin/...`, answered by the host.
    Host,
    /// 404: no route matched.
    NoRoute,
    /// 400/413: refused before the component (bad Host, body over the limit).
    Rejected,
    /// 503: over the client limits.
    Admission,
    /// 408: the client sent its body too slowly.
    SlowBody,
    /// 504 (or a Redis message cut): no progress for the request time limit.
    Timeout,
    /// 500: the component trapped, failed or gave no response.
    Failed,
}

impl Cause {
    fn label(self) -> &'static str {
        match self {
            Cause::Component => "component",
            Cause::Host => "host",
            Cause::NoRoute => "no_route",
            Cause::Rejected => "rejected",
            Cause::Admission => "admission",
            Cause::SlowBody => "slow_body",
            Cause::Timeout => "timeout",
            Cause::Failed => "failed",
        }
    }
}

/// An HTTP status's class label.
pub fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The kind of an outbound call a component makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundKind {
    /// An HTTP(S) request to another host.
    Http,
    /// `http://<id>.spin.internal`, dispatched in-process.
    SpinInternal,
    /// A relative URL, sent to the app's own HTTP trigger in-process.
    SelfRequest,
    /// `open` and each statement of `fermyon:spin/mysql`.
    Mysql,
    /// `open` and each command of `fermyon:spin/redis`.
    Redis,
}

impl OutboundKind {
    fn label(self) -> &'static str {
        match self {
            OutboundKind::Http => "http",
            OutboundKind::SpinInternal => "spin_internal",
            OutboundKind::SelfRequest => "self",
            OutboundKind::Mysql => "mysql",
            OutboundKind::Redis => "redis",
        }
    }
}

/// How an outbound call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It got an answer (for HTTP: any status).
    Ok,
    /// `allowed_outbound_hosts` refused it.
    Denied,
    /// It failed: no connection, no answer, or the service's error.
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }

    pub fn of<T, E>(result: &Result<T, E>) -> Self {
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        }
    }
}

/// One finished invocation, as [`Metrics::record`] takes it.
pub struct Invocation<'a> {
    pub trigger: Trigger,
    /// The manifest's route pattern (HTTP), `/...` for a chained request (the catch-all Spin
    /// synthesises), the channel (Redis); `-` when no route matched.
    pub route: &'a str,
    /// The component id; `-` when the host answered alone.
    pub component: &'a str,
    /// A status class (`2xx`...) for HTTP; `ok` or `error` for a Redis message.
    pub status: &'static str,
    pub cause: Cause,
    pub elapsed: Duration,
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGaugeVec,
    pool_in_use: IntGauge,
    pool_capacity: IntGauge,
    admission_refusals: IntCounterVec,
    outbound: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new_custom(Some("runtime_host".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "Requests and messages handled, by trigger, route, component, status class and cause",
            ),
            &["trigger", "route", "component", "status", "cause"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from a request's arrival to its response head (a Redis message: to the handler's end)",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["trigger", "route", "component"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "requests_in_flight",
                "Requests and messages whose component instance is running",
            ),
            &["component"],
        )?;
        let pool_in_use = IntGauge::new(
            "instance_pool_slots_in_use",
            "Slots of the instance pool held by instances now",
        )?;
        let pool_capacity = IntGauge::new(
            "instance_pool_slots",
            "Slots of the instance pool (--max-instances)",
        )?;
        let admission_refusals = IntCounterVec::new(
            Opts::new(
                "admission_refusals_total",
                "Connections and requests answered 503 over the client limits, by the limit",
            ),
            &["reason"],
        )?;
        let outbound = IntCounterVec::new(
            Opts::new(
                "outbound_calls_total",
                "Components' outbound calls, by component, kind and outcome",
            ),
            &["component", "kind", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(pool_in_use.clone()))?;
        registry.register(Box::new(pool_capacity.clone()))?;
        registry.register(Box::new(admission_refusals.clone()))?;
        registry.register(Box::new(outbound.clone()))?;
        Ok(Arc::new(Self {
            registry,
            requests,
            duration,
            in_flight,
            pool_in_use,
            pool_capacity,
            admission_refusals,
            outbound,
        }))
    }

    pub fn record(&self, i: &Invocation<'_>) {
        let trigger = i.trigger.label();
        self.requests
            .with_label_values(&[trigger, i.route, i.component, i.status, i.cause.label()])
            .inc();
        self.duration
            .with_label_values(&[trigger, i.route, i.component])
            .observe(i.elapsed.as_secs_f64());
    }

    /// Counts `component` in flight until the guard is dropped.
    pub fn in_flight(&self, component: &str) -> InFlight {
        let gauge = self.in_flight.with_label_values(&[component]);
        gauge.inc();
        InFlight(gauge)
    }

    pub fn refused(&self, reason: &'static str) {
        self.admission_refusals.with_label_values(&[reason]).inc();
    }

    pub fn outbound(&self, component: &str, kind: OutboundKind, outcome: Outcome) {
        self.outbound
            .with_label_values(&[component, kind.label(), outcome.label()])
            .inc();
    }

    /// The Prometheus text exposition, with the pool's gauges read now.
    pub fn render(
        &self,
        pool_in_use: usize,
        pool_capacity: usize,
    ) -> Result<String, prometheus::Error> {
        self.pool_in_use
            .set(i64::try_from(pool_in_use).unwrap_or(i64::MAX));
        self.pool_capacity
            .set(i64::try_from(pool_capacity).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// A request or message counted in [`Metrics`]' in-flight gauge.
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_outbound_calls_and_the_pool_show_in_the_text_format() {
        let m = Metrics::new().unwrap();
        m.record(&Invocation {
            trigger: Trigger::Http,
            route: "/api/...",
            component: "gateway",
            status: status_class(http::StatusCode::CREATED),
            cause: Cause::Component,
            elapsed: Duration::from_millis(3),
        });
        m.refused("requests");
        m.outbound("gateway", OutboundKind::SpinInternal, Outcome::Ok);
        let guard = m.in_flight("gateway");
        let text = m.render(3, 200).unwrap();
        assert!(
            text.contains(
                "runtime_host_requests_total{cause=\"component\",component=\"gateway\",route=\"/api/...\",status=\"2xx\",trigger=\"http\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("runtime_host_request_duration_seconds_count{component=\"gateway\",route=\"/api/...\",trigger=\"http\"} 1"), "{text}");
        assert!(text.contains("runtime_host_admission_refusals_total{reason=\"requests\"} 1"));
        assert!(text.contains(
            "runtime_host_outbound_calls_total{component=\"gateway\",kind=\"spin_internal\",outcome=\"ok\"} 1"
        ));
        assert!(text.contains("runtime_host_requests_in_flight{component=\"gateway\"} 1"));
        assert!(text.contains("runtime_host_instance_pool_slots_in_use 3"));
        assert!(text.contains("runtime_host_instance_pool_slots 200"));
        drop(guard);
        let text = m.render(0, 200).unwrap();
        assert!(text.contains("runtime_host_requests_in_flight{component=\"gateway\"} 0"));
        assert_eq!(status_class(http::StatusCode::GATEWAY_TIMEOUT), "5xx");
        assert_eq!(status_class(http::StatusCode::NOT_MODIFIED), "3xx");
    }
}
