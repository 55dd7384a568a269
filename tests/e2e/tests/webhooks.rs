//! Webhooks through the whole platform: an account's callback gets each job outcome once,
//! signed, with one delivery id across retries; refused addresses are refused when the webhook
//! is set (a literal) or when a delivery resolves the name (no connection made).
//!
//! The receiver is a small HTTP/1.1 server on loopback, started by each test. Loopback is one of
//! the refused ranges, so the test that delivers lists the receiver in
//! `VID2MP3_WEBHOOK_ALLOWED_HOSTS` (a listed host may also use plain http); the other does not.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, make_mkv};
use vid2mp3_test_support::{Platform, PlatformBuilder};

/// One request the receiver got, and the status it answered.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// A receiver on 127.0.0.1 that answers 500 to the first `fail_first` requests, 200 after.
struct Receiver {
    port: u16,
    connections: Arc<Mutex<usize>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(Mutex::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&connections), Arc::clone(&received));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let Some((headers, body)) = read_request(&mut socket).await else {
                        return;
                    };
                    let header = |name: &str| {
                        headers
                            .lines()
                            .find_map(|l| {
                                let (n, v) = l.split_once(':')?;
                                n.trim()
                                    .eq_ignore_ascii_case(name)
                                    .then(|| v.trim().to_owned())
                            })
                            .unwrap_or_default()
                    };
                    let answered = {
                        let mut log = log.lock().unwrap();
                        let answered = if log.len() < fail_first { 500 } else { 200 };
                        log.push(Received {
                            path: headers.split(' ').nth(1).unwrap_or_default().to_owned(),
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp"),
                            signature: header("webhook-signature"),
                            body,
                            answered,
                        });
                        answered
                    };
                    let reply = format!(
                        "HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver {
            port,
            connections,
            received,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

/// The request's head (as text) and body, read by `content-length`.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((head, data[head_end..head_end + length].to_vec()))
}

/// The Standard Webhooks check, written here from the specification (not the converter's code).
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

