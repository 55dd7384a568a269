//! MySQL, Redis and the Redis trigger against the real services on loopback
//! (`scripts/services start`). Each test uses its own database, key prefix and channel.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestApp, percent_encode, redis_probe};
use redis::AsyncCommands;
use vid2mp3_test_support_core::{MySqlDatabase, ServiceUrls, eventually, unique_name};

fn probe_manifest(mysql_url: &str, redis: &str, allowed: &[&str]) -> String {
    common::probe_manifest("services", mysql_url, redis, allowed)
}

#[tokio::test]
async fn a_mysql_connection_is_one_session_and_none_outlives_its_request() {
    let db = MySqlDatabase::create()
        .await
        .expect("a database of the test's own (scripts/services start mysql)");
    let app = TestApp::start(&probe_manifest(
        &db.url(),
        &ServiceUrls::from_env().redis,
        &["mysql://127.0.0.1:3306"],
    ))
    .await;
    // Twice: the second request gets the first one's pooled connection back, which must come
    // without its variable or its open transaction.
    let expected = "\
variable before: Some(DbNull)
variable after: Some(Int64(42))
same session: true
inside: Some(Int64(1))
rolled back: Some(Int64(0))
";
    for attempt in 1..=2 {
        let (status, body) = app.get("/?op=mysql-session").await;
        assert_eq!(
            (status, body.as_str()),
            (200, expected),
            "request {attempt}"
        );
    }
    app.stop().await;
    drop(db);
}

