//! The internal storage API the gateway calls (contract: `vid2mp3_contracts::storage_api`).
//!
//! Every `/internal/v1` route needs `Authorization: Bearer <VID2MP3_STORAGE_TOKEN>` (compared in
//! constant time). `/healthz`, `/readyz` and `/metrics` are open: the kubelet and Prometheus
//! call them, and they reveal nothing about jobs.

pub mod range;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};
use vid2mp3_contracts::messages::{MESSAGE_VERSION, VIDEO_QUEUE};
use vid2mp3_contracts::progress::progress_key;
use vid2mp3_contracts::storage_api::{
    HEADER_LOUDNESS, HEADER_ORIGINAL_NAME, HEADER_OWNER_EMAIL, HEADER_OWNER_ID, HEADER_PROFILE,
    JobState, JobStatesRequest, JobStatesResponse, JobStatus, StoredVideo,
};
use vid2mp3_contracts::{
    ErrorBody, ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, UserId, VideoJob,
};

use self::range::{RangeRequest, parse_range};
use crate::gridfs::{GridFsError, GridFsWriter};
use crate::job_state::{Created, JobRecord, JobStateError, NewJob};
use crate::queue::video_priority;
use crate::quota::{QuotaError, Reservation};
use crate::service::Services;

/// Most job ids one `POST .../states` may ask for.
pub const MAX_STATES_PER_REQUEST: usize = 1000;

/// How long, and how much of, an upload's body is still read after the upload was refused.
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_BYTES: u64 = 256 << 20;

/// An error answer: `{"error": {"code", "message"}}` with the code's status (or the one set).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// Overrides the code's usual status (a stored-bytes quota refusal is a 413).
    status: Option<StatusCode>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    fn unavailable(what: impl std::fmt::Display) -> ApiError {
        warn!(error = %what, "a backing service failed");
        ApiError::new(
            ErrorCode::Unavailable,
            "storage is unavailable right now; try again shortly",
        )
    }
}

impl From<JobStateError> for ApiError {
    fn from(error: JobStateError) -> ApiError {
        match error {
            JobStateError::Damaged { .. } => {
                warn!(%error, "damaged job record");
                ApiError::new(ErrorCode::Internal, "the job's record is damaged")
            }
            other => ApiError::unavailable(other),
        }
    }
}

impl From<QuotaError> for ApiError {
    fn from(error: QuotaError) -> ApiError {
        match error {
            QuotaError::Exceeded(exceeded) => ApiError {
                code: ErrorCode::QuotaExceeded,
                status: StatusCode::from_u16(exceeded.http_status()).ok(),
                retry_after: exceeded.retry_after,
                message: exceeded.message,
            },
            QuotaError::Mongo(error) => ApiError::unavailable(error),
        }
    }
}

impl From<GridFsError> for ApiError {
    fn from(error: GridFsError) -> ApiError {
        match error {
            GridFsError::Mongo(_) | GridFsError::Interrupted(_) => ApiError::unavailable(error),
            other => {
                warn!(error = %other, "GridFS file damaged");
                ApiError::new(ErrorCode::Internal, "the stored file is damaged")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let mut response = json_response(status, &ErrorBody::new(self.code, self.message));
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

type ApiResult = Result<Response, ApiError>;

/// The router, with auth, logging and metrics.
pub fn router(services: Arc<Services>) -> Router {
    let internal = Router::new()
        .route("/internal/v1/jobs/states", post(job_states))
        .route(
            "/internal/v1/jobs/{job_id}",
            get(job_state).delete(delete_job),
        )
        .route("/internal/v1/jobs/{job_id}/video", put(put_video))
        .route("/internal/v1/jobs/{job_id}/mp3", get(get_mp3))
        .route("/internal/v1/mp3s/{mp3_fid}", get(mp3_job))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&services),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(internal)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&services),
            log_request,
        ))
        .with_state(services)
}

/// Serves until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Arc<Services>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(services))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn log_request(
    State(services): State<Arc<Services>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let request_id = uuid::Uuid::now_v7();
    let span = info_span!("request", %request_id, %method, %path);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        info!(
            status = status.as_u16(),
            ms = elapsed.as_millis() as u64,
            "request"
        );
    });
    services
        .metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    services
        .metrics
        .request_seconds
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    response
}

