//! The video worker against real services: conversions GridFS to GridFS, failures permanent and
//! transient, redeliveries, a killed worker, a dropped broker connection, a restarted MongoDB.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Env, Owner, corpus, long_avi, long_wav, wait_for};
use mongodb::bson::doc;
use vid2mp3_contracts::messages::{MESSAGE_VERSION, VIDEO_QUEUE};
use vid2mp3_contracts::storage_api::JobStatus;
use vid2mp3_contracts::{ErrorCode, JobId, JobOutcome, VideoJob};
use vid2mp3_test_support::PrivateServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_permanently_and_the_next_job_still_converts() {
    let env = Env::new().await;
    let mut service = env.start("storage,worker", &[]).await;
    let owner = Owner::new();
    let jobs: Vec<(JobId, &str)> = [
        "image.png",
        "text.txt",
        "empty.bin",
        "mp4_no_audio.mp4",
        "mkv_opus_48k_stereo.mkv",
    ]
    .into_iter()
    .map(|name| (JobId::new(), name))
    .collect();
    for (job, name) in &jobs {
        let response = service.put_file(job, &owner, &corpus(name)).await;
        assert_eq!(response.status(), 201, "{name}");
    }
    let expected = [
        Some(ErrorCode::NotMedia),
        Some(ErrorCode::NotMedia),
        Some(ErrorCode::NotMedia),
        Some(ErrorCode::NoAudio),
        None,
    ];
    for ((job, name), code) in jobs.iter().zip(expected) {
        let state = service.settled(job).await;
        match code {
            Some(code) => {
                assert_eq!(state.status, JobStatus::Failed, "{name}: {state:?}");
                let error = state.error.expect("an error");
                assert_eq!(error.code, code, "{name}");
                assert!(!error.message.is_empty());
                // Permanent: one attempt only.
                assert_eq!(state.attempts, 1, "{name}");
                assert!(state.mp3_fid.is_none());
            }
            None => assert_eq!(state.status, JobStatus::Done, "{name}: {state:?}"),
        }
    }
    let events = env.events(jobs.len()).await;
    for ((job, name), code) in jobs.iter().zip(expected) {
        let event = events
            .iter()
            .find(|e| e.job_id == *job)
            .unwrap_or_else(|| panic!("no event for {name}"));
        match (&event.outcome, code) {
            (JobOutcome::Failed { code: got, .. }, Some(want)) => assert_eq!(*got, want),
            (JobOutcome::Done { .. }, None) => assert!(event.mp3_fid.is_some()),
            (other, _) => panic!("{name}: {other:?}"),
        }
    }
    // Nothing went to the dead-letter queue, no partial mp3 stayed behind.
    assert!(env.drain("video.dead").await.is_empty());
    assert_eq!(env.count("mp3s.files", doc! {}).await, 1);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_with_delay_then_dead_letter_with_an_event() {
    let env = Env::new().await;
    // No ffmpeg: AVI (no fast path) cannot be decoded, a failure of the environment.
    let mut service = env
        .start(
            "storage,worker",
            &[
                ("VID2MP3_FFMPEG", "/nonexistent/ffmpeg"),
                ("VID2MP3_FFPROBE", "/nonexistent/ffprobe"),
            ],
        )
        .await;
    let job = JobId::new();
    let response = service
        .put_file(&job, &Owner::new(), &corpus("avi_mpeg4_mp3_44k_stereo.avi"))
        .await;
    assert_eq!(response.status(), 201);
    let state = service.settled(&job).await;
    assert_eq!(state.status, JobStatus::Failed, "{state:?}");
    assert_eq!(
        state.attempts, 3,
        "1 try + 2 retries (VID2MP3_RETRY_DELAYS_MS=100,200)"
    );
    assert_eq!(state.error.unwrap().code, ErrorCode::RetriesExhausted);
    let events = env.events(1).await;
    assert_eq!(
        events.len(),
        1,
        "one event for the job, not one per attempt"
    );
    assert_eq!(events[0].attempt, 3);
    assert!(matches!(
        events[0].outcome,
        JobOutcome::Failed {
            code: ErrorCode::RetriesExhausted,
            ..
        }
    ));
    let dead = env.drain("video.dead").await;
    assert_eq!(dead.len(), 1);
    let dead: VideoJob = serde_json::from_slice(&dead[0]).unwrap();
    assert_eq!(dead.job_id, job);
    assert_eq!(dead.attempt, 3);
    // The video is kept for inspection; no mp3 chunks stayed.
    assert_eq!(env.count("videos.files", doc! {}).await, 1);
    assert_eq!(env.count("mp3s.chunks", doc! {}).await, 0);
    service.stop().await;
}

/// The time limit follows the media's duration once the decoder (or ffprobe) states it, not the
/// file's size: with an hour per MiB but only 125 ms per media minute, 4-minute files get 0.5 s,
/// a fifth of what converting one takes here (2.7 s), so they time out — on the fast path (WAV)
/// and on the ffmpeg path (AVI: the duration from ffprobe, ffmpeg stopped through the job's
/// cancel flag). Were the size the bound, they would convert. A timeout counts as transient (a
/// loaded node may be slow), so every attempt times out, the job is dead-lettered with one
/// failure event, and no attempt leaves mp3 chunks behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_duration_limit_times_out_and_leaves_no_mp3() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut service = env
        .start(
            "storage,worker",
            &[
                ("VID2MP3_JOB_TIMEOUT_BASE_SECS", "0"),
                ("VID2MP3_JOB_TIMEOUT_PER_MIB_MS", "3600000"),
                ("VID2MP3_JOB_TIMEOUT_PER_MEDIA_MINUTE_MS", "125"),
                ("VID2MP3_ENCODE_WORKERS", "1"),
            ],
        )
        .await;
    let owner = Owner::new();
    let files = [long_wav(dir.path(), 240), long_avi(dir.path(), 240)];
    let mut jobs = Vec::new();
    for file in &files {
        let job = JobId::new();
        let response = service.put_file(&job, &owner, file).await;
        assert_eq!(response.status(), 201, "{}", file.display());
        jobs.push(job);
    }
    for (job, file) in jobs.iter().zip(&files) {
        let state = service.settled(job).await;
        let name = file.display();
        assert_eq!(state.status, JobStatus::Failed, "{name}: {state:?}");
        assert_eq!(
            state.attempts, 3,
            "{name}: 1 try + 2 retries (VID2MP3_RETRY_DELAYS_MS=100,200)"
        );
        let error = state.error.expect("an error");
        assert_eq!(error.code, ErrorCode::RetriesExhausted, "{name}");
        // Half a second: 500ms for the WAV, 500.081633ms for the AVI (it states 240.039 s).
        assert!(
            error.message.contains("longer than the limit of 500"),
            "{name}: the limit from 4 minutes of media: {}",
            error.message
        );
    }
    let events = env.events(jobs.len()).await;
    assert_eq!(events.len(), jobs.len(), "one event per job: {events:?}");
    let mut dead: Vec<JobId> = env
        .drain("video.dead")
        .await
        .iter()
        .map(|m| {
            serde_json::from_slice::<VideoJob>(m)
                .expect("a VideoJob")
                .job_id
        })
        .collect();
    for job in &jobs {
        let event = events.iter().find(|e| e.job_id == *job).expect("its event");
        assert!(
            matches!(
                event.outcome,
                JobOutcome::Failed {
                    code: ErrorCode::RetriesExhausted,
                    ..
                }
            ),
            "{event:?}"
        );
        let at = dead.iter().position(|d| d == job).expect("dead-lettered");
        dead.remove(at);
    }
    assert!(dead.is_empty(), "only these jobs are dead-lettered");
    assert_eq!(env.count("mp3s.files", doc! {}).await, 0);
    assert_eq!(env.count("mp3s.chunks", doc! {}).await, 0, "no partial mp3");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_go_to_the_dead_letter_queue() {
    let env = Env::new().await;
    let mut service = env.start("worker", &[]).await;
    env.wait_for_queue(VIDEO_QUEUE, Duration::from_secs(30))
        .await;
    env.publish_raw(VIDEO_QUEUE, b"{not json").await;
    let dead = wait_for("the dead letter", Duration::from_secs(30), || async {
        let got = env.drain("video.dead").await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(dead, vec![b"{not json".to_vec()]);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_job_is_not_converted_twice() {
    let env = Env::new().await;
    let mut service = env.start("storage,worker", &[]).await;
    let owner = Owner::new();
    let job = JobId::new();
    let response = service
        .put_file(&job, &owner, &corpus("wav_pcm_44k_stereo.wav"))
        .await;
    assert_eq!(response.status(), 201);
    let stored: vid2mp3_contracts::storage_api::StoredVideo = response.json().await.unwrap();
    let first = service.settled(&job).await;
    assert_eq!(first.status, JobStatus::Done);
    let first_event = env.events(1).await.remove(0);
    // The same job again, as a redelivery after a lost ack would bring it.
    let message = VideoJob {
        version: MESSAGE_VERSION,
        message_id: uuid::Uuid::now_v7(),
        job_id: job,
        video_fid: stored.video_fid,
        mp3_fid: None,
        username: owner.email.clone(),
        owner_id: owner.id,
        original_name: "wav_pcm_44k_stereo.wav".into(),
        profile: Default::default(),
        loudness_lufs: None,
        attempt: 1,
    };
    env.publish_raw(VIDEO_QUEUE, &serde_json::to_vec(&message).unwrap())
        .await;
    let again = env.events(1).await.remove(0);
    assert_eq!(again.job_id, job);
    assert_eq!(
        again.mp3_fid, first_event.mp3_fid,
        "the same mp3, announced again"
    );
    let state = service.state(&job).await.unwrap();
    assert_eq!(state.attempts, 1, "not converted a second time");
    assert_eq!(state.mp3_fid, first.mp3_fid);
    assert_eq!(env.count("mp3s.files", doc! {}).await, 1);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_redelivered_and_completes_once() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let video = long_wav(dir.path(), 240);
    let mut storage = env.start("storage", &[]).await;
    let mut child = env.spawn_serve("worker", &[]);
    let job = JobId::new();
    let response = storage.put_file(&job, &Owner::new(), &video).await;
    assert_eq!(response.status(), 201);
    // Kill -9 once it converts and has written mp3 chunks.
    env.wait_until_writing(&storage, &job).await;
    child.kill();
    let state = storage.state(&job).await.unwrap();
    assert_eq!(
        state.status,
        JobStatus::Converting,
        "killed before it finished"
    );
    assert_eq!(
        env.count("mp3s.files", doc! {}).await,
        0,
        "no visible half mp3"
    );

    // Another worker gets the redelivered job and finishes it, once.
    let mut worker = env.start("worker", &[]).await;
    let state = storage.settled(&job).await;
    assert_eq!(state.status, JobStatus::Done, "{state:?}");
    assert_eq!(state.attempts, 2);
    let duration = state.duration_ms.unwrap();
    assert!((239_990..=240_010).contains(&duration), "{duration}");
    let events = env.events(1).await;
    assert_eq!(events.len(), 1);
    // The killed attempt's chunks are gone: only the finished mp3's remain.
    env.assert_only_the_finished_mp3(&state).await;
    worker.stop().await;
    storage.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reconnects_after_its_broker_connection_is_closed() {
    let env = Env::new().await;
    let mut service = env.start("storage,worker", &[]).await;
    let owner = Owner::new();
    let first = JobId::new();
    assert_eq!(
        service
            .put_file(&first, &owner, &corpus("ogg_vorbis_44k_stereo.ogg"))
            .await
            .status(),
        201
    );
    assert_eq!(service.settled(&first).await.status, JobStatus::Done);
    // The broker closes every connection of the converter (worker and publisher).
    let closed = env.close_connections("vid2mp3-converter").await;
    assert!(closed >= 1);
    let second = JobId::new();
    // The storage API reconnects on the next publish.
    let response = service
        .put_file(&second, &owner, &corpus("mp3_44k_stereo.mp3"))
        .await;
    assert_eq!(response.status(), 201);
    let state = service.settled(&second).await;
    assert_eq!(state.status, JobStatus::Done, "{state:?}");
    let events = env.events(2).await;
    assert!(events.iter().any(|e| e.job_id == first));
    assert!(events.iter().any(|e| e.job_id == second));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_recovers_when_mongodb_restarts() {
    let mut mongo = PrivateServer::secantus()
        .await
        .expect("a private SecantusDB");
    let env = Env::new().await;
    let url = format!("{}/?serverSelectionTimeoutMS=3000", mongo.url());
    let mut service = env
        .start("storage,worker", &[("VID2MP3_MONGO_URL", &url)])
        .await;
    let owner = Owner::new();
    let first = JobId::new();
    assert_eq!(
        service
            .put_file(&first, &owner, &corpus("mp4_aac_48k_mono.mp4"))
            .await
            .status(),
        201
    );
    assert_eq!(service.settled(&first).await.status, JobStatus::Done);

    // As an operator restarts it: SIGTERM, so the server flushes what it acknowledged
    // (SecantusDB does not journal every write; SIGKILL loses its last ones).
    mongo.stop().await;
    // While it is away the API says so, with the contract's error body.
    let response = service
        .get(&vid2mp3_contracts::storage_api::job_path(&first))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    mongo.start().await.expect("SecantusDB starts again");

    // Same data, and new jobs store and convert again.
    assert_eq!(service.state(&first).await.unwrap().status, JobStatus::Done);
    let second = JobId::new();
    wait_for("a PUT to succeed", Duration::from_secs(60), || async {
        let response = service
            .put_file(&second, &owner, &corpus("wav_pcm_44k_stereo.wav"))
            .await;
        [200, 201]
            .contains(&response.status().as_u16())
            .then_some(())
    })
    .await;
    assert_eq!(service.settled(&second).await.status, JobStatus::Done);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_short_or_placeholder_token_and_what_is_stored_stays() {
    let env = Env::new().await;
    let mut service = env.start("storage", &[]).await;
    let job = JobId::new();
    let stored = service
        .put_file(&job, &Owner::new(), &corpus("wav_pcm_44k_stereo.wav"))
        .await;
    assert_eq!(stored.status().as_u16(), 201);
    service.stop().await;

    // The deploy examples' placeholder, a short one, and a long one that is only the placeholder.
    for token in [
        "CHANGE-ME",
        "s3cret",
        "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vid2mp3-converter"))
            .arg("serve")
            .envs(env.vars("storage,worker,relay", &[("VID2MP3_STORAGE_TOKEN", token)]))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{token}: {stderr}");
        assert!(
            stderr.contains("VID2MP3_STORAGE_TOKEN") && stderr.contains("openssl rand -base64 32"),
            "{token}: {stderr}"
        );
    }

    // Refused before it connected to anything: the stored video and its job are still there.
    let mut service = env.start("storage", &[]).await;
    let state = service.state(&job).await.expect("the job is still known");
    assert_eq!(state.job_id, job);
    assert_eq!(env.count("videos.files", doc! {}).await, 1);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_without_the_token_and_stops_on_sigterm() {
    let env = Env::new().await;
    let mut vars = env.vars("storage,worker,relay", &[]);
    vars.remove("VID2MP3_STORAGE_TOKEN");
    let out = Command::new(env!("CARGO_BIN_EXE_vid2mp3-converter"))
        .arg("serve")
        .env_remove("VID2MP3_STORAGE_TOKEN")
        .envs(&vars)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("VID2MP3_STORAGE_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = env.spawn_serve("worker", &[]);
    env.wait_for_queue(VIDEO_QUEUE, Duration::from_secs(60))
        .await;
    let status = child.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_converting_job_back_to_the_queue() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let video = long_wav(dir.path(), 240);
    let mut storage = env.start("storage", &[]).await;
    // No grace: the job in flight is stopped and handed back at once.
    let mut child = env.spawn_serve("worker", &[("VID2MP3_SHUTDOWN_GRACE_SECS", "0")]);
    let job = JobId::new();
    assert_eq!(
        storage.put_file(&job, &Owner::new(), &video).await.status(),
        201
    );
    storage.wait_until_converting(&job).await;
    let status = child.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let state = storage.state(&job).await.unwrap();
    assert_ne!(state.status, JobStatus::Done, "stopped before it finished");
    assert_eq!(env.count("mp3s.files", doc! {}).await, 0);
    // Back on the queue: the next worker converts it.
    let mut worker = env.start("worker", &[]).await;
    let state = storage.settled(&job).await;
    assert_eq!(state.status, JobStatus::Done, "{state:?}");
    assert_eq!(state.attempts, 2);
    assert_eq!(env.events(1).await.len(), 1);
    env.assert_only_the_finished_mp3(&state).await;
    worker.stop().await;
    storage.stop().await;
}
