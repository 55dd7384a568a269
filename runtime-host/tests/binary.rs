//! The `runtime-host` binary as a subprocess, the way scripts and e2e tests use it: startup line,
//! `SPIN_VARIABLE_*`, component output in the log, a 1 GiB body each way with bounded RSS, and
//! graceful exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempManifest, client, http_probe, percent_encode};
use futures::StreamExt;
use redis::AsyncCommands;
use vid2mp3_test_support_core::{MySqlDatabase, ServiceUrls, unique_name};

const GIB: u64 = 1 << 30;

struct Host {
    child: Child,
    base: String,
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

fn start(secret: &str) -> Host {
    let manifest = format!(
        r#"
spin_manifest_version = 2
[application]
name = "binary"
[variables]
token = {{ required = true, secret = true }}
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{}"
[component.probe.variables]
secret_token = "{{{{ token }}}}"
"#,
        http_probe()
    );
    start_with(&manifest, &[], &[("SPIN_VARIABLE_TOKEN", secret)])
}

fn start_with(manifest: &str, args: &[&str], env: &[(&str, &str)]) -> Host {
    let manifest = TempManifest::new(manifest);
    let log = std::env::temp_dir().join(unique_name("rh-log-"));
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_runtime-host"))
        .args(["up", "-f"])
        .arg(&manifest.path)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("runtime-host binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("startup line");
    let base = line
        .trim()
        .strip_prefix("Serving ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected startup line {line:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .to_owned();
    Host {
        child,
        base,
        log,
        _manifest: manifest,
    }
}

/// Peak resident set size of `pid` in bytes (VmHWM).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

/// Starts `pid`'s peak RSS (VmHWM) again from its current RSS, so a phase is measured alone.
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM (Linux 4.0+)");
}

fn current_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

#[tokio::test]
async fn binary_serves_logs_streams_and_stops_gracefully() {
    let secret = "s3cr3t-value-for-binary-test";
    let mut host = start(secret);
    let c = client();
    let get = |path: &str| {
        let url = format!("{}{path}", host.base);
        let c = c.clone();
        async move {
            let r = c.get(url).send().await.expect("get");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };

    assert_eq!(
        get("/?op=var&name=secret_token").await,
        (200, secret.to_owned())
    );
    assert_eq!(get("/?op=print&marker=m4rk3r").await.0, 200);

    // Warm up, then measure what streaming 1 GiB each way adds to the host's peak RSS.
    let pid = host.child.id();
    let _ = get("/?op=generate&bytes=1048576").await;
    let before = current_rss(pid);

    let chunk = bytes::Bytes::from(vec![0x5au8; 256 * 1024]);
    let chunks = GIB / chunk.len() as u64;
    let upload =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let started = Instant::now();
    let r = c
        .post(format!("{}/?op=count", host.base))
        .body(reqwest::Body::wrap_stream(upload))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("count"), GIB.to_string());
    let upload_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let r = c
        .get(format!("{}/?op=generate&bytes={GIB}", host.base))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .expect("download");
    let mut received: u64 = 0;
    let mut stream = r.bytes_stream();
    while let Some(part) = stream.next().await {
        received += part.expect("body chunk").len() as u64;
    }
    assert_eq!(received, GIB);
    let download_secs = started.elapsed().as_secs_f64();

    let peak = peak_rss(pid);
    eprintln!(
        "1 GiB up {upload_secs:.1}s, down {download_secs:.1}s; host RSS before {} MiB, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(
        peak < before + (64 << 20),
        "streaming 2 GiB raised the host's peak RSS from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );

    // SIGTERM: exit 0, promptly.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = host.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "runtime-host did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");

    let log = std::fs::read_to_string(&host.log).expect("log");
    let stdout_line = log
        .lines()
        .find(|l| l.contains("probe-stdout m4rk3r"))
        .unwrap_or_else(|| panic!("component stdout missing from the log:\n{log}"));
    assert!(
        stdout_line.contains("component=probe") && stdout_line.contains("stream=\"stdout\""),
        "{stdout_line}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("probe-stderr m4rk3r") && l.contains("component=probe")),
        "{log}"
    );
    assert!(log.contains("http request"), "one line per request: {log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains(secret), "a secret reached the log:\n{log}");
}

/// A MySQL and a Redis result of 96 MiB each, with `--max-result-bytes` at 1 MiB: the component
/// gets Spin's error and the host's RSS does not grow by anything near the results' size (it
/// never buffers past the limit, where it would otherwise hold each result two or three times).
#[tokio::test]
async fn results_over_the_limit_never_reach_the_hosts_memory() {
    const RESULT: usize = 96 << 20;
    let db = MySqlDatabase::create()
        .await
        .expect("a database of the test's own (scripts/services start mysql)");
    let key = unique_name("rh-huge-");
    let mut redis = common::redis_connection().await;
    let _: () = redis.set(&key, vec![b'h'; RESULT]).await.expect("set");
    let manifest = format!(
        r#"
spin_manifest_version = 2
[application]
name = "limits"
[variables]
mysql_url = {{ default = "{}" }}
redis_url = {{ default = "{}" }}
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{}"
allowed_outbound_hosts = ["mysql://127.0.0.1:3306", "redis://127.0.0.1:6379"]
[component.probe.variables]
mysql_url = "{{{{ mysql_url }}}}"
redis_url = "{{{{ redis_url }}}}"
"#,
        db.url(),
        ServiceUrls::from_env().redis,
        http_probe()
    );
    let host = start_with(&manifest, &["--max-result-bytes", "1048576"], &[]);
    let c = client();
    let get = |path: String| {
        let url = format!("{}{path}", host.base);
        let c = c.clone();
        async move {
            let r = c.get(url).send().await.expect("get");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    let mysql = |rows: usize| {
        let sql = format!("SELECT REPEAT('x', 1048576) FROM seq_1_to_{rows}");
        format!("/?op=mysql-query&sql={}", percent_encode(&sql))
    };
    // Warm up both connections with results within the limit.
    let small = percent_encode("SELECT REPEAT('x', 1000) FROM seq_1_to_3");
    let (status, body) = get(format!("/?op=mysql-query&sql={small}")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "rows 3 bytes 3000\nafter: Some(Int32(42))")
    );
    let (status, _) = get(format!("/?op=redis-read&how=get&key=missing-{key}")).await;
    assert_eq!(status, 200);

    let pid = host.child.id();
    reset_peak_rss(pid);
    let before = current_rss(pid);
    let refused = "error: Other(\"query result exceeds limit of 1048576 bytes\")";
    let (status, body) = get(mysql(RESULT >> 20)).await;
    assert_eq!(status, 200);
    assert!(body.starts_with(refused), "{body}");
    for how in ["get", "execute"] {
        let (status, body) = get(format!("/?op=redis-read&how={how}&key={key}")).await;
        assert_eq!(status, 200);
        assert!(body.starts_with(refused), "{how}: {body}");
    }
    let peak = peak_rss(pid);
    let _: Result<u32, _> = redis.del(&key).await;
    drop(host);
    drop(db);
    eprintln!(
        "two 96 MiB results refused: host RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(
        peak < before + (32 << 20),
        "refusing two 96 MiB results raised the host's peak RSS from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
}