async fn require_token(
    State(services): State<Arc<Services>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let expected = services.config.storage_token.expose().as_bytes();
    match presented {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected)) => next.run(request).await,
        Some(_) => {
            ApiError::new(ErrorCode::Unauthorized, "the storage token is wrong").into_response()
        }
        None => ApiError::new(
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <storage token>",
        )
        .into_response(),
    }
}

fn parse_job(text: &str) -> Result<JobId, ApiError> {
    text.parse().map_err(|e: vid2mp3_contracts::IdError| {
        ApiError::new(ErrorCode::BadRequest, e.to_string())
    })
}

async fn state_of(services: &Services, record: &JobRecord) -> Result<JobState, ApiError> {
    let progress = if record.status == JobStatus::Converting {
        match record.job_id.parse::<JobId>() {
            Ok(id) => services
                .redis
                .progress(&[id])
                .await
                .into_iter()
                .next()
                .flatten()
                .map(|p| p.percent),
            Err(_) => None,
        }
    } else {
        None
    };
    Ok(record.to_state(progress)?)
}

async fn job_state(State(services): State<Arc<Services>>, Path(job): Path<String>) -> ApiResult {
    let job = parse_job(&job)?;
    let record = services
        .jobs
        .get(&job)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no job {job}")))?;
    Ok(json_response(
        StatusCode::OK,
        &state_of(&services, &record).await?,
    ))
}

async fn job_states(State(services): State<Arc<Services>>, body: Bytes) -> ApiResult {
    let request: JobStatesRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("expected {{\"job_ids\": [...]}}: {e}"),
        )
    })?;
    if request.job_ids.len() > MAX_STATES_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("at most {MAX_STATES_PER_REQUEST} job ids per request"),
        ));
    }
    let records = services.jobs.get_many(&request.job_ids).await?;
    let converting: Vec<JobId> = records
        .iter()
        .filter(|r| r.status == JobStatus::Converting)
        .filter_map(|r| r.job_id.parse().ok())
        .collect();
    let progress = services.redis.progress(&converting).await;
    let mut jobs = Vec::with_capacity(records.len());
    for record in &records {
        let p = converting
            .iter()
            .position(|id| id.to_string() == record.job_id)
            .and_then(|i| progress.get(i).copied().flatten())
            .map(|p| p.percent);
        jobs.push(record.to_state(p)?);
    }
    Ok(json_response(StatusCode::OK, &JobStatesResponse { jobs }))
}

async fn mp3_job(State(services): State<Arc<Services>>, Path(fid): Path<String>) -> ApiResult {
    let fid: FileId = fid.parse().map_err(|e: vid2mp3_contracts::IdError| {
        ApiError::new(ErrorCode::BadRequest, e.to_string())
    })?;
    let record = services
        .jobs
        .by_mp3(&fid)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no mp3 {fid}")))?;
    Ok(json_response(
        StatusCode::OK,
        &state_of(&services, &record).await?,
    ))
}

async fn get_mp3(
    State(services): State<Arc<Services>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let job = parse_job(&job)?;
    let record = services
        .jobs
        .get(&job)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no job {job}")))?;
    let fid = match (&record.status, &record.mp3_fid) {
        (JobStatus::Done, Some(fid)) => fid,
        (status, _) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("job {job} has no mp3 (it is {status:?})").to_lowercase(),
            ));
        }
    };
    let id = ObjectId::parse_str(fid)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the job's mp3 id is damaged"))?;
    let file = services.mp3s.file(id).await?.ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, format!("the mp3 of job {job} is gone"))
    })?;
    let len = file.length;
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, start, end) = match range {
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::new(
                ErrorCode::BadRequest,
                format!("the range is outside the mp3 ({len} bytes)"),
            )
            .into_response();
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
        RangeRequest::Full => (StatusCode::OK, 0, len.saturating_sub(1)),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
    };
    let content_length = if len == 0 { 0 } else { end - start + 1 };
    let metrics = services.metrics.clone();
    let stream = services
        .mp3s
        .byte_range(file, start, end)
        .inspect_ok(move |piece| metrics.add_bytes("mp3_out", piece.len() as u64))
        .map_err(std::io::Error::other);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{fid}\"")) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    info!(%job, mp3_fid = %fid, start, end, "streaming mp3");
    Ok(response)
}

