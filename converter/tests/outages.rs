//! The backing servers go away mid-run and come back: the worker recovers and nothing is lost.
//!
//! Each test runs its own server process (`PrivateServer`: a RabbitMQ node or a SecantusDB on
//! free ports with a data directory of its own) and takes it down while a job converts; the
//! shared servers other tests use are never touched. Every test checks the same promise: the job
//! in flight completes exactly once after the server returns (one mp3, one `Done` event, state
//! `done`), the jobs waiting in the queue meanwhile complete too, an upload tried during the
//! outage is refused whole (503, nothing stored) and accepted once the server is back.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{Env, Owner, Service, corpus, long_mp3, wait_for};
use mongodb::bson::doc;
use vid2mp3_contracts::messages::VIDEO_QUEUE;
use vid2mp3_contracts::storage_api::{JobStatus, job_path};
use vid2mp3_contracts::{JobId, JobOutcome};
use vid2mp3_test_support::PrivateServer;

/// Long enough to still be converting well after the server is down: ~40 s for one encoder
/// thread in a test (debug) build here, while stopping SecantusDB takes ~4 s and a write then
/// fails within ~10 s.
const LONG_SECS: u32 = 1800;

/// One encoder thread: the long job stays in flight longer, and the test takes less of the CPU
/// the people sharing this machine use.
const ONE_ENCODER: (&str, &str) = ("VID2MP3_ENCODE_WORKERS", "1");

/// The jobs of a test, by role.
struct Jobs {
    in_flight: JobId,
    queued: Vec<JobId>,
    during_outage: JobId,
}

impl Jobs {
    fn all(&self) -> Vec<JobId> {
        let mut all = vec![self.in_flight];
        all.extend(&self.queued);
        all.push(self.during_outage);
        all
    }
}

/// Uploads the long job and waits until it writes its mp3, then queues two short jobs behind it
/// (prefetch 1: they wait in the broker).
async fn start_jobs(env: &Env, service: &Service, owner: &Owner, dir: &Path) -> Jobs {
    // The corpus first: making it takes seconds, which must not eat into the long job's time.
    let short = ["ogg_vorbis_44k_stereo.ogg", "wav_pcm_44k_stereo.wav"].map(corpus);
    let in_flight = JobId::new();
    let response = service
        .put_file(&in_flight, owner, &long_mp3(dir, LONG_SECS))
        .await;
    assert_eq!(response.status(), 201);
    env.wait_until_writing(service, &in_flight).await;
    let mut queued = Vec::new();
    for file in &short {
        let job = JobId::new();
        let response = service.put_file(&job, owner, file).await;
        assert_eq!(response.status(), 201, "{}", file.display());
        queued.push(job);
    }
    Jobs {
        in_flight,
        queued,
        during_outage: JobId::new(),
    }
}

/// While the server is away an upload is refused whole: 503 (and no trace of it: see
/// [`assert_never_stored`]).
async fn upload_is_refused(service: &Service, owner: &Owner, job: &JobId) {
    let response = service
        .put_file(job, owner, &corpus("mp3_44k_stereo.mp3"))
        .await;
    assert_eq!(
        response.status(),
        503,
        "an upload while a server is down: {:?}",
        response.text().await
    );
}

/// Once the API answers again, the upload refused during the outage left no job behind.
async fn assert_never_stored(service: &Service, job: &JobId) {
    let status = wait_for(
        "the API to answer again",
        Duration::from_secs(60),
        || async {
            let response = service.get(&job_path(job)).send().await.expect("GET state");
            (response.status() != 503).then_some(response.status())
        },
    )
    .await;
    assert_eq!(status, 404, "the refused upload left no job");
}

/// Once the server is back, the same upload goes through (the client's retry).
async fn upload_again(service: &Service, owner: &Owner, job: &JobId) {
    wait_for(
        "the upload to be accepted again",
        Duration::from_secs(120),
        || async {
            let response = service
                .put_file(job, owner, &corpus("mp3_44k_stereo.mp3"))
                .await;
            [200, 201]
                .contains(&response.status().as_u16())
                .then_some(())
        },
    )
    .await;
}

