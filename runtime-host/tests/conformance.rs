//! Where runtime-host must behave as Spin 3.6 does (issue 16): the MySQL and Redis result limit,
//! application variables in `allowed_outbound_hosts`, Spin's error texts, and components on the
//! WASI 0.2.0 release candidates that spin-sdk 2.x builds, and `wasi:config/store`. Real MariaDB and Redis on loopback
//! (`scripts/services start`); fixtures from `scripts/build-components`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestApp, component_wasm, http_probe, percent_encode};
use redis::AsyncCommands;
use vid2mp3_test_support_core::{MySqlDatabase, ServiceUrls, eventually, unique_name};

/// The limit the result tests configure instead of Spin's 128 MiB.
const LIMIT: usize = 64 << 10;

fn probe_manifest(mysql_url: &str, allowed: &[&str]) -> String {
    common::probe_manifest(
        "conformance",
        mysql_url,
        &ServiceUrls::from_env().redis,
        allowed,
    )
}

async fn limited_app(mysql_url: &str) -> TestApp {
    TestApp::start_with(
        &probe_manifest(
            mysql_url,
            &["mysql://127.0.0.1:3306", "redis://127.0.0.1:6379"],
        ),
        |o| o.max_result_bytes = LIMIT,
    )
    .await
    .expect("app starts")
}

/// Spin's measure of a row set of `rows` rows of one `len`-byte string: the row set (48 bytes)
/// and per value the size of a `db-value` (32 bytes) and its length.
fn mysql_measure(rows: usize, len: usize) -> usize {
    48 + rows * (32 + len)
}

#[tokio::test]
async fn a_mysql_result_over_the_limit_is_refused_with_spins_error_and_the_session_goes_on() {
    let db = MySqlDatabase::create()
        .await
        .expect("a database of the test's own (scripts/services start mysql)");
    let app = limited_app(&db.url()).await;
    let query = |rows: usize| {
        let sql = format!("SELECT REPEAT('x', 1000) FROM seq_1_to_{rows}");
        format!("/?op=mysql-query&sql={}", percent_encode(&sql))
    };
    assert!(mysql_measure(63, 1000) <= LIMIT && mysql_measure(64, 1000) > LIMIT);
    // Just under the limit: all of it.
    assert_eq!(
        app.get(&query(63)).await,
        (
            200,
            "rows 63 bytes 63000\nafter: Some(Int32(42))".to_owned()
        )
    );
    // One row over, and far over (20 MB the server sends and the host drops): Spin's error,
    // which the component handles; its session still answers.
    let refused = format!(
        "error: Other(\"query result exceeds limit of {LIMIT} bytes\")\nafter: Some(Int32(42))"
    );
    assert_eq!(app.get(&query(64)).await, (200, refused.clone()));
    assert_eq!(app.get(&query(20_000)).await, (200, refused));
    app.stop().await;
    drop(db);
}

