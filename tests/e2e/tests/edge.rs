//! The public edge against big and hostile clients (issue 15): the course's multipart upload of
//! hundreds of megabytes in bounded memory, a resumable upload's single piece of as many, and
//! slow or greedy clients that cannot take the platform down.
//!
//! A test binary of its own: the upload's memory is read from this process, which runs the
//! platform's runtime-host, so nothing else may run in it meanwhile (the tests take turns).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use vid2mp3_test_support::test_media::{
    ScratchDir as Scratch, decoded_samples, make_large_mkv, make_mkv,
};
use vid2mp3_test_support::{ClientLimits, Platform, PlatformBuilder, app_client_limits};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: u64 = 1 << 20;

/// A `kB` field of /proc/PID/status, in bytes.
fn proc_status(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Starts a new peak: VmHWM becomes the current RSS (Linux ≥ 4.0).
fn reset_peak(pid: &str) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
}

/// The peak RSS of runtime-host (this process) and the converter across one upload.
struct Peaks {
    converter: String,
    host_before: u64,
    converter_before: u64,
}

impl Peaks {
    /// Resets both peaks to the current RSS.
    fn start(p: &Platform) -> Peaks {
        let converter = p
            .converter
            .as_ref()
            .and_then(|c| c.pid())
            .expect("the converter runs")
            .to_string();
        for pid in ["self", converter.as_str()] {
            reset_peak(pid);
        }
        Peaks {
            host_before: proc_status("self", "VmRSS:"),
            converter_before: proc_status(&converter, "VmRSS:"),
            converter,
        }
    }

    /// Prints both peaks and checks each grew by less than 64 MiB (the bound runtime-host's own
    /// 1 GiB test holds the raw route to).
    fn check(&self, what: &str, secs: f64) {
        let host_peak = proc_status("self", "VmHWM:");
        let converter_peak = proc_status(&self.converter, "VmHWM:");
        eprintln!(
            "{what} in {secs:.1} s; runtime-host (this process) RSS {} MiB, peak {} MiB; \
             converter RSS {} MiB, peak {} MiB",
            self.host_before / MIB,
            host_peak / MIB,
            self.converter_before / MIB,
            converter_peak / MIB
        );
        assert!(
            host_peak < self.host_before + 64 * MIB,
            "the {what} raised runtime-host's peak RSS from {} MiB to {} MiB",
            self.host_before / MIB,
            host_peak / MIB
        );
        assert!(
            converter_peak < self.converter_before + 64 * MIB,
            "the {what} raised the converter's peak RSS from {} MiB to {} MiB",
            self.converter_before / MIB,
            converter_peak / MIB
        );
    }
}

