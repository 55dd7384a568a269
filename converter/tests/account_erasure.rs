//! `DELETE /internal/v1/owners/{id}` against real MongoDB, RabbitMQ and Redis: everything of the
//! account goes (records, videos, files no record names, reservations, minutes claims), another
//! account's stays, a second call is harmless, and an upload that finishes afterwards undoes
//! itself.

mod common;

use common::{Env, Owner, TOKEN, corpus};
use mongodb::bson::{DateTime, Document, doc, oid::ObjectId};
use vid2mp3_contracts::storage_api::owner_path;
use vid2mp3_contracts::{ErrorBody, ErrorCode, JobId};

/// Documents naming `owner` in every collection the converter keeps per account.
async fn docs_of(env: &Env, owner: &Owner) -> Vec<(&'static str, u64)> {
    let id = owner.id.to_string();
    let mut found = Vec::new();
    for (name, filter) in [
        ("jobs", doc! {"owner_id": &id}),
        ("uploads", doc! {"owner_id": &id}),
        ("media_usage", doc! {"owner_id": &id}),
        ("videos.files", doc! {"metadata.owner_id": &id}),
        ("mp3s.files", doc! {"metadata.owner_id": &id}),
    ] {
        found.push((name, env.count(name, filter).await));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_an_owner_removes_everything_of_it_and_nothing_else() {
    let env = Env::new().await;
    let mut service = env.start("storage", &[]).await;
    let ada = Owner::new();
    let bob = Owner::new();
    let video = std::fs::read(corpus("mp4_aac_44k_stereo_faststart.mp4")).unwrap();
    let ada_jobs = [JobId::new(), JobId::new()];
    for job in &ada_jobs {
        let r = service.put_video(job, &ada, "a.mp4", video.clone()).await;
        assert_eq!(r.status(), 201);
    }
    let bobs_job = JobId::new();
    let r = service
        .put_video(&bobs_job, &bob, "b.mp4", video.clone())
        .await;
    assert_eq!(r.status(), 201);

    // What an upload under way, a conversion's claim and a dead attempt leave for Ada.
    let db = env.db();
    let ada_id = ada.id.to_string();
    db.collection::<Document>("uploads")
        .insert_one(doc! {
            "_id": "reservation-1", "owner_id": &ada_id, "job_id": JobId::new().to_string(),
            "bytes": 10_i64, "expires_at": DateTime::from_millis(DateTime::now().timestamp_millis() + 600_000),
        })
        .await
        .unwrap();
    db.collection::<Document>("media_usage")
        .insert_one(doc! {
            "_id": ada_jobs[0].to_string(), "owner_id": &ada_id, "day": "2026-12-06",
            "media_ms": 1000_i64, "claimed_at": DateTime::now(),
        })
        .await
        .unwrap();
    let orphan = ObjectId::new();
    db.collection::<Document>("mp3s.files")
        .insert_one(doc! {
            "_id": orphan, "length": 3_i64, "chunkSize": 261_120_i32, "uploadDate": DateTime::now(),
            "filename": "x.mp3", "metadata": {"owner_id": &ada_id, "job_id": JobId::new().to_string()},
        })
        .await
        .unwrap();
    db.collection::<Document>("mp3s.chunks")
        .insert_one(
            doc! {"files_id": orphan, "n": 0_i32, "data": mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] }},
        )
        .await
        .unwrap();
    let before = docs_of(&env, &ada).await;
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    // Refused without the token, and for an id that is not one.
    let url = service.url(&owner_path(&ada.id));
    let r = service.http.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = service
        .http
        .delete(service.url("/internal/v1/owners/not-an-id"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(docs_of(&env, &ada).await, before, "refusals remove nothing");

    for _ in 0..2 {
        let r = service
            .http
            .delete(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "a second erasure is harmless");
    }
    let left: Vec<_> = docs_of(&env, &ada)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "left of Ada: {left:?}");
    assert_eq!(
        env.count("mp3s.chunks", doc! {"files_id": orphan}).await,
        0,
        "the orphan's chunks"
    );
    for job in &ada_jobs {
        assert!(service.state(job).await.is_none());
    }
    assert!(service.state(&bobs_job).await.is_some(), "Bob's job stays");
    assert_eq!(
        env.count("videos.files", doc! {}).await,
        1,
        "Bob's video stays"
    );

    // An upload that finishes after the erasure (it raced the listing) undoes itself.
    let late = JobId::new();
    let r = service.put_video(&late, &ada, "late.mp4", video).await;
    assert_eq!(r.status(), 403);
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error.code, ErrorCode::Forbidden);
    assert!(
        body.error.message.contains("deleted"),
        "{}",
        body.error.message
    );
    let left: Vec<_> = docs_of(&env, &ada)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "left of the late upload: {left:?}");
    assert!(service.state(&late).await.is_none());
    service.stop().await;
}
