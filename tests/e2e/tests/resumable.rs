//! Resumable uploads (tus 1.0.0 on `/api/v1/uploads`) against the whole platform: a file sent
//! in pieces becomes a job whose stored video is the file, byte for byte; a piece cut off keeps
//! what arrived and the upload goes on from there; every bad piece (wrong offset, past the
//! declared length, not media, wrong version or type, someone else's upload) gets its clear
//! error and loses nothing; pieces racing on one upload take turns; termination and expiry
//! remove everything; quotas apply to the declared length at creation.

mod common;

use std::time::Duration;

use common::{
    client, job, log_in, platform_with_user, sign_up, tus_begin, tus_begun, tus_end, tus_metadata,
    tus_offset, tus_patch, wait_for_end,
};
use futures::StreamExt;
use mongodb::bson::{Bson, Document, doc};
use serde_json::Value;
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, make_large_mkv, make_mkv};
use vid2mp3_test_support::{Mailbox, Platform, PlatformBuilder};

const CHUNK: usize = 255 * 1024;

fn id_of(upload: &str) -> String {
    upload.rsplit('/').next().expect("an id").to_owned()
}

/// The stored video of `job`, read back from GridFS chunk by chunk.
async fn stored_video(p: &Platform, job: &str) -> Vec<u8> {
    let db = p.mongo.as_ref().expect("mongo").database();
    let record = db
        .collection::<Document>("jobs")
        .find_one(doc! {"_id": job})
        .await
        .expect("jobs")
        .expect("the job's record");
    let fid = mongodb::bson::oid::ObjectId::parse_str(record.get_str("video_fid").expect("fid"))
        .expect("an ObjectId");
    let file = db
        .collection::<Document>("videos.files")
        .find_one(doc! {"_id": fid})
        .await
        .expect("files")
        .expect("the video's files document");
    let mut chunks = db
        .collection::<Document>("videos.chunks")
        .find(doc! {"files_id": fid})
        .sort(doc! {"n": 1})
        .await
        .expect("chunks");
    let mut bytes = Vec::new();
    let mut expected_n = 0_i64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("a chunk");
        let n = match chunk.get("n") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            other => panic!("chunk n: {other:?}"),
        };
        assert_eq!(n, expected_n, "chunks are numbered without gaps or repeats");
        expected_n += 1;
        match chunk.get("data") {
            Some(Bson::Binary(b)) => bytes.extend_from_slice(&b.bytes),
            other => panic!("chunk data: {other:?}"),
        }
    }
    let length = match file.get("length") {
        Some(Bson::Int64(n)) => *n as usize,
        Some(Bson::Int32(n)) => *n as usize,
        other => panic!("length: {other:?}"),
    };
    assert_eq!(bytes.len(), length, "the files document's length");
    bytes
}

