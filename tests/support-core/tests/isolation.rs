//! Each resource is private to its test and gone after it: proven against the real services.

use mysql_async::prelude::Queryable;
use redis::AsyncCommands;
use vid2mp3_migrations::Service;
use vid2mp3_test_support_core::{
    Mailbox, MongoDatabase, MySqlDatabase, RabbitVhost, RedisNamespace, Unavailable,
    rabbit_vhost_exists,
};

async fn database_exists(server_url: &str, name: &str) -> anyhow::Result<bool> {
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(server_url)?).await?;
    let found: Option<String> = conn
        .exec_first(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
            (name,),
        )
        .await?;
    conn.disconnect().await?;
    Ok(found.is_some())
}

#[tokio::test]
async fn mysql_databases_are_private_and_dropped() -> anyhow::Result<()> {
    let a = MySqlDatabase::create().await?;
    let b = MySqlDatabase::create().await?;
    assert_ne!(a.name(), b.name());

    let mut conn_a = a.pool()?.get_conn().await?;
    conn_a.query_drop("CREATE TABLE t (v INT)").await?;
    conn_a.query_drop("INSERT INTO t VALUES (42)").await?;
    let mut conn_b = b.pool()?.get_conn().await?;
    let seen: Result<Option<i32>, _> = conn_b.query_first("SELECT v FROM t").await;
    assert!(seen.is_err(), "b saw a's table: {seen:?}");
    drop((conn_a, conn_b));

    let (server, name) = (a.server_url().to_owned(), a.name().to_owned());
    assert!(database_exists(&server, &name).await?);
    drop(a);
    assert!(
        !database_exists(&server, &name).await?,
        "{name} survived its handle"
    );
    Ok(())
}

#[tokio::test]
async fn migrated_database_has_the_service_schema() -> anyhow::Result<()> {
    let db = MySqlDatabase::migrated(Service::Auth).await?;
    let mut conn = db.pool()?.get_conn().await?;
    let users: Option<i64> = conn.query_first("SELECT COUNT(*) FROM users").await?;
    assert_eq!(users, Some(0));
    Ok(())
}

#[tokio::test]
async fn redis_namespaces_are_private_and_emptied() -> anyhow::Result<()> {
    let a = RedisNamespace::create().await?;
    let b = RedisNamespace::create().await?;
    let mut conn = a.connection().await?;
    let _: () = conn.set(a.key("progress"), "50").await?;
    let _: () = conn.set(a.key("other"), "1").await?;
    assert_eq!(a.keys().await?.len(), 2);
    assert!(b.keys().await?.is_empty(), "b saw a's keys");

    let first_key = a.key("progress");
    drop(a);
    let exists: bool = conn.exists(&first_key).await?;
    assert!(!exists, "{first_key} survived its namespace");
    Ok(())
}

#[tokio::test]
async fn a_databases_own_account_reaches_its_rows_only_and_goes_with_it() -> anyhow::Result<()> {
    let a = MySqlDatabase::migrated(Service::Gateway).await?;
    let b = MySqlDatabase::migrated(Service::Auth).await?;
    let mut own = mysql_async::Conn::new(mysql_async::Opts::from_url(a.service_url())?).await?;
    own.query_drop(
        "INSERT INTO jobs (id, owner_id, original_name, content_type) \
         VALUES ('j1', 'u1', 'a.mkv', 'video/x-matroska')",
    )
    .await?;
    let rows: Option<i64> = own.query_first("SELECT COUNT(*) FROM jobs").await?;
    assert_eq!(rows, Some(1));
    // Not another test's database, and no DDL on its own.
    let other = own
        .query_drop(format!("SELECT COUNT(*) FROM `{}`.users", b.name()))
        .await;
    assert!(other.is_err(), "a's account read b's users");
    let ddl = own.query_drop("CREATE TABLE extra (v INT)").await;
    assert!(ddl.is_err(), "a's account ran DDL");
    own.disconnect().await?;

    let service_url = a.service_url().to_owned();
    drop(a);
    let gone = mysql_async::Conn::new(mysql_async::Opts::from_url(&service_url)?).await;
    assert!(gone.is_err(), "the account outlived its database");
    Ok(())
}

