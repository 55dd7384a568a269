//! The built `vid2mp3` binary against the whole platform, started in-process per test.

mod common;

use std::time::Duration;

use common::*;

/// signup → login (0600 credentials) → upload --wait → the mp3 decodes; jobs/status/delete with
/// --json; and the exit codes for a wrong password, an unknown job, a non-media file and no
/// session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_upload_wait_list_and_delete() {
    let (p, scratch, cli, email) = platform_with_signed_in_cli().await;

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

    // An account not confirmed yet cannot log in, and is told how to go on; another link can
    // be asked for, and a link that is cut off is a usage error that sends nothing.
    let late = p.mailbox.address_for("late");
    let stdin = format!("{PASSWORD}\n");
    let creds = |command: &'static str| [command, "--email", late.as_str(), "--password-stdin"];
    let signed = cli.run(&creds("signup"), Some(&stdin)).await.ok();
    assert!(signed.stderr.contains("Check your inbox"), "{signed:#?}");
    let early = cli.run(&creds("login"), Some(&stdin)).await;
    assert_eq!(early.code, 2, "{early:#?}");
    assert!(
        early.stderr.contains("email_not_confirmed")
            && early.stderr.contains("resend-confirmation"),
        "{early:#?}"
    );
    cli.run(&creds("resend-confirmation"), Some(&stdin))
        .await
        .ok();
    let cut = cli
        .run(&["confirm", "http://127.0.0.1:3000/confirm"], None)
        .await;
    assert_eq!(cut.code, 1, "{cut:#?}");
    cli.confirm(&p, &late, &[]).await;
    let again = p.confirmation_link(&late).await.expect("the second link");
    let used = cli.run(&["confirm", &again], None).await;
    assert_eq!(
        used.code, 4,
        "a link made useless by the first one: {used:#?}"
    );
    cli.run(&creds("login"), Some(&stdin)).await.ok();
    // Back to the first user's session for the rest.
    cli.run(
        &["login", "--email", &email, "--password-stdin"],
        Some(&stdin),
    )
    .await
    .ok();

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
    // The refused upload is not kept for resuming.
    assert!(cli.upload_records().is_empty(), "{refused:#?}");

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

/// delete-account: refused without a confirmation and with a wrong password (nothing deleted),
/// then deletes the account and forgets the session; the password logs in no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_account_asks_first_and_forgets_the_session() {
    let (_p, _scratch, cli, email) = platform_with_signed_in_cli().await;
    let stdin = format!("{PASSWORD}\n");

    let unconfirmed = cli.run(&["delete-account"], Some("no\n")).await;
    assert_eq!(unconfirmed.code, 1, "{unconfirmed:#?}");
    assert!(
        unconfirmed.stderr.contains("nothing was deleted"),
        "{unconfirmed:#?}"
    );
    let no_yes = cli
        .run(&["delete-account", "--password-stdin"], Some(&stdin))
        .await;
    assert_eq!(no_yes.code, 1, "{no_yes:#?}");
    let wrong = cli
        .run(
            &["delete-account", "--yes", "--password-stdin"],
            Some("not the password\n"),
        )
        .await;
    assert_eq!(wrong.code, 2, "{wrong:#?}");
    assert!(wrong.stderr.contains("nothing was deleted"), "{wrong:#?}");
    cli.run(&["jobs"], None).await.ok();

    let deleted = cli
        .run(
            &["--json", "delete-account", "--yes", "--password-stdin"],
            Some(&stdin),
        )
        .await
        .ok()
        .json();
    assert_eq!(deleted["account_deleted"], true, "{deleted:#}");
    let after = cli.run(&["jobs"], None).await;
    assert_eq!(after.code, 2, "{after:#?}");
    assert!(after.stderr.contains("vid2mp3 login"), "{after:#?}");
    let login = cli
        .run(
            &["login", "--email", &email, "--password-stdin"],
            Some(&stdin),
        )
        .await;
    assert_eq!(login.code, 2, "{login:#?}");
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
    cli.sign_up_and_log_in(&p, p.mailbox.address()).await;
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
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let first = first.bytes().await.unwrap();
    let target = scratch.path("resumed.mp3");
    // With the record beside it that names the job and the mp3's ETag, as the CLI writes it.
    let part = plant_part(&target, &first, Some((&id, &etag)));

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
    assert!(!meta_of(&target).exists(), "the record goes with the .part");
    let sent = proxy.sent_text();
    assert!(
        sent.contains(&format!("range: bytes={n}-\r\n")),
        "the CLI asked only for the rest: {sent}"
    );
    assert!(
        sent.contains(&format!("if-range: {}\r\n", etag.to_ascii_lowercase())),
        "only of the same mp3: {sent}"
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
    let origin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(meta_of(&target)).expect("its record")).unwrap();
    assert_eq!(origin, serde_json::json!({"job": id, "etag": etag}));
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
    plant_part(
        &target,
        &vec![0xAAu8; whole.len() + 5000],
        Some((&id, &etag)),
    );
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
    plant_part(&target, &whole, Some((&id, &etag)));
    let done = cli
        .run(
            &["--json", "download", &id, "-o", target.to_str().unwrap()],
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(std::fs::read(&target).unwrap(), whole.as_ref(), "{done:#}");
    assert_eq!(done["resumed_from"], whole.len() as u64, "{done:#}");
    assert!(!part.exists() && !meta_of(&target).exists());
}