#[tokio::test]
async fn a_redis_result_over_the_limit_is_refused_with_spins_error_and_the_connection_goes_on() {
    let prefix = unique_name("rh-limit-");
    let mut redis = common::redis_connection().await;
    // Spin measures a GET result as 24 bytes and the value, an `execute` result as 24 bytes,
    // then 32 and the length per value.
    let keys = [
        ("get-fits", LIMIT - 24),
        ("get-over", LIMIT - 24 + 1),
        ("exec-fits", LIMIT - 24 - 32),
        ("exec-over", LIMIT - 24 - 32 + 1),
        ("huge", 8 << 20),
    ];
    for (key, len) in keys {
        let _: () = redis
            .set(format!("{prefix}:{key}"), vec![b'v'; len])
            .await
            .expect("set");
    }
    let members: Vec<String> = (0..100)
        .map(|i| format!("{i:04}{}", "m".repeat(1000)))
        .collect();
    let _: () = redis
        .sadd(format!("{prefix}:set"), &members)
        .await
        .expect("sadd");

    let app = limited_app("mysql://unused").await;
    let read = |how: &str, key: &str| {
        format!(
            "/?op=redis-read&how={how}&key={}",
            percent_encode(&format!("{prefix}:{key}"))
        )
    };
    let ok = |n: usize| format!("bytes {n}\nafter: Ok([Status(\"PONG\")])");
    let refused = format!(
        "error: Other(\"query result exceeds limit of {LIMIT} bytes\")\nafter: Ok([Status(\"PONG\")])"
    );
    let cases = [
        ("get", "get-fits", ok(LIMIT - 24)),
        ("get", "get-over", refused.clone()),
        ("execute", "exec-fits", ok(LIMIT - 56)),
        ("execute", "exec-over", refused.clone()),
        ("get", "huge", refused.clone()),
        ("execute", "huge", refused.clone()),
        // 100 KB of members: over the limit as the server sends it.
        ("smembers", "set", refused),
    ];
    for (how, key, expected) in cases {
        assert_eq!(
            app.get(&read(how, key)).await,
            (200, expected),
            "{how} {key}"
        );
    }
    app.stop().await;
    let keys: Vec<String> = [
        "get-fits",
        "get-over",
        "exec-fits",
        "exec-over",
        "huge",
        "set",
    ]
    .iter()
    .map(|k| format!("{prefix}:{k}"))
    .collect();
    let _: Result<u32, _> = redis.del(keys).await;
}

#[tokio::test]
async fn allowed_hosts_templates_name_application_variables_as_on_spin() {
    let db = MySqlDatabase::create()
        .await
        .expect("a database of the test's own (scripts/services start mysql)");
    // Spin's runtime test `outbound-mysql-variable-permission`: an application variable in the
    // entry, no component variable of that name.
    let manifest = format!(
        r#"
spin_manifest_version = 2
[application]
name = "variable-permission"
[variables]
mysql_host = {{ default = "127.0.0.1" }}
mysql_url = {{ default = "{}" }}
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{}"
allowed_outbound_hosts = ["mysql://{{{{ mysql_host }}}}:3306"]
[component.probe.variables]
mysql_url = "{{{{ mysql_url }}}}"
"#,
        db.url(),
        http_probe()
    );
    let open = format!("/?op=mysql-open&addr={}", percent_encode(&db.url()));
    let app = TestApp::start(&manifest).await;
    assert_eq!(app.get(&open).await, (200, "opened".into()));
    app.stop().await;

    // The value is the variable's as the app runs (SPIN_VARIABLE_*), not its default.
    let app = TestApp::start_with(&manifest, |o| {
        o.variable_env =
            Arc::new(|k| (k == "SPIN_VARIABLE_MYSQL_HOST").then(|| "10.0.0.1".to_owned()));
    })
    .await
    .expect("starts");
    let (status, body) = app.get(&open).await;
    assert_eq!(status, 502);
    assert!(body.contains("is not permitted"), "{body}");
    app.stop().await;

    // A component variable is not an application variable: Spin starts the app and fails the
    // component's connections with the reason; so does runtime-host.
    let manifest = format!(
        r#"
spin_manifest_version = 2
[application]
name = "component-variable"
[variables]
mysql_url = {{ default = "{}" }}
[[trigger.http]]
route = "/..."
component = "probe"
[component.probe]
source = "{}"
allowed_outbound_hosts = ["mysql://{{{{ peer }}}}:3306", "redis://127.0.0.1:6379", "http://probe.spin.internal"]
[component.probe.variables]
mysql_url = "{{{{ mysql_url }}}}"
peer = "127.0.0.1"
"#,
        db.url(),
        http_probe()
    );
    let app = TestApp::start(&manifest).await;
    let unresolved = "Other(\"invalid variable name: peer\")";
    assert_eq!(app.get(&open).await, (502, unresolved.to_owned()));
    let redis_open = format!(
        "/?op=redis-open&addr={}",
        percent_encode(&ServiceUrls::from_env().redis)
    );
    assert_eq!(app.get(&redis_open).await, (502, unresolved.to_owned()));
    let fetch = format!(
        "/?op=fetch&url={}",
        percent_encode("http://probe.spin.internal/?op=env&name=X")
    );
    assert_eq!(app.get(&fetch).await, (502, "HttpRequestDenied".to_owned()));
    app.stop().await;
    drop(db);
}

