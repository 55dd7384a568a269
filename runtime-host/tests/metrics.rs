//! `--metrics-listen`: the binary prints the metrics URL after its Serving line, serves only
//! `GET /metrics` there (never on the app's listener), and every counter moves by exactly what
//! the test sent: requests per route and component with their status class and cause, chained
//! requests, the host's own answers, outbound calls by kind and outcome, a Redis-triggered message, an admission refusal
//! and a timeout, and the instance pool.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TempManifest, client, http_probe, percent_encode, redis_probe};
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vid2mp3_test_support_core::{ServiceUrls, eventually, unique_name};

struct Host {
    child: Child,
    base: String,
    metrics: String,
    log: std::path::PathBuf,
    _manifest: TempManifest,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn manifest(channel: &str) -> String {
    let redis = ServiceUrls::from_env().redis;
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "metrics"
[application.trigger.redis]
address = "{redis}"
[variables]
redis_url = {{ default = "{redis}" }}
[[trigger.http]]
route = "/probe/..."
component = "probe"
[[trigger.http]]
route = {{ private = true }}
component = "backend"
[[trigger.redis]]
channel = "{channel}"
component = "listener"
[component.probe]
source = "{probe}"
allowed_outbound_hosts = ["http://backend.spin.internal", "redis://127.0.0.1:6379", "mysql://127.0.0.1:3306"]
[component.backend]
source = "{probe}"
[component.listener]
source = "{listener}"
[component.listener.variables]
redis_url = "{{{{ redis_url }}}}"
"#,
        probe = http_probe(),
        listener = redis_probe(),
    )
}

