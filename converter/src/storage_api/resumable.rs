//! `/internal/v1/uploads/{job_id}`: resumable uploads, the storage side of the gateway's tus
//! routes (records: [`crate::resumable`]).
//!
//! An upload is admitted against its owner's quotas when it begins, for its whole declared
//! length, and holds that reservation across its pieces until its job is recorded (or it is
//! ended or expires). Each piece appends to the video's GridFS chunks under the record's lock
//! and then moves the record's offset; a piece cut off keeps what arrived. The last byte runs
//! the rest of the upload saga: the files document, the job's record, its `video` message.

mod complete;
mod expiry;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{self, Path};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use futures::{Stream, StreamExt};
use tracing::{Instrument, info, warn};
use vid2mp3_contracts::storage_api::{
    HEADER_OWNER_ID, HEADER_UPLOAD_LENGTH, HEADER_UPLOAD_OFFSET, ResumableUpload,
};
use vid2mp3_contracts::{ErrorCode, JobId, UserId};

pub(super) use self::expiry::run_sweep;
use super::error::json_response;
use super::saga::{self, Saga, Upload};
use super::{ApiError, ApiResult, State, header_text, parse_job, parse_upload, webhooks};
use crate::gridfs::CHUNK_SIZE;
use crate::resumable::{NewResumable, Phase, ResumableRecord, Taken, after, is_taken};

/// How long a piece holds its upload without writing a chunk before another may take it.
const HOLD: Duration = Duration::from_secs(120);
/// A piece whose next bytes take longer than this is treated as cut off (what arrived is
/// kept), well inside [`HOLD`].
const IDLE: Duration = Duration::from_secs(60);

/// The answer that tells where an upload is.
fn answer(
    status: StatusCode,
    record: &ResumableRecord,
    callback_secret: Option<String>,
) -> ApiResult {
    let body =
        ResumableUpload {
            job_id: record.job_id.parse().map_err(|_| {
                ApiError::new(ErrorCode::Internal, "the upload's record is damaged")
            })?,
            owner_id: record.owner_id.parse().map_err(|_| {
                ApiError::new(ErrorCode::Internal, "the upload's record is damaged")
            })?,
            length: record.length(),
            offset: record.offset(),
            expires_at_ms: record.expires_at.timestamp_millis(),
            complete: record.phase == Phase::Complete,
            callback_secret,
        };
    Ok(json_response(status, &body))
}

fn owner_of(headers: &HeaderMap) -> Result<UserId, ApiError> {
    header_text(headers, HEADER_OWNER_ID)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{HEADER_OWNER_ID} is missing"),
            )
        })?
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("{HEADER_OWNER_ID}: {e}")))
}

fn number(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    header_text(headers, name)?
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, format!("{name} is missing")))?
        .parse()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{name} must be a whole number of bytes"),
            )
        })
}

fn no_upload(job: &JobId) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no upload {job} (it may have expired or been ended); begin a new one"),
    )
}

fn upload_of(record: &ResumableRecord) -> Result<Upload, ApiError> {
    let damaged = || ApiError::new(ErrorCode::Internal, "the upload's record is damaged");
    Ok(Upload {
        job: record.job_id.parse().map_err(|_| damaged())?,
        owner: record.owner_id.parse().map_err(|_| damaged())?,
        owner_email: record.owner_email.clone(),
        original_name: record.original_name.clone(),
        content_type: record.content_type.clone(),
        profile: record.profile,
        loudness_lufs: record.loudness_lufs,
    })
}

/// `POST`: admits the upload for its declared length and writes its record.
pub(super) async fn begin(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let upload = parse_upload(&job, &headers)?;
    let length = number(&headers, HEADER_UPLOAD_LENGTH)?;
    if length == 0 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "an upload of 0 bytes holds no video; send a video file",
        ));
    }
    if length > state.config.max_upload_bytes {
        return Err(ApiError::too_large(state.config.max_upload_bytes));
    }
    if let Some(existing) = state
        .resumable
        .get(&upload.job)
        .await
        .map_err(ApiError::unavailable)?
    {
        if existing.owner_id != upload.owner.to_string() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("upload {} exists with another owner", upload.job),
            ));
        }
        return answer(StatusCode::OK, &existing, None);
    }
    if state.jobs.get(&upload.job).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("job {} exists already", upload.job),
        ));
    }
    let callback_secret = webhooks::job_callback(&state, &upload.job, &headers).await?;
    let forget_callback = async || {
        if callback_secret.is_some() {
            webhooks::forget_job_callback(&state, &upload.job).await;
        }
    };
    let saga = saga_of(&state);
    let reservation = match state
        .quotas
        .admit(&upload.owner, &upload.job, Some(length))
        .await
    {
        Ok(reservation) => reservation,
        Err(error) => {
            forget_callback().await;
            return Err(saga.refusal(&upload, error));
        }
    };
    let expires_at = after(state.config.resumable_expiry);
    let reservation_id = match reservation.keep_until(expires_at).await {
        Ok(id) => id,
        Err(error) => {
            forget_callback().await;
            return Err(ApiError::unavailable(error));
        }
    };
    let created = state
        .resumable
        .create(NewResumable {
            job_id: upload.job,
            owner_id: upload.owner,
            owner_email: upload.owner_email.clone(),
            original_name: upload.original_name.clone(),
            content_type: upload.content_type.clone(),
            profile: upload.profile,
            loudness_lufs: upload.loudness_lufs,
            length,
            reservation_id: reservation_id.clone(),
            expires_at,
        })
        .await;
    match created {
        Ok(record) => {
            info!(job = %upload.job, owner = %upload.owner, length, "resumable upload begun");
            answer(StatusCode::CREATED, &record, callback_secret)
        }
        Err(error) => {
            if let Err(error) = state.quotas.end_reservation(&reservation_id).await {
                warn!(job = %upload.job, %error, "could not end the reservation of an upload that did not begin");
            }
            forget_callback().await;
            if is_taken(&error) {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "upload {} was begun by another request at the same time; ask where it is",
                        upload.job
                    ),
                ));
            }
            Err(ApiError::unavailable(error))
        }
    }
}

