//! The built `vid2mp3` binary against the whole platform, started in-process per test.

mod common;

use std::time::Duration;

use common::*;
use vid2mp3_test_support::PlatformBuilder;

/// signup → login (0600 credentials) → upload --wait → the mp3 decodes; jobs/status/delete with
/// --json; and the exit codes for a wrong password, an unknown job, a non-media file and no
/// session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_upload_wait_list_and_delete() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let cli = Cli::new(&scratch.0, &p.url(""));
    let email = p.mailbox.address().to_owned();
    cli.sign_up_and_log_in(&email).await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cli.credentials_file()), 0o600);
        assert_eq!(mode(cli.credentials_file().parent().unwrap()), 0o700);
    }

    // A wrong password is exit 2, with the server's message.
    let wrong = cli
        .run(
            &["login", "--email", &email, "--password-stdin"],
            Some("not the password at all\n"),
        )
        .await;
    assert_eq!(wrong.code, 2, "{wrong:#?}");
    assert!(wrong.stderr.contains("error:"), "{wrong:#?}");

    // Upload and wait: the mp3 lands in -o DIR named after the video, and decodes.
    let video = scratch.path("holiday clip.mkv");
    make_mkv(&video, 3);
    let out_dir = scratch.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let up = cli
        .run(
            &[
                "--json",
                "upload",
                video.to_str().unwrap(),
                "--wait",
                "-o",
                out_dir.to_str().unwrap(),
            ],
            None,
        )
        .await
        .ok();
    let job = up.json();
    assert_eq!(job["status"], "done", "{job:#}");
    let id = job["id"].as_str().unwrap().to_owned();
    let mp3 = out_dir.join("holiday clip.mp3");
    assert!(mp3.is_file(), "{up:#?}");
    assert!(!out_dir.join("holiday clip.mp3.part").exists());
    assert_eq!(decoded_samples(&mp3), decoded_samples(&video));
    assert_eq!(
        std::fs::metadata(&mp3).unwrap().len(),
        job["mp3_size_bytes"].as_u64().unwrap()
    );

    // jobs / status with --json are the API's JSON.
    let page = cli.run(&["--json", "jobs"], None).await.ok().json();
    assert_eq!(page["jobs"][0]["id"], id.as_str(), "{page:#}");
    let all = cli
        .run(&["--json", "jobs", "--all", "--limit", "1"], None)
        .await
        .ok()
        .json();
    assert_eq!(all["jobs"].as_array().unwrap().len(), 1, "{all:#}");
    assert!(all["next_cursor"].is_null());
    let status = cli.run(&["--json", "status", &id], None).await.ok().json();
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["status"], "done");
    // The human table names the job.
    let table = cli.run(&["jobs"], None).await.ok();
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("holiday clip.mkv"),
        "{table:#?}"
    );

    // A file that is not media is refused: exit 4.
    let notes = scratch.path("notes.txt");
    std::fs::write(
        &notes,
        "these are not the frames you are looking for\n".repeat(100),
    )
    .unwrap();
    let refused = cli.run(&["upload", notes.to_str().unwrap()], None).await;
    assert_eq!(refused.code, 4, "{refused:#?}");

    // Delete, then the job is unknown: exit 3 for status and delete.
    let deleted = cli.run(&["--json", "delete", &id], None).await.ok().json();
    assert_eq!(deleted["deleted"], true);
    let gone = cli.run(&["status", &id], None).await;
    assert_eq!(gone.code, 3, "{gone:#?}");
    let unknown = cli
        .run(&["delete", "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11"], None)
        .await;
    assert_eq!(unknown.code, 3, "{unknown:#?}");

    // After logout: exit 2, and the message says to log in.
    cli.run(&["logout"], None).await.ok();
    let out = cli.run(&["jobs"], None).await;
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("vid2mp3 login"), "{out:#?}");

    // No server at all: exit 5.
    let nowhere = cli
        .run(
            &[
                "--server",
                "http://127.0.0.1:9",
                "login",
                "--email",
                &email,
                "--password-stdin",
            ],
            Some("x\n"),
        )
        .await;
    assert_eq!(nowhere.code, 5, "{nowhere:#?}");
}

