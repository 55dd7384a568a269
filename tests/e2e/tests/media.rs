//! Through the gateway and the converter's GridFS job: an upload asking for loudness levelling
//! gives a levelled mp3 tagged with the video's title, chapters and a cover frame; a bad
//! loudness value is refused before anything is stored.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use vid2mp3_test_support::PlatformBuilder;
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, decoded_samples, ebur128, id3_tag};

/// A quiet screen recording: MP4 with mpeg4 video and AAC audio about 25 LU under speech level,
/// a title, an artist and three chapters (the fast path, so the GridFS job copies the video to a
/// file for the cover frame before decoding).
fn make_quiet_lecture(scratch: &Scratch) -> std::path::PathBuf {
    let meta = scratch.path("meta.txt");
    let mut text = String::from(";FFMETADATA1\ntitle=Quiet Lecture\nartist=Ada Lovelace\n");
    for i in 0..3 {
        text.push_str(&format!(
            "[CHAPTER]\nTIMEBASE=1/1000\nSTART={}\nEND={}\ntitle=Section {}\n",
            i * 2000,
            (i + 1) * 2000,
            i + 1
        ));
    }
    std::fs::write(&meta, text).unwrap();
    let video = scratch.path("quiet lecture.mp4");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=15:d=6"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=exprs='0.03*(0.6+0.4*sin(2*PI*0.5*t))*(0.6*sin(2*PI*220*t)+0.4*sin(2*PI*880*t))':s=48000:d=6",
        ])
        .arg("-i")
        .arg(&meta)
        .args(["-map", "0:v", "-map", "1:a", "-map_metadata", "2", "-map_chapters", "2"])
        .args(["-c:v", "mpeg4", "-q:v", "15", "-c:a", "aac", "-b:a", "96k"])
        .arg(&video)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    video
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_with_loudness_gives_a_levelled_tagged_mp3() {
    let (p, token) = platform_with_user(PlatformBuilder::new()).await;
    let scratch = Scratch::new();
    let video = make_quiet_lecture(&scratch);
    let before = ebur128(&video);
    assert!(before.integrated_lufs < -35.0, "{before:?}");
    let bytes = std::fs::read(&video).unwrap();

    // A bad value is refused with the choices, and nothing is stored.
    let r = client()
        .post(p.url("/api/v1/jobs?name=x.mp4&loudness=-3"))
        .bearer_auth(&token)
        .header("content-type", "video/mp4")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("speech (-16 LUFS)"), "{body}");
    assert_eq!(
        my_jobs(&p, &token).await["jobs"].as_array().map(Vec::len),
        Some(0)
    );

    let r = client()
        .post(p.url("/api/v1/jobs?name=quiet%20lecture.mp4&loudness=speech"))
        .bearer_auth(&token)
        .header("content-type", "video/mp4")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["loudness_lufs"], -16, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let seen = wait_for_end(&p, &token, &id, Duration::from_secs(120)).await;
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "done", "{last:#}");
    assert_eq!(last["loudness_lufs"], -16);

    let r = client()
        .get(p.url(&format!("/api/v1/jobs/{id}/mp3")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mp3 = scratch.path("levelled.mp3");
    std::fs::write(&mp3, r.bytes().await.unwrap()).unwrap();

    let after = ebur128(&mp3);
    assert!((after.integrated_lufs + 16.0).abs() <= 1.0, "{after:?}");
    assert!(after.true_peak_dbtp <= -1.0, "{after:?}");
    let tag = id3_tag(&mp3);
    assert_eq!(tag["text"]["TIT2"], "Quiet Lecture", "{tag}");
    assert_eq!(tag["text"]["TPE1"], "Ada Lovelace");
    let chapters = tag["chapters"].as_array().unwrap();
    assert_eq!(chapters.len(), 3);
    assert_eq!(chapters[2]["title"], "Section 3");
    assert_eq!(
        (chapters[2]["start"].as_u64(), chapters[2]["end"].as_u64()),
        (Some(4000), Some(6000))
    );
    // The cover frame needs the video as a file: the GridFS job spools it first.
    assert_eq!(tag["pictures"][0]["mime"], "image/jpeg", "{tag}");
    assert_eq!(decoded_samples(&mp3), 6 * 48_000);
}