/// `GET`: where the upload is. The owner header, when sent, must match.
pub(super) async fn status(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let job = parse_job(&job)?;
    let owner = match header_text(&headers, HEADER_OWNER_ID)? {
        Some(_) => Some(owner_of(&headers)?),
        None => None,
    };
    let record = state
        .resumable
        .get(&job)
        .await
        .map_err(ApiError::unavailable)?
        .filter(|r| owner.is_none_or(|o| r.owner_id == o.to_string()))
        .filter(|r| !r.is_expired())
        .ok_or_else(|| no_upload(&job))?;
    answer(StatusCode::OK, &record, None)
}

/// `DELETE`: ends an unfinished upload and removes its bytes, reservation and callback.
pub(super) async fn end(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let job = parse_job(&job)?;
    let owner = owner_of(&headers)?;
    let token = uuid::Uuid::now_v7().to_string();
    let record = match state
        .resumable
        .take(&job, &owner, &token, HOLD)
        .await
        .map_err(ApiError::unavailable)?
    {
        Taken::Held(record) => record,
        Taken::Busy => return Err(busy()),
        Taken::Missing => return Err(no_upload(&job)),
    };
    if record.phase != Phase::Receiving {
        release(&state, &job, &token).await;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("upload {job} is finished: it is a job now; delete the job instead"),
        ));
    }
    remove_unfinished(&state, &record).await?;
    info!(%job, %owner, offset = record.offset, "resumable upload ended by its owner");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes everything of an unfinished upload: chunks, reservation, callback, record (last, so
/// that a failure half way leaves the record to try again with).
pub(super) async fn remove_unfinished(
    state: &State,
    record: &ResumableRecord,
) -> Result<(), ApiError> {
    let job: JobId = record
        .job_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the upload's record is damaged"))?;
    state.videos.delete(record.video_fid).await?;
    state
        .quotas
        .end_reservation(&record.reservation_id)
        .await
        .map_err(ApiError::unavailable)?;
    webhooks::forget_job_callback(state, &job).await;
    state
        .resumable
        .remove(&job)
        .await
        .map_err(ApiError::unavailable)
}

fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::Locked,
        "another request is sending this upload right now; try again in a moment",
    )
}

async fn release(state: &State, job: &JobId, token: &str) {
    if let Err(error) = state.resumable.release(job, token).await {
        warn!(%job, %error, "could not release an upload; it is free again within two minutes");
    }
}

fn saga_of(
    state: &State,
) -> Saga<
    '_,
    crate::quota::QuotaStore,
    crate::gridfs::Bucket,
    crate::job_state::JobStore,
    crate::queue::Publisher,
> {
    Saga {
        admission: &state.quotas,
        blobs: &state.videos,
        jobs: &state.jobs,
        queue: &*state.publisher,
        metrics: &state.metrics,
        max_upload_bytes: state.config.max_upload_bytes,
    }
}

/// `PATCH`: appends the body at the offset the header names.
pub(super) async fn append(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let job = parse_job(&job)?;
    let owner = owner_of(&headers)?;
    let offset = number(&headers, HEADER_UPLOAD_OFFSET)?;
    let token = uuid::Uuid::now_v7().to_string();
    let record = match state
        .resumable
        .take(&job, &owner, &token, HOLD)
        .await
        .map_err(ApiError::unavailable)?
    {
        Taken::Held(record) => record,
        Taken::Busy => {
            saga::linger(body.into_data_stream());
            return Err(busy());
        }
        Taken::Missing => {
            saga::linger(body.into_data_stream());
            return Err(no_upload(&job));
        }
    };
    // The rest runs as its own task: if the gateway goes away mid-piece, what arrived is still
    // committed (or a completion still finishes) instead of stopping half way.
    let span = tracing::Span::current();
    tokio::spawn(
        async move {
            let outcome = append_held(
                &state,
                &job,
                &token,
                *record,
                offset,
                body.into_data_stream(),
            )
            .await;
            release(&state, &job, &token).await;
            outcome
        }
        .instrument(span),
    )
    .await
    .map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the piece was not stored: {e}"),
        )
    })?
}

