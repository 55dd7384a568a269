//! The web page at `/`: its files and headers over HTTP, then the page itself driven in headless
//! Debian Chromium (playwright-core, `tests/web/page-flow.mjs`) against the whole platform:
//! sign up, confirm the address from the emailed link (Mailpit), log in, upload (throttled, so the progress bars must move through values between 0
//! and 100), watch each job converting and then done, download the mp3, delete, a resumable upload
//! reloaded mid-way and resumed from the server's offset (and one discarded), log out, and delete
//! the account (refused without the box ticked and with a wrong password, then done).
//!
//! The browser test needs node, `/usr/bin/chromium` and `npm ci` in `tests/web/`; scripts/test
//! installs them (`scripts/install browser`). Missing tools fail the
//! test with what to run; they never make it pass silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::client;
use vid2mp3_test_support::PlatformBuilder;

#[tokio::test]
async fn the_page_and_its_files_are_served_with_strict_headers() {
    let p = PlatformBuilder::new()
        .start()
        .await
        .expect("the platform starts");
    for (path, ty, marker) in [
        ("/", "text/html; charset=utf-8", "<!doctype html>"),
        ("/app.css", "text/css; charset=utf-8", ":root"),
        ("/app.js", "text/javascript; charset=utf-8", "'use strict'"),
    ] {
        let r = client().get(p.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        let h = r.headers().clone();
        let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert_eq!(header("content-type"), ty, "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert!(
            header("content-security-policy").starts_with("default-src 'self';"),
            "{path}: {}",
            header("content-security-policy")
        );
        let etag = header("etag").to_owned();
        let body = r.text().await.unwrap();
        assert!(body.contains(marker), "{path} is the right file");
        assert_eq!(
            h.get("content-length").and_then(|v| v.to_str().ok()),
            Some(body.len().to_string().as_str())
        );

        // The browser's copy is current: 304 with no body.
        let r = client()
            .get(p.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path} revalidates");
        assert!(r.bytes().await.unwrap().is_empty());

        // HEAD: the headers without the body.
        let r = client().head(p.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
        assert_eq!(
            r.headers().get("content-type").unwrap().to_str().unwrap(),
            ty
        );
    }
    let r = client().post(p.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers().get("allow").unwrap(), "GET");
}

/// The folder of the browser test's script and its node_modules.
fn web_test_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

/// Screenshots and the downloaded mp3: `$VID2MP3_ARTIFACTS`, else `.data/artifacts` in the
/// checkout (git-ignored).
fn artifacts_dir() -> PathBuf {
    std::env::var_os("VID2MP3_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/artifacts"))
}

/// What is missing to run the browser test, in words with the fix; empty when nothing is.
fn missing_browser_tools(node: &str, chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let node_runs = Command::new(node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_runs {
        missing.push(format!("node ({node}) does not run"));
    }
    if !chromium.is_file() {
        missing.push(format!("{} is not installed", chromium.display()));
    }
    for module in ["playwright-core", "axe-core"] {
        if !web_test_dir()
            .join("node_modules")
            .join(module)
            .join("package.json")
            .is_file()
        {
            missing.push(format!(
                "{module} is not installed in {}",
                web_test_dir().display()
            ));
        }
    }
    missing
}

/// A video that is `seconds` long but small (a 32x24 picture once a second, 8 kbit/s Opus
/// stereo: about 1.4 KB per second): its upload is quick even when throttled, and its
/// conversion lasts seconds, so the page has time to show the job converting.
fn make_long_small_mkv(path: &Path, seconds: u32) {
    let d = seconds.to_string();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=size=32x24:rate=1:d={d}"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=48000:d={d}"),
        ])
        .args([
            "-c:v", "mpeg4", "-q:v", "31", "-c:a", "libopus", "-b:a", "8k",
        ])
        .arg(path)
        .output()
        .expect("ffmpeg runs (scripts/services installs it)");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_page_in_headless_chromium_from_sign_up_to_download() {
    let node = std::env::var("VID2MP3_NODE").unwrap_or_else(|_| "node".to_owned());
    let chromium = PathBuf::from(
        std::env::var("VID2MP3_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
    );
    let missing = missing_browser_tools(&node, &chromium);
    assert!(
        missing.is_empty(),
        "the browser test cannot run: {}.\nInstall them with: \
         scripts/install browser (scripts/test does this before cargo test)",
        missing.join("; ")
    );

    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("the platform starts (with the converter)");
    let scratch =
        std::env::temp_dir().join(format!("vid2mp3-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&scratch).unwrap();
    let video = scratch.join("clip.mkv");
    make_long_small_mkv(&video, 300);
    // Larger than the page's 8 MiB upload piece: the resumed upload goes on after a whole piece.
    let big_video = scratch.join("big clip.mkv");
    vid2mp3_test_support::test_media::make_large_mkv(&big_video, 12 * 1024 * 1024);
    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let artifacts = artifacts.canonicalize().unwrap();

    let base_url = p.url("").trim_end_matches('/').to_owned();
    let email = p.mailbox.address().to_owned();
    let mailpit = p.mailbox.mailpit_url().to_owned();
    // Blocking is fine: the platform serves from its own runtime threads meanwhile.
    let out = tokio::task::spawn_blocking({
        let (node, video, artifacts) = (node.clone(), video.clone(), artifacts.clone());
        let big_video = big_video.clone();
        move || {
            Command::new(node)
                .arg(web_test_dir().join("page-flow.mjs"))
                .arg(&base_url)
                .arg(&video)
                .arg(&artifacts)
                .arg(&big_video)
                .env("VID2MP3_CHROMIUM", &chromium)
                .env("VID2MP3_TEST_EMAIL", &email)
                .env("VID2MP3_MAILPIT_URL", &mailpit)
                .current_dir(web_test_dir())
                .output()
                .expect("node starts")
        }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!(
        "web page artifacts (screenshots, the downloaded mp3): {}",
        artifacts.display()
    );
    if !out.status.success() {
        let log = p
            .converter
            .as_ref()
            .map(|c| c.log_text())
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "the page test failed ({}):\n{stdout}\n{stderr}\nthe end of the converter's log:\n{}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert!(artifacts.join("web-page.png").is_file());
    assert!(artifacts.join("web-page-phone.png").is_file());
}