/// A `.part` left by another download of the same file name is never extended: another job's
/// interrupted download, a `.part` with no record of its origin, and one whose recorded ETag is
/// not the mp3's any more (the server answers the If-Range request with the whole mp3) are each
/// thrown away with a message, and the result is byte for byte the right mp3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_file_of_another_download_is_discarded_not_extended() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let proxy = RecordingProxy::start(&p.url("")).await;
    let cli = Cli::new(&scratch.0, &proxy.url);
    cli.sign_up_and_log_in(&p, p.mailbox.address()).await;

    // Two different videos that are both called talk.mkv: both mp3s are talk.mp3.
    let mut ids = Vec::new();
    for (dir, seconds) in [("a", 4), ("b", 2)] {
        std::fs::create_dir_all(scratch.path(dir)).unwrap();
        let video = scratch.path(dir).join("talk.mkv");
        make_mkv(&video, seconds);
        let job = cli
            .run(&["--json", "upload", video.to_str().unwrap()], None)
            .await
            .ok()
            .json();
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    let (a, b) = (ids[0].clone(), ids[1].clone());
    cli.wait_done(&a).await;
    cli.wait_done(&b).await;
    let (whole_a, etag_a) = server_mp3(&p.url(""), &cli.token(), &a).await;
    let (whole_b, etag_b) = server_mp3(&p.url(""), &cli.token(), &b).await;
    assert_ne!(etag_a, etag_b);
    assert_ne!(whole_a, whole_b);
    // Where `download JOB` puts either mp3 by default.
    let target = scratch.path("talk.mp3");
    let part = part_of(&target);

    // 1. Job A's download breaks off halfway and leaves talk.mp3.part; then job B is asked for.
    let cutting = RecordingProxy::start_cutting(&p.url(""), Some(whole_a.len() as u64 / 2)).await;
    let cut_cli = Cli::new(&scratch.0, &cutting.url);
    cut_cli
        .run(
            &["login", "--email", p.mailbox.address(), "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await
        .ok();
    let cut = cut_cli.run(&["download", &a], None).await;
    assert_eq!(cut.code, 5, "{cut:#?}");
    let kept = std::fs::read(&part).expect("A's .part is kept");
    assert!(
        !kept.is_empty() && kept.len() < whole_b.len(),
        "{}",
        kept.len()
    );
    proxy.clear();
    let done = cli.run(&["--json", "download", &b], None).await.ok();
    assert!(
        done.stderr.contains("Discarding") && done.stderr.contains(&format!("from job {a}")),
        "says why: {done:#?}"
    );
    assert_eq!(done.json()["resumed_from"], 0, "{done:#?}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        whole_b,
        "B's mp3, not A's start"
    );
    assert!(!part.exists() && !meta_of(&target).exists());
    assert!(
        !proxy.sent_text().contains("range:"),
        "nothing of A's .part was resumed: {}",
        proxy.sent_text()
    );

    // 2. A .part that nothing records the origin of (any other program's, or a copy).
    std::fs::remove_file(&target).unwrap();
    plant_part(&target, &whole_a[..whole_a.len() / 3], None);
    let done = cli.run(&["--json", "download", &b], None).await.ok();
    assert!(
        done.stderr
            .contains("nothing records which download it is from"),
        "{done:#?}"
    );
    assert_eq!(done.json()["resumed_from"], 0);
    assert_eq!(std::fs::read(&target).unwrap(), whole_b);
    assert!(!part.exists());

    // 3. A record of job B, but of another mp3 (A's ETag): the If-Range request gets the whole
    //    mp3 from the gateway, and the .part is started over.
    std::fs::remove_file(&target).unwrap();
    plant_part(&target, &whole_a[..whole_a.len() / 3], Some((&b, &etag_a)));
    proxy.clear();
    let done = cli.run(&["--json", "download", &b], None).await.ok();
    let sent = proxy.sent_text();
    assert!(
        sent.contains(&format!("range: bytes={}-\r\n", whole_a.len() / 3))
            && sent.contains(&format!("if-range: {etag_a}\r\n")),
        "asked for the rest only if it is still A's mp3: {sent}"
    );
    assert!(
        done.stderr.contains("the server sent the whole mp3"),
        "{done:#?}"
    );
    assert_eq!(done.json()["resumed_from"], 0);
    assert_eq!(std::fs::read(&target).unwrap(), whole_b);
    assert!(!part.exists() && !meta_of(&target).exists());
}

/// `upload A B` uploads each file (one JSON document per job with --json), keeps going past a
/// file the server refuses (exit 4 at the end), and `upload --wait` of several files downloads
/// each mp3 into -o DIR. `download` names the mp3 after the video in the current directory by
/// default, puts it in DIR for `-o DIR`, and writes exactly PATH for `-o PATH`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_files_in_one_upload_and_where_downloads_land() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let mut cli = Cli::new(&scratch.0, &p.url(""));
    let cwd = scratch.path("work");
    std::fs::create_dir_all(&cwd).unwrap();
    cli.cwd = cwd.clone();
    cli.sign_up_and_log_in(&p, p.mailbox.address()).await;
    let video = |name: &str, seconds| {
        let path = scratch.path(name);
        make_mkv(&path, seconds);
        path.to_str().unwrap().to_owned()
    };
    let (first, second) = (video("first.mkv", 2), video("second.mkv", 3));
    let notes = scratch.path("notes.txt");
    std::fs::write(&notes, "not a video at all\n".repeat(200)).unwrap();

    // Three files in one command: two jobs, one refusal in the middle that stops nothing.
    let up = cli
        .run(
            &["--json", "upload", &first, notes.to_str().unwrap(), &second],
            None,
        )
        .await;
    assert_eq!(up.code, 4, "the refusal decides the exit code: {up:#?}");
    assert!(up.stderr.contains("notes.txt"), "{up:#?}");
    let jobs = up.json_lines();
    assert_eq!(jobs.len(), 2, "one JSON line per uploaded file: {up:#?}");
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| j["original_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first.mkv", "second.mkv"]);
    let ids: Vec<String> = jobs
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(ids[0], ids[1]);
    let listed = cli.run(&["--json", "jobs"], None).await.ok().json();
    let listed: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].as_str(), ids[0].as_str()], "newest first");
    for id in &ids {
        cli.wait_done(id).await;
    }

    // download without -o: <video name>.mp3 in the current directory.
    let done = cli.run(&["--json", "download", &ids[0]], None).await.ok();
    assert_eq!(done.json()["path"], "first.mp3", "{done:#?}");
    let (mp3, _) = server_mp3(&p.url(""), &cli.token(), &ids[0]).await;
    assert_eq!(std::fs::read(cwd.join("first.mp3")).unwrap(), mp3);
    // -o DIR: the same name inside DIR.
    let out_dir = scratch.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    cli.run(
        &["download", &ids[1], "-o", out_dir.to_str().unwrap()],
        None,
    )
    .await
    .ok();
    let (mp3, _) = server_mp3(&p.url(""), &cli.token(), &ids[1]).await;
    assert_eq!(std::fs::read(out_dir.join("second.mp3")).unwrap(), mp3);
    assert!(!cwd.join("second.mp3").exists());
    // -o FILE: exactly there.
    let file = out_dir.join("renamed.mp3");
    cli.run(&["download", &ids[1], "-o", file.to_str().unwrap()], None)
        .await
        .ok();
    assert_eq!(std::fs::read(&file).unwrap(), mp3);

    // upload --wait of two files: each converted, and each mp3 in -o DIR under its own name.
    let waited_dir = scratch.path("waited");
    std::fs::create_dir_all(&waited_dir).unwrap();
    let (third, fourth) = (video("third.mkv", 2), video("fourth.mkv", 2));
    let waited = cli
        .run(
            &[
                "--json",
                "upload",
                "--wait",
                &third,
                &fourth,
                "-o",
                waited_dir.to_str().unwrap(),
            ],
            None,
        )
        .await
        .ok();
    let jobs = waited.json_lines();
    assert_eq!(jobs.len(), 2, "{waited:#?}");
    for (job, name) in jobs.iter().zip(["third", "fourth"]) {
        assert_eq!(job["status"], "done", "{job:#}");
        assert_eq!(job["original_name"], format!("{name}.mkv"));
        let (mp3, _) = server_mp3(&p.url(""), &cli.token(), job["id"].as_str().unwrap()).await;
        assert_eq!(
            std::fs::read(waited_dir.join(format!("{name}.mp3"))).unwrap(),
            mp3
        );
    }
    // upload --wait without -o: into the current directory.
    let fifth = video("fifth.mkv", 2);
    cli.run(&["upload", "--wait", &fifth], None).await.ok();
    assert!(cwd.join("fifth.mp3").is_file());
}

