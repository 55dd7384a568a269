//! The jobs' processing state, in the MongoDB collection `jobs`. The converter is its only
//! writer: the storage API creates a record when a video is stored, the worker moves it through
//! converting → done / failed, and `DELETE` removes it.

use mongodb::bson::{self, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use vid2mp3_contracts::progress::JobProgress;
use vid2mp3_contracts::storage_api::{JobError, JobState, JobStatus};
use vid2mp3_contracts::{ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, UserId};

pub const JOBS_COLLECTION: &str = "jobs";

#[derive(Debug, thiserror::Error)]
pub enum JobStateError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("a job record cannot be encoded: {0}")]
    Encode(#[from] bson::ser::Error),
    #[error(
        "job record {id} is damaged: its {field} is not a valid id; repair or remove the record"
    )]
    Damaged {
        id: String,
        field: &'static str,
        #[source]
        source: vid2mp3_contracts::IdError,
    },
}

/// One job as stored (`_id` is the job id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    #[serde(rename = "_id")]
    pub job_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub original_name: String,
    pub content_type: String,
    pub profile: QualityProfile,
    /// Records written before loudness levelling existed have none.
    #[serde(default)]
    pub loudness_lufs: Option<LoudnessTarget>,
    pub status: JobStatus,
    pub attempts: i64,
    pub video_fid: String,
    pub video_size_bytes: i64,
    pub mp3_fid: Option<String>,
    pub mp3_size_bytes: Option<i64>,
    pub duration_ms: Option<i64>,
    pub error: Option<StoredError>,
    /// The mp3 being written by the current attempt; its chunks are removed if that attempt
    /// died (a crash leaves chunks but no files document).
    pub partial_mp3_fid: Option<String>,
    pub created_at: String,
    /// When the current attempt started converting (RFC 3339). `created_at` → `started_at` is the
    /// job's wait in the queue, which `updated_at` alone cannot show once the job moves on.
    /// Records written before this field existed have none.
    #[serde(default)]
    pub started_at: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredError {
    pub code: ErrorCode,
    pub message: String,
}

/// What a new job needs.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job_id: JobId,
    pub owner_id: UserId,
    pub owner_email: String,
    pub original_name: String,
    pub content_type: String,
    pub profile: QualityProfile,
    pub loudness_lufs: Option<LoudnessTarget>,
    pub video_fid: FileId,
    pub video_size_bytes: u64,
}

