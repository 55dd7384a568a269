//! `DELETE /api/v1/account`: an account with a finished job, a job converting, a stored video
//! and its emails deletes itself; afterwards nothing of it is left in any service (queried
//! directly), its tokens are refused, and another account is untouched. A wrong password deletes nothing, and
//! a deletion cut off midway is finished by asking again.

mod common;

use std::time::Duration;

use common::*;
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use vid2mp3_test_support::test_media::{ScratchDir as Scratch, make_m4a, make_mkv};
use vid2mp3_test_support::{Mailbox, MySqlDatabase, Platform, PlatformBuilder};

/// One value (as text) of every row `sql` selects in `db`.
async fn sql(db: &MySqlDatabase, sql: &str, param: &str) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    let pool = db.pool().expect("pool");
    let mut conn = pool.get_conn().await.expect("connection");
    let rows: Vec<mysql_async::Row> = conn.exec(sql, (param,)).await.expect(sql);
    drop(conn);
    pool.disconnect().await.ok();
    rows.into_iter()
        .map(|row| match row.unwrap().into_iter().next() {
            Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(other) => other.as_sql(true),
            None => String::new(),
        })
        .collect()
}

async fn count(db: &MySqlDatabase, query: &str, param: &str) -> u64 {
    sql(db, query, param).await[0].parse().expect("a count")
}

/// Documents naming `owner` in every collection the converter keeps per account.
async fn mongo_docs_of(p: &Platform, owner: &str) -> Vec<(String, u64)> {
    let db = p.mongo.as_ref().expect("mongo").database();
    let mut found = Vec::new();
    for (name, filter) in [
        ("jobs", doc! {"owner_id": owner}),
        ("uploads", doc! {"owner_id": owner}),
        ("resumable_uploads", doc! {"owner_id": owner}),
        ("media_usage", doc! {"owner_id": owner}),
        ("videos.files", doc! {"metadata.owner_id": owner}),
        ("mp3s.files", doc! {"metadata.owner_id": owner}),
    ] {
        let n = db
            .collection::<Document>(name)
            .count_documents(filter)
            .await
            .expect("count");
        found.push((name.to_owned(), n));
    }
    found
}

/// Chunks whose file has no files document: what a file half removed leaves.
async fn orphan_chunks(p: &Platform) -> u64 {
    let db = p.mongo.as_ref().expect("mongo").database();
    let mut orphans = 0;
    for bucket in ["videos", "mp3s"] {
        let files: Vec<mongodb::bson::Bson> = db
            .collection::<Document>(&format!("{bucket}.files"))
            .distinct("_id", doc! {})
            .await
            .expect("files");
        orphans += db
            .collection::<Document>(&format!("{bucket}.chunks"))
            .count_documents(doc! {"files_id": {"$nin": files}})
            .await
            .expect("chunks");
    }
    orphans
}