async fn append_held<S>(
    state: &State,
    job: &JobId,
    token: &str,
    record: ResumableRecord,
    offset: u64,
    mut body: S,
) -> ApiResult
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Send + Unpin + 'static,
{
    let stored = record.offset();
    let length = record.length();
    if record.is_expired() {
        saga::linger(body);
        return Err(no_upload(job));
    }
    if offset != stored {
        saga::linger(body);
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "this piece starts at byte {offset} but the upload has {stored} bytes; send from byte {stored}"
            ),
        )
        .with_upload_offset(stored));
    }
    if record.phase != Phase::Receiving {
        // Every byte is in: an empty piece is all that may still come (it finishes a
        // completion that failed, or repeats the answer).
        if let Some(Ok(bytes)) = body.next().await
            && !bytes.is_empty()
        {
            saga::linger(body);
            return Err(past_length(length, stored));
        }
        return match record.phase {
            Phase::Completing => complete::finish(state, job, token, record).await,
            _ => answer(StatusCode::OK, &record, None),
        };
    }
    let video = record.video_fid;
    let chunk_size = CHUNK_SIZE as usize;
    let mut n = u32::try_from(stored / u64::from(CHUNK_SIZE))
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the upload's record is damaged"))?;
    let mut pending = record.tail.bytes.clone();
    if pending.len() as u64 != stored % u64::from(CHUNK_SIZE) {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "the upload's record is damaged",
        ));
    }
    // What an earlier piece wrote past the offset it committed.
    state.videos.delete_chunks_from(video, n).await?;
    let remaining = length - stored;
    let mut received = 0_u64;
    let mut cut_off = false;
    loop {
        let piece = match tokio::time::timeout(IDLE, body.next()).await {
            Ok(Some(Ok(piece))) => piece,
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                info!(%job, received, %error, "the piece was cut off; keeping what arrived");
                cut_off = true;
                break;
            }
            Err(_) => {
                info!(%job, received, idle_secs = IDLE.as_secs(), "the piece stalled; keeping what arrived");
                cut_off = true;
                break;
            }
        };
        if received + piece.len() as u64 > remaining {
            saga::linger(body);
            return Err(past_length(length, stored));
        }
        received += piece.len() as u64;
        pending.extend_from_slice(&piece);
        while pending.len() >= chunk_size {
            let rest = pending.split_off(chunk_size);
            let chunk = std::mem::replace(&mut pending, rest);
            state.videos.put_chunk(video, n, chunk).await?;
            n += 1;
            if !state
                .resumable
                .renew(job, token, HOLD)
                .await
                .map_err(ApiError::unavailable)?
            {
                warn!(%job, "a piece lost its hold on the upload; stopping it");
                return Err(busy());
            }
        }
    }
    let offset = stored + received;
    let expires_at = after(state.config.resumable_expiry);
    if offset == length {
        if !pending.is_empty() {
            state.videos.put_chunk(video, n, pending).await?;
        }
        if !state
            .resumable
            .commit(
                job,
                token,
                offset,
                Vec::new(),
                Phase::Completing,
                expires_at,
            )
            .await
            .map_err(ApiError::unavailable)?
        {
            return Err(busy());
        }
        let mut record = record;
        record.offset = crate::resumable::to_i64(offset);
        record.phase = Phase::Completing;
        record.expires_at = expires_at;
        return complete::finish(state, job, token, record).await;
    }
    if !state
        .resumable
        .commit(job, token, offset, pending, Phase::Receiving, expires_at)
        .await
        .map_err(ApiError::unavailable)?
    {
        return Err(busy());
    }
    if let Err(error) = state
        .quotas
        .extend_reservation(&record.reservation_id, expires_at)
        .await
    {
        warn!(%job, %error, "could not move the upload's reservation on");
    }
    state.metrics.add_bytes("video_in", received);
    info!(%job, from = stored, to = offset, length, cut_off, "piece stored");
    let mut record = record;
    record.offset = crate::resumable::to_i64(offset);
    record.expires_at = expires_at;
    answer(StatusCode::OK, &record, None)
}

fn past_length(length: u64, stored: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "this piece goes past the upload's declared length of {length} bytes; nothing of it was kept, the upload still has {stored} bytes"
        ),
    )
    .with_upload_offset(stored)
}
