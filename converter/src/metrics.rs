//! Prometheus metrics, served as text on `/metrics`. Each service instance has its own registry
//! (tests run several in one process).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Jobs by outcome: done, failed (permanent), retried, dead_lettered, duplicate (redelivered
    /// after its mp3 existed).
    pub jobs: IntCounterVec,
    /// Wall time of a conversion (GridFS to GridFS).
    pub job_seconds: Histogram,
    /// Seconds of audio per second of wall time.
    pub realtime_factor: Histogram,
    /// Time between publishing a job and a worker starting it.
    pub queue_lag_seconds: Histogram,
    /// Bytes stored (videos in) and served (mp3s out) by the storage API, and read/written by
    /// the worker.
    pub bytes: IntCounterVec,
    /// Storage API requests by route and status.
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    /// Relay outcomes: delivered, redelivered, unreadable.
    pub events: IntCounterVec,
    pub uploads_aborted: IntCounter,
    /// Uploads and conversions refused by an account's quota, by limit.
    pub quota_refusals: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("vid2mp3_converter".into()), None)?;
        let jobs = IntCounterVec::new(
            Opts::new("jobs_total", "Jobs finished, by outcome"),
            &["outcome"],
        )?;
        let job_seconds = Histogram::with_opts(
            HistogramOpts::new("job_duration_seconds", "Wall time of a conversion").buckets(vec![
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
        )?;
        let realtime_factor = Histogram::with_opts(
            HistogramOpts::new(
                "realtime_factor",
                "Seconds of audio converted per second of wall time",
            )
            .buckets(vec![
                1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 500.0,
            ]),
        )?;
        let queue_lag_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "queue_lag_seconds",
                "Time from a job's publish to a worker starting it",
            )
            .buckets(vec![0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0]),
        )?;
        let bytes = IntCounterVec::new(
            Opts::new("bytes_total", "Bytes moved, by direction"),
            &["direction"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "Storage API requests"),
            &["route", "status"],
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Storage API request time"),
            &["route"],
        )?;
        let events = IntCounterVec::new(
            Opts::new("events_relayed_total", "Job events handled by the relay"),
            &["result"],
        )?;
        let uploads_aborted = IntCounter::new(
            "uploads_aborted_total",
            "Video uploads that ended early and were removed",
        )?;
        let quota_refusals = IntCounterVec::new(
            Opts::new(
                "quota_refusals_total",
                "Uploads and conversions refused by an account's quota",
            ),
            &["limit"],
        )?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(job_seconds.clone()))?;
        registry.register(Box::new(realtime_factor.clone()))?;
        registry.register(Box::new(queue_lag_seconds.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(uploads_aborted.clone()))?;
        registry.register(Box::new(quota_refusals.clone()))?;
        Ok(Metrics {
            registry,
            jobs,
            job_seconds,
            realtime_factor,
            queue_lag_seconds,
            bytes,
            requests,
            request_seconds,
            events,
            uploads_aborted,
            quota_refusals,
        })
    }

    pub fn job(&self, outcome: &str) {
        self.jobs.with_label_values(&[outcome]).inc();
    }

    pub fn add_bytes(&self, direction: &str, n: u64) {
        self.bytes.with_label_values(&[direction]).inc_by(n);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_format() {
        let m = Metrics::new().unwrap();
        m.job("done");
        m.add_bytes("video_in", 42);
        m.realtime_factor.observe(120.0);
        let text = m.render().unwrap();
        assert!(
            text.contains("vid2mp3_converter_jobs_total{outcome=\"done\"} 1"),
            "{text}"
        );
        assert!(text.contains("vid2mp3_converter_bytes_total{direction=\"video_in\"} 42"));
        assert!(text.contains("vid2mp3_converter_realtime_factor_count 1"));
    }
}
