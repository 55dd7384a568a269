//! Quotas through the whole platform: the gateway passes each of the converter's refusals on as
//! it came (status, the words naming the limit, `Retry-After`) in the API's error shape, removes
//! its own record of the refused upload, and nothing already stored is lost. Playlists that
//! would make ffmpeg read local files are refused before anything is stored.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, make_m4a};
use vid2mp3_test_support::{Mailbox, Platform, PlatformBuilder};

/// What an upload answered: status, body, `Retry-After`.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl Answer {
    async fn of(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = r.json().await.expect("a JSON answer");
        Answer {
            status,
            body,
            retry_after,
        }
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// The API's error shape, and nothing else in it.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.body);
        let error = self.body["error"].as_object().expect("an error object");
        assert_eq!(error.len(), 2, "code and message only: {}", self.body);
        assert_eq!(
            self.body.as_object().map(|o| o.len()),
            Some(1),
            "{}",
            self.body
        );
    }
}

/// A raw upload of `bytes` with its length declared.
async fn upload_bytes(p: &Platform, token: &str, name: &str, bytes: Vec<u8>) -> Answer {
    let r = client()
        .post(p.url(&format!("/api/v1/jobs?name={name}")))
        .bearer_auth(token)
        .header("content-type", "audio/mp4")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    Answer::of(r).await
}

/// A raw upload sent chunked: neither the gateway nor storage knows its length until it ends.
async fn upload_chunked(p: &Platform, token: &str, bytes: Vec<u8>) -> Answer {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let r = client()
        .post(p.url("/api/v1/jobs?name=chunked.m4a"))
        .bearer_auth(token)
        .header("content-type", "audio/mp4")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .expect("upload");
    Answer::of(r).await
}

/// The course's multipart upload (storage gets no length for it either).
async fn upload_multipart(p: &Platform, token: &str, name: &str, bytes: &[u8]) -> Answer {
    let mut form = format!(
        "--QuOtA\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: video/mp4\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(bytes);
    form.extend_from_slice(b"\r\n--QuOtA--\r\n");
    let r = client()
        .post(p.url("/upload"))
        .bearer_auth(token)
        .header("content-type", "multipart/form-data; boundary=QuOtA")
        .body(form)
        .send()
        .await
        .expect("upload");
    Answer::of(r).await
}

/// Video files and job records in the converter's database, and job rows in the gateway's.
async fn stored(p: &Platform) -> (u64, u64, u64) {
    let db = p.mongo.as_ref().expect("the platform's Mongo").database();
    let count = |name: &'static str| {
        let collection = db.collection::<mongodb::bson::Document>(name);
        async move {
            collection
                .count_documents(mongodb::bson::doc! {})
                .await
                .expect("count")
        }
    };
    use mysql_async::prelude::Queryable;
    let pool = p.gateway_db.pool().expect("pool");
    let mut conn = pool.get_conn().await.expect("connection");
    let rows: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM jobs")
        .await
        .expect("count");
    drop(conn);
    pool.disconnect().await.ok();
    (
        count("videos.files").await,
        count("jobs").await,
        rows.unwrap_or(0),
    )
}

async fn second_user(p: &Platform) -> (Mailbox, String) {
    let mailbox = Mailbox::create().await.expect("a mailbox");
    sign_up(p, mailbox.address()).await;
    let token = log_in(p, mailbox.address()).await;
    (mailbox, token)
}

fn m4a(dir: &Scratch, name: &str, seconds: u32) -> Vec<u8> {
    let path = dir.path(name);
    make_m4a(&path, seconds);
    std::fs::read(path).expect("the clip")
}