/// `curl` with `args` from the scratch directory: its exit status and output.
fn curl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("curl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn host_of(p: &Platform) -> String {
    p.url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

const FORM_HEAD: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; \
                         filename=\"cut.mkv\"\r\nContent-Type: video/x-matroska\r\n\r\n";

/// The course's `curl -F` upload of 300 MB answers 200 and is converted, while neither
/// runtime-host (in this process) nor the converter grows by more than the raw route allows
/// (the bound runtime-host's own 1 GiB test holds it to). A form cut off in its file, by its
/// end or by the connection, is a clear 400 (when the client is still there) and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_300_mb_form_upload_streams_through_the_course_route_in_bounded_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let big = scratch.path("big.mkv");
    make_large_mkv(&big, 300_000_000);
    let size = std::fs::metadata(&big).expect("the video").len();
    let first_8_mib = {
        let mut f = std::fs::File::open(&big).expect("the video");
        let mut buf = vec![0u8; 8 << 20];
        std::io::Read::read_exact(&mut f, &mut buf).expect("8 MiB");
        buf
    };

    // A form whose HTTP body ends in the middle of its file.
    let mut cut = FORM_HEAD.as_bytes().to_vec();
    cut.extend_from_slice(&first_8_mib);
    let r = client()
        .post(p.url("/upload"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(cut.clone())
        .send()
        .await
        .expect("the cut form");
    let status = r.status();
    let body: Value = r.json().await.expect("an error body");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cut off")),
        "{body}"
    );
    wait_until_nothing_is_stored(&p, "after a form cut off in its file").await;

    // The whole form declared, 8 MiB of it sent, then the connection dropped.
    let host = host_of(&p);
    let declared = FORM_HEAD.len() as u64 + size + "\r\n--XyZ--\r\n".len() as u64;
    let mut socket = TcpStream::connect(&host).await.expect("connect");
    socket
        .write_all(
            format!(
                "POST /upload HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {declared}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("head");
    socket.write_all(&cut).await.expect("8 MiB of the form");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, chunks, _) = stored(&p).await;
        if gateway_job_rows(&p).await == 1 && chunks > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut form never reached storage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(socket);
    wait_until_nothing_is_stored(&p, "after a client disconnected mid-form").await;

    // A small upload through the route first, so what follows measures the big one only.
    make_mkv(&scratch.path("small.mkv"), 1);
    let bearer = format!("Authorization: Bearer {token}");
    let url = p.url("/upload");
    let (ok, out) = curl(
        &scratch.0,
        &[
            "--fail-with-body",
            "-X",
            "POST",
            "-F",
            "file=@./small.mkv",
            "-H",
            &bearer,
            &url,
        ],
    );
    assert!(ok, "the small upload: {out}");

    let peaks = Peaks::start(&p);

    // The course's command, byte for byte.
    let started = Instant::now();
    let (ok, out) = curl(
        &scratch.0,
        &[
            "--fail-with-body",
            "-X",
            "POST",
            "-F",
            "file=@./big.mkv",
            "-H",
            &bearer,
            &url,
        ],
    );
    assert!(ok, "the 300 MB upload: {out}");
    let upload_secs = started.elapsed().as_secs_f64();
    let job: Value = serde_json::from_str(&out).expect("the job JSON");
    assert_eq!(job["video_size_bytes"], size, "every byte stored: {job}");
    let id = job["id"].as_str().expect("a job id");
    let seen = wait_for_end(&p, &token, id, Duration::from_secs(300)).await;
    let done = seen.last().expect("a state");
    assert_eq!(done["status"], "done", "{done}");

    peaks.check("300 MB form upload", upload_secs);

    // What was stored is the whole video: its mp3 holds all of its sound.
    let mp3 = client()
        .get(p.url(&format!("/api/v1/jobs/{id}/mp3")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(mp3.status(), 200);
    std::fs::write(scratch.path("big.mp3"), mp3.bytes().await.expect("the mp3")).unwrap();
    assert_eq!(
        decoded_samples(&scratch.path("big.mp3")),
        decoded_samples(&big),
        "the mp3 holds exactly the video's samples"
    );
}

/// A resumable upload (tus) of 200 MB sent as one piece with curl streams through in bounded
/// memory, as the raw and form routes do, and every byte is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200_mb_resumable_upload_in_one_piece_streams_in_bounded_memory() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let big = scratch.path("big.mkv");
    make_large_mkv(&big, 200_000_000);
    let size = std::fs::metadata(&big).expect("the video").len();
    // A small one first, so what follows measures the big one only.
    make_mkv(&scratch.path("small.mkv"), 1);
    let small = tus_begun(&p, &token, &scratch.path("small.mkv"), "video/x-matroska").await;
    let r = tus_patch(
        &p,
        &token,
        &small,
        0,
        std::fs::read(scratch.path("small.mkv")).unwrap(),
    )
    .await;
    assert_eq!(r.status(), 204);

    let upload = tus_begun(&p, &token, &big, "video/x-matroska").await;
    let peaks = Peaks::start(&p);
    let started = Instant::now();
    let (ok, out) = curl(
        &scratch.0,
        &[
            "--fail-with-body",
            "-X",
            "PATCH",
            "-T",
            "./big.mkv",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Content-Type: application/offset+octet-stream",
            "-H",
            "Upload-Offset: 0",
            "-D",
            "-",
            &p.url(&upload),
        ],
    );
    let upload_secs = started.elapsed().as_secs_f64();
    assert!(ok, "the 200 MB piece: {out}");
    assert!(
        out.to_ascii_lowercase()
            .contains(&format!("upload-offset: {size}")),
        "every byte stored: {out}"
    );
    peaks.check("200 MB resumable piece", upload_secs);
    let id = upload.rsplit('/').next().expect("an id");
    let (status, job) = job(&p, &token, id).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["video_size_bytes"], size, "{job}");
    let seen = wait_for_end(&p, &token, id, Duration::from_secs(300)).await;
    assert_eq!(seen.last().expect("a state")["status"], "done");
}

/// What one hostile connection got.
#[derive(Debug)]
enum Outcome {
    /// The server closed the connection without a word, after this long.
    Closed(Duration),
    /// An answer: status, whether it had `Retry-After`, body.
    Answer(u16, bool, String),
    /// Nothing within the attempt's time limit.
    Hung,
    /// Could not connect at all (the reason is printed).
    ConnectFailed,
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(server).await
}

/// Reads until the server closes the connection, for at most `within`.
async fn outcome_of(mut read: impl AsyncReadExt + Unpin, started: Instant) -> Outcome {
    let mut bytes = Vec::new();
    match tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut bytes)).await {
        Err(_) => Outcome::Hung,
        Ok(_) if bytes.is_empty() => Outcome::Closed(started.elapsed()),
        Ok(_) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let retry_after = head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("retry-after:"));
            Outcome::Answer(status, retry_after, body.to_owned())
        }
    }
}