/// What the converter still holds of unfinished uploads: records, reservations, chunks
/// without a files document.
async fn leftovers(p: &Platform) -> (u64, u64, u64) {
    let db = p.mongo.as_ref().expect("mongo").database();
    let unfinished = db
        .collection::<Document>("resumable_uploads")
        .count_documents(doc! {"phase": {"$ne": "complete"}})
        .await
        .expect("count");
    let reservations = db
        .collection::<Document>("uploads")
        .count_documents(doc! {})
        .await
        .expect("count");
    let files: Vec<Bson> = db
        .collection::<Document>("videos.files")
        .distinct("_id", doc! {})
        .await
        .expect("files");
    let orphans = db
        .collection::<Document>("videos.chunks")
        .count_documents(doc! {"files_id": {"$nin": files}})
        .await
        .expect("chunks");
    (unfinished, reservations, orphans)
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_in_pieces_becomes_a_job_with_exactly_its_bytes() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let file = scratch.path("lecture.mkv");
    make_large_mkv(&file, 3 << 20);
    let bytes = std::fs::read(&file).expect("the file");
    let len = bytes.len() as u64;

    let r = client()
        .request(reqwest::Method::OPTIONS, p.url("/api/v1/uploads"))
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["tus-resumable"], "1.0.0");
    assert_eq!(h["tus-version"], "1.0.0");
    assert_eq!(h["tus-extension"], "creation,termination,expiration");
    assert!(h["tus-max-size"].to_str().unwrap().parse::<u64>().unwrap() > len);

    let r = tus_begin(
        &p,
        &token,
        len,
        &tus_metadata(&[
            ("filename", "lecture 1.mkv"),
            ("filetype", "video/x-matroska"),
            ("profile", "fast"),
        ]),
    )
    .await;
    assert_eq!(r.status(), 201);
    let upload = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["upload-offset"], "0");
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    assert!(
        r.headers()["upload-expires"]
            .to_str()
            .unwrap()
            .ends_with(" GMT")
    );
    let created: Value = r.json().await.unwrap();
    let id = id_of(&upload);
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["upload_url"], upload.as_str());
    assert_eq!(created["length"], len);
    assert!(upload.starts_with("/api/v1/uploads/"), "{upload}");
    assert_eq!(tus_offset(&p, &token, &upload).await, (200, Some(0)));
    // Not a job until the last byte.
    assert_eq!(job(&p, &token, &id).await.0, 404);

    // Pieces that end inside a GridFS chunk, one exactly at a chunk's end, then the rest.
    let cuts = [1000, CHUNK, CHUNK + 7, 2 * CHUNK + 100, bytes.len()];
    let mut offset = 0;
    for cut in cuts {
        let r = tus_patch(
            &p,
            &token,
            &upload,
            offset as u64,
            bytes[offset..cut].to_vec(),
        )
        .await;
        assert_eq!(r.status(), 204, "piece {offset}..{cut}");
        assert_eq!(r.headers()["upload-offset"], cut.to_string().as_str());
        offset = cut;
        if cut < bytes.len() {
            assert!(r.headers().get("vid2mp3-job-url").is_none());
            assert_eq!(
                tus_offset(&p, &token, &upload).await,
                (200, Some(cut as u64))
            );
        } else {
            assert_eq!(
                r.headers()["vid2mp3-job-url"],
                format!("/api/v1/jobs/{id}").as_str()
            );
        }
    }
    assert_eq!(tus_offset(&p, &token, &upload).await, (200, Some(len)));
    let (status, queued) = job(&p, &token, &id).await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["original_name"], "lecture 1.mkv");
    assert_eq!(queued["profile"], "fast");
    assert_eq!(
        stored_video(&p, &id).await,
        bytes,
        "the stored video is the file"
    );
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(120)).await;
    assert_eq!(seen.last().unwrap()["status"], "done", "{seen:?}");
    assert_eq!(
        leftovers(&p).await,
        (0, 0, 0),
        "no record, reservation or chunk left over"
    );
    // A finished upload is a job: it is not ended through the upload.
    assert_eq!(tus_end(&p, &token, &upload).await, 409);
    p.mailbox
        .wait_for(1, Duration::from_secs(60))
        .await
        .expect("the job's email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_lose_nothing() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let file = scratch.path("talk.mkv");
    make_mkv(&file, 3);
    let bytes = std::fs::read(&file).unwrap();
    let len = bytes.len() as u64;
    let upload = tus_begun(&p, &token, &file, "video/x-matroska").await;
    let half = bytes.len() / 2;

    // Creation.
    let r = client()
        .post(p.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    let (status, body) = error_of(tus_begin(&p, &token, 0, "").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, body) = error_of(tus_begin(&p, &token, 1 << 50, "").await).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = error_of(tus_begin(&p, &token, 10, "filename ***").await).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("filename"),
        "{body}"
    );
    let (status, _) =
        error_of(tus_begin(&p, &token, 10, &tus_metadata(&[("filetype", "text/html")])).await)
            .await;
    assert_eq!(status, 415);
    let (status, _) =
        error_of(tus_begin(&p, &token, 10, &tus_metadata(&[("profile", "loudest")])).await).await;
    assert_eq!(status, 400);
    let r = client()
        .post(p.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("tus-resumable", "1.0.0")
        .header("upload-defer-length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .post(p.url("/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Pieces.
    let (status, body) = error_of(
        tus_patch(
            &p,
            &token,
            &upload,
            0,
            b"<html>not a video</html>".repeat(40),
        )
        .await,
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(tus_offset(&p, &token, &upload).await, (200, Some(0)));
    let r = client()
        .patch(p.url(&upload))
        .bearer_auth(&token)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/octet-stream")
        .header("upload-offset", "0")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = tus_patch(&p, &token, &upload, 0, bytes[..half].to_vec()).await;
    assert_eq!(r.status(), 204);
    // An offset that does not match: 409 with where the upload is.
    let r = tus_patch(&p, &token, &upload, 10, bytes[10..].to_vec()).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["upload-offset"], half.to_string().as_str());
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    let (_, body) = error_of(r).await;
    assert_eq!(body["error"]["code"], "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&half.to_string()),
        "{body}"
    );
    // A piece past the declared length: 413, nothing of it kept.
    let mut too_long = bytes[half..].to_vec();
    too_long.extend_from_slice(&[0; 4096]);
    let r = tus_patch(&p, &token, &upload, half as u64, too_long).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["upload-offset"], half.to_string().as_str());
    assert_eq!(
        tus_offset(&p, &token, &upload).await,
        (200, Some(half as u64))
    );
    // Wrong or missing offsets and versions.
    let r = client()
        .patch(p.url(&upload))
        .bearer_auth(&token)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "-1")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .head(p.url(&upload))
        .bearer_auth(&token)
        .header("tus-resumable", "0.2.2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    // Someone else's upload is not there for them; an unknown one is not there either.
    let other = Mailbox::create().await.unwrap();
    sign_up(&p, other.address()).await;
    let other_token = log_in(&p, other.address()).await;
    assert_eq!(tus_offset(&p, &other_token, &upload).await.0, 404);
    let r = tus_patch(
        &p,
        &other_token,
        &upload,
        half as u64,
        bytes[half..].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(tus_end(&p, &other_token, &upload).await, 404);
    for unknown in [
        "/api/v1/uploads/0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11",
        "/api/v1/uploads/nope",
    ] {
        assert_eq!(tus_offset(&p, &token, unknown).await.0, 404, "{unknown}");
    }
    // After all that, the upload is intact and finishes.
    assert_eq!(
        tus_offset(&p, &token, &upload).await,
        (200, Some(half as u64))
    );
    let r = tus_patch(&p, &token, &upload, half as u64, bytes[half..].to_vec()).await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], len.to_string().as_str());
    let id = id_of(&upload);
    assert_eq!(stored_video(&p, &id).await, bytes);
    // Once whole, more bytes are past the end and an empty piece at the end changes nothing.
    let r = tus_patch(&p, &token, &upload, len, vec![0; 10]).await;
    assert_eq!(r.status(), 413);
    let r = tus_patch(&p, &token, &upload, len, Vec::new()).await;
    assert_eq!(r.status(), 204);
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(90)).await;
    assert_eq!(seen.last().unwrap()["status"], "done");
}