async fn delete_account(p: &Platform, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = client().delete(p.url("/api/v1/account")).json(&body);
    if let Some(token) = token {
        r = r.bearer_auth(token);
    }
    let r = r.send().await.expect("delete account");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn status_of(p: &Platform, token: &str, path: &str) -> u16 {
    client()
        .get(p.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn user_id(p: &Platform, email: &str) -> String {
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("log in");
    let session: Value = r.json().await.expect("session");
    session["account"]["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_account_leaves_nothing_and_its_tokens_are_refused() {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let ada = p.mailbox.address().to_owned();
    let bob_box = Mailbox::create().await.expect("mailbox");
    let bob = bob_box.address().to_owned();
    sign_up(&p, &ada).await;
    sign_up(&p, &bob).await;
    let ada_token = log_in(&p, &ada).await;
    let bob_token = log_in(&p, &bob).await;
    let ada_id = user_id(&p, &ada).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("short.mkv"), 2);
    make_m4a(&scratch.path("long.m4a"), 600);

    // Ada: one job done (its email sent), one converting while she deletes. Bob: one job done.
    let done = upload_raw(
        &p,
        &ada_token,
        &scratch.path("short.mkv"),
        "video/x-matroska",
    )
    .await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    let seen = wait_for_end(&p, &ada_token, &done_id, Duration::from_secs(90)).await;
    let fid = seen.last().unwrap()["mp3_fid"].as_str().unwrap().to_owned();
    let bobs = upload_raw(
        &p,
        &bob_token,
        &scratch.path("short.mkv"),
        "video/x-matroska",
    )
    .await;
    let bobs_id = bobs["id"].as_str().unwrap().to_owned();
    wait_for_end(&p, &bob_token, &bobs_id, Duration::from_secs(90)).await;
    p.mailbox
        .wait_for(1, Duration::from_secs(60))
        .await
        .expect("Ada's email");
    bob_box
        .wait_for(1, Duration::from_secs(60))
        .await
        .expect("Bob's email");
    let long = upload_raw(&p, &ada_token, &scratch.path("long.m4a"), "audio/mp4").await;
    let long_id = long["id"].as_str().unwrap().to_owned();
    common::wait_until_converting(&p, &ada_token, &long_id, "the deletion").await;
    // And a stored video, waiting behind the conversion (or converting beside it).
    let stored = upload_raw(
        &p,
        &ada_token,
        &scratch.path("short.mkv"),
        "video/x-matroska",
    )
    .await;
    let stored_id = stored["id"].as_str().unwrap().to_owned();
    // And a resumable upload half sent.
    let bytes = std::fs::read(scratch.path("short.mkv")).expect("the test file");
    let resumable = common::tus_begun(
        &p,
        &ada_token,
        &scratch.path("short.mkv"),
        "video/x-matroska",
    )
    .await;
    let r = common::tus_patch(
        &p,
        &ada_token,
        &resumable,
        0,
        bytes[..bytes.len() / 2].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 204, "a half of the resumable upload");

    // There is something to delete in every service (so the checks below can fail).
    let notifier_rows = "SELECT (SELECT COUNT(*) FROM emails_sent WHERE recipient = ?) \
                         + (SELECT COUNT(*) FROM account_emails_sent WHERE recipient = ?)";
    let notifier_count = |who: String| {
        let db = &p.notifier_db;
        async move {
            use mysql_async::prelude::Queryable;
            let pool = db.pool().expect("pool");
            let mut conn = pool.get_conn().await.expect("connection");
            let n: Option<u64> = conn
                .exec_first(notifier_rows, (who.clone(), who))
                .await
                .expect("notifier rows");
            drop(conn);
            pool.disconnect().await.ok();
            n.unwrap_or(0)
        }
    };
    assert!(
        notifier_count(ada.clone()).await >= 2,
        "a job email and a confirmation"
    );
    let bob_notifier_rows = notifier_count(bob.clone()).await;
    assert!(bob_notifier_rows >= 2);
    let keys_naming = |who: String| {
        let redis = &p.redis;
        async move {
            redis
                .keys()
                .await
                .expect("Redis keys")
                .into_iter()
                .filter(|k| k.contains(&who))
                .collect::<Vec<_>>()
        }
    };
    assert!(
        !keys_naming(ada.clone()).await.is_empty(),
        "auth counts account emails per address"
    );
    let mongo_before = mongo_docs_of(&p, &ada_id).await;
    assert!(
        mongo_before.iter().filter(|(_, n)| *n > 0).count() >= 4,
        "{mongo_before:?}"
    );

    // Bad requests delete nothing: no token, no body, an empty or a wrong password.
    let (status, body) = delete_account(&p, None, json!({"password": PASSWORD})).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = delete_account(&p, Some(&ada_token), json!({"pass": 1})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password")
    );
    let (status, body) = delete_account(&p, Some(&ada_token), json!({"password": ""})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        delete_account(&p, Some(&ada_token), json!({"password": "not my password"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was deleted"),
        "{body}"
    );
    assert_eq!(
        my_jobs(&p, &ada_token).await["jobs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        status_of(&p, &ada_token, &format!("/api/v1/jobs/{done_id}/mp3")).await,
        200
    );
    assert_eq!(mongo_docs_of(&p, &ada_id).await, mongo_before);

    let (status, body) = delete_account(&p, Some(&ada_token), json!({"password": PASSWORD})).await;
    assert_eq!(status, 204, "{body}");
    // No Redis key names her (checked before the log-in below, which counts a failure for the
    // address typed, as it does for any address).
    let left = [
        keys_naming(ada.clone()).await,
        keys_naming(ada_id.clone()).await,
    ]
    .concat();
    assert!(left.is_empty(), "Redis keys naming Ada: {left:?}");

    // Her tokens open nothing, the deletion included; her password logs in no more.
    for path in [
        "/api/v1/jobs".to_owned(),
        format!("/api/v1/jobs/{done_id}"),
        format!("/api/v1/jobs/{done_id}/mp3"),
        format!("/download?fid={fid}"),
    ] {
        assert_eq!(status_of(&p, &ada_token, &path).await, 401, "{path}");
    }
    let (status, _) = delete_account(&p, Some(&ada_token), json!({"password": PASSWORD})).await;
    assert_eq!(status, 401);
    let r = client()
        .post(p.url("/api/v1/sessions"))
        .json(&json!({"email": ada, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Through the API and the course's route, her jobs and mp3 are 404 to anyone.
    for path in [
        format!("/api/v1/jobs/{done_id}"),
        format!("/api/v1/jobs/{long_id}"),
        format!("/api/v1/jobs/{stored_id}"),
        format!("/api/v1/jobs/{done_id}/mp3"),
        format!("/download?fid={fid}"),
    ] {
        assert_eq!(status_of(&p, &bob_token, &path).await, 404, "{path}");
    }
    // The storage API knows none of it.
    let storage = p.converter.as_ref().unwrap();
    for path in [
        format!("/internal/v1/jobs/{done_id}"),
        format!("/internal/v1/jobs/{long_id}"),
        format!("/internal/v1/jobs/{stored_id}"),
        format!("/internal/v1/mp3s/{fid}"),
    ] {
        let r = client()
            .get(format!("{}{path}", storage.storage_url))
            .bearer_auth(&storage.storage_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    // The job that was converting ends with its output discarded, not resurrected.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while !storage
        .log_text()
        .contains("the job was deleted while converting")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the conversion never ended:\n{}",
            storage.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let left: Vec<_> = mongo_docs_of(&p, &ada_id)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "MongoDB still holds Ada's {left:?}");
    assert_eq!(orphan_chunks(&p).await, 0, "no chunks without a file");
    let progress = [
        keys_naming(long_id.clone()).await,
        keys_naming(done_id.clone()).await,
        keys_naming(stored_id.clone()).await,
    ]
    .concat();
    assert!(progress.is_empty(), "Redis keys of her jobs: {progress:?}");
    let jobs = p.mongo.as_ref().unwrap().database();
    let marked = jobs
        .collection::<Document>("deleted_owners")
        .count_documents(doc! {"_id": &ada_id})
        .await
        .unwrap();
    assert_eq!(marked, 1, "the erasure's mark (a random id, nothing else)");

    // MySQL: nothing of hers in the gateway, auth or the notifier.
    let gateway = count(
        &p.gateway_db,
        "SELECT COUNT(*) FROM jobs WHERE owner_id = ?",
        &ada_id,
    )
    .await;
    assert_eq!(gateway, 0);
    let users = count(
        &p.auth_db,
        "SELECT COUNT(*) FROM users WHERE email = ?",
        &ada,
    )
    .await;
    assert_eq!(users, 0);
    let links = count(
        &p.auth_db,
        "SELECT COUNT(*) FROM email_confirmations WHERE user_id = ?",
        &ada_id,
    )
    .await;
    assert_eq!(links, 0);
    assert_eq!(notifier_count(ada.clone()).await, 0);
    let state = sql(
        &p.gateway_db,
        "SELECT state FROM account_deletions WHERE user_id = ?",
        &ada_id,
    )
    .await;
    assert_eq!(state, vec!["deleted".to_owned()]);

    // Bob is untouched.
    let (status, body) = job(&p, &bob_token, &bobs_id).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")));
    assert_eq!(
        status_of(&p, &bob_token, &format!("/api/v1/jobs/{bobs_id}/mp3")).await,
        200
    );
    assert_eq!(notifier_count(bob.clone()).await, bob_notifier_rows);
    assert_eq!(log_in(&p, &bob).await.split('.').count(), 3);
}

/// The storage API is down when the deletion reaches it: a clear 503, the account stays
/// (its password still works for the deletion) and asking again finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deletion_cut_off_midway_is_finished_by_asking_again() {
    let mut p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let ada = p.mailbox.address().to_owned();
    sign_up(&p, &ada).await;
    let token = log_in(&p, &ada).await;
    let ada_id = user_id(&p, &ada).await;
    let scratch = Scratch::new();
    make_mkv(&scratch.path("short.mkv"), 2);
    let job = upload_raw(&p, &token, &scratch.path("short.mkv"), "video/x-matroska").await;
    let id = job["id"].as_str().unwrap().to_owned();
    wait_for_end(&p, &token, &id, Duration::from_secs(90)).await;

    p.converter.as_mut().unwrap().kill();
    let (status, body) = delete_account(&p, Some(&token), json!({"password": PASSWORD})).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again")
    );
    // Half deleted: the token opens only the deletion, and says so.
    let r = client()
        .get(p.url("/api/v1/jobs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DELETE /api/v1/account"),
        "{body}"
    );
    assert_eq!(
        count(
            &p.auth_db,
            "SELECT COUNT(*) FROM users WHERE id = ?",
            &ada_id
        )
        .await,
        1,
        "the user stays until everything else is gone"
    );

    p.converter
        .as_mut()
        .unwrap()
        .restart()
        .await
        .expect("restart");
    let (status, body) = delete_account(&p, Some(&token), json!({"password": PASSWORD})).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        count(
            &p.auth_db,
            "SELECT COUNT(*) FROM users WHERE id = ?",
            &ada_id
        )
        .await,
        0
    );
    let left: Vec<_> = mongo_docs_of(&p, &ada_id)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        count(
            &p.gateway_db,
            "SELECT COUNT(*) FROM jobs WHERE owner_id = ?",
            &ada_id
        )
        .await,
        0
    );
}

/// The password check is the log-in throttle's: at the limit, 429 with `Retry-After` and no
/// password work, the right password included; a body over the limit is 413. Nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletion_attempts_are_throttled_like_log_ins_and_bounded() {
    let p = PlatformBuilder::new()
        .with_converter()
        .variable("login_failures_per_account", "2")
        .start()
        .await
        .expect("platform");
    let ada = p.mailbox.address().to_owned();
    sign_up(&p, &ada).await;
    let token = log_in(&p, &ada).await;
    let ada_id = user_id(&p, &ada).await;

    let huge = "x".repeat(20 * 1024);
    let (status, body) = delete_account(&p, Some(&token), json!({"password": huge})).await;
    assert_eq!(status, 413, "{body}");
    for _ in 0..2 {
        let (status, body) =
            delete_account(&p, Some(&token), json!({"password": "wrong one"})).await;
        assert_eq!(status, 403, "{body}");
    }
    let r = client()
        .delete(p.url("/api/v1/account"))
        .bearer_auth(&token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait > 0);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");

    // Nothing was deleted: the account and its token still work.
    assert_eq!(
        count(
            &p.auth_db,
            "SELECT COUNT(*) FROM users WHERE id = ?",
            &ada_id
        )
        .await,
        1
    );
    assert_eq!(status_of(&p, &token, "/api/v1/jobs").await, 200);
    assert_eq!(
        count(
            &p.gateway_db,
            "SELECT COUNT(*) FROM account_deletions WHERE user_id = ?",
            &ada_id
        )
        .await,
        0
    );
}
