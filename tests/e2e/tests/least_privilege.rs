//! Least privilege, against the real servers: each service's MySQL account and Redis user may touch
//! only what is its own. The accounts are the ones the platform under test runs with (made by
//! `tests/support` from the same grants and `deploy/k8s/base/data/redis-users.conf` as
//! production), so a refusal here is the refusal a service would get in production, and a missing
//! grant would fail the rest of the suite.

mod common;

use common::{PASSWORD, client, sign_up};
use mysql_async::prelude::Queryable;
use serde_json::Value;
use vid2mp3_test_support::{Platform, PlatformBuilder};

/// `(server error code, message)` of a refused statement.
fn server_error(error: mysql_async::Error) -> (u16, String) {
    match error {
        mysql_async::Error::Server(e) => (e.code, e.message),
        other => panic!("expected the server to refuse it, got {other}"),
    }
}

async fn users_in_auth(p: &Platform) -> u64 {
    let pool = p.auth_db.pool().expect("auth's database");
    let mut conn = pool.get_conn().await.expect("a connection");
    let n: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM users")
        .await
        .expect("count users");
    drop(conn);
    pool.disconnect().await.expect("disconnect");
    n.unwrap_or(0)
}

#[tokio::test]
async fn a_service_cannot_read_or_change_another_services_database() {
    let p = PlatformBuilder::new().start().await.expect("platform");
    let email = p.mailbox.address().to_owned();
    sign_up(&p, &email).await;
    assert_eq!(users_in_auth(&p).await, 1);

    // The gateway's own account, as the gateway component uses it.
    let gateway = mysql_async::Conn::new(
        mysql_async::Opts::from_url(p.gateway_db.service_url()).expect("gateway's URL"),
    )
    .await;
    let mut gateway = gateway.expect("the gateway's account logs in");
    let auth_db = p.auth_db.name();

    // Reading auth's password hashes: refused by the server (ER_TABLEACCESS_DENIED_ERROR).
    let refused = gateway
        .query_drop(format!(
            "SELECT email, password_hash FROM `{auth_db}`.users"
        ))
        .await
        .expect_err("the gateway's account must not read auth's users");
    let (code, message) = server_error(refused);
    assert_eq!(code, 1142, "{message}");
    assert!(
        message.contains("SELECT command denied") && message.contains("users"),
        "{message}"
    );

    // Nor change them, nor drop them.
    for statement in [
        format!("UPDATE `{auth_db}`.users SET password_hash = 'x'"),
        format!("DELETE FROM `{auth_db}`.users"),
        format!("DROP TABLE `{auth_db}`.users"),
    ] {
        let (code, message) =
            server_error(gateway.query_drop(&statement).await.expect_err("refused"));
        assert!(
            [1142, 1044].contains(&code),
            "{statement}: {code} {message}"
        );
    }

    // Not even its own schema: DDL belongs to the migrations' account.
    let (code, message) = server_error(
        gateway
            .query_drop("DROP TABLE jobs")
            .await
            .expect_err("the gateway's account must not drop its own tables"),
    );
    assert_eq!(code, 1142, "{message}");
    // Its own rows it may read, which is all it needs.
    let jobs: Vec<String> = gateway
        .query("SELECT id FROM jobs")
        .await
        .expect("the gateway reads its own table");
    assert!(jobs.is_empty());
    gateway.disconnect().await.expect("disconnect");

    // The notifier's account sees neither auth's nor the gateway's database.
    let mut notifier = mysql_async::Conn::new(
        mysql_async::Opts::from_url(p.notifier_db.service_url()).expect("notifier's URL"),
    )
    .await
    .expect("the notifier's account logs in");
    let (code, message) = server_error(
        notifier
            .query_drop(format!("SELECT COUNT(*) FROM `{auth_db}`.users"))
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, 1142, "{message}");
    let databases: Vec<String> = notifier.query("SHOW DATABASES").await.expect("databases");
    assert!(
        !databases
            .iter()
            .any(|d| d == auth_db || d == p.gateway_db.name()),
        "the notifier's account can see {databases:?}"
    );
    notifier.disconnect().await.expect("disconnect");

    // Nothing was lost: the account is still there and still logs in.
    assert_eq!(users_in_auth(&p).await, 1);
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("log in");
    assert_eq!(r.status(), 200);
}

/// `NOPERM: <Redis's message>` of a refused Redis command (what the server sent: its error code
/// and text).
fn refused<T: std::fmt::Debug>(result: redis::RedisResult<T>) -> String {
    let error = result.expect_err("Redis must refuse it");
    format!("{}: {error}", error.code().unwrap_or("no error code"))
}

