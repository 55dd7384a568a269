//! The whole flow, end to end: upload → conversion → email → download, and what must hold when
//! things go wrong.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use vid2mp3_test_support::test_media::{
    ScratchDir as Scratch, decoded_samples, make_m4a, make_mkv,
};
use vid2mp3_test_support::{Mailbox, PlatformBuilder, TcpProxy};

/// The course's three curl commands, byte for byte, against our platform.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_course_curl_commands_work_unchanged() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let email = p.mailbox.address().to_owned();
    sign_up(&p, &email).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("video.mkv"), 3);
    let host = p.url("").trim_start_matches("http://").to_owned();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--fail-with-body"])
            .args(args)
            .current_dir(&scratch.0)
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let jwt = curl(&[
        "-X",
        "POST",
        &format!("http://{host}/login"),
        "-u",
        &format!("{email}:{PASSWORD}"),
    ]);
    assert_eq!(jwt.split('.').count(), 3, "the bare JWT: {jwt}");
    curl(&[
        "-X",
        "POST",
        "-F",
        "file=@./video.mkv",
        "-H",
        &format!("Authorization: Bearer {jwt}"),
        &format!("http://{host}/upload"),
    ]);

    let mail = p
        .mailbox
        .wait_for(1, Duration::from_secs(90))
        .await
        .expect("the email arrives");
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].text.contains("video.mkv"),
        "names the file: {}",
        mail[0].text
    );
    let fid = fid_in(&mail[0].text).expect("the email gives the mp3's fid");
    curl(&[
        "--output",
        "out.mp3",
        "-X",
        "GET",
        "-H",
        &format!("Authorization: Bearer {jwt}"),
        &format!("http://{host}/download?fid={fid}"),
    ]);

    let mp3 = scratch.path("out.mp3");
    let source = decoded_samples(&scratch.path("video.mkv"));
    assert_eq!(source, 144_000, "3 s at 48 kHz");
    assert_eq!(
        decoded_samples(&mp3),
        source,
        "the mp3 holds exactly the source's samples"
    );
    // Exactly one email, also a while later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(p.mailbox.messages().await.unwrap().len(), 1);
}

/// The JSON API: upload, status polling with progress, listing, Range downloads, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_flow_with_progress_ranges_and_delete() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let file = scratch.path("lecture.m4a");
    make_m4a(&file, 120);
    let job = upload_raw(&p, &token, &file, "audio/mp4").await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["status"], "queued");

    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(120)).await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "done", "{last:#}");
    assert_eq!(last["progress_percent"], 100);
    let percents: Vec<u64> = seen
        .iter()
        .map(|s| s["progress_percent"].as_u64().unwrap())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back: {percents:?}"
    );
    for s in &seen {
        if s["status"] == "converting" {
            assert!(s["progress_percent"].as_u64().unwrap() < 100, "{s}");
        }
    }
    assert_eq!(last["duration_ms"], 120_000);
    let size = last["mp3_size_bytes"].as_u64().unwrap();

    // Listed, newest first.
    let page = my_jobs(&p, &token).await;
    assert_eq!(page["jobs"][0]["id"], id.as_str());

    // Whole, then in two ranges that add up to it.
    let mp3_url = p.url(&format!("/api/v1/jobs/{id}/mp3"));
    let whole = client()
        .get(&mp3_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-length"], size.to_string().as_str());
    let disposition = whole.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains("lecture.mp3"), "{disposition}");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(whole.len() as u64, size);
    let first = client()
        .get(&mp3_url)
        .bearer_auth(&token)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 206);
    assert_eq!(
        first.headers()["content-range"],
        format!("bytes 0-999/{size}").as_str()
    );
    let first = first.bytes().await.unwrap();
    let rest = client()
        .get(&mp3_url)
        .bearer_auth(&token)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 206);
    let rest = rest.bytes().await.unwrap();
    assert_eq!([first.as_ref(), rest.as_ref()].concat(), whole.as_ref());
    let beyond = client()
        .get(&mp3_url)
        .bearer_auth(&token)
        .header("range", format!("bytes={}-", size + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 416);
    let mp3 = scratch.path("lecture.mp3");
    std::fs::write(&mp3, &whole).unwrap();
    // Exactly 120 s at 44.1 kHz. (ffmpeg's own decode of this AAC source gives 32 samples more:
    // it does not trim the encoder's end padding the MP4 edit list marks; the converter does.)
    assert_eq!(decoded_samples(&mp3), 120 * 44_100);

    // Deleted: gone from the API and from storage.
    let r = client()
        .delete(p.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(job_status(&p, &token, &id).await, 404);
    let storage = p.converter.as_ref().unwrap();
    let r = client()
        .get(format!("{}/internal/v1/jobs/{id}", storage.storage_url))
        .bearer_auth(&storage.storage_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the converter forgot the job");
}

async fn job_status(p: &vid2mp3_test_support::Platform, token: &str, id: &str) -> u16 {
    job(p, token, id).await.0
}

/// Neither of two users can see, download or delete the other's jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_users_cannot_touch_each_others_jobs() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let ada = p.mailbox.address().to_owned();
    let bob_box = Mailbox::create().await.unwrap();
    let bob = bob_box.address().to_owned();
    sign_up(&p, &ada).await;
    sign_up(&p, &bob).await;
    let ada_token = log_in(&p, &ada).await;
    let bob_token = log_in(&p, &bob).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("ada.mkv"), 2);
    let job = upload_raw(&p, &ada_token, &scratch.path("ada.mkv"), "video/x-matroska").await;
    let id = job["id"].as_str().unwrap().to_owned();
    let done = wait_for_end(&p, &ada_token, &id, Duration::from_secs(90)).await;
    let fid = done.last().unwrap()["mp3_fid"].as_str().unwrap().to_owned();

    let as_bob = |method: reqwest::Method, path: String| {
        client()
            .request(method, p.url(&path))
            .bearer_auth(&bob_token)
            .send()
    };
    let unknown = uuid::Uuid::now_v7();
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/jobs/{id}")),
        (reqwest::Method::GET, format!("/api/v1/jobs/{id}/mp3")),
        (reqwest::Method::DELETE, format!("/api/v1/jobs/{id}")),
        (reqwest::Method::GET, format!("/download?fid={fid}")),
    ] {
        let r = as_bob(method.clone(), path.clone()).await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 404, "{method} {path}: {body}");
        // Exactly what a job that does not exist answers.
        let r = as_bob(method.clone(), path.replace(&id, &unknown.to_string()))
            .await
            .unwrap();
        if path.contains(&id) {
            let other: Value = r.json().await.unwrap();
            assert_eq!(body, other, "{method} {path}");
        }
    }
    let page = my_jobs(&p, &bob_token).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0);
    // Ada's job survived Bob's delete.
    assert_eq!(job_status(&p, &ada_token, &id).await, 200);
    assert_eq!(
        bob_box.messages().await.unwrap().len(),
        0,
        "Bob got no email about Ada's job"
    );
}

