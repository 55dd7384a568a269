//! What the end-to-end tests share: test media, accounts, polling a job, counting samples.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};
use vid2mp3_test_support::Platform;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// A temp dir removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("vid2mp3-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs (scripts/services installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A video with a stereo tone: MPEG-4 video + Opus audio in Matroska (what a phone or a
/// screen recorder hands over), `seconds` long.
pub fn make_mkv(path: &Path, seconds: u32) {
    let d = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=160x120:rate=15:d={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=48000:d={d}"),
        "-c:v",
        "mpeg4",
        "-q:v",
        "15",
        "-c:a",
        "libopus",
        "-b:a",
        "96k",
        path.to_str().expect("utf-8 path"),
    ]);
}

/// Audio only (AAC in MP4), for long jobs that must be quick to make.
pub fn make_m4a(path: &Path, seconds: u32) {
    let d = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=44100:d={d}"),
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        path.to_str().expect("utf-8 path"),
    ]);
}

/// Samples per channel ffmpeg decodes from `file` as stereo (for an mp3 it applies the LAME
/// tag's delay and padding, so this is the playable length).
pub fn decoded_samples(file: &Path) -> u64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-vn", "-ac", "2", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg cannot decode {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len() as u64 / 4
}

pub async fn sign_up(p: &Platform, email: &str) {
    let r = client()
        .post(p.url("/api/v1/users"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("sign up");
    assert_eq!(
        r.status(),
        201,
        "sign up: {}",
        r.text().await.unwrap_or_default()
    );
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

/// Uploads a file as a raw body; the job JSON.
pub async fn upload_raw(p: &Platform, token: &str, file: &Path, content_type: &str) -> Value {
    let bytes = std::fs::read(file).expect("the test file");
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("upload");
    let r = client()
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

/// The course's `fid`: the 24-hex-digit mp3 id the email gives.
pub fn fid_in(text: &str) -> Option<String> {
    let (_, after) = text.split_once("fid=")?;
    let fid: String = after.chars().take_while(char::is_ascii_hexdigit).collect();
    (fid.len() == 24).then_some(fid)
}