/// The whole CLI flow over HTTPS, through a TLS-terminating proxy in front of the gateway that
/// accepts nothing but TLS: a server certificate nobody vouches for is refused (exit 5), and
/// with `--ca-cert` (or VID2MP3_CA_CERT) trusting it, sign-up, log-in, upload --wait, jobs and
/// download all work, every request travelling inside TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_over_https_with_a_private_ca() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let tls = TlsProxy::start(&p.url(""), &scratch.0).await;
    assert!(tls.url.starts_with("https://"));
    let mut cli = Cli::new(&scratch.0, &tls.url);
    let email = p.mailbox.address().to_owned();
    let stdin = format!("{PASSWORD}\n");
    let ca = tls.ca_file.to_str().unwrap().to_owned();

    // Not trusted: no request gets through, and the message names the certificate.
    let refused = cli
        .run(
            &["signup", "--email", &email, "--password-stdin"],
            Some(&stdin),
        )
        .await;
    assert_eq!(refused.code, 5, "{refused:#?}");
    assert!(
        refused.stderr.to_ascii_lowercase().contains("certificate"),
        "{refused:#?}"
    );
    assert_eq!(tls.handshakes(), 0);
    // The proxy notes the failed handshake in its own task: give it a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tls.refused() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_before = tls.refused();
    assert!(refused_before >= 1, "the proxy saw the refused handshake");
    // A file that holds no certificate is a usage error.
    let not_pem = scratch.path("not-a-cert.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let bad = cli
        .run(&["--ca-cert", not_pem.to_str().unwrap(), "jobs"], None)
        .await;
    assert_eq!(bad.code, 1, "{bad:#?}");
    assert!(bad.stderr.contains("no certificate"), "{bad:#?}");

    // Trusted with --ca-cert.
    let credentials = |command: &'static str| {
        [
            "--ca-cert",
            ca.as_str(),
            command,
            "--email",
            email.as_str(),
            "--password-stdin",
        ]
    };
    cli.run(&credentials("signup"), Some(&stdin)).await.ok();
    cli.confirm(&p, &email, &["--ca-cert", &ca]).await;
    cli.run(&credentials("login"), Some(&stdin)).await.ok();
    assert_eq!(
        cli.token().split('.').count(),
        3,
        "a session for the https URL"
    );
    let video = scratch.path("secure.mkv");
    make_mkv(&video, 2);
    let out_dir = scratch.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let job = cli
        .run(
            &[
                "--ca-cert",
                &ca,
                "--json",
                "upload",
                "--wait",
                video.to_str().unwrap(),
                "-o",
                out_dir.to_str().unwrap(),
            ],
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(job["status"], "done", "{job:#}");
    let id = job["id"].as_str().unwrap().to_owned();
    let (mp3, _) = server_mp3(&p.url(""), &cli.token(), &id).await;
    assert_eq!(std::fs::read(out_dir.join("secure.mp3")).unwrap(), mp3);

    // Trusted through the environment instead.
    cli.env.push(("VID2MP3_CA_CERT".to_owned(), ca.clone()));
    let page = cli.run(&["--json", "jobs"], None).await.ok().json();
    assert_eq!(page["jobs"][0]["id"], id.as_str());
    let target = scratch.path("again.mp3");
    cli.run(&["download", &id, "-o", target.to_str().unwrap()], None)
        .await
        .ok();
    assert_eq!(std::fs::read(&target).unwrap(), mp3);

    // Every one of those requests went through the TLS proxy, decrypted there: at least one
    // handshake for each of the six runs that got through (signup, confirm, login, upload, jobs,
    // download), and none refused since the first.
    assert!(tls.handshakes() >= 6, "{} handshakes", tls.handshakes());
    assert_eq!(tls.refused(), refused_before);
    let sent = tls.sent_text();
    for request in [
        "post /api/v1/users ",
        "post /api/v1/users/confirmation ",
        "post /api/v1/sessions ",
        // The upload is resumable (tus): created, then its bytes PATCHed.
        "post /api/v1/uploads ",
        &format!("patch /api/v1/uploads/{id} "),
        &format!("get /api/v1/jobs/{id} "),
        &format!("get /api/v1/jobs/{id}/mp3 "),
        "get /api/v1/jobs?",
    ] {
        assert!(
            sent.contains(request),
            "{request:?} went through TLS: {sent}"
        );
    }
}

