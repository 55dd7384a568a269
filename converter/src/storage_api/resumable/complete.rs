//! The last byte of a resumable upload is in: the rest of the upload saga, written so that it
//! can be run again after any failure (the upload stays `completing` until it is done).

use axum::http::StatusCode;
use tracing::{info, warn};
use vid2mp3_contracts::storage_api::JobStatus;
use vid2mp3_contracts::{ErrorCode, FileId, JobId};

use super::super::saga::video_metadata;
use super::super::{ApiError, ApiResult, State, owners};
use super::{answer, saga_of, upload_of};
use crate::gridfs::{CHUNK_SIZE, StoredFile};
use crate::job_state::Created;
use crate::resumable::{Phase, ResumableRecord, after};

fn not_queued(size: u64) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!(
            "every byte is stored, but the job queue did not take the job yet; send an empty \
             piece at offset {size} to finish it, or wait: the server tries again within minutes"
        ),
    )
}

/// Makes the video visible, records and queues its job, ends the reservation and marks the
/// upload complete. Held by the caller's `token` throughout.
pub(in crate::storage_api) async fn finish(
    state: &State,
    job: &JobId,
    token: &str,
    mut record: ResumableRecord,
) -> ApiResult {
    let upload = upload_of(&record)?;
    let size = record.length();
    let video_fid: FileId = record
        .video_fid
        .to_hex()
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the upload's record is damaged"))?;
    let chunks = u32::try_from(size.div_ceil(u64::from(CHUNK_SIZE)))
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the upload's record is damaged"))?;
    // A piece refused for going past the end may have written chunks beyond the last one.
    state
        .videos
        .delete_chunks_from(record.video_fid, chunks)
        .await?;
    state
        .videos
        .close_assembled(&StoredFile {
            id: record.video_fid,
            length: size,
            chunk_size: CHUNK_SIZE,
            filename: Some(upload.original_name.clone()),
            metadata: video_metadata(&upload),
        })
        .await?;
    let saga = saga_of(state);
    let job_record = match saga.record(&upload, &video_fid, size).await? {
        Created::New(job_record) => {
            saga.queue(&upload, &video_fid)
                .await
                .map_err(|_| not_queued(size))?;
            job_record
        }
        // An earlier completion recorded it and then failed: its message may or may not
        // have gone out. A job still queued is published again (the worker settles a
        // duplicate); one that moved on was published.
        Created::Existing(existing) if existing.video_fid == video_fid.to_string() => {
            if existing.status == JobStatus::Queued {
                saga.queue(&upload, &video_fid)
                    .await
                    .map_err(|_| not_queued(size))?;
            }
            existing
        }
        Created::Existing(_) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("job {job} exists with another video"),
            ));
        }
    };
    if let Err(refused) = owners::undo_if_erased(state, &job_record).await {
        // The job and its video went; the upload's own leftovers go too.
        if let Err(error) = super::remove_unfinished(state, &record).await {
            warn!(%job, ?error, "could not remove an erased account's upload; the sweep will");
        }
        return Err(refused);
    }
    // The record counts against the quotas from now on instead of the reservation.
    if let Err(error) = state.quotas.end_reservation(&record.reservation_id).await {
        warn!(%job, %error, "could not end a finished upload's reservation; it expires by itself");
    }
    let kept_until = after(state.config.resumable_expiry);
    if !state
        .resumable
        .commit(job, token, size, Vec::new(), Phase::Complete, kept_until)
        .await
        .map_err(ApiError::unavailable)?
    {
        warn!(%job, "a finished upload lost its hold before it was marked complete");
    }
    info!(%job, bytes = size, "resumable upload complete; job queued");
    record.phase = Phase::Complete;
    record.expires_at = kept_until;
    answer(StatusCode::OK, &record, None)
}
