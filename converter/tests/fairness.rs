//! Fair scheduling between accounts: one account's backlog holds another account's job back by
//! about one job, not by the whole backlog; the order is the broker's, so it survives a restart;
//! and what an older converter left in the first-come, first-served queue is drained into the
//! priority queue.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Env, Owner, Service, long_mp3, wait_for};
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use mongodb::bson::{Document, doc};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use vid2mp3_contracts::JobId;
use vid2mp3_contracts::messages::{LEGACY_VIDEO_QUEUE, VIDEO_QUEUE};
use vid2mp3_contracts::storage_api::JobStatus;

/// When a job was stored, started converting, and ended, from its record in MongoDB.
#[derive(Debug, Clone, Copy)]
struct Times {
    created: OffsetDateTime,
    started: OffsetDateTime,
    ended: OffsetDateTime,
}

async fn times(env: &Env, job: &JobId) -> Times {
    let record: Document = env
        .db()
        .collection("jobs")
        .find_one(doc! {"_id": job.to_string()})
        .await
        .expect("a job record")
        .expect("the job exists");
    let at = |field: &str| {
        OffsetDateTime::parse(record.get_str(field).expect(field), &Rfc3339).expect("RFC 3339")
    };
    Times {
        created: at("created_at"),
        started: at("started_at"),
        ended: at("updated_at"),
    }
}

/// Stores `n` copies of `clip` for `owner`, one after the other (each answered before the next).
async fn store(service: &Service, owner: &Owner, clip: &Path, n: usize) -> Vec<JobId> {
    let mut jobs = Vec::new();
    for _ in 0..n {
        let job = JobId::new();
        let r = service.put_file(&job, owner, clip).await;
        assert_eq!(r.status(), 201);
        jobs.push(job);
    }
    jobs
}

async fn all_done(service: &Service, jobs: &[JobId]) {
    for job in jobs {
        let state = service.settled(job).await;
        assert_eq!(state.status, JobStatus::Done, "{state:?}");
    }
}

/// The converter's own settings for these tests: enough queued jobs for the backlog, one encoder
/// thread (both cores would blur which job runs when).
const SETTINGS: [(&str, &str); 2] = [
    ("VID2MP3_QUOTA_QUEUED_JOBS", "100"),
    ("VID2MP3_ENCODE_WORKERS", "1"),
];

/// User A queues 30 jobs, then user B one: B's job starts next, once the one A's job converting
/// when it arrived is done, and ends while A still has most of its backlog waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_backlog_does_not_hold_back_anothers_job() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // 30 s of MP3: small to store (240 kB), long enough to convert that A's backlog builds up.
    let clip = long_mp3(dir.path(), 30);
    let service = env.start("storage,worker", &SETTINGS).await;
    let (a, b) = (Owner::new(), Owner::new());
    let a_jobs = store(&service, &a, &clip, 30).await;
    let b_job = store(&service, &b, &clip, 1).await[0];
    all_done(&service, &a_jobs).await;
    all_done(&service, &[b_job]).await;

    let b_times = times(&env, &b_job).await;
    let mut a_times = Vec::new();
    for job in &a_jobs {
        a_times.push(times(&env, job).await);
    }
    let waiting_at_b = a_times
        .iter()
        .filter(|t| t.started > b_times.created)
        .count();
    assert!(
        waiting_at_b >= 10,
        "A had only {waiting_at_b} jobs waiting when B's arrived: the clips convert faster \
         than they upload here, so this run shows nothing; make them longer"
    );
    // First come, first served would have B wait for all of them.
    let a_ended_while_b_waited = a_times
        .iter()
        .filter(|t| t.ended > b_times.created && t.ended <= b_times.ended)
        .count();
    assert!(
        a_ended_while_b_waited <= 2,
        "{a_ended_while_b_waited} of A's jobs ended between B's arrival and B's end \
         ({waiting_at_b} of A's were waiting)"
    );
    let a_after_b = a_times.iter().filter(|t| t.ended > b_times.ended).count();
    assert!(
        a_after_b >= waiting_at_b - 2,
        "B's job ended before A's backlog: {a_after_b} of A's jobs after it"
    );
}

