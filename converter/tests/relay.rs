//! The event relay against real RabbitMQ and Redis: it acks an event only once the notifier's
//! delivery ack exists, and hands it back otherwise.

mod common;

use std::time::Duration;

use common::{Env, wait_for};
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use vid2mp3_contracts::messages::{JobOutcome, MESSAGE_VERSION, delivery_ack_key};
use vid2mp3_contracts::{FileId, JobEvent, JobId, UserId};

fn event() -> JobEvent {
    JobEvent {
        version: MESSAGE_VERSION,
        message_id: uuid::Uuid::now_v7(),
        job_id: JobId::new(),
        video_fid: "65f0c0ffee65f0c0ffee65f0".parse::<FileId>().unwrap(),
        mp3_fid: Some("65f0c0ffee65f0c0ffee65f1".parse().unwrap()),
        username: "ada@example.com".into(),
        owner_id: UserId::new(),
        original_name: "talk.mkv".into(),
        attempt: 1,
        outcome: JobOutcome::Done {
            mp3_size_bytes: 1000,
            duration_ms: 3000,
        },
    }
}

async fn publish(env: &Env, payload: &[u8]) {
    wait_for("the mp3 queue", Duration::from_secs(30), || async {
        env.vhost().queue_depth("mp3").await.ok().flatten()
    })
    .await;
    let conn = env.amqp().await;
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish(
            "".into(),
            "mp3".into(),
            BasicPublishOptions::default(),
            payload,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let _ = conn.close(200, "done".into()).await;
}

const FAST: &[(&str, &str)] = &[
    ("VID2MP3_RELAY_ACK_TIMEOUT_MS", "400"),
    ("VID2MP3_RELAY_REDELIVER_DELAY_MS", "100"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_redelivers_until_the_notifier_acks_and_acks_only_then() {
    let env = Env::new().await;
    let mut relay = env.start("relay", FAST).await;
    let client = redis::Client::open(env.redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&env.events_channel).await.unwrap();
    let mut messages = pubsub.on_message();
    let sent = event();
    publish(&env, &serde_json::to_vec(&sent).unwrap()).await;

    // No ack key: the event comes again (and again).
    for n in 1..=2 {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .unwrap_or_else(|_| panic!("delivery {n} did not come"))
            .expect("pubsub stream");
        let got: JobEvent = serde_json::from_slice(message.get_payload_bytes()).unwrap();
        assert_eq!(got, sent);
    }
    // Still on the queue (unacked), as stopping the relay shows.
    relay.stop().await;
    let left = env.drain("mp3").await;
    assert_eq!(left.len(), 1, "not acked without the notifier's ack");

    // Now the notifier acks the next delivery.
    publish(&env, &left[0]).await;
    let mut relay = env.start("relay", FAST).await;
    let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
        .await
        .expect("delivered again")
        .expect("pubsub stream");
    let got: JobEvent = serde_json::from_slice(message.get_payload_bytes()).unwrap();
    let mut conn = env.redis.connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(delivery_ack_key(env.redis.prefix(), &got.message_id))
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Acked: after the relay's poll sees the key, stopping it leaves nothing on the queue.
    wait_for("the relay to ack", Duration::from_secs(30), || async {
        let metrics = relay.running.as_ref().unwrap().metrics.render().unwrap();
        metrics
            .contains("vid2mp3_converter_events_relayed_total{result=\"delivered\"} 1")
            .then_some(())
    })
    .await;
    relay.stop().await;
    assert!(env.drain("mp3").await.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(delivery_ack_key(env.redis.prefix(), &got.message_id))
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_subscriber_the_event_is_not_lost() {
    let env = Env::new().await;
    let mut relay = env.start("relay", FAST).await;
    let sent = event();
    publish(&env, &serde_json::to_vec(&sent).unwrap()).await;
    wait_for("a failed delivery", Duration::from_secs(30), || async {
        let metrics = relay.running.as_ref()?.metrics.render().ok()?;
        metrics
            .contains("vid2mp3_converter_events_relayed_total{result=\"redelivered\"}")
            .then_some(())
    })
    .await;
    relay.stop().await;
    let left = env.drain("mp3").await;
    assert_eq!(left.len(), 1);
    assert_eq!(serde_json::from_slice::<JobEvent>(&left[0]).unwrap(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_already_acked_is_acked_without_publishing_again() {
    let env = Env::new().await;
    let sent = event();
    let mut conn = env.redis.connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(delivery_ack_key(env.redis.prefix(), &sent.message_id))
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut relay = env.start("relay", FAST).await;
    publish(&env, &serde_json::to_vec(&sent).unwrap()).await;
    wait_for("the ack", Duration::from_secs(30), || async {
        let metrics = relay.running.as_ref()?.metrics.render().ok()?;
        metrics
            .contains("vid2mp3_converter_events_relayed_total{result=\"delivered\"} 1")
            .then_some(())
    })
    .await;
    relay.stop().await;
    assert!(env.drain("mp3").await.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(delivery_ack_key(env.redis.prefix(), &sent.message_id))
        .query_async(&mut conn)
        .await
        .unwrap();
}