/// Something that looks like media but is not: the job fails, its owner gets one email saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_upload_fails_with_one_failure_email() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    // An MP4 header, then noise: passes the gateway's sniff, no decoder can read it.
    let mut bytes = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    bytes.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(scratch.path("broken.mp4"), bytes).unwrap();
    let job = upload_raw(&p, &token, &scratch.path("broken.mp4"), "video/mp4").await;
    let id = job["id"].as_str().unwrap().to_owned();
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(90)).await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "failed", "{last:#}");
    assert!(
        last["error"]["code"].is_string() && last["error"]["message"].is_string(),
        "{last:#}"
    );
    // A failed job has no mp3: a 404 that says so, not a 5xx asking to try again.
    let r = client()
        .get(p.url(&format!("/api/v1/jobs/{id}/mp3")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no mp3")),
        "{body}"
    );
    let mail = p
        .mailbox
        .wait_for(1, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(mail[0].text.contains("broken.mp4"), "{}", mail[0].text);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        p.mailbox.messages().await.unwrap().len(),
        1,
        "exactly one failure email"
    );
    // The worker is not stuck: a good file after it converts.
    make_mkv(&scratch.path("good.mkv"), 1);
    upload_and_wait_until_done(&p, &token, &scratch.path("good.mkv"), "video/x-matroska").await;
}

