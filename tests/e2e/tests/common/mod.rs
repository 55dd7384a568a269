//! What the end-to-end tests share: test media, accounts, polling a job, counting samples.

#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};
use vid2mp3_test_support::{Platform, PlatformBuilder};

pub const PASSWORD: &str = "correct horse battery staple";

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// A client whose connections come from `address` (any 127.x.y.z is this machine): another
/// user, as runtime-host's per-client limits see it.
pub fn client_from(address: std::net::Ipv4Addr) -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .local_address(std::net::IpAddr::V4(address))
        .build()
        .expect("an HTTP client")
}

/// Signs up and confirms the address through the link in its confirmation email (read through
/// Mailpit's API, then removed from it, so a test counts only the emails it is about).
pub async fn sign_up(p: &Platform, email: &str) {
    p.sign_up_confirmed(email, PASSWORD)
        .await
        .expect("sign up and confirm");
}

pub async fn log_in(p: &Platform, email: &str) -> String {
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("log in");
    assert_eq!(r.status(), 200);
    let session: Value = r.json().await.expect("session");
    session["token"].as_str().expect("token").to_owned()
}

/// `builder` with the converter, started, and one user signed up and logged in whose email is the
/// platform's mailbox: the platform and that user's token.
pub async fn platform_with_user(builder: PlatformBuilder) -> (Platform, String) {
    let p = builder.with_converter().start().await.expect("platform");
    let email = p.mailbox.address().to_owned();
    sign_up(&p, &email).await;
    let token = log_in(&p, &email).await;
    (p, token)
}

/// Uploads a file as a raw body; the job JSON.
pub async fn upload_raw(p: &Platform, token: &str, file: &Path, content_type: &str) -> Value {
    upload_raw_with(&client(), p, token, file, content_type).await
}