#[tokio::test]
async fn refusals_and_variable_errors_carry_spins_texts() {
    let app = TestApp::start(&probe_manifest("mysql://unused", &["mysql://127.0.0.1:1"])).await;
    let open = |addr: &str| format!("/?op=mysql-open&addr={}", percent_encode(addr));
    // Spin's text, with the address as the component gave it; only the password is hidden.
    for (address, shown) in [
        (
            "mysql://spin:spin@localhost:3306/spin_dev",
            "mysql://spin:****@localhost:3306/spin_dev",
        ),
        // An address without a scheme is checked as mysql://... and refused the same way.
        ("localhost:10000", "localhost:10000"),
        ("hello", "hello"),
    ] {
        assert_eq!(
            app.get(&open(address)).await,
            (
                502,
                format!("ConnectionFailed(\"address {shown} is not permitted\")")
            ),
            "{address}"
        );
    }
    assert_eq!(
        app.get(&format!(
            "/?op=redis-open&addr={}",
            percent_encode(&ServiceUrls::from_env().redis)
        ))
        .await,
        (502, "InvalidAddress".to_owned())
    );
    assert_eq!(
        app.get(&format!(
            "/?op=fetch&url={}",
            percent_encode("http://example.com/")
        ))
        .await,
        (502, "HttpRequestDenied".to_owned())
    );
    assert_eq!(
        app.get("/?op=var&name=Bad-Name").await,
        (
            404,
            r#"InvalidName("\"Bad-Name\": invalid character 'B'. Variable names may contain only lower-case letters, numbers, and underscores.")"#
                .to_owned()
        )
    );
    assert_eq!(
        app.get("/?op=var&name=nothing").await,
        (
            404,
            r#"Undefined("no variable for \"probe\".\"nothing\"")"#.to_owned()
        )
    );
    app.stop().await;
}

/// A manifest running one release-candidate fixture over HTTP (beside an http-probe it may
/// chain to) and on a Redis channel.
fn rc_manifest(snapshot: &str, channel: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "rc-{snapshot}"
[application.trigger.redis]
address = "{redis}"
[[trigger.http]]
route = "/rc/..."
component = "rc"
[[trigger.http]]
route = {{ private = true }}
component = "probe"
[[trigger.redis]]
channel = "{channel}"
component = "rc"
[component.rc]
source = "{rc}"
allowed_outbound_hosts = ["http://probe.spin.internal", "redis://127.0.0.1:6379"]
environment = {{ RC_ENV = "from-manifest", REDIS_URL = "{redis}" }}
[component.probe]
source = "{probe}"
"#,
        redis = ServiceUrls::from_env().redis,
        rc = component_wasm(&format!("fixture_rc_{}", snapshot.replace('-', "_"))).display(),
        probe = http_probe(),
    )
}