fn connect_failed(e: std::io::Error) -> Outcome {
    eprintln!("a hostile client could not connect: {e}");
    Outcome::ConnectFailed
}

/// Connects from `source` and sends nothing.
async fn silent(source: Ipv4Addr, server: SocketAddr) -> Outcome {
    let started = Instant::now();
    match connect_from(source, server).await {
        Ok(stream) => outcome_of(stream, started).await,
        Err(e) => connect_failed(e),
    }
}

/// Connects from `source`, sends `head` and `first`, then a byte every `every`.
async fn trickle(
    source: Ipv4Addr,
    server: SocketAddr,
    head: String,
    first: Vec<u8>,
    every: Duration,
    bytes_each: usize,
) -> Outcome {
    let started = Instant::now();
    let mut stream = match connect_from(source, server).await {
        Ok(s) => s,
        Err(e) => return connect_failed(e),
    };
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&first).await.is_err() {
        return outcome_of(stream, started).await;
    }
    // Both halves live in this future, so a stopped attack closes the connection.
    let (read, mut write) = stream.split();
    let writing = async {
        loop {
            tokio::time::sleep(every).await;
            if write.write_all(&vec![b' '; bytes_each]).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        outcome = outcome_of(read, started) => outcome,
        () = writing => unreachable!("writing never ends by itself"),
    }
}

/// `n` hostile clients, each trying again as soon as its attempt ends, until stopped.
struct Attack {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    fn start<F, Fut>(n: usize, attempt: F) -> Attack
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Outcome> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let attempt = Arc::new(attempt);
        let tasks = (0..n)
            .map(|i| {
                let (stop, outcomes, attempt) = (stop.clone(), outcomes.clone(), attempt.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = attempt(i).await;
                        let refused = matches!(outcome, Outcome::Answer(503, ..));
                        outcomes.lock().unwrap().push(outcome);
                        if refused {
                            // As Retry-After asks, more or less: a refusal loop would only burn CPU.
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                })
            })
            .collect();
        Attack {
            stop,
            outcomes,
            tasks,
        }
    }

    /// Stops (connections still open are dropped) and returns every finished attempt.
    async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

async fn get_status(p: &Platform, path: &str) -> u16 {
    client()
        .get(p.url(path))
        .send()
        .await
        .expect(path)
        .status()
        .as_u16()
}

async fn assert_health(p: &Platform, when: &str) {
    for path in ["/healthz", "/readyz", "/.well-known/spin/health"] {
        assert_eq!(get_status(p, path).await, 200, "{path} {when}");
    }
}