#[tokio::test]
async fn a_service_cannot_touch_another_services_redis_keys_or_channels() {
    let p = PlatformBuilder::new().start().await.expect("platform");
    let admin = p.redis.connection().await.expect("Redis as the admin");
    let progress = p.redis.key("progress:0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11");
    let throttle = p
        .redis
        .key("auth:login-failures:account:someone@example.com");
    let _: () = redis::cmd("SET")
        .arg(&progress)
        .arg(r#"{"percent":40,"eta_ms":null}"#)
        .query_async(&mut admin.clone())
        .await
        .expect("seed progress");
    let _: () = redis::cmd("SET")
        .arg(&throttle)
        .arg("3")
        .query_async(&mut admin.clone())
        .await
        .expect("seed a throttle counter");

    let connect = |service: &str| {
        let url = p.redis_users.url(service).to_owned();
        async move {
            redis::Client::open(url)
                .expect("URL")
                .get_multiplexed_async_connection()
                .await
                .expect("the service's user logs in")
        }
    };
    let mut notifier = connect("notifier").await;
    let mut gateway = connect("gateway").await;
    let mut auth = connect("auth").await;
    let mut converter = connect("converter").await;

    // Progress is the converter's alone (its storage API is the one reader): neither the
    // notifier nor the gateway may read it.
    for (who, conn) in [("notifier", &mut notifier), ("gateway", &mut gateway)] {
        let message = refused(
            redis::cmd("GET")
                .arg(&progress)
                .query_async::<Option<String>>(conn)
                .await,
        );
        assert!(message.starts_with("NOPERM:"), "{who}: {message}");
    }

    // A non-notifier user publishing a job event (what would make the notifier send mail).
    let event = br#"{"version":1}"#;
    for (who, conn) in [("gateway", &mut gateway), ("auth", &mut auth)] {
        let message = refused(
            redis::cmd("PUBLISH")
                .arg(&p.channel)
                .arg(&event[..])
                .query_async::<u64>(conn)
                .await,
        );
        assert!(message.starts_with("NOPERM:"), "{who}: {message}");
    }
    // Nor may the notifier publish to its own channel: only the converter's relay does.
    let message = refused(
        redis::cmd("PUBLISH")
            .arg(&p.channel)
            .arg(&event[..])
            .query_async::<u64>(&mut notifier)
            .await,
    );
    assert!(message.starts_with("NOPERM:"), "{message}");

    // Only auth may publish account emails (what makes the notifier mail an address a link).
    for (who, conn) in [
        ("gateway", &mut gateway),
        ("notifier", &mut notifier),
        ("converter", &mut converter),
    ] {
        let message = refused(
            redis::cmd("PUBLISH")
                .arg(&p.account_channel)
                .arg(&event[..])
                .query_async::<u64>(conn)
                .await,
        );
        assert!(message.starts_with("NOPERM:"), "{who}: {message}");
    }

    // The gateway writes nothing, not even its own readiness key.
    let message = refused(
        redis::cmd("SET")
            .arg(p.redis.key("readyz"))
            .arg("{}")
            .query_async::<()>(&mut gateway)
            .await,
    );
    assert!(message.starts_with("NOPERM:"), "{message}");
    // auth's counters are auth's: the converter may not reset them.
    let message = refused(
        redis::cmd("DEL")
            .arg(&throttle)
            .query_async::<u64>(&mut converter)
            .await,
    );
    assert!(message.starts_with("NOPERM:"), "{message}");
    // Nobody but the admin sees the keyspace or the server's settings.
    for conn in [&mut gateway, &mut auth, &mut notifier, &mut converter] {
        let message = refused(
            redis::cmd("KEYS")
                .arg("*")
                .query_async::<Vec<String>>(conn)
                .await,
        );
        assert!(message.starts_with("NOPERM:"), "{message}");
        let message = refused(
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("*")
                .query_async::<Vec<String>>(conn)
                .await,
        );
        assert!(message.starts_with("NOPERM:"), "{message}");
    }

    // What each may do, it can: the gateway reads its readiness key, the converter reads progress
    // and publishes.
    let _: Option<String> = redis::cmd("GET")
        .arg(p.redis.key("readyz"))
        .query_async(&mut gateway)
        .await
        .expect("the gateway reads its readiness key");
    let seen: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&progress)
        .query_async(&mut converter)
        .await
        .expect("the converter reads progress");
    assert!(seen[0].is_some());
    let _: u64 = redis::cmd("PUBLISH")
        .arg(&p.channel)
        .arg("not an event")
        .query_async(&mut converter)
        .await
        .expect("the converter publishes job events");

    // Nothing already stored was lost or changed.
    let mut admin = admin;
    let kept: (Option<String>, Option<String>) = redis::pipe()
        .cmd("GET")
        .arg(&progress)
        .cmd("GET")
        .arg(&throttle)
        .query_async(&mut admin)
        .await
        .expect("read back");
    assert_eq!(
        kept,
        (
            Some(r#"{"percent":40,"eta_ms":null}"#.to_owned()),
            Some("3".to_owned())
        )
    );
}

#[tokio::test]
async fn a_weak_storage_token_is_refused_by_the_gateway_before_anything_is_stored() {
    for token in ["CHANGE-ME", "short-token"] {
        let p = PlatformBuilder::new()
            .variable("storage_token", token)
            .start()
            .await
            .expect("platform");
        let r = client()
            .post(p.url("/api/v1/jobs?name=clip.mkv"))
            .bearer_auth("not-even-a-token")
            .header("content-type", "video/x-matroska")
            .body(vec![0u8; 1024])
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 500, "{token}");
        let body: Value = r.json().await.expect("an error body");
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("misconfigured")),
            "{body}"
        );
        // The weak token never left the gateway, and nothing was recorded.
        let pool = p.gateway_db.pool().expect("gateway's database");
        let mut conn = pool.get_conn().await.expect("a connection");
        let jobs: Option<u64> = conn
            .query_first("SELECT COUNT(*) FROM jobs")
            .await
            .expect("count jobs");
        assert_eq!(jobs, Some(0));
        drop(conn);
        pool.disconnect().await.expect("disconnect");
    }
}
