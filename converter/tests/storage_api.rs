//! The storage API against real MongoDB (GridFS), RabbitMQ and Redis, with the worker where a
//! test needs an mp3.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Env, Owner, TOKEN, corpus, wait_for};
use mongodb::bson::doc;
use vid2mp3_contracts::messages::VIDEO_QUEUE;
use vid2mp3_contracts::storage_api::{
    JobState, JobStatesResponse, JobStatus, StoredVideo, job_path, mp3_lookup_path, mp3_path,
    states_path, video_path,
};
use vid2mp3_contracts::{ErrorBody, ErrorCode, JobId, JobOutcome};

async fn error_of(response: reqwest::Response) -> (u16, ErrorCode) {
    let status = response.status().as_u16();
    let body: ErrorBody = response.json().await.expect("an ErrorBody");
    (status, body.error.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_converts_serves_ranges_and_deletes() {
    let env = Env::new().await;
    let mut service = env.start("storage,worker", &[]).await;
    let owner = Owner::new();
    let job = JobId::new();
    let video = std::fs::read(corpus("mp4_aac_44k_stereo_faststart.mp4")).unwrap();

    // No token, a wrong token: 401 and nothing stored.
    let response = service
        .http
        .put(service.url(&video_path(&job)))
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (401, ErrorCode::Unauthorized));
    let response = service
        .http
        .get(service.url(&job_path(&job)))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (401, ErrorCode::Unauthorized));
    env.assert_nothing_stored().await;

    // Stored (201), then the same PUT again is 200 with the same answer, another owner 409.
    let response = service
        .put_video(&job, &owner, "Mon clip été.mp4", video.clone())
        .await;
    assert_eq!(response.status(), 201);
    let stored: StoredVideo = response.json().await.unwrap();
    assert_eq!(stored.job_id, job);
    assert_eq!(stored.size_bytes, video.len() as u64);
    let again = service
        .put_video(&job, &owner, "x.mp4", video.clone())
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<StoredVideo>().await.unwrap(), stored);
    let response = service
        .put_video(&job, &Owner::new(), "x.mp4", video.clone())
        .await;
    assert_eq!(error_of(response).await, (409, ErrorCode::Conflict));
    let files = env
        .db()
        .collection::<mongodb::bson::Document>("videos.files")
        .find_one(doc! {})
        .await
        .unwrap()
        .expect("the video's files document");
    let metadata = files.get_document("metadata").unwrap();
    assert_eq!(
        metadata.get_str("original_name").unwrap(),
        "Mon clip été.mp4"
    );
    assert_eq!(metadata.get_str("job_id").unwrap(), job.to_string());
    assert_eq!(metadata.get_str("owner_email").unwrap(), "ada@example.com");
    assert_eq!(
        env.count("videos.files", doc! {}).await,
        1,
        "one video for one job"
    );

    // Converted by the worker.
    let state = service.settled(&job).await;
    assert_eq!(state.status, JobStatus::Done, "{state:?}");
    assert_eq!(state.attempts, 1);
    assert_eq!(state.progress_percent, 100);
    let duration = state.duration_ms.unwrap();
    assert!((2990..=3010).contains(&duration), "{duration} ms");
    let mp3_fid = state.mp3_fid.clone().unwrap();
    let events = env.events(1).await;
    assert_eq!(events[0].job_id, job);
    assert_eq!(events[0].mp3_fid.as_ref(), Some(&mp3_fid));
    assert_eq!(events[0].username, "ada@example.com");
    assert!(matches!(events[0].outcome, JobOutcome::Done { .. }));

    // The whole mp3, with its length.
    let response = service.get(&mp3_path(&job)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    let length: u64 = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mp3 = response.bytes().await.unwrap();
    assert_eq!(mp3.len() as u64, length);
    assert_eq!(Some(length), state.mp3_size_bytes);
    // An MPEG audio frame sync with the Xing/Info tag in the first frame.
    assert_eq!(mp3[0], 0xFF);
    assert!(mp3[..400].windows(4).any(|w| w == b"Xing" || w == b"Info"));

    // Ranges: 206 with Content-Range; past the end 416.
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=-10", length - 10, length - 1),
        ("bytes=100-", 100, length - 1),
    ] {
        let response = service
            .get(&mp3_path(&job))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {start}-{end}/{length}").as_str()
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(&body[..], &mp3[start as usize..=end as usize], "{range}");
    }
    let response = service
        .get(&mp3_path(&job))
        .header("range", format!("bytes={length}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes */{length}").as_str()
    );

    // Looked up by its mp3 id; states in bulk; bad ids are 400, unknown ones 404.
    let by_fid: JobState = service
        .get(&mp3_lookup_path(&mp3_fid))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_fid.job_id, job);
    let response = service
        .get("/internal/v1/mp3s/not-a-file-id")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (400, ErrorCode::BadRequest));
    let response = service
        .get("/internal/v1/mp3s/65f0c0ffee65f0c0ffee65f0")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (404, ErrorCode::NotFound));
    let response = service.get("/internal/v1/jobs/42").send().await.unwrap();
    assert_eq!(error_of(response).await, (400, ErrorCode::BadRequest));
    let states: JobStatesResponse = service
        .http
        .post(service.url(&states_path()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"job_ids": [job, JobId::new()]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(states.jobs.len(), 1);
    assert_eq!(states.jobs[0].job_id, job);

    // Health, readiness, metrics.
    let ready = service
        .http
        .get(service.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = service
        .http
        .get(service.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vid2mp3_converter_jobs_total{outcome=\"done\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("vid2mp3_converter_realtime_factor_count 1"));
    assert!(metrics.contains(&format!(
        "vid2mp3_converter_bytes_total{{direction=\"video_in\"}} {}",
        video.len()
    )));

    // Deleted: video, mp3 and state are gone; a second DELETE is 404.
    let response = service
        .http
        .delete(service.url(&job_path(&job)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(service.state(&job).await.is_none());
    env.assert_nothing_stored().await;
    assert_eq!(env.count("mp3s.files", doc! {}).await, 0);
    assert_eq!(env.count("mp3s.chunks", doc! {}).await, 0);
    let response = service
        .http
        .delete(service.url(&job_path(&job)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (404, ErrorCode::NotFound));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upload_headers_are_400_and_store_nothing() {
    let env = Env::new().await;
    let mut service = env.start("storage", &[]).await;
    let job = JobId::new();
    let put =
        |owner: Option<&str>, email: Option<&str>, name: Option<&str>, profile: Option<&str>| {
            let mut request = service
                .http
                .put(service.url(&video_path(&job)))
                .bearer_auth(TOKEN)
                .body(vec![1u8; 100]);
            for (header, value) in [
                ("x-vid2mp3-owner-id", owner),
                ("x-vid2mp3-owner-email", email),
                ("x-vid2mp3-original-name", name),
                ("x-vid2mp3-profile", profile),
            ] {
                if let Some(v) = value {
                    request = request.header(header, v);
                }
            }
            request.send()
        };
    let user = vid2mp3_contracts::UserId::new().to_string();
    for (owner, email, name, profile) in [
        (None, Some("a@b.c"), None, None),
        (Some("nope"), Some("a@b.c"), None, None),
        (Some(user.as_str()), None, None, None),
        (Some(user.as_str()), Some("a@b.c"), Some("%FF%FE"), None),
        (Some(user.as_str()), Some("a@b.c"), None, Some("best")),
    ] {
        let response = put(owner, email, name, profile).await.unwrap();
        assert_eq!(
            error_of(response).await,
            (400, ErrorCode::BadRequest),
            "{owner:?} {email:?} {name:?} {profile:?}"
        );
    }
    // A loudness target out of range or not a number is refused the same way.
    for loudness in ["-5", "loud"] {
        let response = service
            .http
            .put(service.url(&video_path(&job)))
            .bearer_auth(TOKEN)
            .header("x-vid2mp3-owner-id", user.as_str())
            .header("x-vid2mp3-owner-email", "a@b.c")
            .header("x-vid2mp3-loudness", loudness)
            .body(vec![1u8; 100])
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(response).await,
            (400, ErrorCode::BadRequest),
            "loudness {loudness}"
        );
    }
    env.assert_nothing_stored().await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_short_leaves_nothing() {
    let env = Env::new().await;
    let mut service = env.start("storage", &[]).await;
    let owner = Owner::new();
    let job = JobId::new();
    let addr = service.base.trim_start_matches("http://").to_owned();
    // Promise 2 MB, send 700 KB (two full GridFS chunks reach MongoDB), then hang up.
    {
        let mut socket = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            socket,
            "PUT {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
             x-vid2mp3-owner-id: {}\r\nx-vid2mp3-owner-email: a@b.c\r\n\
             Content-Type: video/mp4\r\nContent-Length: 2000000\r\n\r\n",
            video_path(&job),
            owner.id
        )
        .unwrap();
        socket.write_all(&vec![7u8; 700_000]).unwrap();
        socket.flush().unwrap();
        // Let the server store what it got before the connection goes.
        wait_for(
            "chunks of the partial upload",
            Duration::from_secs(20),
            || async { (env.count("videos.chunks", doc! {}).await >= 2).then_some(()) },
        )
        .await;
    }
    wait_for(
        "the partial upload to be removed",
        Duration::from_secs(20),
        || async { (env.count("videos.chunks", doc! {}).await == 0).then_some(()) },
    )
    .await;
    env.assert_nothing_stored().await;
    // The storage API declares its queues on its first publish: none means nothing was queued.
    assert!(
        matches!(
            env.vhost().queue_depth(VIDEO_QUEUE).await.unwrap(),
            None | Some(0)
        ),
        "no job was queued"
    );
    // The same job can be uploaded properly afterwards.
    let response = service
        .put_file(&job, &owner, &corpus("wav_pcm_44k_stereo.wav"))
        .await;
    assert_eq!(response.status(), 201);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_broker_cannot_take_is_503_and_removes_the_video() {
    let env = Env::new().await;
    let mut service = env.start("storage", &[]).await;
    // The service's vhost disappears: no connection, no confirm.
    env.delete_vhost().await;
    let job = JobId::new();
    let response = service
        .put_file(&job, &Owner::new(), &corpus("wav_pcm_44k_stereo.wav"))
        .await;
    assert_eq!(error_of(response).await, (503, ErrorCode::Unavailable));
    env.assert_nothing_stored().await;
    let ready = service
        .http
        .get(service.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(ready).await, (503, ErrorCode::Unavailable));
    service.stop().await;
}
