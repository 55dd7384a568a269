//! The upload saga: admit the upload against its owner's quotas, stream the body into a blob,
//! write the job record, publish the job; when a step fails, undo the steps before it, so that
//! a refused or failed upload leaves nothing behind (no chunks, no record, no message, no
//! reservation).
//!
//! | step | undo when a later step fails |
//! |---|---|
//! | admission (a reservation) | released, whatever the outcome (the record counts instead once written) |
//! | each piece of the body: reserve it, then write it | the blob's chunks removed (`abort`) |
//! | close the blob (its files document) | the blob removed by id (the close may have written chunks) |
//! | the job record (`Existing`: a concurrent `PUT` won) | our blob removed |
//! | publish the job (with its owner's priority) | the record and the blob removed |
//!
//! Written against four small traits ([`Admission`]/[`Hold`], [`Blobs`]/[`BlobWriter`],
//! [`Jobs`], [`JobQueue`]) that `QuotaStore`/`Reservation`, `Bucket`/`GridFsWriter`, `JobStore`
//! and `Publisher` implement directly; the unit tests below drive it with a fake that fails at
//! each step.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};
use tracing::{info, warn};
use vid2mp3_contracts::messages::{MESSAGE_VERSION, VIDEO_QUEUE};
use vid2mp3_contracts::{
    ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, UserId, VideoJob,
};

use super::error::ApiError;
use crate::gridfs::{Bucket, GridFsError, GridFsWriter};
use crate::job_state::{Created, JobRecord, JobStateError, JobStore, NewJob};
use crate::metrics::Metrics;
use crate::queue::{Publisher, QueueError, video_priority};
use crate::quota::{QuotaError, QuotaStore, Reservation};

/// How long, and how much of, an upload's body is still read after the upload was refused.
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_BYTES: u64 = 256 << 20;

/// Admission of uploads against their owner's quotas.
pub trait Admission: Send + Sync {
    type Hold: Hold;
    /// Admits an upload of `declared` bytes (`None`: unknown until its end) or refuses it.
    fn admit(
        &self,
        owner: &UserId,
        job: &JobId,
        declared: Option<u64>,
    ) -> impl Future<Output = Result<Self::Hold, QuotaError>> + Send;
    /// The owner's jobs waiting or converting (for the new job's priority).
    fn active_jobs(
        &self,
        owner: &UserId,
    ) -> impl Future<Output = Result<u64, mongodb::error::Error>> + Send;
}

/// An admitted upload's reservation.
pub trait Hold: Send {
    /// Makes sure `total` bytes are reserved before they are stored, or refuses them.
    fn cover(&mut self, total: u64) -> impl Future<Output = Result<(), QuotaError>> + Send;
    /// Ends the reservation (a failure is the implementation's to log).
    fn release(self) -> impl Future<Output = ()> + Send;
}

/// Where the videos go.
pub trait Blobs: Send + Sync {
    type Writer: BlobWriter;
    /// A new blob, written piece by piece.
    fn create(&self) -> Self::Writer;
    /// Removes a blob (its files document and chunks), whatever state it is in.
    fn remove(&self, id: ObjectId) -> impl Future<Output = Result<(), GridFsError>> + Send;
}

/// A blob being written.
pub trait BlobWriter: Send {
    fn id(&self) -> ObjectId;
    /// Bytes written so far.
    fn len(&self) -> u64;
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<(), GridFsError>> + Send;
    /// Writes the rest and makes the blob visible.
    fn close(
        self,
        filename: &str,
        metadata: Document,
    ) -> impl Future<Output = Result<(), GridFsError>> + Send;
    /// Removes what was written; nothing of the blob remains.
    fn abort(self) -> impl Future<Output = Result<(), GridFsError>> + Send;
}