/// [`upload_raw`] through `client`.
pub async fn upload_raw_with(
    client: &Client,
    p: &Platform,
    token: &str,
    file: &Path,
    content_type: &str,
) -> Value {
    let bytes = std::fs::read(file).expect("the test file");
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let r = client
        .post(p.url(&format!("/api/v1/jobs?name={name}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = r.status();
    let body: Value = r.json().await.expect("job JSON");
    assert_eq!(status, 202, "upload: {body}");
    body
}

/// Polls until the job is converting (at most a minute); `what` is what must happen while it
/// converts, named when the job finished too soon for it.
pub async fn wait_until_converting(p: &Platform, token: &str, id: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = job(p, token, id).await;
        if body["status"] == "converting" {
            return;
        }
        assert!(
            body["status"] != "done",
            "converted before {what}; make the input longer"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never started converting: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn job(p: &Platform, token: &str, id: &str) -> (u16, Value) {
    let r = client()
        .get(p.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("status");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON"))
}

/// The first page of the token's user's jobs (`GET /api/v1/jobs`).
pub async fn my_jobs(p: &Platform, token: &str) -> Value {
    let r = client()
        .get(p.url("/api/v1/jobs"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list jobs");
    assert_eq!(r.status(), 200, "list jobs");
    r.json().await.expect("a page of jobs")
}

/// Polls a job until it is done or failed; every state seen on the way, last one last.
pub async fn wait_for_end(p: &Platform, token: &str, id: &str, within: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let (status, body) = job(p, token, id).await;
        assert_eq!(status, 200, "job status: {body}");
        let state = body["status"].as_str().unwrap_or_default().to_owned();
        seen.push(body);
        if state == "done" || state == "failed" {
            return seen;
        }
        if tokio::time::Instant::now() > deadline {
            let log = p
                .converter
                .as_ref()
                .map(|c| c.log_text())
                .unwrap_or_default();
            panic!(
                "job {id} did not end within {within:?}; last: {:#}\nconverter log:\n{log}",
                seen.last().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Uploads a file that must convert, and waits until it has: the proof a platform is not stuck.
pub async fn upload_and_wait_until_done(
    p: &Platform,
    token: &str,
    file: &Path,
    content_type: &str,
) {
    let job = upload_raw(p, token, file, content_type).await;
    let id = job["id"].as_str().expect("the job's id");
    let seen = wait_for_end(p, token, id, Duration::from_secs(90)).await;
    assert_eq!(seen.last().expect("a state")["status"], "done");
}

/// The course's `fid`: the 24-hex-digit mp3 id the email gives.
pub fn fid_in(text: &str) -> Option<String> {
    let (_, after) = text.split_once("fid=")?;
    let fid: String = after.chars().take_while(char::is_ascii_hexdigit).collect();
    (fid.len() == 24).then_some(fid)
}

/// What the storage side holds for a platform: video files, video chunks, converter job states.
pub async fn stored(p: &Platform) -> (u64, u64, u64) {
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
    (
        count("videos.files").await,
        count("videos.chunks").await,
        count("jobs").await,
    )
}

/// Rows (as text) that `sql` selects in the gateway's database, or none for a statement.
pub async fn gateway_sql(p: &Platform, sql: &str) -> Vec<Vec<String>> {
    use mysql_async::prelude::Queryable;
    let pool = p.gateway_db.pool().expect("pool");
    let mut conn = pool.get_conn().await.expect("connection");
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.expect(sql);
    drop(conn);
    pool.disconnect().await.ok();
    rows.into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => "NULL".to_owned(),
                    mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => other.as_sql(true),
                })
                .collect()
        })
        .collect()
}

/// Every job row the gateway holds, visible or still pending.
pub async fn gateway_job_rows(p: &Platform) -> u64 {
    let rows = gateway_sql(p, "SELECT COUNT(*) FROM jobs").await;
    rows[0][0].parse().expect("a count")
}

/// Polls until the gateway and storage hold nothing of any upload, or fails naming what stayed.
pub async fn wait_until_nothing_is_stored(p: &Platform, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = gateway_job_rows(p).await;
        let (files, chunks, states) = stored(p).await;
        if (rows, files, chunks, states) == (0, 0, 0, 0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {rows} job rows, {files} video files, {chunks} chunks, {states} job states"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// tus: `Upload-Metadata` from key/value pairs.
pub fn tus_metadata(pairs: &[(&str, &str)]) -> String {
    use base64::Engine;
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// tus creation (`POST /api/v1/uploads`); the raw answer.
pub async fn tus_begin(
    p: &Platform,
    token: &str,
    length: u64,
    metadata: &str,
) -> reqwest::Response {
    client()
        .post(p.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata)
        .send()
        .await
        .expect("tus creation")
}

/// Begins an upload of `file` that must be accepted; its path (`/api/v1/uploads/{id}`).
pub async fn tus_begun(p: &Platform, token: &str, file: &Path, filetype: &str) -> String {
    let len = std::fs::metadata(file).expect("the test file").len();
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let r = tus_begin(
        p,
        token,
        len,
        &tus_metadata(&[("filename", name), ("filetype", filetype)]),
    )
    .await;
    assert_eq!(
        r.status(),
        201,
        "tus creation: {}",
        r.text().await.unwrap_or_default()
    );
    r.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned()
}

/// A tus piece (`PATCH`); the raw answer.
pub async fn tus_patch(
    p: &Platform,
    token: &str,
    upload: &str,
    offset: u64,
    piece: impl Into<reqwest::Body>,
) -> reqwest::Response {
    client()
        .patch(p.url(upload))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(piece)
        .send()
        .await
        .expect("tus piece")
}

/// tus `HEAD`: the status and, when found, the offset.
pub async fn tus_offset(p: &Platform, token: &str, upload: &str) -> (u16, Option<u64>) {
    let r = client()
        .head(p.url(upload))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .expect("tus HEAD");
    let offset = r
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (r.status().as_u16(), offset)
}

/// tus termination (`DELETE`): the status.
pub async fn tus_end(p: &Platform, token: &str, upload: &str) -> u16 {
    client()
        .delete(p.url(upload))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .expect("tus DELETE")
        .status()
        .as_u16()
}