/// The mail API down for a while: nothing is lost and nothing is sent twice once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emails_arrive_exactly_once_after_the_mail_api_returns() {
    let mailpit =
        std::env::var("VID2MP3_MAILPIT_URL").unwrap_or_else(|_| "http://127.0.0.1:8025".into());
    let proxy = TcpProxy::start(mailpit.trim_start_matches("http://"))
        .await
        .unwrap();
    let p = PlatformBuilder::new()
        .with_converter()
        .variable("mail_api_url", format!("http://{}", proxy.addr()))
        .start()
        .await
        .expect("platform");
    let email = p.mailbox.address().to_owned();
    // The account is made while the mail API works (its confirmation link is an email too).
    sign_up(&p, &email).await;
    let token = log_in(&p, &email).await;
    proxy.set_open(false);
    let scratch = Scratch::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let file = scratch.path(&format!("clip{i}.mkv"));
        make_mkv(&file, 1);
        ids.push(
            upload_raw(&p, &token, &file, "video/x-matroska").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids {
        let seen = wait_for_end(&p, &token, id, Duration::from_secs(90)).await;
        assert_eq!(seen.last().unwrap()["status"], "done");
    }
    // Converted, but the mail API is unreachable: nothing can have been sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(p.mailbox.messages().await.unwrap().len(), 0);
    proxy.set_open(true);
    let mail = p
        .mailbox
        .wait_for(3, Duration::from_secs(120))
        .await
        .expect("the emails arrive once the API is back");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mail_after = p.mailbox.messages().await.unwrap();
    assert_eq!(
        mail_after.len(),
        3,
        "exactly one per job: {:?}",
        mail.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}

/// The converter killed (SIGKILL) in the middle of a job: the job still completes, one email.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_survives_the_converter_being_killed() {
    let mut p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let email = p.mailbox.address().to_owned();
    sign_up(&p, &email).await;
    let token = log_in(&p, &email).await;
    let scratch = Scratch::new();
    let file = scratch.path("long.m4a");
    make_m4a(&file, 600);
    let job = upload_raw(&p, &token, &file, "audio/mp4").await;
    let id = job["id"].as_str().unwrap().to_owned();
    // Wait until it is converting, then kill the converter without warning.
    common::wait_until_converting(&p, &token, &id, "it could be killed").await;
    let converter = p.converter.as_mut().unwrap();
    converter.kill();
    converter.restart().await.expect("the converter comes back");
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(180)).await;
    assert_eq!(
        seen.last().unwrap()["status"],
        "done",
        "{:#}",
        seen.last().unwrap()
    );
    let mail = p
        .mailbox
        .wait_for(1, Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        p.mailbox.messages().await.unwrap().len(),
        1,
        "one email: {:?}",
        mail.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}