/// Every job is done, and exactly once: one mp3 each, one `Done` event each and no other event,
/// nothing dead-lettered or left in `video`, no chunks of an interrupted attempt. Stops the
/// service first, so no late duplicate can arrive after the count.
async fn assert_done_once(env: &Env, service: &mut Service, jobs: &[JobId]) {
    let mut states = HashMap::new();
    for job in jobs {
        let state = service.settled(job).await;
        assert_eq!(state.status, JobStatus::Done, "{state:?}");
        states.insert(*job, state);
    }
    service.stop().await;
    let events = env.events(jobs.len()).await;
    let mut extra = env.drain("mp3").await;
    assert!(extra.is_empty(), "{} events more than jobs", extra.len());
    extra.extend(env.drain("video.dead").await);
    assert!(extra.is_empty(), "nothing is dead-lettered");
    assert_eq!(
        env.queue_depth(VIDEO_QUEUE).await,
        Some(0),
        "no job left queued"
    );
    for job in jobs {
        let mine: Vec<_> = events.iter().filter(|e| e.job_id == *job).collect();
        assert_eq!(mine.len(), 1, "one event for {job}: {mine:?}");
        assert!(
            matches!(mine[0].outcome, JobOutcome::Done { .. }),
            "{:?}",
            mine[0]
        );
        assert_eq!(
            mine[0].mp3_fid, states[job].mp3_fid,
            "the event names the recorded mp3"
        );
        assert_eq!(
            env.count("mp3s.files", doc! {"metadata.job_id": job.to_string()})
                .await,
            1,
            "one mp3 for {job}"
        );
    }
    let chunks: u64 = states
        .values()
        .map(|s| s.mp3_size_bytes.expect("a size").div_ceil(255 * 1024))
        .sum();
    assert_eq!(
        env.count("mp3s.chunks", doc! {}).await,
        chunks,
        "only the finished mp3s' chunks (an interrupted attempt's are removed)"
    );
}

/// RabbitMQ crashes (SIGKILL to the node) while a job converts and two more wait in `video`:
/// confirmed persistent messages must survive the crash. The job in flight finishes during the
/// outage, but its event cannot be published nor its message acked; once the node is back the
/// worker reconnects, gets the job again, finds it done and publishes its event without
/// converting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_in_flight_when_rabbitmq_crashes_completes_once_and_queued_jobs_survive() {
    let mut broker = PrivateServer::rabbitmq()
        .await
        .expect("a private RabbitMQ node");
    let env = Env::on(Some(&broker), None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut service = env.start("storage,worker", &[ONE_ENCODER]).await;
    let owner = Owner::new();
    let jobs = start_jobs(&env, &service, &owner, dir.path()).await;

    broker.kill().await.expect("the node exits");
    let state = service.state(&jobs.in_flight).await.unwrap();
    assert_eq!(
        state.status,
        JobStatus::Converting,
        "the broker went away while the job converted"
    );
    upload_is_refused(&service, &owner, &jobs.during_outage).await;
    assert_never_stored(&service, &jobs.during_outage).await;
    // The conversion needs only MongoDB: it finishes while the broker is away.
    wait_for(
        "the job in flight to finish converting",
        Duration::from_secs(120),
        || async {
            service
                .state(&jobs.in_flight)
                .await
                .filter(|s| s.status == JobStatus::Done)
        },
    )
    .await;

    broker.start().await.expect("the node starts again");
    upload_again(&service, &owner, &jobs.during_outage).await;
    let in_flight = service.settled(&jobs.in_flight).await;
    assert_eq!(in_flight.attempts, 1, "converted once, not again");
    for job in &jobs.queued {
        assert_eq!(service.settled(job).await.attempts, 1);
    }
    assert_done_once(&env, &mut service, &jobs.all()).await;
}

/// The MongoDB server stops (SIGTERM, as an operator restarts it; SecantusDB does not journal
/// every write, so SIGKILL would lose writes it acknowledged, which a real mongod keeps) while a
/// job writes its mp3 and two more wait in `video`. The attempt in flight fails on its next
/// chunk; with the server away it can neither remove the chunks it wrote nor record a retry, so
/// its message goes back to the queue whole (and keeps going back while the server is away).
/// Once the server is back the job converts again from the start, the first attempt's partial mp3
/// removed, and the jobs behind it convert too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_in_flight_when_mongodb_stops_completes_once_and_queued_jobs_survive() {
    let mut mongo = PrivateServer::secantus()
        .await
        .expect("a private SecantusDB");
    let env = Env::on(None, Some(&mongo)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut service = env.start("storage,worker", &[ONE_ENCODER]).await;
    let owner = Owner::new();
    let jobs = start_jobs(&env, &service, &owner, dir.path()).await;
    assert_eq!(env.redeliveries(VIDEO_QUEUE).await, 0);

    mongo.stop().await.expect("the server exits");
    upload_is_refused(&service, &owner, &jobs.during_outage).await;
    // The server stays away until the attempt in flight has given up and handed its message
    // back: its clean-up then surely met the outage (a fixed pause might end first, and the
    // clean-up would find the server back).
    wait_for(
        "the job in flight to be handed back while MongoDB is away",
        Duration::from_secs(90),
        || async { (env.redeliveries(VIDEO_QUEUE).await > 0).then_some(()) },
    )
    .await;

    mongo.start().await.expect("the server starts again");
    assert_never_stored(&service, &jobs.during_outage).await;
    upload_again(&service, &owner, &jobs.during_outage).await;
    let in_flight = service.settled(&jobs.in_flight).await;
    assert!(
        in_flight.attempts >= 2,
        "the attempt in flight was interrupted by the outage: {in_flight:?}"
    );
    assert_done_once(&env, &mut service, &jobs.all()).await;
}