async fn set_webhook(p: &Platform, token: &str, url: &str) -> (u16, Value) {
    let r = client()
        .put(p.url("/api/v1/webhook"))
        .bearer_auth(token)
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("PUT webhook");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_webhook(p: &Platform, token: &str) -> (u16, Value) {
    let r = client()
        .get(p.url("/api/v1/webhook"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET webhook");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A raw upload of `file` with `?callback_url=`: the status and the answer.
async fn upload_with_callback(
    p: &Platform,
    token: &str,
    file: &std::path::Path,
    callback: &str,
) -> (u16, Value) {
    let encoded: String = url::form_urlencoded::byte_serialize(callback.as_bytes()).collect();
    let r = client()
        .post(p.url(&format!("/api/v1/jobs?name=own.mkv&callback_url={encoded}")))
        .bearer_auth(token)
        .header("content-type", "video/x-matroska")
        .body(std::fs::read(file).expect("the test file"))
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A file that passes the gateway's sniff and fails in the converter.
fn broken_mp4(scratch: &Scratch) -> std::path::PathBuf {
    let mut bytes = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    bytes.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let path = scratch.path("broken.mp4");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Polls `done`; on timeout the converter's log is in the failure.
async fn wait_until(p: &Platform, what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            let log = p
                .converter
                .as_ref()
                .map(|c| c.log_text())
                .unwrap_or_default();
            panic!("{what} within {within:?}; converter log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_outcome_arrives_once_signed_and_a_failed_attempt_is_retried() {
    let receiver = Receiver::start(1).await;
    let (p, token) = platform_with_user(
        PlatformBuilder::new()
            .converter_env(
                "VID2MP3_WEBHOOK_ALLOWED_HOSTS",
                format!("127.0.0.1:{}", receiver.port),
            )
            .converter_env("VID2MP3_WEBHOOK_RETRY_DELAYS_MS", "500,1000"),
    )
    .await;
    let url = format!("http://127.0.0.1:{}/hooks/vid2mp3?k=1", receiver.port);
    let (status, set) = set_webhook(&p, &token, &url).await;
    assert_eq!(status, 200, "{set}");
    let secret = set["secret"].as_str().expect("the secret, once").to_owned();
    assert_eq!(set["url"], url.as_str());
    let (status, shown) = get_webhook(&p, &token).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["url"], url.as_str());
    assert!(shown.get("secret").is_none(), "never shown again: {shown}");

    let scratch = Scratch::new();
    make_mkv(&scratch.path("hooked.mkv"), 1);
    let done = upload_raw(&p, &token, &scratch.path("hooked.mkv"), "video/x-matroska").await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    let failed = upload_raw(&p, &token, &broken_mp4(&scratch), "video/mp4").await;
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    for id in [&done_id, &failed_id] {
        wait_for_end(&p, &token, id, Duration::from_secs(90)).await;
    }
    wait_until(&p, "both outcomes taken", Duration::from_secs(30), || {
        receiver
            .received()
            .iter()
            .filter(|r| r.answered == 200)
            .count()
            >= 2
    })
    .await;
    // Time for a duplicate to show up, if one were sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = receiver.received();
    let log = p
        .converter
        .as_ref()
        .map(|c| c.log_text())
        .unwrap_or_default();

    let first = &received[0];
    assert_eq!(first.answered, 500);
    let retry = received
        .iter()
        .skip(1)
        .find(|r| r.id == first.id)
        .unwrap_or_else(|| panic!("the 500 was retried: {received:?}\n{log}"));
    assert_eq!(retry.answered, 200, "the retry shares the delivery id");
    let taken: Vec<&Received> = received.iter().filter(|r| r.answered == 200).collect();
    assert_eq!(taken.len(), 2, "one per outcome: {received:?}");
    assert_ne!(taken[0].id, taken[1].id);
    for r in &received {
        assert!(verifies(&secret, r), "signature of {r:?}");
        let ts: u64 = r.timestamp.parse().expect("a Unix timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(ts) < 120);
        let event: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(event["delivery_id"], r.id.as_str());
    }
    let event_of = |job: &str| -> Value {
        let r = taken
            .iter()
            .find(|r| r.id.starts_with(job))
            .unwrap_or_else(|| panic!("an event for {job}: {received:?}"));
        serde_json::from_slice(&r.body).unwrap()
    };
    let done_event = event_of(&done_id);
    assert_eq!(done_event["type"], "job.done");
    assert_eq!(done_event["data"]["id"], done_id.as_str());
    assert_eq!(done_event["data"]["status"], "done");
    assert_eq!(done_event["data"]["original_name"], "hooked.mkv");
    assert_eq!(
        done_event["data"]["download"],
        format!("/api/v1/jobs/{done_id}/mp3")
    );
    let failed_event = event_of(&failed_id);
    assert_eq!(failed_event["type"], "job.failed");
    assert!(
        failed_event["data"]["error"]["code"].is_string(),
        "{failed_event}"
    );
    assert!(
        !String::from_utf8_lossy(&taken[0].body).contains(&p.mailbox.address().to_owned()),
        "no email address in a payload"
    );

    // Removed: the next job's outcome goes nowhere.
    let r = client()
        .delete(p.url("/api/v1/webhook"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, body) = get_webhook(&p, &token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let before = receiver.received().len();
    make_mkv(&scratch.path("unhooked.mkv"), 1);
    upload_and_wait_until_done(
        &p,
        &token,
        &scratch.path("unhooked.mkv"),
        "video/x-matroska",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), before);

    // A job's own callback: its own URL and secret, with no account webhook at all.
    let own = format!("http://127.0.0.1:{}/jobs/own", receiver.port);
    let (status, job) = upload_with_callback(&p, &token, &scratch.path("unhooked.mkv"), &own).await;
    assert_eq!(status, 202, "{job}");
    let job_secret = job["callback_secret"]
        .as_str()
        .expect("the job's secret, once")
        .to_owned();
    assert_ne!(job_secret, secret);
    let own_id = job["id"].as_str().unwrap().to_owned();
    let (_, shown) = common::job(&p, &token, &own_id).await;
    assert!(
        shown.get("callback_secret").is_none(),
        "shown once: {shown}"
    );
    wait_for_end(&p, &token, &own_id, Duration::from_secs(90)).await;
    wait_until(
        &p,
        "the job's own callback",
        Duration::from_secs(30),
        || receiver.received().len() > before,
    )
    .await;
    let delivered = receiver.received()[before].clone();
    assert_eq!(delivered.path, "/jobs/own");
    assert_eq!(delivered.id, format!("{own_id}-done"));
    assert!(
        verifies(&job_secret, &delivered),
        "signed with the job's secret"
    );
    assert!(!verifies(&secret, &delivered));

    // Deleting the job removes its callback with it.
    let callbacks = || async {
        p.mongo
            .as_ref()
            .expect("the platform's Mongo")
            .database()
            .collection::<mongodb::bson::Document>("job_webhooks")
            .count_documents(mongodb::bson::doc! {})
            .await
            .expect("count")
    };
    assert_eq!(callbacks().await, 1);
    let r = client()
        .delete(p.url(&format!("/api/v1/jobs/{own_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(callbacks().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_platforms_own_network_is_refused_without_the_allow_list() {
    let receiver = Receiver::start(0).await;
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let port = receiver.port;
    let long = format!("https://hooks.example.com/{}", "a".repeat(2100));
    let refused: [(String, &str); 7] = [
        (format!("https://127.0.0.1:{port}/hook"), "loopback"),
        (
            "https://169.254.169.254/latest/meta-data".into(),
            "metadata",
        ),
        ("https://[::ffff:10.0.0.1]/hook".into(), "IPv4-mapped"),
        (format!("http://127.0.0.1:{port}/hook"), "https://"),
        ("http://hooks.example.com/hook".into(), "https://"),
        (
            "https://user:secret@hooks.example.com/hook".into(),
            "user name",
        ),
        (long, "2048"),
    ];
    for (url, words) in &refused {
        let (status, body) = set_webhook(&p, &token, url).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(words),
            "{url}: '{message}' should say {words}"
        );
    }
    // Nothing of a refused URL was kept.
    let (status, _) = get_webhook(&p, &token).await;
    assert_eq!(status, 404);

    // A name is checked when a delivery resolves it: `localhost` is loopback.
    let (status, set) = set_webhook(&p, &token, &format!("https://localhost:{port}/hook")).await;
    assert_eq!(status, 200, "{set}");
    let scratch = Scratch::new();
    make_mkv(&scratch.path("local.mkv"), 1);
    upload_and_wait_until_done(&p, &token, &scratch.path("local.mkv"), "video/x-matroska").await;
    let converter = p.converter.as_ref().expect("the converter");
    wait_until(&p, "the refusal logged", Duration::from_secs(30), || {
        converter.log_text().contains("webhook refused")
    })
    .await;
    let log = converter.log_text();
    assert!(log.contains("loopback"), "the log names the range:\n{log}");
    assert_eq!(receiver.connections(), 0, "no connection was made");

    // A job's own callback is checked before anything of the upload is kept.
    let (rows, kept) = (gateway_job_rows(&p).await, stored(&p).await);
    let refused_jobs: [(String, &str); 3] = [
        ("https://169.254.169.254/".into(), "metadata"),
        (format!("http://127.0.0.1:{port}/hook"), "https://"),
        (
            format!("https://h.example.com/{}", "a".repeat(2100)),
            "2048",
        ),
    ];
    for (url, words) in &refused_jobs {
        let (status, body) =
            upload_with_callback(&p, &token, &scratch.path("local.mkv"), url).await;
        assert_eq!(status, 400, "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(words),
            "{url}: '{message}' should say {words}"
        );
    }
    assert_eq!(gateway_job_rows(&p).await, rows, "no job row kept");
    assert_eq!(stored(&p).await, kept, "no video or job state kept");
}