/// 100 uploads at once from 10 users, each from an address of its own (as runtime-host's
/// per-client limits see them): all complete; each user gets exactly their own emails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_uploads_from_ten_users() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let file = scratch.path("short.mkv");
    make_mkv(&file, 1);
    let mut users = Vec::new();
    for _ in 0..10 {
        let mailbox = Mailbox::create().await.unwrap();
        sign_up(&p, mailbox.address()).await;
        let token = log_in(&p, mailbox.address()).await;
        users.push((mailbox, token));
    }
    let uploads = users
        .iter()
        .enumerate()
        .flat_map(|(i, (_, token))| {
            let from = client_from(std::net::Ipv4Addr::new(127, 0, 0, 11 + i as u8));
            (0..10).map(move |_| (from.clone(), token.clone()))
        })
        .map(|(from, token)| {
            let file = file.clone();
            let p = &p;
            async move {
                let job = upload_raw_with(&from, p, &token, &file, "video/x-matroska").await;
                (token, job["id"].as_str().unwrap().to_owned())
            }
        });
    let jobs = futures::future::join_all(uploads).await;
    for (token, id) in &jobs {
        let seen = wait_for_end(&p, token, id, Duration::from_secs(300)).await;
        assert_eq!(seen.last().unwrap()["status"], "done", "{id}");
    }
    for (mailbox, token) in &users {
        let mail = mailbox
            .wait_for(10, Duration::from_secs(120))
            .await
            .unwrap();
        let r = client()
            .get(p.url("/api/v1/jobs?limit=100"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let page: Value = r.json().await.unwrap();
        let mine: Vec<String> = page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["mp3_fid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(mine.len(), 10);
        for m in &mail {
            let fid = fid_in(&m.text).expect("a fid");
            assert!(
                mine.contains(&fid),
                "{} got an email about someone else's job",
                mailbox.address()
            );
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (mailbox, _) in &users {
        assert_eq!(
            mailbox.messages().await.unwrap().len(),
            10,
            "{}",
            mailbox.address()
        );
    }
}

/// Idle longer than the broker's heartbeat, then upload: it works (the course's gateway answered
/// 500 forever after a few idle minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_after_idling_past_the_heartbeat_succeeds() {
    let (p, token) = platform_with_user(
        PlatformBuilder::new().converter_env("VID2MP3_AMQP_HEARTBEAT_SECS", "1"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("after-idle.mkv"), 1);
    let job = upload_raw(
        &p,
        &token,
        &scratch.path("after-idle.mkv"),
        "video/x-matroska",
    )
    .await;
    let seen = wait_for_end(
        &p,
        &token,
        job["id"].as_str().unwrap(),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(seen.last().unwrap()["status"], "done");
}

/// An upload whose gateway instance ended between storing the video and recording it (killed,
/// timed out) stays pending, invisible to its owner. A later upload settles such rows once they
/// are older than any upload takes, by asking the storage API: a job it holds becomes visible
/// again (it was converted and emailed, so hiding it would lose it); one it never got is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_uploads_are_settled_by_what_storage_holds() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("kept.mkv"), 1);
    make_mkv(&scratch.path("next.mkv"), 1);

    let kept = upload_raw(&p, &token, &scratch.path("kept.mkv"), "video/x-matroska").await;
    let kept = kept["id"].as_str().expect("an id").to_owned();
    let seen = wait_for_end(&p, &token, &kept, Duration::from_secs(90)).await;
    assert_eq!(seen.last().expect("a state")["status"], "done");
    // As if its instance had ended before recording it, two days ago.
    gateway_sql(
        &p,
        &format!(
            "UPDATE jobs SET stored_at = NULL, created_at = NOW(3) - INTERVAL 2 DAY WHERE id = '{kept}'"
        ),
    )
    .await;
    assert_eq!(
        job(&p, &token, &kept).await.0,
        404,
        "a pending job is hidden"
    );
    // One storage never got (two days old) and one still streaming (a minute old).
    let lost = "01a22222-0000-7000-8000-00000000000a";
    let streaming = "01a22222-0000-7000-8000-00000000000b";
    gateway_sql(
        &p,
        &format!(
            "INSERT INTO jobs (id, owner_id, original_name, content_type, created_at) \
             SELECT '{lost}', owner_id, 'lost.mkv', 'video/x-matroska', NOW(3) - INTERVAL 2 DAY \
             FROM jobs WHERE id = '{kept}' UNION ALL \
             SELECT '{streaming}', owner_id, 'slow.mkv', 'video/x-matroska', NOW(3) - INTERVAL 1 MINUTE \
             FROM jobs WHERE id = '{kept}'"
        ),
    )
    .await;

    let next = upload_raw(&p, &token, &scratch.path("next.mkv"), "video/x-matroska").await;
    let next = next["id"].as_str().expect("an id").to_owned();

    assert_eq!(
        job(&p, &token, &kept).await.0,
        200,
        "the stored job is back"
    );
    let mut rows = gateway_sql(&p, "SELECT id, stored_at IS NOT NULL FROM jobs").await;
    rows.sort();
    let mut expected = vec![
        vec![kept.clone(), "1".to_owned()],
        vec![next.clone(), "1".to_owned()],
        vec![streaming.to_owned(), "0".to_owned()],
    ];
    expected.sort();
    assert_eq!(
        rows, expected,
        "the lost row is gone, the recent one untouched"
    );
}

/// Uploads that end badly after their bytes started flowing to storage: a form with a second
/// file, and a client that disconnects midway. Neither leaves a job, a video or a chunk behind,
/// and the platform converts the next good upload as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_cut_short_or_with_two_files_leave_nothing_behind() {
    use tokio::io::AsyncWriteExt;

    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("clip.mkv"), 2);
    let clip = std::fs::read(scratch.path("clip.mkv")).unwrap();

    // Two files in one form: the first is a good video and streams to storage before the second
    // is seen; the answer is 400 naming the problem, and the first file is not kept.
    let mut form = Vec::new();
    for name in ["one.mkv", "two.mkv"] {
        form.extend_from_slice(
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: video/x-matroska\r\n\r\n"
            )
            .as_bytes(),
        );
        form.extend_from_slice(&clip);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(b"--XyZ--\r\n");
    let r = client()
        .post(p.url("/upload"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than one file")),
        "{body}"
    );
    wait_until_nothing_is_stored(&p, "after a form with two files").await;

    // A client that sends the headers and a megabyte of a declared 8 MB, then disconnects.
    let address = p
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut partial = clip.clone();
    partial.resize(1 << 20, 0x5a);
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    socket
        .write_all(
            format!(
                "POST /api/v1/jobs?name=cut.mkv HTTP/1.1\r\nHost: {address}\r\n\
                 Authorization: Bearer {token}\r\nContent-Type: video/x-matroska\r\n\
                 Content-Length: 8000000\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    socket.write_all(&partial).await.unwrap();
    socket.flush().await.unwrap();
    // The upload is under way (its row recorded, its first chunks in GridFS) before the cut, so
    // what follows shows a clean-up and not an upload that never started.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, chunks, _) = stored(&p).await;
        if gateway_job_rows(&p).await == 1 && chunks > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut upload never reached storage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(socket);
    wait_until_nothing_is_stored(&p, "after a client disconnected mid-upload").await;
    let page = my_jobs(&p, &token).await;
    assert_eq!(page["jobs"], serde_json::json!([]), "{page}");

    // Nothing was queued either: the next good upload is the only job the converter ever runs.
    upload_and_wait_until_done(&p, &token, &scratch.path("clip.mkv"), "video/x-matroska").await;
    let (files, _, states) = stored(&p).await;
    assert_eq!((files, states), (1, 1), "only the good upload is stored");
    let mail = p
        .mailbox
        .wait_for(1, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(mail[0].text.contains("clip.mkv"), "{}", mail[0].text);
}
