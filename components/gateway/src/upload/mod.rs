//! Uploads: checked, recorded, then streamed to the converter's storage API.
//!
//! Order matters for "nothing lost, nothing orphaned": the size and media checks run before
//! anything is stored; the job row is written (invisible, `stored_at` NULL) before the bytes go
//! to storage, so a stored video always has an owner; the row becomes visible only once storage
//! confirms the video is kept and queued. When anything fails midway the storage request is
//! aborted (storage then keeps nothing) and the row is removed.
//!
//! The account's quotas are the storage API's to check, since the converter owns what they
//! count (sizes, states, durations). Its refusal (`quota_exceeded`: `413` for stored bytes,
//! `429` for queued jobs or the day's media minutes, with `Retry-After`) comes back at the start
//! of the upload or where the body crossed the stored-bytes quota; streaming stops there, the
//! row is removed and the refusal is the answer, as the converter worded it.

pub mod multipart;
pub mod naming;
mod sweep;

pub use sweep::sweep_abandoned;

use spin_sdk::wit::wasi::http0_2_0::types::IncomingResponse;
use vid2mp3_contracts::storage_api::{JobStatus, StoredVideo};
use vid2mp3_contracts::{Claims, ErrorCode, JobId, LoudnessTarget, QualityProfile};

use crate::config::GatewayConfig;
use crate::errors::ApiError;
use crate::http_io::{BodyReader, IoError, RequestHead, StreamedRequest, response_header};
use crate::job_view::{JobLinks, JobView, rfc3339};
use crate::jobs_store::JobsStore;
use crate::media_sniff::{SNIFF_BYTES, container};
use crate::storage_client::{VideoUpload, stored_video};
use multipart::{FormError, FormFile};

/// A multipart body is the file plus what [`multipart`] allows before and after it; a declared
/// length over the size limit plus both is refused before anything is read.
const MULTIPART_OVERHEAD_BYTES: u64 = 2 * multipart::MAX_FRAMING_BYTES;

/// How much of a body storage refused part way is still read (and dropped) before the answer:
/// an answer sent with the client's bytes unread ends in a reset connection, which a client
/// still sending can see instead of the answer.
const DRAIN_AFTER_REFUSAL_BYTES: u64 = 32 << 20;

/// Where the file's bytes come from.
enum Source {
    Raw(BodyReader),
    Form(Box<FormFile>),
}

impl Source {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ApiError> {
        match self {
            Source::Raw(reader) => reader.next_chunk().map_err(|_| aborted()),
            Source::Form(form) => form
                .next_chunk()
                .map(|c| c.map(|b| b.to_vec()))
                .map_err(form_error),
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        match self {
            Source::Raw(_) => Ok(()),
            Source::Form(form) => form.finish().map_err(form_error),
        }
    }
}

fn aborted() -> ApiError {
    ApiError::bad_request(
        "the upload was cut off before its end; nothing was stored, send it again",
    )
}

fn form_error(e: FormError) -> ApiError {
    match e {
        FormError::Aborted => aborted(),
        FormError::TooMuchFraming => ApiError::new(ErrorCode::PayloadTooLarge, e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the upload is larger than the limit of {max} bytes; nothing was stored"),
    )
}

/// Takes an upload and answers with the queued job. `callback_url`: the job's own webhook
/// (`?callback_url=` on `/api/v1/jobs`), checked by the storage API before anything is stored.
pub fn upload(
    head: &RequestHead,
    body: BodyReader,
    claims: &Claims,
    config: &GatewayConfig,
    callback_url: Option<String>,
) -> Result<JobView, ApiError> {
    if let Some(url) = &callback_url {
        crate::webhook::check_length(url)?;
    }
    let max = config.max_upload_bytes;
    let content_type = head.header("content-type").unwrap_or_default().to_owned();
    let declared_length = head
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let profile = match head.query_param("profile") {
        None => QualityProfile::default(),
        Some(p) => p.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "'{p}' is not a quality profile; use one of: standard, fast, cbr128, cbr192"
            ))
        })?,
    };
    let loudness_lufs = match head.query_param("loudness") {
        None => None,
        Some(t) if t.is_empty() || t == "off" => None,
        Some(t) => Some(
            t.parse::<LoudnessTarget>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };

    let (mut source, file_name, file_type, storage_length) = if let Some(boundary) =
        multipart::boundary(&content_type)
    {
        if declared_length.is_some_and(|n| n > max.saturating_add(MULTIPART_OVERHEAD_BYTES)) {
            return Err(too_large(max));
        }
        let form = FormFile::open(body, boundary).map_err(form_error)?;
        let name = naming::clean_file_name(&form.file_name, "upload");
        let file_type = form
            .content_type
            .clone()
            .filter(|t| naming::is_media_content_type(t))
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        (Source::Form(Box::new(form)), name, file_type, None)
    } else {
        if content_type.is_empty() || !naming::is_media_content_type(&content_type) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "send the video as the raw body with its media type (e.g. Content-Type: video/mp4) \
                         or as multipart/form-data with one file; '{}' is neither",
                    if content_type.is_empty() {
                        "no Content-Type"
                    } else {
                        &content_type
                    }
                ),
            ));
        }
        if declared_length.is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        let name = naming::clean_file_name(&head.query_param("name").unwrap_or_default(), "upload");
        (
            Source::Raw(body),
            name,
            naming::essence(&content_type),
            declared_length,
        )
    };

    // The first bytes decide whether this is media at all, before anything is stored.
    let mut head_bytes = Vec::with_capacity(SNIFF_BYTES);
    while head_bytes.len() < SNIFF_BYTES {
        match source.next_chunk()? {
            Some(chunk) => head_bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    if head_bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the upload is empty; send a video file",
        ));
    }
    if container(&head_bytes).is_none() {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "this file is not a video or audio file we can read (its first bytes match no media \
             container); nothing was stored",
        ));
    }
    if head_bytes.len() as u64 > max {
        return Err(too_large(max));
    }

    let job = JobId::new();
    // A MySQL connection is a session held from open to drop, so none is held while the body
    // streams: a slow upload must not keep one of the database's connections for minutes.
    JobsStore::open(&config.db_url)?.insert_pending(&job, &claims.sub, &file_name, &file_type)?;
    let stored = stream_to_storage(
        config,
        &VideoUpload {
            job,
            owner: claims.sub,
            owner_email: claims.email.clone(),
            original_name: file_name.clone(),
            content_type: file_type.clone(),
            profile,
            loudness_lufs,
            content_length: storage_length,
            callback_url,
        },
        head_bytes,
        source,
    );
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            if let Err(cleanup) = JobsStore::open(&config.db_url).and_then(|jobs| jobs.remove(&job))
            {
                eprintln!(
                    "gateway: job={job} could not remove the pending row: {}",
                    cleanup.message
                );
            }
            return Err(e);
        }
    };
    JobsStore::open(&config.db_url)?.mark_stored(&job)?;
    eprintln!(
        "gateway: upload job={job} user={} bytes={} type={file_type}",
        claims.sub, stored.size_bytes
    );
    sweep::sweep_abandoned(config);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let this = format!("/api/v1/jobs/{job}");
    Ok(JobView {
        id: job,
        status: JobStatus::Queued,
        progress_percent: 0,
        eta_ms: None,
        original_name: file_name,
        content_type: file_type,
        profile: Some(profile),
        loudness_lufs,
        attempts: 0,
        video_size_bytes: Some(stored.size_bytes),
        mp3_fid: None,
        mp3_size_bytes: None,
        duration_ms: None,
        error: None,
        created_at: rfc3339(now_ms),
        updated_at: None,
        links: JobLinks { this, mp3: None },
        callback_secret: stored.callback_secret,
    })
}