/// The job records.
pub trait Jobs: Send + Sync {
    /// Creates the record, unless one with this job id exists.
    fn create(&self, job: NewJob) -> impl Future<Output = Result<Created, JobStateError>> + Send;
    fn remove(&self, job: &JobId) -> impl Future<Output = Result<(), JobStateError>> + Send;
}

/// The queue the jobs go to.
pub trait JobQueue: Send + Sync {
    /// Publishes a `VideoJob` with `priority` and waits for the broker's confirm.
    fn publish_job(
        &self,
        payload: &[u8],
        message_id: &str,
        priority: u8,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// What the `PUT` headers say about the video.
#[derive(Debug, Clone)]
pub struct Upload {
    pub job: JobId,
    pub owner: UserId,
    pub owner_email: String,
    pub original_name: String,
    pub content_type: String,
    pub profile: QualityProfile,
    pub loudness_lufs: Option<LoudnessTarget>,
}

/// How the saga ended when it did not fail.
#[derive(Debug)]
pub enum Stored {
    /// Stored, recorded and queued (`201`).
    New(JobRecord),
    /// A concurrent `PUT` of the same job stored it first; ours was removed (`200`).
    Existing(JobRecord),
}

/// The stores one upload goes through, and its limits.
pub struct Saga<'a, A, B, J, Q> {
    pub admission: &'a A,
    pub blobs: &'a B,
    pub jobs: &'a J,
    pub queue: &'a Q,
    pub metrics: &'a Metrics,
    pub max_upload_bytes: u64,
}

impl<A: Admission, B: Blobs, J: Jobs, Q: JobQueue> Saga<'_, A, B, J, Q> {
    /// Admits the upload against its owner's quotas, stores it within them, and ends the
    /// reservation whatever happened.
    pub async fn store<S, E>(
        &self,
        upload: Upload,
        declared: Option<u64>,
        body: S,
    ) -> Result<Stored, ApiError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send,
    {
        let mut hold = match self
            .admission
            .admit(&upload.owner, &upload.job, declared)
            .await
        {
            Ok(hold) => hold,
            Err(error) => {
                linger(body);
                return Err(self.refusal(&upload, error));
            }
        };
        let stored = self.store_admitted(upload, body, &mut hold).await;
        hold.release().await;
        stored
    }

    /// A quota refusal is logged and counted; a MongoDB failure is an ordinary 503.
    pub(super) fn refusal(&self, upload: &Upload, error: QuotaError) -> ApiError {
        if let QuotaError::Exceeded(exceeded) = &error {
            info!(job = %upload.job, owner = %upload.owner, limit = exceeded.limit.as_str(), "upload refused by a quota");
            self.metrics
                .quota_refusals
                .with_label_values(&[exceeded.limit.as_str()])
                .inc();
        }
        ApiError::from(error)
    }

