//! `GET /api/v1/jobs/{id}/mp3` with `If-Range`: a client resuming a partial mp3 gets the rest
//! only while the mp3 is still the file its part came from, and the whole mp3 otherwise. Needs
//! the converter (real uploads and conversions).

mod common;

use std::time::Duration;

use common::{client, user_token};
use vid2mp3_test_support::test_media::{ScratchDir, make_mkv};
use vid2mp3_test_support::{Platform, PlatformBuilder};

/// Uploads a fresh `seconds`-long video and waits for its mp3; the job id.
async fn converted(p: &Platform, token: &str, scratch: &ScratchDir, seconds: u32) -> String {
    let video = scratch.path(&format!("clip-{seconds}.mkv"));
    make_mkv(&video, seconds);
    let r = client()
        .post(p.url("/api/v1/jobs?name=clip.mkv"))
        .bearer_auth(token)
        .header("content-type", "video/x-matroska")
        .body(std::fs::read(&video).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "upload");
    let job: serde_json::Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let s: serde_json::Value = client()
            .get(p.url(&format!("/api/v1/jobs/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match s["status"].as_str() {
            Some("done") => return id,
            Some("failed") => panic!("the conversion failed: {s:#}"),
            _ if tokio::time::Instant::now() > deadline => panic!("not done in time: {s:#}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// GET of job `id`'s mp3 with these headers: status, ETag, Content-Range, body.
async fn get(
    p: &Platform,
    token: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let mut rb = client()
        .get(p.url(&format!("/api/v1/jobs/{id}/mp3")))
        .bearer_auth(token);
    for (n, v) in headers {
        rb = rb.header(*n, *v);
    }
    let r = rb.send().await.unwrap();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (etag, range) = (header("etag"), header("content-range"));
    let status = r.status().as_u16();
    (status, etag, range, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_range_serves_the_rest_only_of_the_same_mp3() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("the platform starts (with the converter)");
    let token = user_token(&p, "ifrange").await;
    let scratch = ScratchDir::new();
    let a = converted(&p, &token, &scratch, 3).await;
    let b = converted(&p, &token, &scratch, 2).await;

    let (status, etag_a, _, whole_a) = get(&p, &token, &a, &[]).await;
    assert_eq!(status, 200);
    let etag_a = etag_a.expect("the mp3 has an ETag");
    let (_, etag_b, _, whole_b) = get(&p, &token, &b, &[]).await;
    let etag_b = etag_b.expect("the mp3 has an ETag");
    assert_ne!(etag_a, etag_b, "each mp3 is its own file");
    assert_ne!(whole_a, whole_b);
    let n = whole_a.len() / 3;
    let from_n = format!("bytes={n}-");

    // The validator of this very mp3: the rest of it.
    let (status, etag, range, body) =
        get(&p, &token, &a, &[("range", &from_n), ("if-range", &etag_a)]).await;
    assert_eq!(status, 206);
    assert_eq!(etag.as_deref(), Some(etag_a.as_str()));
    assert_eq!(
        range.as_deref(),
        Some(format!("bytes {n}-{}/{}", whole_a.len() - 1, whole_a.len()).as_str())
    );
    assert_eq!(body, &whole_a[n..]);

    // Another mp3's validator, a weak one, a date: the whole mp3, never a range of it.
    let weak = format!("W/{etag_a}");
    for validator in [
        etag_b.as_str(),
        weak.as_str(),
        "Wed, 21 Oct 2015 07:28:00 GMT",
    ] {
        let (status, etag, range, body) = get(
            &p,
            &token,
            &a,
            &[("range", &from_n), ("if-range", validator)],
        )
        .await;
        assert_eq!(status, 200, "If-Range: {validator}");
        assert_eq!(etag.as_deref(), Some(etag_a.as_str()));
        assert_eq!(range, None);
        assert_eq!(body, whole_a, "If-Range: {validator}");
    }

    // A range past the end: 416 only for the file the client names; for another, the whole one.
    let past = format!("bytes={}-", whole_a.len() + 10);
    let (status, _, range, _) =
        get(&p, &token, &a, &[("range", &past), ("if-range", &etag_a)]).await;
    assert_eq!(status, 416);
    assert_eq!(
        range.as_deref(),
        Some(format!("bytes */{}", whole_a.len()).as_str())
    );
    let (status, _, _, body) =
        get(&p, &token, &a, &[("range", &past), ("if-range", &etag_b)]).await;
    assert_eq!(status, 200);
    assert_eq!(body, whole_a);

    // If-Range without Range means nothing.
    let (status, _, _, body) = get(&p, &token, &b, &[("if-range", &etag_a)]).await;
    assert_eq!(status, 200);
    assert_eq!(body, whole_b);
}
