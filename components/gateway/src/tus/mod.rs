//! Resumable uploads: tus 1.0.0 (core, creation, termination, expiration) on
//! `/api/v1/uploads`, over the converter's resumable storage (`/internal/v1/uploads`).
//!
//! The upload's id is the job id it becomes. Creation writes the job's row pending (invisible,
//! as a raw upload's is while it streams) and asks storage to admit the declared length; each
//! `PATCH` streams its piece straight through to storage, which appends it and keeps whatever
//! arrived if the piece is cut off; the piece that brings the last byte comes back with the job
//! recorded and queued, and the row is then shown. The first piece's first bytes pass the same
//! media check as a raw upload's. Ownership is storage's to check: it knows each upload's owner
//! and answers `404` for anyone else's, the same words as for one that does not exist.

pub mod metadata;
pub mod protocol;

use spin_sdk::wit::wasi::http0_2_0::types::IncomingResponse;
use vid2mp3_contracts::storage_api::{HEADER_UPLOAD_OFFSET, ResumableUpload};
use vid2mp3_contracts::{Claims, ErrorCode, JobId, LoudnessTarget, QualityProfile};

use crate::config::GatewayConfig;
use crate::errors::ApiError;
use crate::http_io::{BodyReader, IoError, Reply, RequestHead, StreamedRequest, response_header};
use crate::jobs_store::JobsStore;
use crate::media_sniff::{SNIFF_BYTES, container};
use crate::storage_client::{VideoUpload, resumable_upload, upload_refusal};
use crate::upload::naming;

/// How much of a piece storage refused is still read (and dropped) before the answer, as for
/// a refused raw upload: an answer sent with the client's bytes unread ends in a reset.
const DRAIN_AFTER_REFUSAL_BYTES: u64 = 32 << 20;

pub const UPLOADS_PATH: &str = "/api/v1/uploads";

fn upload_url(job: &JobId) -> String {
    format!("{UPLOADS_PATH}/{job}")
}

fn tus_reply(status: u16) -> Reply {
    let mut reply = Reply::empty(status);
    reply
        .headers
        .push(("tus-resumable".into(), protocol::VERSION.into()));
    reply
}

fn no_upload() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such upload among yours (it may have expired or been ended); begin a new one",
    )
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    // An id that cannot exist is answered like one that does not: nothing to probe.
    id.parse().map_err(|_| no_upload())
}

/// `OPTIONS`: what this server supports (no token needed, as tus asks).
pub fn options(config: &GatewayConfig) -> Reply {
    let mut reply = tus_reply(204);
    reply.headers.extend([
        ("tus-version".into(), protocol::VERSION.into()),
        ("tus-extension".into(), protocol::EXTENSIONS.into()),
        ("tus-max-size".into(), config.max_upload_bytes.to_string()),
    ]);
    reply
}

