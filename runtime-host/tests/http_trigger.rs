//! The HTTP trigger end to end, in-process, with the `fixture-http-probe` component.

mod common;

use std::time::Duration;

use common::{TestApp, client, http_probe, percent_encode};
use vid2mp3_test_support_core::unique_name;

fn routes_manifest() -> String {
    let wasm = http_probe();
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "routes"
version = "1.2.3"

[variables]
greeting = {{ default = "hello" }}
token = {{ required = true, secret = true }}
peer = {{ default = "exact" }}

[[trigger.http]]
route = "/..."
component = "catch-all"
[[trigger.http]]
route = "/exact"
component = "exact"
[[trigger.http]]
route = "/wild/..."
component = "wild"
[[trigger.http]]
route = "/items/:id/parts/:part_no"
component = "params"
[[trigger.http]]
route = {{ private = true }}
component = "hidden"

[component.catch-all]
source = "{wasm}"
allowed_outbound_hosts = ["http://hidden.spin.internal", "http://{{{{ peer }}}}.spin.internal"]
environment = {{ PROBE_ENV = "from-manifest" }}
[component.catch-all.variables]
message = "{{{{ greeting }}}}, world"
secret_token = "{{{{ token }}}}"
peer = "{{{{ peer }}}}"

[component.exact]
source = "{wasm}"
[component.wild]
source = "{wasm}"
allowed_outbound_hosts = ["http://*.spin.internal"]
[component.params]
source = "{wasm}"
[component.hidden]
source = "{wasm}"
[component.hidden.variables]
who = "hidden"
"#
    )
}

async fn routes_app() -> TestApp {
    TestApp::start_with(&routes_manifest(), |o| {
        o.variables = vec![("token".into(), "t0k3n".into())];
    })
    .await
    .expect("app starts")
}

fn header<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test]
async fn routes_pick_the_most_specific_component() {
    let app = routes_app().await;
    // (path, matched route, path info)
    let cases = [
        ("/exact", "/exact", ""),
        ("/exact/more", "/...", "/exact/more"),
        ("/wild", "/wild/...", ""),
        ("/wild/a/b", "/wild/...", "/a/b"),
        ("/items/7/parts/x9", "/items/:id/parts/:part_no", ""),
        ("/items/7", "/...", "/items/7"),
        ("/", "/...", "/"),
    ];
    for (path, route, info) in cases {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            header(&body, "spin-matched-route"),
            Some(route),
            "{path}:\n{body}"
        );
        assert_eq!(
            header(&body, "spin-path-info").unwrap_or(""),
            info,
            "{path}:\n{body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn spin_headers_are_set() {
    let app = routes_app().await;
    let (status, body) = app.get("/items/42/parts/p-1?q=yes").await;
    assert_eq!(status, 200);
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        header(&body, "spin-full-url"),
        Some(format!("http://{host}/items/42/parts/p-1?q=yes").as_str())
    );
    assert_eq!(header(&body, "spin-path-match-id"), Some("42"));
    assert_eq!(header(&body, "spin-path-match-part_no"), Some("p-1"));
    assert_eq!(header(&body, "spin-base-path"), Some("/"));
    assert_eq!(
        header(&body, "spin-component-route"),
        Some("/items/:id/parts/:part_no")
    );
    assert_eq!(
        header(&body, "spin-raw-component-route"),
        Some("/items/:id/parts/:part_no")
    );
    let client_addr = header(&body, "spin-client-addr").expect("client addr");
    assert!(client_addr.starts_with("127.0.0.1:"), "{client_addr}");

    let (_, body) = app.get("/wild/x/y").await;
    assert_eq!(header(&body, "spin-component-route"), Some("/wild"));
    assert_eq!(header(&body, "spin-raw-component-route"), Some("/wild/..."));
    app.stop().await;
}