async fn delete_job(State(services): State<Arc<Services>>, Path(job): Path<String>) -> ApiResult {
    let job = parse_job(&job)?;
    let Some(record) = services.jobs.get(&job).await? else {
        return Err(ApiError::new(ErrorCode::NotFound, format!("no job {job}")));
    };
    // Files first, the record last: a failure half way leaves the record to try again with.
    if let Ok(id) = ObjectId::parse_str(&record.video_fid) {
        services.videos.delete(id).await?;
    }
    for fid in [&record.mp3_fid, &record.partial_mp3_fid]
        .into_iter()
        .flatten()
    {
        if let Ok(id) = ObjectId::parse_str(fid) {
            services.mp3s.delete(id).await?;
        }
    }
    // An mp3 written by an attempt that died before recording it.
    while let Some(file) = services
        .mp3s
        .find_by_metadata("job_id", &job.to_string())
        .await?
    {
        services.mp3s.delete(file.id).await?;
    }
    services.jobs.delete(&job).await?;
    if let Ok(mut redis) = services.redis.get().await {
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(progress_key(&services.config.redis_key_prefix, &job))
            .query_async(&mut redis)
            .await;
    }
    info!(%job, "job deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn readyz(State(services): State<Arc<Services>>) -> Response {
    const LIMIT: Duration = Duration::from_secs(3);
    let timed = |what: &'static str| move |_| format!("{what}: no answer within {LIMIT:?}");
    let (mongo, rabbit, redis) = tokio::join!(
        tokio::time::timeout(LIMIT, services.jobs.ping()),
        tokio::time::timeout(LIMIT, services.publisher.ready()),
        tokio::time::timeout(LIMIT, services.redis.ping()),
    );
    let problems: Vec<String> = [
        mongo
            .map_err(timed("MongoDB"))
            .and_then(|r| r.map_err(|e| format!("MongoDB: {e}"))),
        rabbit
            .map_err(timed("RabbitMQ"))
            .and_then(|r| r.map_err(|e| format!("RabbitMQ: {e}"))),
        redis
            .map_err(timed("Redis"))
            .and_then(|r| r.map_err(|e| format!("Redis: {e}"))),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if problems.is_empty() {
        json_response(
            StatusCode::OK,
            &serde_json::json!({"mongodb": "ok", "rabbitmq": "ok", "redis": "ok"}),
        )
    } else {
        ApiError::new(ErrorCode::Unavailable, problems.join("; ")).into_response()
    }
}

async fn metrics(State(services): State<Arc<Services>>) -> Response {
    match services.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(e) => ApiError::new(ErrorCode::Internal, e.to_string()).into_response(),
    }
}

/// What the `PUT` headers say about the video.
struct Upload {
    job: JobId,
    owner: UserId,
    owner_email: String,
    original_name: String,
    content_type: String,
    profile: QualityProfile,
    loudness_lufs: Option<LoudnessTarget>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, format!("{name} is not ASCII"))),
    }
}