/// A body that sends `bytes` and then fails, so the client's connection breaks mid-piece.
fn cut_off_after(bytes: Vec<u8>) -> reqwest::Body {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = bytes
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .chain(std::iter::once(Err(std::io::Error::other(
            "the client's link went down",
        ))))
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(pieces))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piece_cut_off_keeps_what_arrived_and_the_upload_goes_on_from_there() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let file = scratch.path("long.mkv");
    make_large_mkv(&file, 4 << 20);
    let bytes = std::fs::read(&file).unwrap();
    let upload = tus_begun(&p, &token, &file, "video/x-matroska").await;
    let sent = 3 * CHUNK + 12_345;
    let r = client()
        .patch(p.url(&upload))
        .bearer_auth(&token)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(cut_off_after(bytes[..sent].to_vec()))
        .send()
        .await;
    assert!(r.is_err(), "the piece was cut off: {r:?}");
    // Storage keeps what reached it, once it has noticed the break.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let kept = loop {
        match tus_offset(&p, &token, &upload).await {
            (200, Some(n)) if n > 0 => break n,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "nothing of the cut-off piece was kept: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(kept as usize <= sent, "kept {kept} of {sent}");
    // The rest, from where the upload is; pieces may meet a piece still held (423) a moment.
    let mut offset = kept as usize;
    while offset < bytes.len() {
        let end = (offset + 1_000_000).min(bytes.len());
        let r = tus_patch(
            &p,
            &token,
            &upload,
            offset as u64,
            bytes[offset..end].to_vec(),
        )
        .await;
        match r.status().as_u16() {
            204 => offset = end,
            423 => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("piece {offset}..{end}: {other} {}", r.text().await.unwrap()),
        }
    }
    let id = id_of(&upload);
    assert_eq!(
        stored_video(&p, &id).await,
        bytes,
        "nothing lost, nothing twice"
    );
    assert_eq!(leftovers(&p).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_racing_on_one_upload_take_turns_and_many_uploads_run_side_by_side() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let file = scratch.path("race.mkv");
    make_large_mkv(&file, 2 << 20);
    let bytes = std::fs::read(&file).unwrap();

    // Two clients send the same piece at once: one is stored, the other is refused (locked
    // while the first runs, or a conflict once it moved the offset); the file stays whole.
    let upload = tus_begun(&p, &token, &file, "video/x-matroska").await;
    let piece = bytes[..bytes.len() / 2].to_vec();
    let (a, b) = tokio::join!(
        tus_patch(&p, &token, &upload, 0, piece.clone()),
        tus_patch(&p, &token, &upload, 0, piece.clone()),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert!(
        statuses == [204, 409] || statuses == [204, 423],
        "one piece stored, the other refused: {statuses:?}"
    );
    let half = bytes.len() / 2;
    assert_eq!(
        tus_offset(&p, &token, &upload).await,
        (200, Some(half as u64))
    );
    let r = tus_patch(&p, &token, &upload, half as u64, bytes[half..].to_vec()).await;
    assert_eq!(r.status(), 204);
    assert_eq!(stored_video(&p, &id_of(&upload)).await, bytes);

    // Four uploads, each in three pieces, all at once.
    let uploads =
        futures::future::join_all((0..4).map(|_| tus_begun(&p, &token, &file, "video/x-matroska")))
            .await;
    let thirds = [0, bytes.len() / 3, 2 * bytes.len() / 3, bytes.len()];
    futures::future::join_all(uploads.iter().map(|upload| {
        let (p, token, bytes) = (&p, &token, &bytes);
        async move {
            for w in thirds.windows(2) {
                let r = tus_patch(p, token, upload, w[0] as u64, bytes[w[0]..w[1]].to_vec()).await;
                assert_eq!(r.status(), 204, "{upload} {}..{}", w[0], w[1]);
            }
        }
    }))
    .await;
    for upload in &uploads {
        assert_eq!(stored_video(&p, &id_of(upload)).await, bytes, "{upload}");
    }
    assert_eq!(leftovers(&p).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_and_expired_uploads_leave_nothing() {
    let (p, token) = platform_with_user(
        PlatformBuilder::new().converter_env("VID2MP3_RESUMABLE_EXPIRY_SECS", "3"),
    )
    .await;
    let scratch = Scratch::new();
    let file = scratch.path("gone.mkv");
    make_large_mkv(&file, 1 << 20);
    let bytes = std::fs::read(&file).unwrap();

    // Termination.
    let upload = tus_begun(&p, &token, &file, "video/x-matroska").await;
    let r = tus_patch(&p, &token, &upload, 0, bytes[..CHUNK + 10].to_vec()).await;
    assert_eq!(r.status(), 204);
    assert_eq!(tus_end(&p, &token, &upload).await, 204);
    assert_eq!(tus_offset(&p, &token, &upload).await.0, 404);
    let r = tus_patch(
        &p,
        &token,
        &upload,
        (CHUNK + 10) as u64,
        bytes[CHUNK + 10..].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(leftovers(&p).await, (0, 0, 0));
    assert_eq!(
        common::gateway_job_rows(&p).await,
        0,
        "the pending row went too"
    );

    // Expiry: an upload left alone past its expiry is removed by the converter.
    let upload = tus_begun(&p, &token, &file, "video/x-matroska").await;
    let r = tus_patch(&p, &token, &upload, 0, bytes[..CHUNK + 10].to_vec()).await;
    assert_eq!(r.status(), 204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while leftovers(&p).await != (0, 0, 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired upload is still there: {:?}",
            leftovers(&p).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(tus_offset(&p, &token, &upload).await.0, 404);
    let r = tus_patch(
        &p,
        &token,
        &upload,
        (CHUNK + 10) as u64,
        bytes[CHUNK + 10..].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_count_an_upload_from_its_creation() {
    let (p, token) = platform_with_user(
        PlatformBuilder::new()
            .converter_env("VID2MP3_QUOTA_STORED_BYTES", (1_u64 << 20).to_string())
            .converter_env("VID2MP3_QUOTA_QUEUED_JOBS", "1"),
    )
    .await;
    let (status, body) = error_of(tus_begin(&p, &token, 2 << 20, "").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("quota_exceeded")),
        "{body}"
    );
    let first = tus_begin(&p, &token, 1000, "").await;
    assert_eq!(first.status(), 201);
    // The unfinished upload holds the one queued-job place.
    let (status, body) = error_of(tus_begin(&p, &token, 1000, "").await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("quota_exceeded")),
        "{body}"
    );
    assert_eq!(
        common::gateway_job_rows(&p).await,
        1,
        "only the admitted upload's row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_piece_that_stalls_is_ended_by_the_host_and_keeps_what_arrived() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let file = scratch.path("slow.mkv");
    make_large_mkv(&file, 2 << 20);
    let bytes = std::fs::read(&file).unwrap();
    let upload = tus_begun(&p, &token, &file, "video/x-matroska").await;
    // 600,000 bytes at once, then nothing: runtime-host ends a body that stops (its idle limit,
    // 20 s by default) with 408.
    let sent = 600_000;
    let head = bytes[..sent].to_vec();
    let stalled = futures::stream::iter(vec![Ok::<_, std::io::Error>(head)]).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(90)).await;
            Ok(vec![0_u8; 16])
        }),
    );
    let started = tokio::time::Instant::now();
    let r = tus_patch(&p, &token, &upload, 0, reqwest::Body::wrap_stream(stalled)).await;
    assert_eq!(r.status(), 408, "the host ends the stalled piece");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // Every byte that arrived is kept, once the piece has let go of the upload.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, offset) = tus_offset(&p, &token, &upload).await;
        assert_eq!(status, 200);
        if offset == Some(sent as u64)
            && tus_patch(&p, &token, &upload, sent as u64, Vec::new())
                .await
                .status()
                == 204
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled piece's bytes were not kept: offset {offset:?} of {sent}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = tus_patch(&p, &token, &upload, sent as u64, bytes[sent..].to_vec()).await;
    assert_eq!(r.status(), 204);
    assert_eq!(stored_video(&p, &id_of(&upload)).await, bytes);
}