#[tokio::test]
async fn unmatched_and_well_known_routes() {
    let m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"nf\"\nversion = \"9\"\n[[trigger.http]]\nroute = \"/only\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\n",
        http_probe()
    );
    let app = TestApp::start(&m).await;
    let (status, body) = app.get("/other").await;
    assert_eq!((status, body.as_str()), (404, ""));
    let (status, body) = app.get("/.well-known/spin/health").await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, body) = app.get("/.well-known/spin/info").await;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(info["name"], "nf");
    assert_eq!(info["version"], "9");
    let (status, _) = app.get("/.well-known/spin/nope").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn private_components_are_reachable_only_by_chaining() {
    let app = routes_app().await;
    // No public route leads to "hidden": the catch-all answers instead.
    let (_, body) = app.get("/hidden").await;
    assert_eq!(header(&body, "spin-matched-route"), Some("/..."));

    // Chaining from catch-all (allowed explicitly) reaches it, with Spin's synthetic route.
    let url = "http://hidden.spin.internal/deep/path?op=headers";
    let (status, body) = app
        .get(&format!("/?op=fetch&url={}", percent_encode(url)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("status 200"), "{body}");
    assert_eq!(header(&body, "spin-matched-route"), Some("/..."), "{body}");
    assert_eq!(
        header(&body, "spin-path-info"),
        Some("/deep/path"),
        "{body}"
    );

    // And the chained component runs with its own variables.
    let url = "http://hidden.spin.internal/?op=var&name=who";
    let (status, body) = app
        .get(&format!("/?op=fetch&url={}", percent_encode(url)))
        .await;
    assert_eq!((status, body.as_str()), (200, "status 200\nhidden"));

    // `*.spin.internal` allows every component of the app.
    let url = "http://hidden.spin.internal/?op=var&name=who";
    let (status, body) = app
        .get(&format!("/wild/?op=fetch&url={}", percent_encode(url)))
        .await;
    assert_eq!((status, body.as_str()), (200, "status 200\nhidden"));
    app.stop().await;
}

#[tokio::test]
async fn outbound_requests_outside_allowed_hosts_are_denied() {
    let app = routes_app().await;
    // (component path, url) that must be refused with HttpRequestDenied
    let denied = [
        ("/exact", "http://hidden.spin.internal/"), // exact has no allowed hosts at all
        ("/", "http://example.com/"),
        ("/", "http://params.spin.internal/"), // only hidden and the templated peer are allowed
        ("/", "https://hidden.spin.internal/"), // wrong scheme
        ("/wild/", "http://example.com/"),
    ];
    for (path, url) in denied {
        let (status, body) = app
            .get(&format!("{path}?op=fetch&url={}", percent_encode(url)))
            .await;
        assert_eq!(
            (status, body.as_str()),
            (502, "HttpRequestDenied"),
            "{path} -> {url}"
        );
    }
    // The templated entry `http://{{ peer }}.spin.internal` resolved to `exact` (the application
    // variable: as on Spin, allowed-host templates name application variables).
    let url = "http://exact.spin.internal/?op=var&name=nothing";
    let (status, body) = app
        .get(&format!("/?op=fetch&url={}", percent_encode(url)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("status 404"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn variables_and_environment() {
    let app = TestApp::start_with(&routes_manifest(), |o| {
        o.variables = vec![("token".into(), "from-flag".into())];
        o.variable_env =
            std::sync::Arc::new(|k| (k == "SPIN_VARIABLE_GREETING").then(|| "hey".to_owned()));
        o.env = vec![("EXTRA".into(), "from-cli".into())];
    })
    .await
    .expect("starts");
    assert_eq!(
        app.get("/?op=var&name=message").await,
        (200, "hey, world".into())
    );
    assert_eq!(
        app.get("/?op=var&name=secret_token").await,
        (200, "from-flag".into())
    );
    assert_eq!(app.get("/?op=var&name=peer").await, (200, "exact".into()));
    // Application variables are not component variables.
    let (status, body) = app.get("/?op=var&name=greeting").await;
    assert_eq!(status, 404);
    assert!(body.starts_with("Undefined"), "{body}");
    let (status, body) = app.get("/?op=var&name=Bad-Name").await;
    assert_eq!(status, 404);
    assert!(body.starts_with("InvalidName"), "{body}");
    // Another component does not see catch-all's variables.
    let (status, _) = app.get("/exact?op=var&name=message").await;
    assert_eq!(status, 404);
    assert_eq!(
        app.get("/?op=env&name=PROBE_ENV").await,
        (200, "from-manifest".into())
    );
    assert_eq!(
        app.get("/?op=env&name=EXTRA").await,
        (200, "from-cli".into())
    );
    assert_eq!(
        app.get("/exact?op=env&name=PROBE_ENV").await,
        (200, "<unset>".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_missing_required_variable_fails_the_start_naming_it() {
    let err = TestApp::start_with(&routes_manifest(), |_| {})
        .await
        .err()
        .expect("token is required");
    let message = format!("{err:#}");
    assert!(message.contains("\"token\""), "{message}");
}

#[tokio::test]
async fn malformed_manifests_fail_the_start() {
    let wasm = http_probe();
    let cases = [
        (
            format!("spin_manifest_version = 2\n[application]\nname = \"m\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"{wasm}\"\nsqlite_databases = [\"default\"]\n"),
            "sqlite_databases",
        ),
        (
            "spin_manifest_version = 2\n[application]\nname = \"m\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"does-not-exist.wasm\"\n".to_owned(),
            "build the wasm components first",
        ),
        ("spin_manifest_version = 2\n[application\n".to_owned(), "invalid manifest"),
    ];
    for (text, needle) in cases {
        let err = TestApp::start_with(&text, |_| {})
            .await
            .err()
            .expect("must fail");
        let message = format!("{err:#}");
        assert!(
            message.contains(needle),
            "{message:?} should contain {needle:?}"
        );
    }
}

#[tokio::test]
async fn traps_errors_and_timeouts_get_clear_answers() {
    let m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\n",
        http_probe()
    );
    let app = TestApp::start_with(&m, |o| o.request_timeout = Duration::from_millis(1500))
        .await
        .expect("starts");
    assert_eq!(app.get("/?op=trap").await.0, 500);
    assert_eq!(app.get("/?op=noresponse").await.0, 500);
    let started = std::time::Instant::now();
    let (status, body) = app.get("/?op=spin").await;
    assert_eq!((status, body.as_str()), (504, "request timed out\n"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the busy loop was interrupted"
    );
    // The host is still healthy afterwards.
    assert_eq!(app.get("/?op=env&name=NOPE").await, (200, "<unset>".into()));
    app.stop().await;
}

/// A body whose chunks arrive `gaps` apart (the gap comes before each chunk).
fn paced_body(gaps: Vec<Duration>) -> reqwest::Body {
    let chunks = futures::stream::unfold(gaps.into_iter(), |mut gaps| async move {
        let gap = gaps.next()?;
        tokio::time::sleep(gap).await;
        Some((Ok::<_, std::io::Error>(vec![5u8; 1000]), gaps))
    });
    reqwest::Body::wrap_stream(chunks)
}

#[tokio::test]
async fn the_time_limit_counts_from_the_last_progress() {
    let m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"t\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\n",
        http_probe()
    );
    let limit = Duration::from_millis(1500);
    let app = TestApp::start_with(&m, |o| o.request_timeout = limit)
        .await
        .expect("starts");
    let c = client();

    // An upload that takes twice the limit but never pauses for as long as it.
    let gaps = vec![Duration::from_millis(500); 6];
    let started = std::time::Instant::now();
    let r = c
        .post(app.url("/?op=count"))
        .body(paced_body(gaps))
        .send()
        .await
        .expect("post");
    assert!(
        started.elapsed() > limit * 2,
        "the upload outlasted the limit"
    );
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("body"), "6000");

    // An upload that stalls for longer than the limit before the component has answered.
    let gaps = vec![
        Duration::ZERO,
        Duration::from_millis(100),
        Duration::from_secs(4),
    ];
    let r = c
        .post(app.url("/?op=count"))
        .body(paced_body(gaps))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(
            (r.status().as_u16(), r.text().await.expect("body").as_str()),
            (504, "request timed out\n")
        ),
        // The 504 may go out while the client is still sending, which ends the connection.
        Err(e) => assert!(!e.is_timeout(), "the host answered late: {e}"),
    }

    // A download read slowly, for longer than the limit in all: every chunk the client takes is
    // progress, so the component's body arrives whole.
    // Large enough to outlast what the loopback socket and hyper buffer between the two.
    let bytes: usize = 32 << 20;
    let mut r = c
        .get(app.url(&format!("/?op=generate&bytes={bytes}")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    // Read at 8 MiB/s whatever size the chunks come in: 4 s in all.
    let bytes_per_sec = 8 << 20;
    let started = std::time::Instant::now();
    let mut received = 0;
    while let Some(chunk) = r.chunk().await.expect("the body keeps coming") {
        received += chunk.len();
        let due = Duration::from_secs_f64(received as f64 / bytes_per_sec as f64);
        tokio::time::sleep_until((started + due).into()).await;
    }
    assert_eq!(received, bytes, "the whole body arrived");
    assert!(
        started.elapsed() > limit * 2,
        "the download outlasted the limit"
    );
    app.stop().await;
}

#[tokio::test]
async fn bodies_stream_and_are_limited() {
    let m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"b\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\n",
        http_probe()
    );
    let app = TestApp::start_with(&m, |o| o.max_request_body_bytes = 1 << 20)
        .await
        .expect("starts");
    let c = client();
    // Within the limit: counted by the component while streaming.
    let r = c
        .post(app.url("/?op=count"))
        .body(vec![7u8; 1 << 20])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("body"), (1u64 << 20).to_string());
    // Declared too large: refused before the component runs.
    let r = c
        .post(app.url("/?op=count"))
        .body(vec![7u8; (1 << 20) + 1])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 413);
    // Chunked (no length) and too large: the component's body stream fails.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![1u8; 100_000])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = c
        .post(app.url("/?op=count"))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .await
            .expect("body")
            .starts_with("body error after")
    );
    // Echo streams a body back unchanged.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = c
        .post(app.url("/?op=echo"))
        .body(payload.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.bytes().await.expect("body").as_ref(), payload.as_slice());
    // A generated response of 5 MiB arrives whole.
    let r = c
        .get(app.url("/?op=generate&bytes=5242880"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.bytes().await.expect("body").len(), 5 << 20);
    app.stop().await;
}

#[tokio::test]
async fn files_are_mounted_read_only() {
    let dir = std::env::temp_dir().join(unique_name("rh-files-"));
    std::fs::create_dir_all(dir.join("static/sub")).expect("dirs");
    std::fs::write(dir.join("static/sub/a.txt"), "file content").expect("write");
    std::fs::write(dir.join("single.txt"), "single").expect("write");
    let m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"f\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\nfiles = [\"{}/static\", {{ source = \"{}/single.txt\", destination = \"/etc/x\" }}]\n",
        http_probe(),
        dir.display(),
        dir.display()
    );
    // Absolute paths are rejected by Spin's rules, so the manifest uses paths relative to it.
    let rel = m.replace(&format!("{}/", dir.display()), "");
    let manifest = dir.join("spin.toml");
    std::fs::write(&manifest, rel).expect("manifest");
    let mut options = runtime_host::UpOptions::new(&manifest);
    options.listen = "127.0.0.1:0".parse().expect("addr");
    let app = runtime_host::start(options).await.expect("starts");
    let base = format!("http://{}", app.http_addr.expect("addr"));
    let get = |p: &str| {
        let url = format!("{base}{p}");
        async move {
            let r = client().get(url).send().await.expect("get");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    assert_eq!(
        get("/?op=file&path=/static/sub/a.txt").await,
        (200, "file content".into())
    );
    assert_eq!(get("/?op=file&path=/etc/x").await, (200, "single".into()));
    assert_eq!(get("/?op=file&path=/etc/passwd").await.0, 404);
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"s\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"{}\"\n",
        http_probe()
    );
    let app = TestApp::start(&m).await;
    let url = app.url("/?op=generate&bytes=52428800");
    let download = tokio::spawn(async move {
        let r = client().get(url).send().await.expect("get");
        r.bytes().await.map(|b| b.len())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop().await;
    let got = download
        .await
        .expect("join")
        .expect("the download completes");
    assert_eq!(got, 50 << 20);
}

fn self_manifest() -> String {
    let wasm = http_probe();
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "self"

[[trigger.http]]
route = "/caller/..."
component = "caller"
[[trigger.http]]
route = "/closed/..."
component = "closed"
[[trigger.http]]
route = "/target/..."
component = "target"
[[trigger.http]]
route = {{ private = true }}
component = "hidden"

[component.caller]
source = "{wasm}"
allowed_outbound_hosts = ["http://self"]
[component.closed]
source = "{wasm}"
allowed_outbound_hosts = ["http://target.spin.internal", "http://example.com"]
[component.target]
source = "{wasm}"
[component.target.variables]
who = "target"
[component.hidden]
source = "{wasm}"
"#
    )
}

#[tokio::test]
async fn relative_urls_reach_the_app_itself_only_with_http_self() {
    let app = TestApp::start(&self_manifest()).await;
    let fetch = |from: &'static str, url: &'static str| {
        let path = format!("{from}?op=fetch&url={}", percent_encode(url));
        let app = &app;
        async move { app.get(&path).await }
    };

    // A relative URL goes through the app's public router, as a request to its own address.
    let (status, body) = fetch("/caller", "/target/deep?op=headers").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("status 200"), "{body}");
    assert_eq!(header(&body, "spin-matched-route"), Some("/target/..."));
    assert_eq!(header(&body, "spin-path-info"), Some("/deep"));
    // wasi-http hides the Host header from components; the full URL carries the same authority.
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        header(&body, "spin-full-url"),
        Some(format!("http://{host}/target/deep?op=headers").as_str())
    );
    let (status, body) = fetch("/caller", "/target/?op=var&name=who").await;
    assert_eq!((status, body.as_str()), (200, "status 200\ntarget"));

    // `self.alt` is the explicit spelling of the same thing.
    let (status, body) = fetch("/caller", "http://self.alt/target/?op=var&name=who").await;
    assert_eq!((status, body.as_str()), (200, "status 200\ntarget"));

    // The runtime's own routes answer, an unrouted path is a 404 and a private component stays
    // unreachable: the request comes in through the front door, not by chaining.
    let (status, body) = fetch("/caller", "/.well-known/spin/health").await;
    assert_eq!((status, body.as_str()), (200, "status 200\nOK"));
    let (status, body) = fetch("/caller", "/hidden?op=var&name=who").await;
    assert_eq!((status, body.as_str()), (200, "status 404\n"));

    // Without `http://self` a relative URL is denied, whatever else is allowed.
    for url in [
        "/target/?op=var&name=who",
        "http://self.alt/target/?op=var&name=who",
    ] {
        let (status, body) = fetch("/closed", url).await;
        assert_eq!((status, body.as_str()), (502, "HttpRequestDenied"), "{url}");
        let (status, body) = fetch("/target", url).await;
        assert_eq!((status, body.as_str()), (502, "HttpRequestDenied"), "{url}");
    }
    // `http://self` allows nothing but the app: neither other hosts nor chaining.
    for url in ["http://example.com/", "http://target.spin.internal/"] {
        let (status, body) = fetch("/caller", url).await;
        assert_eq!((status, body.as_str()), (502, "HttpRequestDenied"), "{url}");
    }
    app.stop().await;
}

/// A plain HTTP server on loopback that counts the connections it accepts; `/close` answers with
/// `Connection: close`.
async fn counting_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let service = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let mut response = http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from(format!("served {}", req.uri().path())),
                    ));
                    if req.uri().path() == "/close" {
                        response.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                    }
                    Ok::<_, std::convert::Infallible>(response)
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn outbound_http_reuses_connections() {
    use std::sync::atomic::Ordering;
    let (addr, accepted) = counting_server().await;
    // A port with nothing listening: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let wasm = http_probe();
    let app = TestApp::start(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "pool"
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{wasm}"
allowed_outbound_hosts = ["http://127.0.0.1:{}", "http://127.0.0.1:{}"]
"#,
        addr.port(),
        closed.port()
    ))
    .await;
    let fetch = |path: &str| {
        format!(
            "/?op=fetch&url={}",
            percent_encode(&format!("http://{addr}{path}"))
        )
    };

    for i in 0..5 {
        let (status, body) = app.get(&fetch(&format!("/n{i}"))).await;
        assert_eq!(
            (status, body.as_str()),
            (200, format!("status 200\nserved /n{i}").as_str())
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "five requests one after the other share one connection"
    );

    // A connection the server closes is not reused: the next request opens another.
    let (status, body) = app.get(&fetch("/close")).await;
    assert_eq!((status, body.as_str()), (200, "status 200\nserved /close"));
    let (status, body) = app.get(&fetch("/after")).await;
    assert_eq!((status, body.as_str()), (200, "status 200\nserved /after"));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // Nothing listening: the component sees the connection refused, as with Spin.
    let url = format!("http://{closed}/");
    let (status, body) = app
        .get(&format!("/?op=fetch&url={}", percent_encode(&url)))
        .await;
    assert_eq!((status, body.as_str()), (502, "ConnectionRefused"));
    app.stop().await;
}