/// `POST /api/v1/uploads`: begins an upload of `Upload-Length` bytes.
pub fn create(
    head: &RequestHead,
    claims: &Claims,
    config: &GatewayConfig,
) -> Result<Reply, ApiError> {
    protocol::check_version(head)?;
    if head.header("upload-defer-length").is_some() {
        return Err(ApiError::bad_request(
            "Upload-Defer-Length is not supported: send Upload-Length with the file's size",
        ));
    }
    let length = protocol::number(head, "upload-length")?
        .ok_or_else(|| ApiError::bad_request("send Upload-Length: the file's size in bytes"))?;
    if length == 0 {
        return Err(ApiError::bad_request(
            "the upload is empty (Upload-Length: 0); send a video file",
        ));
    }
    let max = config.max_upload_bytes;
    if length > max {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the upload is larger than the limit of {max} bytes; nothing was stored"),
        ));
    }
    let metadata = metadata::parse(head.header("upload-metadata").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let file_name =
        naming::clean_file_name(metadata.filename.as_deref().unwrap_or_default(), "upload");
    let file_type = match metadata.filetype.as_deref().map(str::trim) {
        None | Some("") => "application/octet-stream".to_owned(),
        Some(t) if naming::is_media_content_type(t) => naming::essence(t),
        Some(t) => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "the filetype '{}' is not a video or audio type; nothing was stored",
                    t.chars().take(64).collect::<String>()
                ),
            ));
        }
    };
    let profile = match metadata.profile.as_deref() {
        None | Some("") => QualityProfile::default(),
        Some(p) => p.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "'{p}' is not a quality profile; use one of: standard, fast, cbr128, cbr192"
            ))
        })?,
    };
    let loudness_lufs = match metadata.loudness.as_deref() {
        None | Some("" | "off") => None,
        Some(t) => Some(
            t.parse::<LoudnessTarget>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let callback_url = metadata.callback_url.filter(|u| !u.is_empty());
    if let Some(url) = &callback_url {
        crate::webhook::check_length(url)?;
    }
    let job = JobId::new();
    JobsStore::open(&config.db_url)?.insert_pending(&job, &claims.sub, &file_name, &file_type)?;
    let begun = config.storage.begin_upload(
        &VideoUpload {
            job,
            owner: claims.sub,
            owner_email: claims.email.clone(),
            original_name: file_name.clone(),
            content_type: file_type,
            profile,
            loudness_lufs,
            content_length: None,
            callback_url,
        },
        length,
    );
    let upload = begun.and_then(|resp| match resp.status {
        200 | 201 => resumable_upload(&resp),
        status => Err(upload_refusal(
            status,
            resp.header("retry-after"),
            None,
            &resp.body,
        )),
    });
    let upload = match upload {
        Ok(upload) => upload,
        Err(e) => {
            remove_row(config, &job);
            return Err(e);
        }
    };
    eprintln!(
        "gateway: resumable upload begun job={job} user={} length={length}",
        claims.sub
    );
    let mut reply = Reply::json(
        201,
        &serde_json::json!({
            "id": job,
            "upload_url": upload_url(&job),
            "job_url": format!("/api/v1/jobs/{job}"),
            "length": length,
            "offset": upload.offset,
            "expires_at": crate::job_view::rfc3339(upload.expires_at_ms),
            "callback_secret": upload.callback_secret,
        }),
    );
    reply.headers.extend([
        ("tus-resumable".into(), protocol::VERSION.into()),
        ("location".into(), upload_url(&job)),
        ("upload-offset".into(), upload.offset.to_string()),
        (
            "upload-expires".into(),
            protocol::http_date(upload.expires_at_ms),
        ),
    ]);
    Ok(reply)
}

fn remove_row(config: &GatewayConfig, job: &JobId) {
    if let Err(cleanup) = JobsStore::open(&config.db_url).and_then(|jobs| jobs.remove(job)) {
        eprintln!(
            "gateway: job={job} could not remove the pending row: {}",
            cleanup.message
        );
    }
}

/// The headers that say where an upload is.
fn position(reply: &mut Reply, upload: &ResumableUpload) {
    reply.headers.extend([
        ("upload-offset".into(), upload.offset.to_string()),
        ("upload-length".into(), upload.length.to_string()),
        ("cache-control".into(), "no-store".into()),
    ]);
    if !upload.complete {
        reply.headers.push((
            "upload-expires".into(),
            protocol::http_date(upload.expires_at_ms),
        ));
    }
}

/// `HEAD /api/v1/uploads/{id}`: where the upload is.
pub fn status(
    head: &RequestHead,
    id: &str,
    claims: &Claims,
    config: &GatewayConfig,
) -> Result<Reply, ApiError> {
    protocol::check_version(head)?;
    let job = parse_id(id)?;
    let upload = config
        .storage
        .upload_status(&job, Some(&claims.sub))?
        .ok_or_else(no_upload)?;
    let mut reply = tus_reply(200);
    position(&mut reply, &upload);
    Ok(reply)
}

/// `DELETE /api/v1/uploads/{id}`: ends an unfinished upload; its bytes are removed.
pub fn terminate(
    head: &RequestHead,
    id: &str,
    claims: &Claims,
    config: &GatewayConfig,
) -> Result<Reply, ApiError> {
    protocol::check_version(head)?;
    let job = parse_id(id)?;
    let resp = config.storage.end_upload(&job, &claims.sub)?;
    match resp.status {
        204 => {
            remove_row(config, &job);
            eprintln!(
                "gateway: resumable upload ended job={job} user={}",
                claims.sub
            );
            Ok(tus_reply(204))
        }
        404 => Err(no_upload()),
        status => Err(upload_refusal(status, None, None, &resp.body)),
    }
}

/// `PATCH /api/v1/uploads/{id}`: streams the piece to storage at `Upload-Offset`.
pub fn append(
    head: &RequestHead,
    id: &str,
    mut body: BodyReader,
    claims: &Claims,
    config: &GatewayConfig,
) -> Result<Reply, ApiError> {
    protocol::check_version(head)?;
    let job = parse_id(id)?;
    let content_type = head.header("content-type").map(naming::essence);
    if content_type.as_deref() != Some(protocol::PIECE_CONTENT_TYPE) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "send a piece as Content-Type: {}",
                protocol::PIECE_CONTENT_TYPE
            ),
        ));
    }
    let offset = protocol::number(head, "upload-offset")?
        .ok_or_else(|| ApiError::bad_request("send Upload-Offset: where this piece starts"))?;
    if protocol::number(head, "content-length")?.is_some_and(|n| n > config.max_upload_bytes) {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "a piece cannot be larger than the upload limit of {} bytes",
                config.max_upload_bytes
            ),
        ));
    }
    // The first bytes of a file decide whether it is media at all, before anything is stored.
    let mut first = Vec::new();
    if offset == 0 {
        while first.len() < SNIFF_BYTES {
            match body.next_chunk().map_err(|_| cut_off())? {
                Some(chunk) => first.extend_from_slice(&chunk),
                None => break,
            }
        }
        if !first.is_empty() && container(&first).is_none() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "this file is not a video or audio file we can read (its first bytes match no \
                 media container, or the first piece carried fewer than 512 of them); nothing \
                 of this piece was stored",
            ));
        }
    }
    let mut piece = config
        .storage
        .start_upload_piece(&job, &claims.sub, offset)
        .map_err(|e| ApiError::unavailable("the storage service", e))?;
    let mut sent = first.len() as u64;
    let mut next = Some(first);
    loop {
        let chunk = match next.take() {
            Some(chunk) => chunk,
            None => match body.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // The client went away: what reached storage is kept; end the piece there so
                // storage commits it (the answer goes to nobody).
                Err(_) => {
                    let kept = piece_answer(piece.finish());
                    eprintln!(
                        "gateway: upload piece cut off job={job} sent={sent} kept_offset={}",
                        kept.map_or_else(|e| e.message, |u| u.offset.to_string())
                    );
                    return Err(cut_off());
                }
            },
        };
        if chunk.is_empty() {
            continue;
        }
        sent += chunk.len() as u64;
        match piece.write(&chunk) {
            Ok(()) if !piece.answered_early() => {}
            Ok(()) => return refused_early(piece, body),
            Err(_) if piece.answered_early() => return refused_early(piece, body),
            Err(e) => return Err(ApiError::unavailable("the storage service", e)),
        }
    }
    let upload = piece_answer(piece.finish())?;
    let mut reply = tus_reply(204);
    position(&mut reply, &upload);
    reply
        .headers
        .retain(|(name, _)| name != "upload-length" && name != "cache-control");
    if upload.complete {
        JobsStore::open(&config.db_url)?.mark_stored(&job)?;
        reply
            .headers
            .push(("vid2mp3-job-url".into(), format!("/api/v1/jobs/{job}")));
        eprintln!(
            "gateway: resumable upload complete job={job} user={} bytes={}",
            claims.sub, upload.length
        );
        crate::upload::sweep_abandoned(config);
    }
    Ok(reply)
}