/// No worker runs, so jobs stay queued: Ada meets the queued-jobs quota (and frees a place by
/// deleting a job), Bob the stored-bytes quota with a declared length, a chunked body and a
/// multipart form. Each refusal names its limit; nothing of a refused upload is kept anywhere,
/// and both accounts' earlier jobs are still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_refusals_name_the_limit_and_keep_nothing() {
    let (p, ada) = platform_with_user(
        PlatformBuilder::new()
            .converter_env("VID2MP3_ROLES", "storage,relay")
            .converter_env("VID2MP3_QUOTA_QUEUED_JOBS", "2")
            .converter_env("VID2MP3_QUOTA_STORED_BYTES", "1000000"),
    )
    .await;
    let (_bob_mail, bob) = second_user(&p).await;
    let scratch = Scratch::new();
    let clip = m4a(&scratch, "clip.m4a", 2);

    // Ada: two jobs queued, the third refused naming the limit.
    let mut ada_jobs = Vec::new();
    for i in 0..2 {
        let a = upload_bytes(&p, &ada, &format!("ada{i}.m4a"), clip.clone()).await;
        assert_eq!(a.status, 202, "{}", a.body);
        ada_jobs.push(a.body["id"].as_str().expect("an id").to_owned());
    }
    let before = stored(&p).await;
    let a = upload_bytes(&p, &ada, "ada2.m4a", clip.clone()).await;
    a.assert_error(429, "quota_exceeded");
    assert!(
        a.message().contains("queued jobs") && a.message().contains("the limit is 2"),
        "{}",
        a.message()
    );
    assert_eq!(a.retry_after, None);
    assert_eq!(stored(&p).await, before, "nothing of the refused upload");
    // Deleting a job frees its place.
    let r = client()
        .delete(p.url(&format!("/api/v1/jobs/{}", ada_jobs[0])))
        .bearer_auth(&ada)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    let a = upload_bytes(&p, &ada, "ada3.m4a", clip.clone()).await;
    assert_eq!(a.status, 202, "{}", a.body);
    ada_jobs[0] = a.body["id"].as_str().expect("an id").to_owned();

    // Bob: 30 s of audio stored, then uploads that do not fit in what is left of 1 MB.
    let kept = m4a(&scratch, "kept.m4a", 30);
    let b = upload_bytes(&p, &bob, "kept.m4a", kept.clone()).await;
    assert_eq!(b.status, 202, "{}", b.body);
    let bob_job = b.body["id"].as_str().expect("an id").to_owned();
    let mut too_big = kept.clone();
    too_big.resize(1_000_000 - kept.len() + 1, 0);
    let before = stored(&p).await;
    for (how, answer) in [
        (
            "declared length",
            upload_bytes(&p, &bob, "big.m4a", too_big.clone()).await,
        ),
        ("chunked", upload_chunked(&p, &bob, too_big.clone()).await),
        (
            "multipart",
            upload_multipart(&p, &bob, "big.mp4", &too_big).await,
        ),
    ] {
        answer.assert_error(413, "quota_exceeded");
        assert!(
            answer.message().contains("stored bytes") && answer.message().contains("976.6 KiB"),
            "{how}: {}",
            answer.message()
        );
        assert!(answer.message().contains("Delete jobs"), "{how}");
        assert_eq!(stored(&p).await, before, "{how}: nothing of it kept");
    }

    // Playlists that would make ffmpeg read local files are not media: refused by the gateway.
    let playlist =
        b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n/etc/hostname.ts\n#EXT-X-ENDLIST\n";
    let a = upload_bytes(&p, &ada, "list.m3u8", playlist.to_vec()).await;
    a.assert_error(415, "unsupported_media_type");
    let a = upload_multipart(
        &p,
        &ada,
        "list.ffconcat",
        b"ffconcat version 1.0\nfile a.ts\n",
    )
    .await;
    a.assert_error(415, "unsupported_media_type");
    assert_eq!(stored(&p).await, before, "nothing of the playlists kept");

    // Everything stored before is still there.
    let listed = |page: Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let mut ada_listed = listed(my_jobs(&p, &ada).await);
    ada_listed.sort();
    ada_jobs.sort();
    assert_eq!(ada_listed, ada_jobs);
    assert_eq!(listed(my_jobs(&p, &bob).await), vec![bob_job]);
}

/// A WAV of `seconds` (its header states the length exactly).
fn make_wav(path: &std::path::Path, seconds: u32) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=22050:duration={seconds}"
        ))
        .arg(path)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With a worker: a minute a day. 40 s convert; 30 s more are taken but refused once their
/// length is known (the job fails naming the limit, one email says so); 20 s still fit; then
/// the next upload is refused at once with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_days_media_minutes() {
    let (p, token) = platform_with_user(
        PlatformBuilder::new().converter_env("VID2MP3_QUOTA_MEDIA_MINUTES_PER_DAY", "1"),
    )
    .await;
    let scratch = Scratch::new();
    let convert = |seconds: u32| {
        let path = scratch.path(&format!("clip{seconds}.wav"));
        make_wav(&path, seconds);
        let p = &p;
        let token = &token;
        async move {
            let job = upload_raw(p, token, &path, "audio/wav").await;
            let id = job["id"].as_str().expect("an id").to_owned();
            let seen = wait_for_end(p, token, &id, Duration::from_secs(90)).await;
            seen.last().expect("a state").clone()
        }
    };
    assert_eq!(convert(40).await["status"], "done");
    let refused = convert(30).await;
    assert_eq!(refused["status"], "failed", "{refused:#}");
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused:#}");
    let why = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("media minutes per day") && why.contains("of your 1 min"),
        "{why}"
    );
    assert_eq!(convert(20).await["status"], "done");

    let a = upload_bytes(&p, &token, "later.m4a", m4a(&scratch, "later.m4a", 1)).await;
    a.assert_error(429, "quota_exceeded");
    assert!(a.message().contains("00:00 UTC"), "{}", a.message());
    assert!(
        a.retry_after.is_some_and(|s| (1..=86_400).contains(&s)),
        "{:?}",
        a.retry_after
    );

    let mail = p
        .mailbox
        .wait_for(3, Duration::from_secs(60))
        .await
        .expect("three emails");
    let about_refusal: Vec<_> = mail
        .iter()
        .filter(|m| m.text.contains("clip30.wav"))
        .collect();
    assert_eq!(about_refusal.len(), 1, "one email about the refused job");
    assert!(
        about_refusal[0].text.contains("media minutes"),
        "{}",
        about_refusal[0].text
    );
    assert_no_more_mail(&p.mailbox, 3).await;
}

async fn assert_no_more_mail(mailbox: &Mailbox, n: usize) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mailbox.messages().await.expect("mail").len(), n);
}