    async fn store_admitted<S, E>(
        &self,
        upload: Upload,
        mut stream: S,
        hold: &mut A::Hold,
    ) -> Result<Stored, ApiError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send,
    {
        let job = upload.job;
        let started = Instant::now();
        let max = self.max_upload_bytes;
        let mut writer = self.blobs.create();
        while let Some(piece) = stream.next().await {
            let outcome = match piece {
                Ok(bytes) if writer.len() + bytes.len() as u64 > max => {
                    Err(ApiError::too_large(max))
                }
                Ok(bytes) => match hold.cover(writer.len() + bytes.len() as u64).await {
                    Ok(()) => writer.write(&bytes).await.map_err(ApiError::from),
                    Err(error) => {
                        warn!(%job, received = writer.len(), "the upload crossed its owner's stored-bytes quota; removing it");
                        Err(self.refusal(&upload, error))
                    }
                },
                Err(error) => {
                    self.metrics.uploads_aborted.inc();
                    warn!(%job, received = writer.len(), %error, "the upload ended early; removing it");
                    Err(ApiError::new(
                        ErrorCode::BadRequest,
                        "the upload ended before its end; nothing was stored",
                    ))
                }
            };
            if let Err(error) = outcome {
                abort(writer).await;
                linger(stream);
                return Err(error);
            }
        }
        let size = writer.len();
        let id = writer.id();
        let video_fid: FileId = match id.to_hex().parse() {
            Ok(fid) => fid,
            Err(_) => {
                abort(writer).await;
                return Err(ApiError::new(
                    ErrorCode::Internal,
                    "a new ObjectId did not parse",
                ));
            }
        };
        if let Err(error) = writer
            .close(&upload.original_name, video_metadata(&upload))
            .await
        {
            // close() may have written chunks before failing.
            self.remove_blob(id).await;
            return Err(error.into());
        }
        self.metrics.add_bytes("video_in", size);
        let record = match self.record(&upload, &video_fid, size).await {
            Ok(Created::New(record)) => record,
            Ok(Created::Existing(existing)) => {
                // A concurrent PUT of the same job won: ours is a duplicate.
                self.remove_blob(id).await;
                return Ok(Stored::Existing(existing));
            }
            Err(error) => {
                self.remove_blob(id).await;
                return Err(error.into());
            }
        };
        let priority = match self.queue(&upload, &video_fid).await {
            Ok(priority) => priority,
            Err(error) => {
                self.remove_blob(id).await;
                return Err(error);
            }
        };
        info!(
            %job,
            video_fid = %video_fid,
            bytes = size,
            priority,
            ms = started.elapsed().as_millis() as u64,
            "video stored and queued"
        );
        Ok(Stored::New(record))
    }

    /// Writes the job's record for a stored video.
    pub async fn record(
        &self,
        upload: &Upload,
        video_fid: &FileId,
        size: u64,
    ) -> Result<Created, JobStateError> {
        self.jobs
            .create(NewJob {
                job_id: upload.job,
                owner_id: upload.owner,
                owner_email: upload.owner_email.clone(),
                original_name: upload.original_name.clone(),
                content_type: upload.content_type.clone(),
                profile: upload.profile,
                loudness_lufs: upload.loudness_lufs,
                video_fid: video_fid.clone(),
                video_size_bytes: size,
            })
            .await
    }

    /// Publishes the recorded job; when the broker does not confirm it, removes the record
    /// (the caller removes or keeps the video) and answers `503`.
    pub async fn queue(&self, upload: &Upload, video_fid: &FileId) -> Result<u8, ApiError> {
        let job = upload.job;
        let message = VideoJob {
            version: MESSAGE_VERSION,
            message_id: uuid::Uuid::now_v7(),
            job_id: job,
            video_fid: video_fid.clone(),
            mp3_fid: None,
            username: upload.owner_email.clone(),
            owner_id: upload.owner,
            original_name: upload.original_name.clone(),
            profile: upload.profile,
            loudness_lufs: upload.loudness_lufs,
            attempt: 1,
        };
        match self.publish(&message).await {
            Ok(priority) => Ok(priority),
            Err(error) => {
                warn!(%job, error = format!("{:#}", anyhow::Error::from(error)), "the video job was not confirmed; removing its record");
                if let Err(error) = self.jobs.remove(&job).await {
                    warn!(%job, %error, "could not remove the record of an upload that failed");
                }
                Err(ApiError::new(
                    ErrorCode::Unavailable,
                    "the job queue did not accept the video; nothing was stored, try again shortly",
                ))
            }
        }
    }

    /// The owner's backlog (this job included) sets its place among other accounts' jobs.
    async fn publish(&self, message: &VideoJob) -> Result<u8, PublishError> {
        let in_flight = self.admission.active_jobs(&message.owner_id).await?;
        let priority = video_priority(in_flight.saturating_sub(1));
        let payload = serde_json::to_vec(message)?;
        self.queue
            .publish_job(&payload, &message.message_id.to_string(), priority)
            .await?;
        Ok(priority)
    }