/// A download cut off midway is completed from its `.part` with a Range request, byte for
/// byte; a stale `.part` larger than the mp3 is thrown away and the download starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_with_a_range_request() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let proxy = RecordingProxy::start(&p.url("")).await;
    // Through the proxy, so the test sees the requests the CLI makes.
    let cli = Cli::new(&scratch.0, &proxy.url);
    cli.sign_up_and_log_in(p.mailbox.address()).await;
    let video = scratch.path("talk.mkv");
    make_mkv(&video, 4);
    let job = cli
        .run(&["--json", "upload", video.to_str().unwrap()], None)
        .await
        .ok()
        .json();
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let s = cli.run(&["--json", "status", &id], None).await.ok().json();
        match s["status"].as_str() {
            Some("done") => break,
            Some("failed") => panic!("the conversion failed: {s:#}"),
            _ if tokio::time::Instant::now() > deadline => panic!("not done in time: {s:#}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }

    // The server's mp3, whole.
    let http = reqwest::Client::new();
    let whole = http
        .get(p.url(&format!("/api/v1/jobs/{id}/mp3")))
        .bearer_auth(cli.token())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(whole.len() > 2000, "{} bytes", whole.len());

    // An earlier attempt got the first N bytes (fetched with a Range request of our own).
    let n = whole.len() / 3;
    let first = http
        .get(p.url(&format!("/api/v1/jobs/{id}/mp3")))
        .bearer_auth(cli.token())
        .header("range", format!("bytes=0-{}", n - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 206);
    let first = first.bytes().await.unwrap();
    let target = scratch.path("resumed.mp3");
    let part = scratch.path("resumed.mp3.part");
    std::fs::write(&part, &first).unwrap();

    proxy.clear();
    let done = cli
        .run(
            &["--json", "download", &id, "-o", target.to_str().unwrap()],
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(done["resumed_from"], n as u64, "{done:#}");
    assert_eq!(done["bytes"], whole.len() as u64);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        whole.as_ref(),
        "byte-identical"
    );
    assert!(!part.exists());
    let sent = proxy.sent_text();
    assert!(
        sent.contains(&format!("range: bytes={n}-\r\n")),
        "the CLI asked only for the rest: {sent}"
    );

    // The network fails halfway through a download: exit 5, the .part keeps what arrived, and
    // the next run completes it from there.
    std::fs::remove_file(&target).unwrap();
    let cutting = RecordingProxy::start_cutting(&p.url(""), Some(whole.len() as u64 / 2)).await;
    // Another server URL, so another session in the same credentials file.
    let cut_cli = Cli::new(&scratch.0, &cutting.url);
    cut_cli
        .run(
            &["login", "--email", p.mailbox.address(), "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await
        .ok();
    assert_eq!(cut_cli.token().split('.').count(), 3);
    assert_eq!(
        cli.token().split('.').count(),
        3,
        "the first server's session is kept"
    );
    let cut = cut_cli
        .run(&["download", &id, "-o", target.to_str().unwrap()], None)
        .await;
    assert_eq!(cut.code, 5, "{cut:#?}");
    assert!(
        cut.stderr.contains("run the same command again"),
        "{cut:#?}"
    );
    assert!(!target.exists());
    let kept = std::fs::metadata(&part).expect("the .part is kept").len();
    assert!(kept > 0 && kept < whole.len() as u64, "{kept}");
    assert_eq!(std::fs::read(&part).unwrap(), &whole[..kept as usize]);
    let done = cli
        .run(
            &["--json", "download", &id, "-o", target.to_str().unwrap()],
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(done["resumed_from"], kept, "{done:#}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        whole.as_ref(),
        "byte-identical"
    );

    // A stale .part larger than the mp3 (the server answers 416): restarted from zero.
    std::fs::remove_file(&target).unwrap();
    std::fs::write(&part, vec![0xAAu8; whole.len() + 5000]).unwrap();
    let done = cli
        .run(
            &["--json", "download", &id, "-o", target.to_str().unwrap()],
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(done["resumed_from"], 0, "{done:#}");
    assert_eq!(std::fs::read(&target).unwrap(), whole.as_ref());
    assert!(!part.exists());

    // A .part that already holds every byte just becomes the file.
    std::fs::remove_file(&target).unwrap();
    std::fs::write(&part, &whole).unwrap();
    let done = cli
        .run(
            &["--json", "download", &id, "-o", target.to_str().unwrap()],
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(std::fs::read(&target).unwrap(), whole.as_ref(), "{done:#}");
}