/// The result of creating a record.
#[derive(Debug)]
pub enum Created {
    New(JobRecord),
    /// A record with this id already existed (a repeated or concurrent PUT).
    Existing(JobRecord),
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl JobRecord {
    /// The record of a video just stored: queued, no attempt yet.
    pub fn new(job: NewJob) -> JobRecord {
        let at = now();
        JobRecord {
            job_id: job.job_id.to_string(),
            owner_id: job.owner_id.to_string(),
            owner_email: job.owner_email,
            original_name: job.original_name,
            content_type: job.content_type,
            profile: job.profile,
            loudness_lufs: job.loudness_lufs,
            status: JobStatus::Queued,
            attempts: 0,
            video_fid: job.video_fid.to_string(),
            video_size_bytes: to_i64(job.video_size_bytes),
            mp3_fid: None,
            mp3_size_bytes: None,
            duration_ms: None,
            error: None,
            partial_mp3_fid: None,
            created_at: at.clone(),
            started_at: None,
            updated_at: at,
        }
    }

    /// The contract's view; `progress` comes from Redis while converting.
    pub fn to_state(&self, progress: Option<JobProgress>) -> Result<JobState, JobStateError> {
        let damaged = |field| {
            move |source| JobStateError::Damaged {
                id: self.job_id.clone(),
                field,
                source,
            }
        };
        let fid = |field, s: &str| s.parse::<FileId>().map_err(damaged(field));
        let (progress_percent, eta_ms) = match self.status {
            JobStatus::Done => (100, None),
            JobStatus::Converting => progress.map_or((0, None), |p| (p.percent.min(99), p.eta_ms)),
            JobStatus::Queued | JobStatus::Failed => (0, None),
        };
        Ok(JobState {
            job_id: self.job_id.parse().map_err(damaged("job id"))?,
            owner_id: self.owner_id.parse().map_err(damaged("owner id"))?,
            status: self.status,
            profile: self.profile,
            loudness_lufs: self.loudness_lufs,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            progress_percent,
            eta_ms,
            video_fid: fid("video file id", &self.video_fid)?,
            video_size_bytes: u64::try_from(self.video_size_bytes).unwrap_or(0),
            mp3_fid: self
                .mp3_fid
                .as_deref()
                .map(|s| fid("mp3 file id", s))
                .transpose()?,
            mp3_size_bytes: self.mp3_size_bytes.and_then(|n| u64::try_from(n).ok()),
            duration_ms: self.duration_ms.and_then(|n| u64::try_from(n).ok()),
            error: self.error.as_ref().map(|e| JobError {
                code: e.code,
                message: e.message.clone(),
            }),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct JobStore {
    jobs: Collection<JobRecord>,
}

impl JobStore {
    pub fn new(db: &Database) -> JobStore {
        JobStore {
            jobs: db.collection(JOBS_COLLECTION),
        }
    }

    pub async fn ensure_indexes(&self) -> Result<(), JobStateError> {
        self.jobs
            .create_index(IndexModel::builder().keys(doc! {"mp3_fid": 1}).build())
            .await?;
        Ok(())
    }

    pub async fn get(&self, job: &JobId) -> Result<Option<JobRecord>, JobStateError> {
        Ok(self.jobs.find_one(doc! {"_id": job.to_string()}).await?)
    }

    pub async fn get_many(&self, jobs: &[JobId]) -> Result<Vec<JobRecord>, JobStateError> {
        let ids: Vec<String> = jobs.iter().map(ToString::to_string).collect();
        let mut cursor = self.jobs.find(doc! {"_id": {"$in": ids}}).await?;
        let mut found = Vec::new();
        while cursor.advance().await? {
            found.push(cursor.deserialize_current()?);
        }
        Ok(found)
    }

    pub async fn by_mp3(&self, fid: &FileId) -> Result<Option<JobRecord>, JobStateError> {
        Ok(self.jobs.find_one(doc! {"mp3_fid": fid.as_str()}).await?)
    }

    /// Creates the record of a stored video, unless one with this job id exists.
    pub async fn create(&self, job: NewJob) -> Result<Created, JobStateError> {
        let job_id = job.job_id;
        let record = JobRecord::new(job);
        match self.jobs.insert_one(&record).await {
            Ok(_) => Ok(Created::New(record)),
            Err(error) if is_duplicate_key(&error) => match self.get(&job_id).await? {
                Some(existing) => Ok(Created::Existing(existing)),
                // Deleted between the two calls: report the original conflict.
                None => Err(error.into()),
            },
            Err(error) => Err(error.into()),
        }
    }

    /// The ids of every job of `owner`, whatever its state.
    pub async fn ids_of_owner(&self, owner: &UserId) -> Result<Vec<String>, JobStateError> {
        let mut cursor = self
            .jobs
            .clone_with_type::<mongodb::bson::Document>()
            .find(doc! {"owner_id": owner.to_string()})
            .projection(doc! {"_id": 1})
            .await?;
        let mut ids = Vec::new();
        while cursor.advance().await? {
            if let Ok(id) = cursor.current().get_str("_id") {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// Removes a record; returns it if there was one.
    pub async fn delete(&self, job: &JobId) -> Result<Option<JobRecord>, JobStateError> {
        Ok(self
            .jobs
            .find_one_and_delete(doc! {"_id": job.to_string()})
            .await?)
    }

    /// An attempt starts: converting, attempts + 1, the mp3 id it will write, and when.
    pub async fn start_attempt(
        &self,
        job: &JobId,
        partial_mp3_fid: &str,
    ) -> Result<Option<JobRecord>, JobStateError> {
        let at = now();
        Ok(self
            .jobs
            .find_one_and_update(
                doc! {"_id": job.to_string()},
                doc! {
                    "$set": {
                        "status": bson::to_bson(&JobStatus::Converting)?,
                        "partial_mp3_fid": partial_mp3_fid,
                        "started_at": at.clone(),
                        "updated_at": at,
                    },
                    "$inc": {"attempts": 1_i64},
                },
            )
            .return_document(ReturnDocument::After)
            .await?)
    }

    pub async fn mark_done(
        &self,
        job: &JobId,
        mp3_fid: &str,
        mp3_size_bytes: u64,
        duration_ms: u64,
    ) -> Result<Option<JobRecord>, JobStateError> {
        Ok(self
            .jobs
            .find_one_and_update(
                doc! {"_id": job.to_string()},
                doc! {"$set": {
                    "status": bson::to_bson(&JobStatus::Done)?,
                    "mp3_fid": mp3_fid,
                    "mp3_size_bytes": to_i64(mp3_size_bytes),
                    "duration_ms": to_i64(duration_ms),
                    "error": bson::Bson::Null,
                    "partial_mp3_fid": bson::Bson::Null,
                    "updated_at": now(),
                }},
            )
            .return_document(ReturnDocument::After)
            .await?)
    }

    /// `status` is `Failed` for a final failure, `Queued` for one that will be retried.
    pub async fn mark_failure(
        &self,
        job: &JobId,
        status: JobStatus,
        code: ErrorCode,
        message: &str,
    ) -> Result<Option<JobRecord>, JobStateError> {
        Ok(self
            .jobs
            .find_one_and_update(
                doc! {"_id": job.to_string()},
                doc! {"$set": {
                    "status": bson::to_bson(&status)?,
                    "error": {"code": code.as_str(), "message": message},
                    "partial_mp3_fid": bson::Bson::Null,
                    "updated_at": now(),
                }},
            )
            .return_document(ReturnDocument::After)
            .await?)
    }

    /// Whether MongoDB answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), JobStateError> {
        self.jobs
            .find_one(doc! {"_id": "readyz-probe"})
            .await
            .map(|_| ())
            .map_err(Into::into)
    }
}

pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|e| e.code == 11000)),
        _ => error.to_string().contains("E11000") || error.to_string().contains("duplicate key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        JobRecord {
            job_id: JobId::new().to_string(),
            owner_id: UserId::new().to_string(),
            owner_email: "ada@example.com".into(),
            original_name: "talk.mkv".into(),
            content_type: "video/x-matroska".into(),
            profile: QualityProfile::Fast,
            loudness_lufs: Some(LoudnessTarget::SPEECH),
            status: JobStatus::Converting,
            attempts: 1,
            video_fid: "65f0c0ffee65f0c0ffee65f0".into(),
            video_size_bytes: 1234,
            mp3_fid: None,
            mp3_size_bytes: None,
            duration_ms: None,
            error: None,
            partial_mp3_fid: Some("65f0c0ffee65f0c0ffee65f1".into()),
            created_at: now(),
            started_at: Some(now()),
            updated_at: now(),
        }
    }

    #[test]
    fn progress_shows_only_while_converting_and_never_reaches_100_early() {
        let at = |percent, eta_ms| Some(JobProgress { percent, eta_ms });
        let mut r = record();
        let converting = r.to_state(at(42, Some(1500))).unwrap();
        assert_eq!(
            (converting.progress_percent, converting.eta_ms),
            (42, Some(1500))
        );
        assert_eq!(r.to_state(at(100, None)).unwrap().progress_percent, 99);
        assert_eq!(r.to_state(None).unwrap().progress_percent, 0);
        r.status = JobStatus::Done;
        let done = r.to_state(at(3, Some(9))).unwrap();
        assert_eq!((done.progress_percent, done.eta_ms), (100, None));
        r.status = JobStatus::Queued;
        let queued = r.to_state(at(3, Some(9))).unwrap();
        assert_eq!((queued.progress_percent, queued.eta_ms), (0, None));
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let mut r = record();
        r.video_fid = "nope".into();
        let Err(e) = r.to_state(None) else {
            panic!("a damaged record was read");
        };
        assert!(
            matches!(
                e,
                JobStateError::Damaged {
                    field: "video file id",
                    ..
                }
            ),
            "{e:?}"
        );
        let source = std::error::Error::source(&e).expect("the id error is kept");
        assert!(source.is::<vid2mp3_contracts::IdError>(), "{source:?}");
    }

    #[test]
    fn records_round_trip_through_bson() {
        let r = record();
        let doc = bson::to_document(&r).unwrap();
        assert_eq!(doc.get_str("_id").unwrap(), r.job_id);
        assert_eq!(doc.get_str("status").unwrap(), "converting");
        assert_eq!(bson::from_document::<JobRecord>(doc).unwrap(), r);
    }

    #[test]
    fn records_from_before_loudness_still_load_as_not_levelled() {
        let mut doc = bson::to_document(&record()).unwrap();
        assert_eq!(doc.get_i32("loudness_lufs").unwrap(), -16);
        doc.remove("loudness_lufs");
        let r = bson::from_document::<JobRecord>(doc).unwrap();
        assert_eq!(r.loudness_lufs, None);
        assert_eq!(r.to_state(None).unwrap().loudness_lufs, None);
    }

    #[test]
    fn records_from_before_started_at_still_load() {
        let mut doc = bson::to_document(&record()).unwrap();
        doc.remove("started_at");
        assert_eq!(
            bson::from_document::<JobRecord>(doc).unwrap().started_at,
            None
        );
    }
}