/// webhook set → show → remove, with --json and without; a refused URL is exit 4 with the
/// server's reason, and leaves no webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_webhook() {
    let (_p, scratch, cli, _email) = platform_with_signed_in_cli().await;

    let refused = cli
        .run(&["webhook", "set", "https://169.254.169.254/latest"], None)
        .await;
    assert_eq!(refused.code, 4, "{refused:#?}");
    assert!(refused.stderr.contains("cloud metadata"), "{refused:#?}");
    let none = cli.run(&["webhook", "show"], None).await;
    assert_eq!(none.code, 3, "{none:#?}");

    let url = "https://hooks.example.com/vid2mp3";
    let set = cli.run(&["webhook", "set", url], None).await.ok();
    assert!(
        set.stdout.contains(url) && set.stdout.contains("whsec_"),
        "{set:#?}"
    );
    assert!(set.stderr.contains("not shown again"), "{set:#?}");
    let shown = cli
        .run(&["--json", "webhook", "show"], None)
        .await
        .ok()
        .json();
    assert_eq!(shown["url"], url);
    assert!(shown.get("secret").is_none(), "{shown}");
    let again = cli
        .run(&["--json", "webhook", "set", url], None)
        .await
        .ok()
        .json();
    assert!(
        again["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    cli.run(&["webhook", "remove"], None).await.ok();
    assert_eq!(cli.run(&["webhook", "show"], None).await.code, 3);

    // A job's own callback: refused before anything is sent for a private address; otherwise
    // its secret comes with the job, once.
    let video = scratch.path("hooked.mkv");
    make_mkv(&video, 1);
    let video = video.to_str().unwrap();
    let refused = cli
        .run(
            &["upload", "--callback-url", "https://10.0.0.1/x", video],
            None,
        )
        .await;
    assert_eq!(refused.code, 4, "{refused:#?}");
    assert!(refused.stderr.contains("private"), "{refused:#?}");
    let up = cli
        .run(
            &[
                "--json",
                "upload",
                "--callback-url",
                "https://hooks.example.com/x",
                video,
            ],
            None,
        )
        .await
        .ok();
    let jobs = up.json_lines();
    assert!(
        jobs[0]["callback_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{up:#?}"
    );
}

/// A CLI whose server is `proxy` (a throttled uplink in front of the platform), logged in
/// there as `email` in the same home as `cli`.
async fn cli_through(cli: &Cli, proxy_url: &str, email: &str) -> Cli {
    let slow = Cli::new(&cli.home, proxy_url);
    slow.run(
        &["login", "--email", email, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await
    .ok();
    slow
}

/// Starts `upload FILE` and kills the process (SIGKILL: no chance to tidy up) once its record
/// of the upload exists and the server has some of the bytes (`min_offset`, 0 for "the record
/// alone"); then waits until the server's offset stops moving. The record's upload URL and the
/// server's offset.
async fn kill_upload_midway(
    cli: &Cli,
    base_url: &str,
    file: &std::path::Path,
    min_offset: u64,
) -> (String, u64) {
    let len = std::fs::metadata(file).unwrap().len();
    let mut child = cli.spawn(&["upload", file.to_str().unwrap()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let token = cli.token();
    let url = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no upload record with {min_offset}+ bytes on the server within 60 s"
        );
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "the upload ended ({status}) before it could be killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Some(record) = cli.upload_records().first() {
            let url = record["upload_url"].as_str().unwrap().to_owned();
            if min_offset == 0
                || server_upload_offset(base_url, &token, &url)
                    .await
                    .is_some_and(|o| o >= min_offset)
            {
                break url;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().await.expect("kill the CLI");
    // The server keeps what arrived before the connection broke, once it has noticed the
    // break: until then the cut-off piece holds the upload, and an empty piece at the offset
    // is refused (423). Its acceptance means the offset is final.
    let path = url::Url::parse(&url).unwrap().path().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let offset = loop {
        let now = server_upload_offset(base_url, &token, &url)
            .await
            .expect("the server still has the upload");
        let probe = reqwest::Client::new()
            .patch(format!("{}{path}", base_url.trim_end_matches('/')))
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", now)
            .body(Vec::new())
            .send()
            .await
            .expect("an empty piece");
        if probe.status() == 204 {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut-off piece still holds the upload: {}",
            probe.status()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        offset < len,
        "the upload was killed before its end ({offset} of {len})"
    );
    (url, offset)
}

/// An upload killed midway (the CLI process itself, SIGKILL) is resumed by running the same
/// command again: it says where it resumes, sends only the bytes the server does not have, and
/// ends in a done job whose mp3 downloads; the record of the upload is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_killed_midway_resumes_from_the_servers_offset() {
    let (p, scratch, cli, email) = platform_with_signed_in_cli().await;
    let proxy = ThrottledProxy::start(&p.url(""), 4 << 20).await;
    let slow = cli_through(&cli, &proxy.url, &email).await;
    let video = scratch.path("big clip.mkv");
    make_large_mkv(&video, 40 << 20);
    let len = std::fs::metadata(&video).unwrap().len();

    let (url, stored) = kill_upload_midway(&slow, &p.url(""), &video, 1).await;
    let records = slow.upload_records();
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = records[0].to_string();
    assert!(
        record.contains("big clip.mkv") && !record.contains(&slow.token()),
        "the record names the file and never holds the token: {record}"
    );

    let out_dir = scratch.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let sent_before = proxy.sent_bytes();
    let resumed = slow
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
    let sent = proxy.sent_bytes() - sent_before;
    let percent = stored * 100 / len;
    assert!(
        resumed
            .stderr
            .contains(&format!("Resuming big clip.mkv at {percent}%")),
        "{resumed:#?}"
    );
    // The early bytes went to the server once: the second run sent the rest (plus requests).
    assert!(
        sent >= len - stored && sent < len - stored + (1 << 20),
        "the resumed run sent {sent} bytes; the server had {stored} of {len}"
    );
    let job = resumed.json();
    assert_eq!(job["status"], "done", "{job:#}");
    assert!(url.ends_with(job["id"].as_str().unwrap()), "{url} {job:#}");
    assert_eq!(job["video_size_bytes"].as_u64(), Some(len), "{job:#}");
    let mp3 = out_dir.join("big clip.mp3");
    assert_eq!(decoded_samples(&mp3), decoded_samples(&video));
    assert!(slow.upload_records().is_empty(), "the record is removed");
}

/// A record whose upload the server no longer has (expired or removed) starts over with a
/// note, and so does a file changed since its upload was cut off (whose old upload is removed
/// from the server); `--no-resume` starts over on purpose. Each ends in a job of the whole file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_upload_or_a_changed_file_starts_over() {
    let (p, scratch, cli, email) = platform_with_signed_in_cli().await;
    let proxy = ThrottledProxy::start(&p.url(""), 8 << 20).await;
    let slow = cli_through(&cli, &proxy.url, &email).await;
    let video = scratch.path("talk.mkv");
    make_large_mkv(&video, 24 << 20);
    let len = std::fs::metadata(&video).unwrap().len();
    let token = slow.token();
    let upload_json = |run: &Run| {
        let job = run.json();
        assert_eq!(job["video_size_bytes"].as_u64(), Some(len), "{job:#}");
        job
    };

    // The server removed the upload (as it does when one expires).
    let (url, _) = kill_upload_midway(&slow, &p.url(""), &video, 0).await;
    let path = url::Url::parse(&url).unwrap().path().to_owned();
    // The piece cut off by the kill may hold the upload a moment longer (423: try again).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let deleted = loop {
        let deleted = reqwest::Client::new()
            .delete(p.url(&path))
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        if deleted.status() != 423 || tokio::time::Instant::now() > deadline {
            break deleted;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(deleted.status(), 204);
    let again = slow
        .run(&["--json", "upload", video.to_str().unwrap()], None)
        .await
        .ok();
    assert!(
        again.stderr.contains("is gone from the server") && !again.stderr.contains("Resuming"),
        "{again:#?}"
    );
    let first = upload_json(&again);
    assert!(
        !url.ends_with(first["id"].as_str().unwrap()),
        "a new upload"
    );
    assert!(slow.upload_records().is_empty());

    // The file changed (a later modification time) after its upload was cut off.
    let (url, stored) = kill_upload_midway(&slow, &p.url(""), &video, 1).await;
    assert!(stored > 0);
    std::fs::File::options()
        .write(true)
        .open(&video)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let changed = slow
        .run(&["--json", "upload", video.to_str().unwrap()], None)
        .await
        .ok();
    assert!(
        changed
            .stderr
            .contains("talk.mkv changed since its upload was interrupted")
            && !changed.stderr.contains("Resuming"),
        "{changed:#?}"
    );
    upload_json(&changed);
    assert_eq!(
        server_upload_offset(&p.url(""), &token, &url).await,
        None,
        "the changed file's old upload is removed from the server"
    );

    // --no-resume: the interrupted upload is discarded, on the server too.
    let (url, _) = kill_upload_midway(&slow, &p.url(""), &video, 0).await;
    let fresh = slow
        .run(
            &["--json", "upload", "--no-resume", video.to_str().unwrap()],
            None,
        )
        .await
        .ok();
    assert!(
        fresh
            .stderr
            .contains("Discarding the interrupted upload of talk.mkv"),
        "{fresh:#?}"
    );
    upload_json(&fresh);
    assert_eq!(server_upload_offset(&p.url(""), &token, &url).await, None);
    assert!(slow.upload_records().is_empty());
}