    async fn remove_blob(&self, id: ObjectId) {
        if let Err(error) = self.blobs.remove(id).await {
            warn!(video_fid = %id, %error, "could not remove the video of an upload that failed");
        }
    }
}

/// The video file's GridFS metadata: whose it is and what it is for.
pub(super) fn video_metadata(upload: &Upload) -> Document {
    doc! {
        "job_id": upload.job.to_string(),
        "owner_id": upload.owner.to_string(),
        "owner_email": &upload.owner_email,
        "original_name": &upload.original_name,
        "content_type": &upload.content_type,
        "profile": upload.profile.as_str(),
        "loudness_lufs": upload.loudness_lufs.map(|t| t.lufs()),
    }
}

/// Why a job was not published.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("counting the owner's jobs")]
    Backlog(#[from] mongodb::error::Error),
    #[error("encoding the job")]
    Encode(#[from] serde_json::Error),
    #[error("publishing the job")]
    Queue(#[from] QueueError),
}

async fn abort(writer: impl BlobWriter) {
    let id = writer.id();
    if let Err(error) = writer.abort().await {
        warn!(video_fid = %id, %error, "could not remove the chunks of an aborted upload");
    }
}

/// Reads and drops what a refused upload's client still sends, for a while, in the background.
/// Closing a connection with bytes unread makes the kernel reset it, and a client still sending
/// can then lose the answer to the reset; a client that has read the answer stops sending.
pub(super) fn linger<S, E>(mut rest: S)
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
{
    tokio::spawn(async move {
        let mut read = 0_u64;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while let Some(Ok(piece)) = rest.next().await {
                read += piece.len() as u64;
                if read > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

// The real stores: MongoDB (quotas, GridFS, job records) and RabbitMQ.

impl Admission for QuotaStore {
    type Hold = Reservation;

    async fn admit(
        &self,
        owner: &UserId,
        job: &JobId,
        declared: Option<u64>,
    ) -> Result<Reservation, QuotaError> {
        QuotaStore::admit(self, owner, job, declared).await
    }

    async fn active_jobs(&self, owner: &UserId) -> Result<u64, mongodb::error::Error> {
        QuotaStore::active_jobs(self, owner).await
    }
}

impl Hold for Reservation {
    async fn cover(&mut self, total: u64) -> Result<(), QuotaError> {
        Reservation::cover(self, total).await
    }

    async fn release(self) {
        Reservation::release(self).await;
    }
}

impl Blobs for Bucket {
    type Writer = GridFsWriter;

    fn create(&self) -> GridFsWriter {
        self.writer(false)
    }

    async fn remove(&self, id: ObjectId) -> Result<(), GridFsError> {
        self.delete(id).await.map(|_| ())
    }
}

impl BlobWriter for GridFsWriter {
    fn id(&self) -> ObjectId {
        GridFsWriter::id(self)
    }

    fn len(&self) -> u64 {
        GridFsWriter::len(self)
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), GridFsError> {
        GridFsWriter::write(self, data).await
    }

    async fn close(self, filename: &str, metadata: Document) -> Result<(), GridFsError> {
        GridFsWriter::close(self, filename, metadata)
            .await
            .map(|_| ())
    }

    async fn abort(self) -> Result<(), GridFsError> {
        GridFsWriter::abort(self).await
    }
}

impl Jobs for JobStore {
    async fn create(&self, job: NewJob) -> Result<Created, JobStateError> {
        JobStore::create(self, job).await
    }

    async fn remove(&self, job: &JobId) -> Result<(), JobStateError> {
        self.delete(job).await.map(|_| ())
    }
}

impl JobQueue for Publisher {
    async fn publish_job(
        &self,
        payload: &[u8],
        message_id: &str,
        priority: u8,
    ) -> Result<(), QueueError> {
        self.publish(VIDEO_QUEUE, payload, message_id, Some(priority))
            .await
    }
}

#[cfg(test)]
mod tests;
