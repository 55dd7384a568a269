//! Resumable uploads (tus) under way: one record per upload in `resumable_uploads`, keyed by the
//! job id the upload becomes.
//!
//! The bytes go straight into the videos bucket as GridFS chunks of the file the job will name
//! (`video_fid`); the record holds how far the upload got (`offset`) and the bytes of the last,
//! partial chunk (`tail`, under one chunk), which the next piece completes. A piece's full
//! chunks are written before the record moves `offset` past them, so a piece cut off half way
//! leaves at worst chunks past the committed offset, which the next piece removes before it
//! writes (`Bucket::delete_chunks_from`). The files document is written only once the last byte
//! is in, so until then no reader can see the video.
//!
//! One piece at a time: a piece takes the record's lock (a token and a time it lapses, renewed
//! as chunks are written), and the record only moves on under that lock, so two clients
//! sending the same upload cannot interleave their chunks. A lock whose holder died lapses.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Binary, Bson, DateTime, doc, spec::BinarySubtype};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use vid2mp3_contracts::{JobId, LoudnessTarget, QualityProfile, UserId};

use crate::job_state::is_duplicate_key;

pub const RESUMABLE_UPLOADS_COLLECTION: &str = "resumable_uploads";

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Taking pieces.
    Receiving,
    /// Every byte is in; the video is being made visible, recorded and queued (or that failed
    /// and is tried again by the next piece, an empty one, or by the sweep).
    Completing,
    /// The job exists. The record stays until it expires so that a client asking where its
    /// upload is hears "all of it".
    Complete,
}

/// One upload as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumableRecord {
    #[serde(rename = "_id")]
    pub job_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub original_name: String,
    pub content_type: String,
    pub profile: QualityProfile,
    pub loudness_lufs: Option<LoudnessTarget>,
    /// The GridFS file the chunks belong to.
    pub video_fid: ObjectId,
    pub length: i64,
    pub offset: i64,
    /// The bytes of the partial chunk at `offset` (from its chunk's start).
    pub tail: Binary,
    /// The quota reservation (`uploads`) this upload holds until its job is recorded.
    pub reservation_id: String,
    pub phase: Phase,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    /// The token of the piece now writing, and when its hold lapses (the epoch: nobody's).
    pub lock: Option<String>,
    pub lock_until: DateTime,
}

impl ResumableRecord {
    pub fn length(&self) -> u64 {
        u64::try_from(self.length).unwrap_or(0)
    }

    pub fn offset(&self) -> u64 {
        u64::try_from(self.offset).unwrap_or(0)
    }

    pub fn is_expired(&self) -> bool {
        self.expires_at <= DateTime::now()
    }
}

/// What a new upload starts with.
#[derive(Debug, Clone)]
pub struct NewResumable {
    pub job_id: JobId,
    pub owner_id: UserId,
    pub owner_email: String,
    pub original_name: String,
    pub content_type: String,
    pub profile: QualityProfile,
    pub loudness_lufs: Option<LoudnessTarget>,
    pub length: u64,
    pub reservation_id: String,
    pub expires_at: DateTime,
}

/// Why a piece could not take an upload.
#[derive(Debug)]
pub enum Taken {
    /// The piece holds the upload until it commits or its hold lapses.
    Held(Box<ResumableRecord>),
    /// Another piece holds it.
    Busy,
    /// No such upload for this owner.
    Missing,
}

/// The records of resumable uploads.
#[derive(Debug, Clone)]
pub struct ResumableStore {
    records: Collection<ResumableRecord>,
}

pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `now + after`, as MongoDB keeps times.
pub fn after(after: Duration) -> DateTime {
    let ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    DateTime::from_millis(DateTime::now().timestamp_millis().saturating_add(ms))
}

fn empty_tail() -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: Vec::new(),
    }
}

impl ResumableStore {
    pub fn new(db: &Database) -> ResumableStore {
        ResumableStore {
            records: db.collection(RESUMABLE_UPLOADS_COLLECTION),
        }
    }

    pub async fn ensure_indexes(&self) -> Result<(), mongodb::error::Error> {
        for keys in [doc! {"owner_id": 1}, doc! {"expires_at": 1}] {
            self.records
                .create_index(IndexModel::builder().keys(keys).build())
                .await?;
        }
        Ok(())
    }

    /// Writes a new upload's record; `Err` with a duplicate key when the job id is taken.
    pub async fn create(
        &self,
        new: NewResumable,
    ) -> Result<ResumableRecord, mongodb::error::Error> {
        let record = ResumableRecord {
            job_id: new.job_id.to_string(),
            owner_id: new.owner_id.to_string(),
            owner_email: new.owner_email,
            original_name: new.original_name,
            content_type: new.content_type,
            profile: new.profile,
            loudness_lufs: new.loudness_lufs,
            video_fid: ObjectId::new(),
            length: to_i64(new.length),
            offset: 0,
            tail: empty_tail(),
            reservation_id: new.reservation_id,
            phase: Phase::Receiving,
            created_at: DateTime::now(),
            expires_at: new.expires_at,
            lock: None,
            lock_until: DateTime::from_millis(0),
        };
        self.records.insert_one(&record).await?;
        Ok(record)
    }

