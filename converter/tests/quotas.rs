//! Per-account quotas, as the storage API and the worker enforce them: each refusal names its
//! limit and what frees it, holds when one account's uploads race each other, and leaves
//! nothing of the refused upload, while everything stored before stays whole.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Env, Owner, Service, TOKEN, long_wav, wait_for};
use futures::StreamExt;
use mongodb::bson::doc;
use vid2mp3_contracts::storage_api::{
    HEADER_ORIGINAL_NAME, HEADER_OWNER_EMAIL, HEADER_OWNER_ID, JobStatus, job_path, video_path,
};
use vid2mp3_contracts::{ErrorBody, ErrorCode, JobId, JobOutcome};

/// Status, error body and `Retry-After` of a refusal.
async fn refusal(response: reqwest::Response) -> (u16, ErrorBody, Option<u64>) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: ErrorBody = response.json().await.expect("an error body");
    (status, body, retry_after)
}

/// PUTs `total` bytes of `clip` (repeated) as a chunked body of unknown length, 64 KiB at a time.
/// After `total` the body stalls instead of ending: an answer can then only be the storage API
/// refusing the upload part way, never the end of a short body.
async fn put_unknown_length(
    service: &Service,
    job: &JobId,
    owner: &Owner,
    clip: &[u8],
    total: usize,
    stall: bool,
) -> reqwest::Response {
    let bytes: Vec<u8> = clip.iter().copied().cycle().take(total).collect();
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let stalled = futures::stream::once(async move {
        if stall {
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        Err(std::io::Error::other("the test's body never ends"))
    });
    let body = if stall {
        reqwest::Body::wrap_stream(futures::stream::iter(pieces).chain(stalled))
    } else {
        reqwest::Body::wrap_stream(futures::stream::iter(pieces))
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        service
            .http
            .put(service.url(&video_path(job)))
            .bearer_auth(TOKEN)
            .header(HEADER_OWNER_ID, owner.id.to_string())
            .header(HEADER_OWNER_EMAIL, &owner.email)
            .header(HEADER_ORIGINAL_NAME, "chunked.wav")
            .header("content-type", "audio/wav")
            .body(body)
            .send(),
    )
    .await
    .expect("an answer before the body ends")
    .expect("PUT")
}

fn wav(dir: &Path, secs: u32) -> Vec<u8> {
    std::fs::read(long_wav(dir, secs)).expect("the WAV")
}

/// Nothing is left of uploads that were refused: as many video files and job records as were
/// admitted, their chunks only, and no reservation.
async fn assert_only_admitted_stored(env: &Env, admitted: u64) {
    wait_for(
        "the reservations to end",
        Duration::from_secs(10),
        || async { (env.count("uploads", doc! {}).await == 0).then_some(()) },
    )
    .await;
    assert_eq!(
        env.count("videos.files", doc! {}).await,
        admitted,
        "video files"
    );
    assert_eq!(env.count("jobs", doc! {}).await, admitted, "job records");
    let files = env
        .db()
        .collection::<mongodb::bson::Document>("videos.files")
        .find(doc! {})
        .await
        .expect("files")
        .collect::<Vec<_>>()
        .await;
    let mut chunks = 0;
    for file in files {
        let file = file.expect("a files document");
        let length = u64::try_from(file.get_i64("length").expect("a length")).expect("positive");
        chunks += length.div_ceil(255 * 1024);
    }
    assert_eq!(
        env.count("videos.chunks", doc! {}).await,
        chunks,
        "chunks of the kept videos only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_uploads_of_one_account_never_overshoot_the_queued_jobs_quota() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // No worker: every admitted job stays queued.
    let service = env
        .start("storage", &[("VID2MP3_QUOTA_QUEUED_JOBS", "3")])
        .await;
    let clip = wav(dir.path(), 1);
    let ada = Owner::new();
    let jobs: Vec<JobId> = (0..12).map(|_| JobId::new()).collect();
    let answers = futures::future::join_all(
        jobs.iter()
            .map(|job| service.put_video(job, &ada, "clip.wav", clip.clone())),
    )
    .await;
    let mut admitted = Vec::new();
    for (job, answer) in jobs.iter().zip(answers) {
        if answer.status() == 201 {
            admitted.push(*job);
            continue;
        }
        let (status, body, retry_after) = refusal(answer).await;
        assert_eq!((status, body.error.code), (429, ErrorCode::QuotaExceeded));
        let message = &body.error.message;
        assert!(
            message.contains("queued jobs") && message.contains("the limit is 3"),
            "names the limit and its value: {message}"
        );
        assert!(message.contains("delete"), "says what frees it: {message}");
        assert_eq!(retry_after, None, "waiting a fixed time does not free it");
    }
    // One storage process: its racing uploads are admitted up to the limit exactly (across
    // processes they could also be refused together, never admitted past it).
    assert_eq!(
        admitted.len(),
        3,
        "12 racing uploads, a quota of 3: {} admitted",
        admitted.len()
    );
    assert_only_admitted_stored(&env, admitted.len() as u64).await;

    // Another account is not held back by this one's.
    let bob = Owner::new();
    let r = service
        .put_video(&JobId::new(), &bob, "bob.wav", clip.clone())
        .await;
    assert_eq!(r.status(), 201, "another account's upload");

    // Still full; deleting a job frees a place.
    let r = service
        .put_video(&JobId::new(), &ada, "one-too-many.wav", clip.clone())
        .await;
    assert_eq!(r.status(), 429);
    let r = service
        .http
        .delete(service.url(&job_path(&admitted[0])))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 204);
    let r = service
        .put_video(&JobId::new(), &ada, "after-delete.wav", clip)
        .await;
    assert_eq!(r.status(), 201, "a deleted job frees its place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_of_unknown_length_stops_where_it_crosses_the_stored_bytes_quota() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let service = env
        .start("storage", &[("VID2MP3_QUOTA_STORED_BYTES", "1000000")])
        .await;
    let clip = wav(dir.path(), 2);
    assert!(
        clip.len() > 300_000 && clip.len() < 400_000,
        "{}",
        clip.len()
    );
    let ada = Owner::new();
    let kept = JobId::new();
    assert_eq!(
        service
            .put_video(&kept, &ada, "kept.wav", clip.clone())
            .await
            .status(),
        201
    );
    let kept_state = service.state(&kept).await.expect("the kept job");

    // A declared length over what is left: refused before a byte is stored.
    let mut big = clip.clone();
    big.resize(700_000, 0);
    let (status, body, _) =
        refusal(service.put_video(&JobId::new(), &ada, "big.wav", big).await).await;
    assert_eq!((status, body.error.code), (413, ErrorCode::QuotaExceeded));
    let message = &body.error.message;
    assert!(
        message.contains("stored bytes") && message.contains("of your 976.6 KiB"),
        "names the limit and its value: {message}"
    );
    assert!(message.contains("this upload is 683.6 KiB"), "{message}");
    assert!(
        message.contains("Delete jobs"),
        "says what frees it: {message}"
    );

    // A chunked body: refused where it crosses the quota, while it is still being sent.
    let (status, body, _) =
        refusal(put_unknown_length(&service, &JobId::new(), &ada, &clip, 2_000_000, true).await)
            .await;
    assert_eq!((status, body.error.code), (413, ErrorCode::QuotaExceeded));
    assert!(
        body.error.message.contains("grew past what is left"),
        "{}",
        body.error.message
    );
    assert_only_admitted_stored(&env, 1).await;
    assert_eq!(
        service.state(&kept).await.as_ref(),
        Some(&kept_state),
        "what was stored before is untouched"
    );

    // One that fits still goes in, and another account has its own quota.
    let r = put_unknown_length(&service, &JobId::new(), &ada, &clip, 500_000, false).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let bob = Owner::new();
    let r = service
        .put_video(&JobId::new(), &bob, "bob.wav", clip.clone())
        .await;
    assert_eq!(r.status(), 201);
    assert_only_admitted_stored(&env, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_uploads_of_unknown_length_share_the_stored_bytes_quota() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let quota = 2_000_000_u64;
    let service = env
        .start(
            "storage",
            &[("VID2MP3_QUOTA_STORED_BYTES", &quota.to_string())],
        )
        .await;
    let clip = wav(dir.path(), 1);
    let ada = Owner::new();
    // Six uploads of 600 kB: each fits alone, no more than three fit together.
    let jobs: Vec<JobId> = (0..6).map(|_| JobId::new()).collect();
    let answers = futures::future::join_all(
        jobs.iter()
            .map(|job| put_unknown_length(&service, job, &ada, &clip, 600_000, false)),
    )
    .await;
    let mut admitted = 0;
    for answer in answers {
        if answer.status() == 201 {
            admitted += 1;
        } else {
            let (status, body, _) = refusal(answer).await;
            assert_eq!((status, body.error.code), (413, ErrorCode::QuotaExceeded));
        }
    }
    assert!((1..=3).contains(&admitted), "{admitted} of 600 kB each");
    assert_only_admitted_stored(&env, admitted).await;
    let stored: u64 = env
        .db()
        .collection::<mongodb::bson::Document>("jobs")
        .find(doc! {})
        .await
        .expect("jobs")
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|d| {
            u64::try_from(
                d.expect("a job")
                    .get_i64("video_size_bytes")
                    .expect("a size"),
            )
            .expect("positive")
        })
        .sum();
    assert!(stored <= quota, "{stored} bytes stored, quota {quota}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_minutes_are_counted_once_the_duration_is_known() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let service = env
        .start(
            "storage,worker",
            &[("VID2MP3_QUOTA_MEDIA_MINUTES_PER_DAY", "1")],
        )
        .await;
    let ada = Owner::new();
    let convert = |secs: u32| {
        let path = long_wav(dir.path(), secs);
        let service = &service;
        let ada = &ada;
        async move {
            let job = JobId::new();
            let r = service.put_file(&job, ada, &path).await;
            assert_eq!(r.status(), 201, "upload of {secs} s");
            (job, service.settled(&job).await)
        }
    };

    // 40 s of the 60: converted.
    let (_, first) = convert(40).await;
    assert_eq!(first.status, JobStatus::Done);
    // 30 s more does not fit: the upload is taken (20 s are left when it arrives), the
    // conversion is refused once the WAV states its length, and nothing of it is kept but the
    // video, which stays until the job is deleted.
    let (refused, second) = convert(30).await;
    assert_eq!(second.status, JobStatus::Failed, "{second:?}");
    let error = second.error.expect("a job error");
    assert_eq!(error.code, ErrorCode::QuotaExceeded);
    assert!(
        error.message.contains("media minutes per day")
            && error.message.contains("0.5 min long")
            && error.message.contains("only 0.3 of your 1 min"),
        "{}",
        error.message
    );
    assert_eq!(second.mp3_fid, None);
    env.assert_only_the_finished_mp3(&first).await;
    // 20 s fit exactly.
    let (_, third) = convert(20).await;
    assert_eq!(third.status, JobStatus::Done);
    // The day's minutes are used up: the next upload is refused at once, until midnight UTC.
    let (status, body, retry_after) = refusal(
        service
            .put_video(&JobId::new(), &ada, "later.wav", wav(dir.path(), 1))
            .await,
    )
    .await;
    assert_eq!((status, body.error.code), (429, ErrorCode::QuotaExceeded));
    assert!(
        body.error.message.contains("used 1.0 of your 1 min"),
        "{}",
        body.error.message
    );
    assert!(
        retry_after.is_some_and(|s| (1..=86_400).contains(&s)),
        "{retry_after:?}"
    );
    assert_eq!(env.count("videos.files", doc! {}).await, 3);

    // The owner hears of each: done, refused (naming the limit), done.
    let events = env.events(3).await;
    let refusal_event = events
        .iter()
        .find(|e| e.job_id == refused)
        .expect("the refused job's event");
    match &refusal_event.outcome {
        JobOutcome::Failed { code, message } => {
            assert_eq!(*code, ErrorCode::QuotaExceeded);
            assert!(message.contains("media minutes per day"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let metrics = service
        .http
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .contains("vid2mp3_converter_quota_refusals_total{limit=\"media minutes per day\"} 2"),
        "{metrics}"
    );
}
