//! Slow and greedy clients against the HTTP trigger, in-process, with `fixture-http-probe`:
//! the header timeout, the request body's pace, the connection and request caps with their
//! reserve for priority routes, trusted proxies, and a pool that waits instead of failing.
//!
//! Requests are held open without using a core by a component waiting on an outbound request
//! to a server that accepts and never answers ([`Hang`]); clients come from addresses of their
//! own on loopback (any 127.x.y.z).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestApp, http_probe, percent_encode};
use runtime_host::ClientLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A server that accepts connections and never answers, until released.
struct Hang {
    addr: SocketAddr,
    held: Arc<Mutex<Vec<TcpStream>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hang {
    async fn start() -> Hang {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                keep.lock().unwrap().push(stream);
            }
        });
        Hang { addr, held, task }
    }

    /// Connections accepted so far.
    fn count(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Closes every connection: the components waiting on them get an error and answer.
    fn release(&self) {
        self.held.lock().unwrap().clear();
    }

    /// `?op=fetch` of this server: a request that holds its instance until released.
    fn path(&self) -> String {
        format!(
            "?op=fetch&url={}",
            percent_encode(&format!("http://{}/", self.addr))
        )
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn manifest(hang: &Hang) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "limits"
[[trigger.http]]
route = "/..."
component = "probe"
[[trigger.http]]
route = {{ private = true }}
component = "inner"
[component.probe]
source = "{wasm}"
allowed_outbound_hosts = ["http://{hang}", "http://inner.spin.internal"]
[component.inner]
source = "{wasm}"
allowed_outbound_hosts = ["http://{hang}"]
"#,
        wasm = http_probe(),
        hang = hang.addr
    )
}

async fn start(hang: &Hang, limits: ClientLimits) -> TestApp {
    TestApp::start_with(&manifest(hang), |o| o.client_limits = limits)
        .await
        .expect("app starts")
}

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .local_address(IpAddr::V4(source))
        .build()
        .expect("client")
}

async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((source, 0))).expect("bind");
    socket.connect(server).await.expect("connect")
}

/// Everything the server sends until it closes (or 20 s): `None` for a close without a word.
async fn read_answer(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes)).await;
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// Status and body of a request from `source`.
async fn get_from(source: Ipv4Addr, url: String) -> (u16, String, Option<String>) {
    let r = client_from(source).get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, r.text().await.expect("body"), retry_after)
}

/// Starts a request from `source` that holds an instance until `hang` is released, and waits
/// until it is being held.
async fn hold(app: &TestApp, hang: &Hang, source: Ipv4Addr) -> tokio::task::JoinHandle<u16> {
    let before = hang.count();
    let url = app.url(&format!("/{}", hang.path()));
    let request = tokio::spawn(async move { get_from(source, url).await.0 });
    let deadline = Instant::now() + Duration::from_secs(10);
    while hang.count() == before {
        assert!(Instant::now() < deadline, "the held request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    request
}

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 22);
const C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 23);