/// Streams the upload to storage. Any error drops the request unfinished, which aborts it.
/// Storage may answer before the body ends (a quota refuses the upload at its start, or where
/// it crosses the stored-bytes quota): streaming stops there and that answer is the result.
fn stream_to_storage(
    config: &GatewayConfig,
    upload: &VideoUpload,
    head_bytes: Vec<u8>,
    mut source: Source,
) -> Result<StoredVideo, ApiError> {
    let max = config.max_upload_bytes;
    let mut put = config
        .storage
        .start_video_upload(upload)
        .map_err(|e| ApiError::unavailable("the storage service", e))?;
    let mut total = head_bytes.len() as u64;
    if !send(&mut put, &head_bytes)? {
        return answered_early(put, source);
    }
    while let Some(chunk) = source.next_chunk()? {
        total += chunk.len() as u64;
        if total > max {
            return Err(too_large(max));
        }
        if !send(&mut put, &chunk)? {
            return answered_early(put, source);
        }
    }
    source.finish()?;
    storage_answer(put.finish())
}

/// Storage answered before the body ended (a refusal): its answer, once what the client still
/// sends has been read, up to [`DRAIN_AFTER_REFUSAL_BYTES`].
fn answered_early(put: StreamedRequest, mut source: Source) -> Result<StoredVideo, ApiError> {
    let answer = storage_answer(put.response());
    let mut drained = 0_u64;
    while drained <= DRAIN_AFTER_REFUSAL_BYTES {
        match source.next_chunk() {
            Ok(Some(chunk)) => drained += chunk.len() as u64,
            Ok(None) | Err(_) => break,
        }
    }
    answer
}

fn storage_answer(response: Result<IncomingResponse, IoError>) -> Result<StoredVideo, ApiError> {
    let response = response.map_err(|e| ApiError::unavailable("the storage service", e))?;
    let status = response.status();
    let retry_after = response_header(&response, "retry-after");
    let body = BodyReader::of_response(&response)
        .and_then(|r| r.read_to_end(64 * 1024))
        .map_err(|e| ApiError::unavailable("the storage service", e))?;
    stored_video(status, retry_after.as_deref(), &body)
}

/// Sends a piece of the body: `Ok(false)` once storage has answered (before the body ended).
fn send(put: &mut StreamedRequest, data: &[u8]) -> Result<bool, ApiError> {
    match put.write(data) {
        Ok(()) => Ok(!put.answered_early()),
        Err(_) if put.answered_early() => Ok(false),
        Err(e) => Err(ApiError::unavailable("the storage service", e)),
    }
}