fn cut_off() -> ApiError {
    ApiError::bad_request(
        "the piece was cut off before its end; what arrived is kept: ask where the upload is \
         (HEAD) and go on from there",
    )
}

/// Storage answered before the piece ended (a refusal): its answer, once what the client
/// still sends has been read, up to [`DRAIN_AFTER_REFUSAL_BYTES`].
fn refused_early(piece: StreamedRequest, mut body: BodyReader) -> Result<Reply, ApiError> {
    let answer = piece_answer(piece.response());
    let mut drained = 0_u64;
    while drained <= DRAIN_AFTER_REFUSAL_BYTES {
        match body.next_chunk() {
            Ok(Some(chunk)) => drained += chunk.len() as u64,
            Ok(None) | Err(_) => break,
        }
    }
    answer.map(|_| tus_reply(204))
}

fn piece_answer(response: Result<IncomingResponse, IoError>) -> Result<ResumableUpload, ApiError> {
    let response = response.map_err(|e| ApiError::unavailable("the storage service", e))?;
    let status = response.status();
    let retry_after = response_header(&response, "retry-after");
    let offset = response_header(&response, HEADER_UPLOAD_OFFSET);
    let body = BodyReader::of_response(&response)
        .and_then(|r| r.read_to_end(64 * 1024))
        .map_err(|e| ApiError::unavailable("the storage service", e))?;
    match status {
        200 => {
            serde_json::from_slice(&body).map_err(|e| ApiError::internal("the storage answer", e))
        }
        404 => Err(no_upload()),
        _ => Err(upload_refusal(
            status,
            retry_after.as_deref(),
            offset.as_deref(),
            &body,
        )),
    }
}