fn parse_upload(job: &str, headers: &HeaderMap) -> Result<Upload, ApiError> {
    let job = parse_job(job)?;
    let owner = header_text(headers, HEADER_OWNER_ID)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{HEADER_OWNER_ID} is missing"),
            )
        })?
        .parse::<UserId>()
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("{HEADER_OWNER_ID}: {e}")))?;
    let owner_email = header_text(headers, HEADER_OWNER_EMAIL)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("{HEADER_OWNER_EMAIL} is missing"),
            )
        })?
        .to_owned();
    let original_name = match header_text(headers, HEADER_ORIGINAL_NAME)? {
        None | Some("") => "upload".to_owned(),
        Some(encoded) => percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("{HEADER_ORIGINAL_NAME} is not percent-encoded UTF-8"),
                )
            })?
            .into_owned(),
    };
    let profile = match header_text(headers, HEADER_PROFILE)? {
        None | Some("") => QualityProfile::default(),
        Some(p) => p
            .parse()
            .map_err(|e: vid2mp3_contracts::profile::UnknownProfile| {
                ApiError::new(ErrorCode::BadRequest, e.to_string())
            })?,
    };
    let loudness_lufs = match header_text(headers, HEADER_LOUDNESS)? {
        None | Some("") => None,
        Some(target) => Some(target.parse::<LoudnessTarget>().map_err(|e| {
            ApiError::new(ErrorCode::BadRequest, format!("{HEADER_LOUDNESS}: {e}"))
        })?),
    };
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str())?
        .filter(|s| !s.is_empty())
        .unwrap_or("application/octet-stream")
        .to_owned();
    Ok(Upload {
        job,
        owner,
        owner_email,
        original_name,
        content_type,
        profile,
        loudness_lufs,
    })
}

fn stored_answer(record: &JobRecord, owner: &UserId, status: StatusCode) -> ApiResult {
    if record.owner_id != owner.to_string() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("job {} exists with another owner", record.job_id),
        ));
    }
    let body = StoredVideo {
        job_id: record
            .job_id
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "the job's record is damaged"))?,
        video_fid: record
            .video_fid
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::Internal, "the job's record is damaged"))?,
        size_bytes: video_size_bytes_or_zero(record),
    };
    Ok(json_response(status, &body))
}

fn video_size_bytes_or_zero(record: &JobRecord) -> u64 {
    u64::try_from(record.video_size_bytes).unwrap_or(0)
}

async fn put_video(
    State(services): State<Arc<Services>>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let upload = parse_upload(&job, &headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > services.config.max_upload_bytes) {
        return Err(too_large(services.config.max_upload_bytes));
    }
    if let Some(existing) = services.jobs.get(&upload.job).await? {
        return stored_answer(&existing, &upload.owner, StatusCode::OK);
    }
    // The rest runs as its own task: if the client goes away after the body, the handler's
    // future is dropped, but admitting, storing, recording and publishing still finish or roll
    // back together instead of stopping half way (a reservation left behind would count
    // against its owner until it expired).
    let span = tracing::Span::current();
    tokio::spawn(store_video(services, upload, declared, body).instrument(span))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("storing failed: {e}")))?
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the video is larger than the limit of {max} bytes"),
    )
}

/// Admits the upload against its owner's quotas, stores it within them, and ends the
/// reservation whatever happened.
async fn store_video(
    services: Arc<Services>,
    upload: Upload,
    declared: Option<u64>,
    body: Body,
) -> ApiResult {
    let mut reservation = match services
        .quotas
        .admit(&upload.owner, &upload.job, declared)
        .await
    {
        Ok(reservation) => reservation,
        Err(error) => {
            linger(body.into_data_stream());
            return Err(refusal(&services, &upload, error));
        }
    };
    let stored = store_admitted(&services, upload, body, &mut reservation).await;
    reservation.release().await;
    stored
}

/// A quota refusal is logged and counted; a MongoDB failure is an ordinary 503.
fn refusal(services: &Services, upload: &Upload, error: QuotaError) -> ApiError {
    if let QuotaError::Exceeded(exceeded) = &error {
        info!(job = %upload.job, owner = %upload.owner, limit = exceeded.limit.as_str(), "upload refused by a quota");
        services
            .metrics
            .quota_refusals
            .with_label_values(&[exceeded.limit.as_str()])
            .inc();
    }
    ApiError::from(error)
}