/// Slow and greedy clients, from other addresses, cannot take the platform down:
/// - connections that send nothing are closed after the header timeout, and those over the
///   per-address cap are answered 503 with Retry-After at once;
/// - bodies trickled below the minimum rate end with 408, and requests over the per-address
///   cap get 503 with Retry-After;
///   meanwhile a normal user signs up, logs in, uploads (the course's form) and downloads;
/// - greedy uploads that keep to the minimum rate fill the global cap: other requests get 503
///   with Retry-After (never 500), while health and readiness answer and an upload admitted
///   before keeps going; when they go, everything answers again and nothing stored is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_and_greedy_clients_cannot_take_the_platform_down() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let limits = ClientLimits {
        header_read_timeout_secs: 2,
        request_body_idle_secs: 3,
        request_body_min_rate: 1024,
        max_connections_per_client: 16,
        max_requests_per_client: 8,
        max_concurrent_requests: 24,
        ..app_client_limits()
    };
    let p = PlatformBuilder::new()
        .with_converter()
        .client_limits(limits)
        .start()
        .await
        .expect("platform");
    let host = host_of(&p);
    let server: SocketAddr = host.parse().expect("a socket address");
    let scratch = Scratch::new();
    make_mkv(&scratch.path("clip.mkv"), 2);
    let clip = std::fs::read(scratch.path("clip.mkv")).unwrap();

    // Phase 1: 24 silent connections from one address (16 allowed) and 12 bodies at about
    // 2 bytes/s from another (8 requests allowed), the whole time a normal user goes through.
    let phase = Instant::now();
    let silent_attack = Attack::start(24, move |_| silent(Ipv4Addr::new(127, 0, 0, 2), server));
    let slow_head = format!(
        "POST /api/v1/users HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 16384\r\n\r\n"
    );
    let slow_attack = Attack::start(12, move |_| {
        trickle(
            Ipv4Addr::new(127, 0, 0, 3),
            server,
            slow_head.clone(),
            b"{".to_vec(),
            Duration::from_millis(500),
            1,
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_health(&p, "under slow clients").await;
    let email = p.mailbox.address().to_owned();
    sign_up(&p, &email).await;
    let token = log_in(&p, &email).await;
    let bearer = format!("Authorization: Bearer {token}");
    let (ok, out) = curl(
        &scratch.0,
        &[
            "--fail-with-body",
            "-X",
            "POST",
            "-F",
            "file=@./clip.mkv",
            "-H",
            &bearer,
            &p.url("/upload"),
        ],
    );
    assert!(ok, "upload under slow clients: {out}");
    let job: Value = serde_json::from_str(&out).expect("the job JSON");
    let id = job["id"].as_str().expect("a job id").to_owned();
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(90)).await;
    assert_eq!(seen.last().unwrap()["status"], "done");
    let download = |p: &Platform| {
        let url = p.url(&format!("/api/v1/jobs/{id}/mp3"));
        let token = token.clone();
        async move {
            let r = client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("download");
            (r.status().as_u16(), r.bytes().await.expect("mp3").len())
        }
    };
    let (status, mp3_bytes) = download(&p).await;
    assert_eq!(status, 200);
    assert!(mp3_bytes > 0);
    assert_health(&p, "under slow clients, after the user's flow").await;
    // Long enough for the trickled bodies to have been cut at least once.
    tokio::time::sleep_until((phase + Duration::from_secs(7)).into()).await;
    let silent_outcomes = silent_attack.stop().await;
    let slow_outcomes = slow_attack.stop().await;

    let mut closed = 0;
    let mut refused = 0;
    for o in &silent_outcomes {
        match o {
            Outcome::Closed(after) if *after < Duration::from_secs(4) => closed += 1,
            Outcome::Answer(503, true, body) if body.contains("retry in") => refused += 1,
            other => panic!("a silent connection got {other:?}"),
        }
    }
    assert!(
        closed >= 16 && refused >= 8,
        "silent: {closed} closed, {refused} refused: {silent_outcomes:?}"
    );
    let mut timed_out = 0;
    let mut refused = 0;
    for o in &slow_outcomes {
        match o {
            Outcome::Answer(408, _, body) if body.contains("too slowly") => timed_out += 1,
            Outcome::Answer(503, true, body) if body.contains("retry in") => refused += 1,
            other => panic!("a slow body got {other:?}"),
        }
    }
    eprintln!(
        "phase 1: silent connections {closed} closed, {} refused; slow bodies {timed_out} cut \
         with 408, {refused} refused",
        silent_outcomes.len() - closed
    );
    assert!(
        timed_out >= 8 && refused >= 4,
        "slow bodies: {timed_out} cut with 408, {refused} refused: {slow_outcomes:?}"
    );

    // Phase 2: an upload that keeps a good pace is admitted first (about 4 s of 64 KiB/s).
    let (feed, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let total = clip.len() + 16 * 16 * 1024;
    let pacer = {
        let clip = clip.clone();
        tokio::spawn(async move {
            let _ = feed.send(Ok(clip)).await;
            for _ in 0..16 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let _ = feed.send(Ok(vec![0u8; 16 * 1024])).await;
            }
        })
    };
    let admitted = {
        let url = p.url("/api/v1/jobs?name=paced.mkv");
        let token = token.clone();
        tokio::spawn(async move {
            let body = reqwest::Body::wrap_stream(tokio_stream_of(chunks));
            let r = client()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "video/x-matroska")
                .header("content-length", total)
                .body(body)
                .send()
                .await
                .expect("the paced upload");
            r.status().as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 30 greedy uploads, each from an address of its own, at 4 KiB/s: within the rate, so only
    // the global cap of 24 stands in their way.
    sign_up(&p, "greedy@example.com").await;
    let greedy_token = log_in(&p, "greedy@example.com").await;
    let greedy_head = format!(
        "POST /api/v1/jobs?name=greedy.mkv HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {greedy_token}\r\n\
         Content-Type: video/x-matroska\r\nContent-Length: 100000000\r\n\r\n"
    );
    let greedy_first = clip[..4096.min(clip.len())].to_vec();
    let greedy = Attack::start(30, move |i| {
        trickle(
            Ipv4Addr::new(127, 0, 1, 1 + i as u8),
            server,
            greedy_head.clone(),
            greedy_first.clone(),
            Duration::from_millis(500),
            2048,
        )
    });
    // Once the cap is full, a log-in is refused with 503 and Retry-After, not 500.
    let deadline = Instant::now() + Duration::from_secs(20);
    let refusal = loop {
        let r = client()
            .post(p.url("/api/v1/sessions"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("log in");
        if r.status() == 503 {
            break r;
        }
        assert_eq!(r.status(), 200, "a log-in before the cap is full");
        assert!(
            Instant::now() < deadline,
            "the greedy uploads never filled the cap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        refusal
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let text = refusal.text().await.unwrap();
    assert!(
        text.contains("24 requests") && text.contains("retry in"),
        "{text}"
    );
    assert_health(&p, "with every general slot taken").await;
    assert_eq!(
        admitted.await.expect("the paced upload's task"),
        202,
        "an upload admitted before the cap filled went on to the end"
    );
    pacer.await.unwrap();
    let greedy_outcomes = greedy.stop().await;
    eprintln!(
        "phase 2: {} greedy attempts refused while the cap was full",
        greedy_outcomes.len()
    );
    assert!(
        greedy_outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Answer(503, true, _))),
        "a greedy upload ended other than refused while it kept its pace: {greedy_outcomes:?}"
    );

    // They are gone: the platform answers everyone again, and what was stored is still there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client()
            .post(p.url("/api/v1/sessions"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("log in");
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503, "a log-in while the greedy uploads end");
        assert!(Instant::now() < deadline, "the cap never emptied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, again) = download(&p).await;
    assert_eq!(
        (status, again),
        (200, mp3_bytes),
        "the first job's mp3 is intact"
    );
    let page = my_jobs(&p, &token).await;
    assert_eq!(
        page["jobs"].as_array().map(Vec::len),
        Some(2),
        "the user's two jobs: {page}"
    );
}

/// The receiving end of a channel as a stream (for a request body fed at the test's pace).
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