    pub async fn get(&self, job: &JobId) -> Result<Option<ResumableRecord>, mongodb::error::Error> {
        self.records.find_one(doc! {"_id": job.to_string()}).await
    }

    /// Takes the upload for one piece, for `hold` (renew it while writing).
    pub async fn take(
        &self,
        job: &JobId,
        owner: &UserId,
        token: &str,
        hold: Duration,
    ) -> Result<Taken, mongodb::error::Error> {
        let taken = self
            .records
            .find_one_and_update(
                doc! {
                    "_id": job.to_string(),
                    "owner_id": owner.to_string(),
                    "lock_until": {"$lt": DateTime::now()},
                },
                doc! {"$set": {"lock": token, "lock_until": after(hold)}},
            )
            .return_document(ReturnDocument::After)
            .await?;
        if let Some(record) = taken {
            return Ok(Taken::Held(Box::new(record)));
        }
        Ok(match self.get(job).await? {
            Some(record) if record.owner_id == owner.to_string() => Taken::Busy,
            _ => Taken::Missing,
        })
    }

    /// Moves the hold on; `false` when it was lost (it lapsed and another piece took it).
    pub async fn renew(
        &self,
        job: &JobId,
        token: &str,
        hold: Duration,
    ) -> Result<bool, mongodb::error::Error> {
        let updated = self
            .records
            .update_one(
                doc! {"_id": job.to_string(), "lock": token},
                doc! {"$set": {"lock_until": after(hold)}},
            )
            .await?;
        Ok(updated.matched_count == 1)
    }

    /// Records how far the upload got, still holding it; `false` when the hold was lost.
    pub async fn commit(
        &self,
        job: &JobId,
        token: &str,
        offset: u64,
        tail: Vec<u8>,
        phase: Phase,
        expires_at: DateTime,
    ) -> Result<bool, mongodb::error::Error> {
        let tail = Binary {
            subtype: BinarySubtype::Generic,
            bytes: tail,
        };
        let phase = mongodb::bson::to_bson(&phase).unwrap_or(Bson::Null);
        let updated = self
            .records
            .update_one(
                doc! {"_id": job.to_string(), "lock": token},
                doc! {"$set": {
                    "offset": to_i64(offset),
                    "tail": tail,
                    "phase": phase,
                    "expires_at": expires_at,
                }},
            )
            .await?;
        Ok(updated.matched_count == 1)
    }

    /// Lets go of the upload (another piece may take it at once).
    pub async fn release(&self, job: &JobId, token: &str) -> Result<(), mongodb::error::Error> {
        self.records
            .update_one(
                doc! {"_id": job.to_string(), "lock": token},
                doc! {"$set": {"lock": Bson::Null, "lock_until": DateTime::from_millis(0)}},
            )
            .await?;
        Ok(())
    }

    pub async fn remove(&self, job: &JobId) -> Result<(), mongodb::error::Error> {
        self.records
            .delete_one(doc! {"_id": job.to_string()})
            .await?;
        Ok(())
    }

    /// Uploads past their expiry that no piece holds, oldest first, at most `limit`.
    pub async fn expired(&self, limit: i64) -> Result<Vec<ResumableRecord>, mongodb::error::Error> {
        let now = DateTime::now();
        self.records
            .find(doc! {"expires_at": {"$lte": now}, "lock_until": {"$lt": now}})
            .sort(doc! {"expires_at": 1})
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// Uploads whose completion failed and that no piece holds, to be tried again.
    pub async fn stuck_completing(
        &self,
        limit: i64,
    ) -> Result<Vec<ResumableRecord>, mongodb::error::Error> {
        let completing = mongodb::bson::to_bson(&Phase::Completing).unwrap_or(Bson::Null);
        self.records
            .find(doc! {"phase": completing, "lock_until": {"$lt": DateTime::now()}})
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// The files being assembled right now, whose chunks have no files document yet.
    pub async fn unfinished_files(&self) -> Result<HashSet<ObjectId>, mongodb::error::Error> {
        let complete = mongodb::bson::to_bson(&Phase::Complete).unwrap_or(Bson::Null);
        let ids: Vec<mongodb::bson::Document> = self
            .records
            .clone_with_type::<mongodb::bson::Document>()
            .find(doc! {"phase": {"$ne": complete}})
            .projection(doc! {"video_fid": 1})
            .await?
            .try_collect()
            .await?;
        Ok(ids
            .iter()
            .filter_map(|d| d.get_object_id("video_fid").ok())
            .collect())
    }

    pub async fn of_owner(
        &self,
        owner: &UserId,
    ) -> Result<Vec<ResumableRecord>, mongodb::error::Error> {
        self.records
            .find(doc! {"owner_id": owner.to_string()})
            .await?
            .try_collect()
            .await
    }
}

/// Whether a create failed because the job id is taken.
pub fn is_taken(error: &mongodb::error::Error) -> bool {
    is_duplicate_key(error)
}