#[tokio::test]
async fn redis_service_users_are_confined_to_their_namespace_and_go_with_it() -> anyhow::Result<()>
{
    let a = RedisNamespace::create().await?;
    let b = RedisNamespace::create().await?;
    let channel = a.key("job-events");
    let account_channel = a.key("account-emails");
    let users = a
        .service_users(&[
            (
                vid2mp3_contracts::messages::JOB_EVENTS_CHANNEL,
                channel.as_str(),
            ),
            (
                vid2mp3_contracts::account_email::ACCOUNT_EMAILS_CHANNEL,
                account_channel.as_str(),
            ),
        ])
        .await?;
    let mut admin = a.connection().await?;
    let _: () = admin.set(b.key("progress:x"), "1").await?;
    let converter_url = users.url("converter").to_owned();
    let mut converter = redis::Client::open(converter_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let _: () = converter.set(a.key("progress:x"), "7").await?;
    let theirs: redis::RedisResult<Option<String>> = redis::cmd("MGET")
        .arg(b.key("progress:x"))
        .query_async(&mut converter)
        .await;
    assert_eq!(
        theirs
            .err()
            .and_then(|e| e.code().map(str::to_owned))
            .as_deref(),
        Some("NOPERM"),
        "a's converter read b's progress"
    );
    // A channel rules name but the test does not rename is refused, not silently shared.
    assert!(a.service_users(&[]).await.is_err());

    drop(users);
    let gone = redis::Client::open(converter_url.as_str())?
        .get_multiplexed_async_connection()
        .await;
    assert!(gone.is_err(), "the user outlived its handle");
    Ok(())
}

#[tokio::test]
async fn rabbitmq_vhosts_are_private_and_deleted() -> anyhow::Result<()> {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;

    let a = RabbitVhost::create().await?;
    let b = RabbitVhost::create().await?;
    let conn_a = lapin::Connection::connect(a.amqp_url(), Default::default()).await?;
    let channel_a = conn_a.create_channel().await?;
    channel_a
        .queue_declare(
            "video".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;

    // A passive declare asks "does it exist?" without creating it.
    let conn_b = lapin::Connection::connect(b.amqp_url(), Default::default()).await?;
    let channel_b = conn_b.create_channel().await?;
    let seen = channel_b
        .queue_declare(
            "video".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    assert!(seen.is_err(), "b saw a's queue");
    conn_a.close(0, "done".into()).await?;
    let _ = conn_b.close(0, "done".into()).await;

    let name = a.name().to_owned();
    assert!(rabbit_vhost_exists(&name).await?);
    drop(a);
    assert!(
        !rabbit_vhost_exists(&name).await?,
        "{name} survived its handle"
    );
    Ok(())
}

#[tokio::test]
async fn mongo_databases_are_private_and_dropped() -> anyhow::Result<()> {
    use mongodb::bson::{Document, doc};

    let a = MongoDatabase::create().await?;
    let b = MongoDatabase::create().await?;
    a.database()
        .collection::<Document>("jobs")
        .insert_one(doc! {"job": 1})
        .await?;
    assert_eq!(
        a.database()
            .collection::<Document>("jobs")
            .count_documents(doc! {})
            .await?,
        1
    );
    assert_eq!(
        b.database()
            .collection::<Document>("jobs")
            .count_documents(doc! {})
            .await?,
        0
    );

    let name = a.name().to_owned();
    let client = mongodb::Client::with_uri_str(a.url()).await?;
    drop(a);
    let names = client.list_database_names().await?;
    assert!(!names.contains(&name), "{name} survived its handle");
    Ok(())
}

#[tokio::test]
async fn mailboxes_see_only_their_own_mail() -> anyhow::Result<()> {
    let a = Mailbox::create().await?;
    let b = Mailbox::create().await?;
    let sent = reqwest::Client::new()
        .post(format!("{}/api/v1/send", a.mailpit_url()))
        .json(&serde_json::json!({
            "From": {"Email": "noreply@vid2mp3.test"},
            "To": [{"Email": a.address()}],
            "Subject": "for a",
            "Text": "hello a",
        }))
        .send()
        .await?;
    assert!(sent.status().is_success(), "{}", sent.status());

    let messages = a.wait_for(1, std::time::Duration::from_secs(10)).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].subject, "for a");
    assert_eq!(messages[0].to, vec![a.address().to_owned()]);
    assert!(messages[0].text.contains("hello a"));
    assert!(b.messages().await?.is_empty(), "b saw a's mail");

    // After cleanup a new handle on the same address would find nothing.
    let url = a.mailpit_url().to_owned();
    let address = a.address().to_owned();
    drop(a);
    let left: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/search"))
        .query(&[("query", format!("to:\"{address}\""))])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(left["messages_count"], 0, "{left}");
    Ok(())
}

/// A stopped service is named in the error, with the way to start it.
#[tokio::test]
async fn a_service_that_does_not_answer_is_named() {
    // Port 9 (discard) is closed on loopback here; nothing of ours listens on it.
    let mysql = MySqlDatabase::create_on("mysql://vid2mp3:vid2mp3@127.0.0.1:9").await;
    let redis = RedisNamespace::create_on("redis://127.0.0.1:9").await;
    let mongo = MongoDatabase::create_on("mongodb://127.0.0.1:9/?connectTimeoutMS=500").await;
    let mail = Mailbox::create_on("http://127.0.0.1:9").await;
    let rabbit = RabbitVhost::create_on(
        "amqp://guest:guest@127.0.0.1:9/%2f",
        "http://guest:guest@127.0.0.1:9",
    )
    .await;
    for (service, outcome) in [
        ("MariaDB", mysql.map(|_| ())),
        ("Redis", redis.map(|_| ())),
        ("MongoDB", mongo.map(|_| ())),
        ("Mailpit", mail.map(|_| ())),
        ("RabbitMQ", rabbit.map(|_| ())),
    ] {
        let error = outcome.expect_err(service);
        let unavailable = error
            .downcast_ref::<Unavailable>()
            .unwrap_or_else(|| panic!("{service}: not an Unavailable error: {error:#}"));
        assert_eq!(unavailable.service, service);
        let message = error.to_string();
        assert!(message.contains("127.0.0.1:9"), "{message}");
        assert!(message.contains("scripts/services start"), "{message}");
    }
}