#[tokio::test]
async fn a_body_below_the_minimum_pace_ends_with_408_and_frees_its_instance() {
    let hang = Hang::start().await;
    let limits = ClientLimits {
        request_body_idle_secs: 1,
        request_body_min_rate: 1024,
        max_concurrent_requests: 1,
        ..ClientLimits::default()
    };
    let app = start(&hang, limits).await;
    let server = addr(&app);

    // A byte every 200 ms of a declared kilobyte.
    let started = Instant::now();
    let mut slow = connect_from(A, server).await;
    slow.write_all(b"POST /?op=count HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .expect("head");
    let (mut read, mut write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        while write.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut answer)).await;
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("too slowly"), "{answer}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "cut after about the idle limit: {took:?}"
    );

    // Its place is free again (one request at a time here) once its instance has ended.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body, _) = get_from(B, app.url("/?op=count")).await;
        if status == 200 {
            assert_eq!(body, "0");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "the slow request's place was never given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A body that keeps the pace may take far longer than the idle limit.
    let chunks = futures::stream::unfold(0, |n| async move {
        if n == 8 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        Some((Ok::<_, std::io::Error>(vec![1u8; 2048]), n + 1))
    });
    let r = client_from(B)
        .post(app.url("/?op=count"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("paced upload");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("body"), (8 * 2048).to_string());
    app.stop().await;
}

#[tokio::test]
async fn headers_must_arrive_in_time_and_idle_connections_close() {
    let hang = Hang::start().await;
    let limits = ClientLimits {
        header_read_timeout_secs: 1,
        ..ClientLimits::default()
    };
    let app = start(&hang, limits).await;
    let server = addr(&app);

    // Half a request head, then nothing.
    let started = Instant::now();
    let mut slow = connect_from(A, server).await;
    slow.write_all(b"GET /?op=count HTTP/1.1\r\nHo")
        .await
        .expect("write");
    let answer = read_answer(&mut slow).await;
    let took = started.elapsed();
    assert!(
        !answer.as_deref().unwrap_or("").contains(" 200 "),
        "{answer:?}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "closed after about the header timeout: {took:?}"
    );

    // A request answered, then the connection left idle.
    let mut idle = connect_from(A, server).await;
    idle.write_all(b"GET /.well-known/spin/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut first = [0u8; 64];
    let n = idle.read(&mut first).await.expect("the answer");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let _ = read_answer(&mut idle).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "an idle keep-alive connection closes after the header timeout: {took:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_caps_get_503_with_retry_after_before_their_request_is_read() {
    let hang = Hang::start().await;
    let limits = ClientLimits {
        max_connections_per_client: 2,
        max_connections: 3,
        ..ClientLimits::default()
    };
    let app = start(&hang, limits).await;
    let server = addr(&app);

    let _a1 = connect_from(A, server).await;
    let _a2 = connect_from(A, server).await;
    let mut a3 = connect_from(A, server).await;
    let answer = read_answer(&mut a3).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(answer.contains("2 connections open"), "{answer}");

    // Another address still gets in, up to the total.
    let (status, body, _) = get_from(B, app.url("/.well-known/spin/health")).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    // That connection is gone once its client is; the next one from B is the third.
    let deadline = Instant::now() + Duration::from_secs(5);
    let _b1 = loop {
        let mut b1 = connect_from(B, server).await;
        b1.write_all(b"GET /.well-known/spin/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut first = [0u8; 12];
        let n = b1.read(&mut first).await.expect("an answer");
        if first[..n].starts_with(b"HTTP/1.1 200") {
            break b1;
        }
        assert!(
            Instant::now() < deadline,
            "B's first connection was never given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut c1 = connect_from(C, server).await;
    let answer = read_answer(&mut c1).await.expect("an answer");
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.contains("3 connections open"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn requests_over_the_caps_get_503_while_priority_routes_and_admitted_requests_go_on() {
    let hang = Hang::start().await;
    let limits = ClientLimits {
        max_requests_per_client: 2,
        max_concurrent_requests: 3,
        priority_requests: 1,
        priority_routes: vec!["/health/...".into()],
        ..ClientLimits::default()
    };
    let app = start(&hang, limits).await;

    let held_a = [hold(&app, &hang, A).await, hold(&app, &hang, A).await];
    let (status, body, retry) = get_from(A, app.url("/?op=count")).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert!(body.contains("2 requests in progress"), "{body}");

    let held_b = hold(&app, &hang, B).await;
    let (status, body, retry) = get_from(C, app.url("/?op=count")).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert!(body.contains("handling 3 requests"), "{body}");

    // The reserve: a priority route still runs, and the host's own health needs no instance.
    let (status, body, _) = get_from(C, app.url("/health/deep?op=count")).await;
    assert_eq!((status, body.as_str()), (200, "0"));
    let (status, _, _) = get_from(C, app.url("/.well-known/spin/health")).await;
    assert_eq!(status, 200);

    // The admitted ones were never disturbed: they end when what they wait on hangs up (the
    // component's own 502 for a failed fetch).
    hang.release();
    for held in held_a {
        assert_eq!(held.await.expect("held request"), 502);
    }
    assert_eq!(held_b.await.expect("held request"), 502);
    let (status, _, _) = get_from(C, app.url("/?op=count")).await;
    assert_eq!(status, 200, "the places are free again");
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let hang = Hang::start().await;
    let limits = ClientLimits {
        max_requests_per_client: 1,
        trusted_proxies: vec!["127.0.0.21/32".parse().expect("range")],
        ..ClientLimits::default()
    };
    let app = start(&hang, limits).await;
    let url = app.url(&format!("/{}", hang.path()));
    let via_proxy = |client: &'static str| {
        let url = url.clone();
        async move {
            let r = client_from(A)
                .get(url)
                .header("x-forwarded-for", format!("198.51.100.7, {client}"))
                .send()
                .await
                .expect("request");
            r.status().as_u16()
        }
    };
    let first = tokio::spawn(via_proxy("203.0.113.1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while hang.count() == 0 {
        assert!(Instant::now() < deadline, "the held request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another client behind the same proxy: its own count.
    let second = tokio::spawn(via_proxy("203.0.113.2"));
    while hang.count() == 1 {
        assert!(
            Instant::now() < deadline,
            "the second client was not admitted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The first client again (the 198.51.100.7 it might claim to be is not believed).
    assert_eq!(via_proxy("203.0.113.1").await, 503);
    // An untrusted peer's header is ignored: B is counted as B.
    let b_held = hold(&app, &hang, B).await;
    let r = client_from(B)
        .get(app.url("/?op=count"))
        .header("x-forwarded-for", "203.0.113.99")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 503);
    hang.release();
    assert_eq!(first.await.expect("first"), 502);
    assert_eq!(second.await.expect("second"), 502);
    assert_eq!(b_held.await.expect("b"), 502);
    app.stop().await;
}

#[tokio::test]
async fn instances_wait_for_a_pool_slot_instead_of_failing() {
    let hang = Hang::start().await;
    // Two public requests and one in reserve, in a pool of four instances.
    let limits = ClientLimits {
        max_instances: 4,
        max_concurrent_requests: 2,
        priority_requests: 1,
        priority_routes: vec!["/health".into()],
        ..ClientLimits::default()
    };
    let app = start(&hang, limits).await;
    // Each holds two instances: its own and the chained one waiting on the hanging server.
    let chained = format!(
        "/?op=fetch&url={}",
        percent_encode(&format!("http://inner.spin.internal/{}", hang.path()))
    );
    let mut held = Vec::new();
    for (n, source) in [A, B].into_iter().enumerate() {
        let url = app.url(&chained);
        held.push(tokio::spawn(async move { get_from(source, url).await.0 }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while hang.count() == n {
            assert!(
                Instant::now() < deadline,
                "the chained request never arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Every slot is taken. A priority request is admitted but must wait for a slot; before
    // runtime-host counted slots, its instantiation failed and it got 500.
    let url = app.url("/health?op=count");
    let priority = tokio::spawn(async move { get_from(C, url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!priority.is_finished(), "it waits for a slot");
    let (status, body, retry) = get_from(C, app.url("/?op=count")).await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    hang.release();
    let (status, body, _) = priority.await.expect("priority request");
    assert_eq!((status, body.as_str()), (200, "0"));
    for h in held {
        assert_eq!(h.await.expect("held"), 200);
    }
    app.stop().await;
}