async fn store_admitted(
    services: &Arc<Services>,
    upload: Upload,
    body: Body,
    reservation: &mut Reservation,
) -> ApiResult {
    let job = upload.job;
    let started = Instant::now();
    let mut writer = services.videos.writer(false);
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let outcome = match piece {
            Ok(bytes) if writer.len() + bytes.len() as u64 > services.config.max_upload_bytes => {
                Err(too_large(services.config.max_upload_bytes))
            }
            Ok(bytes) => match reservation.cover(writer.len() + bytes.len() as u64).await {
                Ok(()) => writer.write(&bytes).await.map_err(ApiError::from),
                Err(error) => {
                    warn!(%job, received = writer.len(), "the upload crossed its owner's stored-bytes quota; removing it");
                    Err(refusal(services, &upload, error))
                }
            },
            Err(error) => {
                services.metrics.uploads_aborted.inc();
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
    let video_fid: FileId = match writer.id().to_hex().parse() {
        Ok(fid) => fid,
        Err(_) => {
            abort(writer).await;
            return Err(ApiError::new(
                ErrorCode::Internal,
                "a new ObjectId did not parse",
            ));
        }
    };
    let metadata = doc! {
        "job_id": job.to_string(),
        "owner_id": upload.owner.to_string(),
        "owner_email": &upload.owner_email,
        "original_name": &upload.original_name,
        "content_type": &upload.content_type,
        "profile": upload.profile.as_str(),
        "loudness_lufs": upload.loudness_lufs.map(|t| t.lufs()),
    };
    let file = match writer.close(&upload.original_name, metadata).await {
        Ok(file) => file,
        Err(error) => {
            // close() may have written chunks before failing.
            if let Ok(id) = ObjectId::parse_str(video_fid.as_str()) {
                let _ = services.videos.delete(id).await;
            }
            return Err(error.into());
        }
    };
    services.metrics.add_bytes("video_in", size);
    let created = services
        .jobs
        .create(NewJob {
            job_id: job,
            owner_id: upload.owner,
            owner_email: upload.owner_email.clone(),
            original_name: upload.original_name.clone(),
            content_type: upload.content_type.clone(),
            profile: upload.profile,
            loudness_lufs: upload.loudness_lufs,
            video_fid: video_fid.clone(),
            video_size_bytes: size,
        })
        .await;
    let record = match created {
        Ok(Created::New(record)) => record,
        Ok(Created::Existing(existing)) => {
            // A concurrent PUT of the same job won: ours is a duplicate.
            let _ = services.videos.delete(file.id).await;
            return stored_answer(&existing, &upload.owner, StatusCode::OK);
        }
        Err(error) => {
            let _ = services.videos.delete(file.id).await;
            return Err(error.into());
        }
    };
    let message = VideoJob {
        version: MESSAGE_VERSION,
        message_id: uuid::Uuid::now_v7(),
        job_id: job,
        video_fid: video_fid.clone(),
        mp3_fid: None,
        username: upload.owner_email,
        owner_id: upload.owner,
        original_name: upload.original_name,
        profile: upload.profile,
        loudness_lufs: upload.loudness_lufs,
        attempt: 1,
    };
    // The owner's backlog (this job included) sets its place among other accounts' jobs.
    let published = async {
        let in_flight = services
            .quotas
            .active_jobs(&upload.owner)
            .await
            .map_err(|e| e.to_string())?;
        let priority = video_priority(in_flight.saturating_sub(1));
        let payload = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        services
            .publisher
            .publish(
                VIDEO_QUEUE,
                &payload,
                &message.message_id.to_string(),
                Some(priority),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok::<u8, String>(priority)
    }
    .await;
    let priority = match published {
        Ok(priority) => priority,
        Err(error) => {
            warn!(%job, %error, "the video job was not confirmed; removing the video");
            let _ = services.videos.delete(file.id).await;
            let _ = services.jobs.delete(&job).await;
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the job queue did not accept the video; nothing was stored, try again shortly",
            ));
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
    stored_answer(&record, &record_owner(&record)?, StatusCode::CREATED)
}

/// Reads and drops what a refused upload's client still sends, for a while, in the background.
/// Closing a connection with bytes unread makes the kernel reset it, and a client still sending
/// can then lose the answer to the reset; a client that has read the answer stops sending.
fn linger<S, E>(mut rest: S)
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
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

fn record_owner(record: &JobRecord) -> Result<UserId, ApiError> {
    record
        .owner_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the job's record is damaged"))
}

async fn abort(writer: GridFsWriter) {
    let id = writer.id();
    if let Err(error) = writer.abort().await {
        warn!(video_fid = %id, %error, "could not remove the chunks of an aborted upload");
    }
}