#[tokio::test]
async fn mysql_round_trips_every_type() {
    let db = MySqlDatabase::create()
        .await
        .expect("a database of the test's own (scripts/services start mysql)");
    let app = TestApp::start(&probe_manifest(
        &db.url(),
        &ServiceUrls::from_env().redis,
        &["mysql://127.0.0.1:3306"],
    ))
    .await;
    let (status, body) = app.get("/?op=mysql&table=probe_types").await;
    drop(db);
    app.stop().await;
    assert_eq!(status, 200, "{body}");
    let expected = "\
id:Int32
i8:Int8
u8:Uint8
i16:Int16
u16:Uint16
i32:Int32
u32:Uint32
i64:Int64
u64:Uint64
f32:Floating32
f64:Floating64
s:Str
t:Str
b:Binary
blb:Binary
flag:Int8
n:Int32
Int32(1)
Int8(-128)
Uint8(255)
Int16(-32768)
Uint16(65535)
Int32(-2147483648)
Uint32(4294967295)
Int64(-9223372036854775808)
Uint64(18446744073709551615)
Floating32(1.5)
Floating64(-2.25)
Str(\"héllo\")
Str(\"long text\")
Binary([0, 1, 254, 255])
Binary([9, 8, 7])
Int8(1)
DbNull
bad query: QueryFailed
";
    assert_eq!(body, expected);
}

#[tokio::test]
async fn mysql_outside_allowed_hosts_or_dead_fails_with_the_interface_error() {
    let db = MySqlDatabase::create()
        .await
        .expect("a database of the test's own (scripts/services start mysql)");
    let app = TestApp::start(&probe_manifest(
        &db.url(),
        &ServiceUrls::from_env().redis,
        &["mysql://127.0.0.1:1"],
    ))
    .await;
    // Not allowed: port 3306 is not in the list.
    let (status, body) = app
        .get(&format!(
            "/?op=mysql-open&addr={}",
            percent_encode(&db.url())
        ))
        .await;
    assert_eq!(status, 502);
    assert!(
        body.starts_with("ConnectionFailed(") && body.contains("not permitted"),
        "{body}"
    );
    // The account's password, whatever the tests' account is.
    let db_url = db.url();
    let password = db_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(creds, _)| creds.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty())
        .expect("the tests' MySQL URL has a password");
    assert!(
        !body.contains(password),
        "credentials must not leak: {body}"
    );
    // Allowed but nothing listens: an error, promptly, not a hang or a trap.
    let started = std::time::Instant::now();
    let (status, body) = app
        .get(&format!(
            "/?op=mysql-open&addr={}",
            percent_encode("mysql://u:p@127.0.0.1:1/x")
        ))
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.starts_with("ConnectionFailed("), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;
    drop(db);
}

#[tokio::test]
async fn redis_operations_round_trip() {
    let prefix = unique_name("rh-test-");
    let app = TestApp::start(&probe_manifest(
        "mysql://unused",
        &ServiceUrls::from_env().redis,
        &["redis://127.0.0.1:6379"],
    ))
    .await;
    let (status, body) = app.get(&format!("/?op=redis&prefix={prefix}")).await;
    app.stop().await;
    assert_eq!(status, 200, "{body}");
    let expected = "\
get a: Some(\"value-a\")
get missing: None
incr: Ok(1)
incr: Ok(2)
incr non-int: Err(Other(\"ResponseError: value is not an integer or out of range\"))
sadd: Ok(2)
smembers: [\"x\", \"y\"]
srem: Ok(1)
publish: Ok(())
execute append: [Int64(8)]
execute incrby: [Int64(42)]
execute set: [Status(\"OK\")]
execute mget: [\"Binary(1)\", \"Nil\"]
del: Ok(4)
";
    assert_eq!(body, expected);
}

#[tokio::test]
async fn redis_outside_allowed_hosts_or_dead_fails_with_the_interface_error() {
    let app = TestApp::start(&probe_manifest(
        "mysql://unused",
        &ServiceUrls::from_env().redis,
        &["redis://127.0.0.1:1"],
    ))
    .await;
    let (status, body) = app
        .get(&format!(
            "/?op=redis-open&addr={}",
            percent_encode(&ServiceUrls::from_env().redis)
        ))
        .await;
    assert_eq!((status, body.as_str()), (502, "InvalidAddress"));
    let (status, body) = app
        .get(&format!(
            "/?op=redis-open&addr={}",
            percent_encode("redis://127.0.0.1:1")
        ))
        .await;
    assert_eq!(status, 502);
    assert!(body.starts_with("Other("), "{body}");
    app.stop().await;
}

fn trigger_manifest(address: &str, channel: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "trigger"
[application.trigger.redis]
address = "{address}"
[variables]
redis_url = {{ default = "{address}" }}
[[trigger.redis]]
channel = "{channel}"
component = "listener"
[component.listener]
source = "{}"
allowed_outbound_hosts = ["redis://127.0.0.1:*"]
[component.listener.variables]
redis_url = "{{{{ redis_url }}}}"
"#,
        redis_probe()
    )
}

async fn start_trigger(
    address: &str,
    channel: &str,
) -> (runtime_host::RunningApp, common::TempManifest) {
    let m = common::TempManifest::new(&trigger_manifest(address, channel));
    let mut options = runtime_host::UpOptions::new(&m.path);
    options.variable_env = std::sync::Arc::new(|_| None);
    let app = runtime_host::start(options)
        .await
        .expect("trigger app starts");
    assert!(app.http_addr.is_none(), "no HTTP routes, no listener");
    (app, m)
}

/// Publishes until the component has written `key` (the subscription may still be starting).
async fn publish_until_set(
    conn: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    key: &str,
    value: &str,
) -> Option<String> {
    eventually(Duration::from_secs(20), || {
        let mut conn = conn.clone();
        let (channel, key, value) = (channel.to_owned(), key.to_owned(), value.to_owned());
        async move {
            let _: Result<i64, _> = conn.publish(&channel, format!("SET {key} {value}")).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            conn.get::<_, Option<String>>(&key).await.ok().flatten()
        }
    })
    .await
}

#[tokio::test]
async fn redis_trigger_runs_the_component_per_message() {
    let channel = unique_name("rh-chan-");
    let key = unique_name("rh-key-");
    let (app, _m) = start_trigger(&ServiceUrls::from_env().redis, &channel).await;
    let client = redis::Client::open(ServiceUrls::from_env().redis).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis (scripts/services start)");
    // A failing and a trapping message do not stop the subscription.
    let _: i64 = conn.publish(&channel, "FAIL").await.expect("publish");
    let _: i64 = conn.publish(&channel, "TRAP").await.expect("publish");
    let got = publish_until_set(&mut conn, &channel, &key, "delivered").await;
    let _: Result<i64, _> = conn.del(&key).await;
    app.shutdown().await;
    assert_eq!(got.as_deref(), Some("delivered"));
}

struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services install)");
        Self { child, port }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    eventually(Duration::from_secs(10), || async {
        redis::Client::open(url)
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()
    })
    .await
    .expect("own redis-server answers")
}

#[tokio::test]
async fn redis_trigger_resubscribes_after_a_redis_restart() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let url = format!("redis://127.0.0.1:{port}");
    let server = OwnRedis::start(port);
    let mut conn = connect(&url).await;
    let channel = "events";
    let (app, _m) = start_trigger(&url, channel).await;
    assert_eq!(
        publish_until_set(&mut conn, channel, "before", "1")
            .await
            .as_deref(),
        Some("1")
    );

    let port = server.port;
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _server = OwnRedis::start(port);
    let mut conn = connect(&url).await;
    let got = publish_until_set(&mut conn, channel, "after", "2").await;
    app.shutdown().await;
    assert_eq!(
        got.as_deref(),
        Some("2"),
        "messages published after the restart reach the component"
    );
}