fn start(channel: &str) -> Host {
    let manifest = TempManifest::new(&manifest(channel));
    let log = std::env::temp_dir().join(unique_name("rh-log-"));
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_runtime-host"))
        .args(["up", "-f"])
        .arg(&manifest.path)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        // One request per client at a time, so that a second one is refused (503) while a
        // spinning one holds its place until the time limit (504).
        .args([
            "--max-requests-per-client",
            "1",
            "--request-timeout-secs",
            "3",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("runtime-host binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = |prefix: &str| {
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("no {prefix:?} line; log: {}", read(&log)));
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line:?} is not {prefix:?}...; log: {}", read(&log)))
            .to_owned()
    };
    let base = next("Serving ");
    let metrics = next("Metrics ");
    Host {
        child,
        base,
        metrics,
        log,
        _manifest: manifest,
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The samples of a scrape: `name{labels}` → value, exactly as printed.
async fn scrape(url: &str) -> HashMap<String, f64> {
    let r = client().get(url).send().await.expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.expect("metrics body");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn requests(trigger: &str, route: &str, component: &str, status: &str, cause: &str) -> String {
    format!(
        "runtime_host_requests_total{{cause=\"{cause}\",component=\"{component}\",route=\"{route}\",status=\"{status}\",trigger=\"{trigger}\"}}"
    )
}

fn outbound(component: &str, kind: &str, outcome: &str) -> String {
    format!(
        "runtime_host_outbound_calls_total{{component=\"{component}\",kind=\"{kind}\",outcome=\"{outcome}\"}}"
    )
}

fn in_flight(component: &str) -> String {
    format!("runtime_host_requests_in_flight{{component=\"{component}\"}}")
}

/// Waits until no instance runs (an answered request's instance may still be ending), so that
/// the next request is not refused by `--max-requests-per-client 1`.
async fn settle(host: &Host) {
    let idle = eventually(Duration::from_secs(20), || async {
        let samples = scrape(&host.metrics).await;
        let busy = samples
            .iter()
            .any(|(k, v)| k.starts_with("runtime_host_requests_in_flight") && *v != 0.0);
        (!busy && value(&samples, "runtime_host_instance_pool_slots_in_use") == 0.0).then_some(())
    })
    .await;
    assert!(
        idle.is_some(),
        "instances still running; log: {}",
        read(&host.log)
    );
}

async fn get(host: &Host, path: &str) -> u16 {
    let status = client()
        .get(format!("{}{path}", host.base))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16();
    settle(host).await;
    status
}

#[tokio::test]
async fn metrics_count_what_was_sent_on_their_own_listener() {
    let channel = unique_name("metrics-");
    let host = start(&channel);
    let before = scrape(&host.metrics).await;
    assert_eq!(
        value(&before, "runtime_host_instance_pool_slots"),
        200.0,
        "--max-instances' default"
    );

    // Three answers of the component's own, one of them 4xx.
    assert_eq!(get(&host, "/probe/a?op=headers").await, 200);
    assert_eq!(get(&host, "/probe/b?op=headers").await, 200);
    assert_eq!(get(&host, "/probe?op=var&name=nope").await, 404);
    // No route: the host answers, and the app's listener has no /metrics.
    assert_eq!(get(&host, "/nothing").await, 404);
    assert_eq!(get(&host, "/metrics").await, 404);
    // The host's own health path, without an instance.
    assert_eq!(get(&host, "/.well-known/spin/health").await, 200);
    // Outbound: a chained call, a refused host, Redis and MySQL opened and refused.
    let fetch = |url: &str| format!("/probe?op=fetch&url={}", percent_encode(url));
    assert_eq!(
        get(&host, &fetch("http://backend.spin.internal/x?op=headers")).await,
        200
    );
    assert_eq!(get(&host, &fetch("http://example.com/")).await, 502);
    let open = |op: &str, addr: &str| format!("/probe?op={op}&addr={}", percent_encode(addr));
    assert_eq!(
        get(&host, &open("redis-open", &ServiceUrls::from_env().redis)).await,
        200
    );
    assert_eq!(
        get(&host, &open("redis-open", "redis://192.0.2.1:6379")).await,
        502
    );
    assert_eq!(
        get(&host, &open("mysql-open", &ServiceUrls::from_env().mysql)).await,
        200
    );
    assert_eq!(
        get(&host, &open("mysql-open", "mysql://192.0.2.1:3306")).await,
        502
    );
    // A spinning request holds the client's one place until its time limit: a second one from
    // the same client is refused meanwhile.
    let spinning = tokio::spawn({
        let url = format!("{}/probe?op=spin", host.base);
        async move {
            client()
                .get(url)
                .send()
                .await
                .expect("spin")
                .status()
                .as_u16()
        }
    });
    let running = eventually(Duration::from_secs(20), || async {
        (value(&scrape(&host.metrics).await, &in_flight("probe")) == 1.0).then_some(())
    })
    .await;
    assert!(running.is_some(), "the spinning request never started");
    assert_eq!(get(&host, "/probe?op=headers").await, 503);
    assert_eq!(spinning.await.expect("spin task"), 504);
    settle(&host).await;
    // A Redis message: published until a subscriber received it, so exactly once.
    let redis = common::redis_connection().await;
    let delivered = eventually(Duration::from_secs(20), || {
        let mut redis = redis.clone();
        let channel = channel.clone();
        async move {
            let receivers: i64 = redis.publish(&channel, "FAIL").await.ok()?;
            (receivers > 0).then_some(())
        }
    })
    .await;
    assert!(delivered.is_some(), "the Redis trigger never subscribed");
    let redis_series = requests("redis", &channel, "listener", "error", "component");
    let after = eventually(Duration::from_secs(20), || async {
        let samples = scrape(&host.metrics).await;
        (value(&samples, &redis_series) == 1.0).then_some(samples)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the Redis message was not counted; log: {}",
            read(&host.log)
        )
    });

    let moved = |series: &str| value(&after, series) - value(&before, series);
    let route = "/probe/...";
    let expected = [
        // headers ×2, the chained fetch, the allowed Redis and MySQL opens.
        (requests("http", route, "probe", "2xx", "component"), 5.0),
        (requests("http", route, "probe", "4xx", "component"), 1.0),
        // the refused fetch, Redis and MySQL opens.
        (requests("http", route, "probe", "5xx", "component"), 3.0),
        (requests("http", "-", "-", "4xx", "no_route"), 2.0),
        (
            requests("http", "/.well-known/spin/health", "-", "2xx", "host"),
            1.0,
        ),
        (requests("http", route, "probe", "5xx", "admission"), 1.0),
        (requests("http", route, "probe", "5xx", "timeout"), 1.0),
        (requests("chained", "/...", "backend", "2xx", "component"), 1.0),
        (redis_series.clone(), 1.0),
        (outbound("probe", "spin_internal", "ok"), 1.0),
        (outbound("probe", "http", "denied"), 1.0),
        (outbound("probe", "redis", "ok"), 1.0),
        (outbound("probe", "redis", "denied"), 1.0),
        (outbound("probe", "mysql", "ok"), 1.0),
        (outbound("probe", "mysql", "denied"), 1.0),
        (outbound("listener", "redis", "ok"), 0.0),
        (
            "runtime_host_admission_refusals_total{reason=\"client_requests\"}".to_owned(),
            1.0,
        ),
        (
            "runtime_host_request_duration_seconds_count{component=\"probe\",route=\"/probe/...\",trigger=\"http\"}".to_owned(),
            11.0,
        ),
        (
            format!(
                "runtime_host_request_duration_seconds_count{{component=\"listener\",route=\"{channel}\",trigger=\"redis\"}}"
            ),
            1.0,
        ),
    ];
    for (series, n) in &expected {
        assert_eq!(moved(series), *n, "{series}");
    }
    // Nothing else moved: every requests_total and outbound series is one of the above.
    for (series, v) in &after {
        if series.starts_with("runtime_host_requests_total")
            || series.starts_with("runtime_host_outbound_calls_total")
        {
            let known = expected.iter().any(|(s, _)| s == series);
            assert!(
                known || *v == value(&before, series),
                "{series} moved unexpectedly to {v}"
            );
        }
    }
    assert_eq!(value(&after, &in_flight("probe")), 0.0);
    assert_eq!(
        value(&after, "runtime_host_instance_pool_slots_in_use"),
        0.0
    );

    // The metrics listener serves GET /metrics and nothing else.
    let c = client();
    let other = c
        .get(host.metrics.replace("/metrics", "/"))
        .send()
        .await
        .expect("get /");
    assert_eq!(other.status().as_u16(), 404);
    let post = c.post(&host.metrics).send().await.expect("post");
    assert_eq!(post.status().as_u16(), 405);

    // It holds 16 connections at most: with 16 idle ones open, the next is closed unanswered,
    // and once they are gone a scrape is served again.
    let address = host
        .metrics
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(&address).await.expect("connect"));
    }
    let mut over = TcpStream::connect(&address).await.expect("connect");
    let _ = over
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), over.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the 17th connection was answered: {read:?} {:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(idle);
    let served = eventually(Duration::from_secs(10), || async {
        let r = client().get(&host.metrics).send().await.ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;
    assert!(served.is_some(), "no scrape once the connections closed");
}