async fn rc_components_run_on_both_triggers(snapshot: &str) {
    let channel = unique_name("rh-rc-");
    let app = TestApp::start(&rc_manifest(snapshot, &channel)).await;
    assert_eq!(
        app.get("/rc/").await,
        (200, format!("hello from wasi 0.2.0-rc-{snapshot}"))
    );
    assert_eq!(
        app.get("/rc/?op=env&name=RC_ENV").await,
        (200, "from-manifest".into())
    );
    assert_eq!(
        app.get("/rc/?op=clocks").await,
        (200, "slept true wall true".into())
    );
    assert_eq!(
        app.get("/rc/?op=random").await,
        (200, "random 16 true".into())
    );
    // Streams both ways: the request body read and written back through this snapshot.
    let body = "x".repeat(100_000);
    let r = common::client()
        .post(app.url("/rc/?op=echo"))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("body"), body);
    // Outgoing HTTP through this snapshot: chaining, and the same allowed-hosts check.
    let fetch = |url: &str| format!("/rc/?op=fetch&url={}", percent_encode(url));
    let (status, body) = app
        .get(&fetch("http://probe.spin.internal/?op=env&name=X"))
        .await;
    assert_eq!((status, body.as_str()), (200, "status 200\n<unset>"));
    let denied = match snapshot {
        "2023-10-18" => "Error::UnexpectedError(\"ErrorCode::HttpRequestDenied\")",
        _ => "ErrorCode::HttpRequestDenied",
    };
    assert_eq!(
        app.get(&fetch("http://example.com/")).await,
        (502, denied.to_owned())
    );
    // Sockets link, and are refused as WASI 0.2's are on runtime-host (no TCP for components).
    assert_eq!(
        app.get("/rc/?op=socket&port=3306").await,
        (
            200,
            r#"create: ErrorCode { code: 1, name: "access-denied", message: "" }"#.into()
        )
    );
    // What this snapshot cannot express of WASI 0.2 traps, as on Spin.
    assert_eq!(app.get("/rc/?op=trap").await.0, 500);

    // The Redis trigger runs the same component; it answers through this snapshot's imports.
    let key = unique_name("rh-rc-key-");
    let mut redis = common::redis_connection().await;
    let value = eventually(Duration::from_secs(20), || {
        let mut redis = redis.clone();
        let (channel, key) = (channel.clone(), key.clone());
        async move {
            let _: Result<i64, _> = redis.publish(&channel, format!("SET {key}")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            redis.get::<_, Option<String>>(&key).await.ok().flatten()
        }
    })
    .await;
    let _: Result<u32, _> = redis.del(&key).await;
    app.stop().await;
    assert_eq!(
        value,
        Some(format!(
            "0.2.0-rc-{snapshot} random 16 true slept true wall true"
        ))
    );
}

#[tokio::test]
async fn components_on_wasi_0_2_0_rc_2023_10_18_run_as_on_spin() {
    rc_components_run_on_both_triggers("2023-10-18").await;
}

#[tokio::test]
async fn components_on_wasi_0_2_0_rc_2023_11_10_run_as_on_spin() {
    rc_components_run_on_both_triggers("2023-11-10").await;
}

/// `wasi:config/store@0.2.0-draft-2024-09-27`, which Spin serves beside `fermyon:spin/variables`:
/// a component reads its own variables (secret ones too), a name it does not have or that no
/// variable can have is `none` (Spin's reading of the draft), and `get-all` lists only its own.
#[tokio::test]
async fn components_read_their_own_variables_through_wasi_config_store() {
    let manifest = format!(
        r#"
spin_manifest_version = 2
[application]
name = "config-store"
[variables]
greeting = {{ default = "hello" }}
token = {{ default = "s3cret", secret = true }}
[[trigger.http]]
route = "/rc/..."
component = "rc"
[[trigger.http]]
route = "/probe/..."
component = "probe"
[component.rc]
source = "{rc}"
[component.rc.variables]
rc_var = "{{{{ greeting }}}} from rc"
rc_token = "{{{{ token }}}}"
[component.probe]
source = "{probe}"
[component.probe.variables]
missing = "the probe's own"
"#,
        rc = component_wasm("fixture_rc_2023_11_10").display(),
        probe = http_probe(),
    );
    let app = TestApp::start(&manifest).await;
    // The fixture reads `rc_var`, `missing` (the probe's variable, not its own) and `Bad-Name`.
    assert_eq!(
        app.get("/rc/?op=config").await,
        (
            200,
            r#"[Ok(Some("hello from rc")), Ok(None), Ok(None)] Ok([("rc_token", "s3cret"), ("rc_var", "hello from rc")])"#
                .into()
        )
    );
    app.stop().await;
}