/// The order is kept by the broker (each message's priority), not by the process: with 30 of A's
/// jobs and then B's stored while no worker runs, a worker started afterwards takes B's job
/// first or second (behind A's first, which has the same priority and came earlier).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_survives_a_restart_of_the_converter() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = long_mp3(dir.path(), 10);
    let mut storage = env.start("storage", &SETTINGS).await;
    let (a, b) = (Owner::new(), Owner::new());
    let a_jobs = store(&storage, &a, &clip, 30).await;
    let b_job = store(&storage, &b, &clip, 1).await[0];
    storage.stop().await;

    let service = env.start("storage,worker", &SETTINGS).await;
    all_done(&service, &a_jobs).await;
    all_done(&service, &[b_job]).await;
    let b_started = times(&env, &b_job).await.started;
    let mut a_before_b = Vec::new();
    for (i, job) in a_jobs.iter().enumerate() {
        if times(&env, job).await.started < b_started {
            a_before_b.push(i);
        }
    }
    assert!(
        a_before_b.is_empty() || a_before_b == [0],
        "A's jobs that went before B's: {a_before_b:?}"
    );
}

/// `video` and `video.retry.<ms>` with what an older converter left in them: a worker moves the
/// jobs into `video.fair` (they convert), a message that is not a job into `video.dead`, removes
/// the empty retry queue, and leaves `video` (empty) for the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_older_converter_queued_is_drained_into_the_fair_queue() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = long_mp3(dir.path(), 10);
    // The queues as the older converter declared them (same names, same arguments).
    let conn = env.amqp().await;
    let channel = conn.create_channel().await.expect("channel");
    let to = |queue: &str| {
        let mut args = FieldTable::default();
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from("")),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(LongString::from(queue)),
        );
        args
    };
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(LEGACY_VIDEO_QUEUE.into(), durable, to("video.dead"))
        .await
        .expect("the legacy queue");
    // Env's retry delays are 100 and 200 ms; a long TTL keeps the job in the retry queue until
    // the worker drains it.
    let mut retry = to(LEGACY_VIDEO_QUEUE);
    retry.insert(
        ShortString::from("x-message-ttl"),
        AMQPValue::LongLongInt(600_000),
    );
    channel
        .queue_declare("video.retry.200".into(), durable, retry)
        .await
        .expect("a legacy retry queue");
    let _ = conn.close(200, "declared".into()).await;

    // Two stored jobs whose messages sit in the legacy queues, as if an older storage API had
    // published them.
    let mut storage = env.start("storage", &[]).await;
    let owner = Owner::new();
    let jobs = store(&storage, &owner, &clip, 2).await;
    storage.stop().await;
    let messages = env.drain(VIDEO_QUEUE).await;
    assert_eq!(messages.len(), 2);
    env.publish_raw(LEGACY_VIDEO_QUEUE, &messages[0]).await;
    env.publish_raw("video.retry.200", &messages[1]).await;
    env.publish_raw(LEGACY_VIDEO_QUEUE, b"not a job").await;

    let service = env.start("storage,worker", &[]).await;
    all_done(&service, &jobs).await;
    let dead = wait_for(
        "the unreadable message",
        Duration::from_secs(30),
        || async {
            let dead = env.drain("video.dead").await;
            (!dead.is_empty()).then_some(dead)
        },
    )
    .await;
    assert_eq!(dead, vec![b"not a job".to_vec()]);
    wait_for(
        "the empty legacy retry queue to be removed",
        Duration::from_secs(30),
        || async {
            env.queue_depth("video.retry.200")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        env.queue_depth(LEGACY_VIDEO_QUEUE).await,
        Some(0),
        "the legacy queue stays, empty, for the operator to delete"
    );
}
