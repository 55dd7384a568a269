//! The internal storage API the gateway calls (contract: `vid2mp3_contracts::storage_api`).
//!
//! Every `/internal/v1` route needs `Authorization: Bearer <VID2MP3_STORAGE_TOKEN>` (compared in
//! constant time). `/healthz`, `/readyz` and `/metrics` are open: the kubelet and Prometheus
//! call them, and they reveal nothing about jobs.

mod error;
mod owners;
pub mod range;
mod resumable;
mod saga;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{self, MatchedPath, Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use futures::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};
use vid2mp3_contracts::progress::progress_key;
use vid2mp3_contracts::storage_api::{
    HEADER_LOUDNESS, HEADER_ORIGINAL_NAME, HEADER_OWNER_EMAIL, HEADER_OWNER_ID, HEADER_PROFILE,
    JobState, JobStatesRequest, JobStatesResponse, JobStatus, StoredVideo,
};
use vid2mp3_contracts::{ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, UserId};

pub use self::error::ApiError;
use self::error::json_response;
use self::range::{RangeRequest, parse_range};
use self::saga::{Saga, Stored, Upload};
use crate::config::Config;
use crate::deleted_owners::DeletedOwners;
use crate::gridfs::Bucket;
use crate::job_state::{JobRecord, JobStore};
use crate::metrics::Metrics;
use crate::queue::Publisher;
use crate::quota::QuotaStore;
use crate::redis_conn::RedisConnection;

/// What the storage API uses: the job records, the quotas (admission), both buckets, Redis for
/// progress, the publisher of `video` jobs, and the metrics.
pub struct State {
    pub config: Arc<Config>,
    pub jobs: JobStore,
    pub quotas: QuotaStore,
    pub videos: Bucket,
    pub mp3s: Bucket,
    pub deleted_owners: DeletedOwners,
    pub redis: Arc<RedisConnection>,
    pub publisher: Arc<Publisher>,
    pub metrics: Metrics,
    /// The accounts' webhooks.
    pub webhooks: crate::webhook::store::WebhookStore,
    /// Resumable uploads under way.
    pub resumable: crate::resumable::ResumableStore,
}

/// Most job ids one `POST .../states` may ask for.
pub const MAX_STATES_PER_REQUEST: usize = 1000;

type ApiResult = Result<Response, ApiError>;

/// The router, with auth, logging and metrics.
pub fn router(state: Arc<State>) -> Router {
    let internal = Router::new()
        .route("/internal/v1/jobs/states", post(job_states))
        .route(
            "/internal/v1/jobs/{job_id}",
            get(job_state).delete(delete_job),
        )
        .route("/internal/v1/jobs/{job_id}/video", put(put_video))
        .route("/internal/v1/jobs/{job_id}/mp3", get(get_mp3))
        .route("/internal/v1/mp3s/{mp3_fid}", get(mp3_job))
        .route(
            "/internal/v1/uploads/{job_id}",
            post(resumable::begin)
                .get(resumable::status)
                .patch(resumable::append)
                .delete(resumable::end),
        )
        .route(
            "/internal/v1/owners/{owner_id}",
            delete(owners::delete_owner),
        )
        .route(
            "/internal/v1/accounts/{owner_id}/webhook",
            get(webhooks::get_webhook)
                .put(webhooks::put_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(internal)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            log_request,
        ))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let sweep = tokio::spawn(resumable::run_sweep(Arc::clone(&state), shutdown.clone()));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    sweep.abort();
    served?;
    Ok(())
}

async fn log_request(
    extract::State(state): extract::State<Arc<State>>,
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
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .request_seconds
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    response
}

async fn require_token(
    extract::State(state): extract::State<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let expected = state.config.storage_token.expose().as_bytes();
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

async fn state_of(state: &State, record: &JobRecord) -> Result<JobState, ApiError> {
    let progress = if record.status == JobStatus::Converting {
        match record.job_id.parse::<JobId>() {
            Ok(id) => state
                .redis
                .progress(&[id])
                .await
                .into_iter()
                .next()
                .flatten(),
            Err(_) => None,
        }
    } else {
        None
    };
    Ok(record.to_state(progress)?)
}

async fn job_state(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
) -> ApiResult {
    let job = parse_job(&job)?;
    let record = state
        .jobs
        .get(&job)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no job {job}")))?;
    Ok(json_response(
        StatusCode::OK,
        &state_of(&state, &record).await?,
    ))
}

async fn job_states(extract::State(state): extract::State<Arc<State>>, body: Bytes) -> ApiResult {
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
    let records = state.jobs.get_many(&request.job_ids).await?;
    let converting: Vec<JobId> = records
        .iter()
        .filter(|r| r.status == JobStatus::Converting)
        .filter_map(|r| r.job_id.parse().ok())
        .collect();
    let progress = state.redis.progress(&converting).await;
    let mut jobs = Vec::with_capacity(records.len());
    for record in &records {
        let p = converting
            .iter()
            .position(|id| id.to_string() == record.job_id)
            .and_then(|i| progress.get(i).copied().flatten());
        jobs.push(record.to_state(p)?);
    }
    Ok(json_response(StatusCode::OK, &JobStatesResponse { jobs }))
}

async fn mp3_job(
    extract::State(state): extract::State<Arc<State>>,
    Path(fid): Path<String>,
) -> ApiResult {
    let fid: FileId = fid.parse().map_err(|e: vid2mp3_contracts::IdError| {
        ApiError::new(ErrorCode::BadRequest, e.to_string())
    })?;
    let record = state
        .jobs
        .by_mp3(&fid)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no mp3 {fid}")))?;
    Ok(json_response(
        StatusCode::OK,
        &state_of(&state, &record).await?,
    ))
}

async fn get_mp3(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let job = parse_job(&job)?;
    let record = state
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
    let file = state.mp3s.file(id).await?.ok_or_else(|| {
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
    let metrics = state.metrics.clone();
    let stream = state
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

async fn delete_job(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
) -> ApiResult {
    let job = parse_job(&job)?;
    if !erase_job(&state, &job).await? {
        return Err(ApiError::new(ErrorCode::NotFound, format!("no job {job}")));
    }
    info!(%job, "job deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes a job's video, mp3s, record and progress; `false` when it has no record.
async fn erase_job(state: &State, job: &JobId) -> Result<bool, ApiError> {
    let Some(record) = state.jobs.get(job).await? else {
        return Ok(false);
    };
    // Files first, the record last: a failure half way leaves the record to try again with.
    if let Ok(id) = ObjectId::parse_str(&record.video_fid) {
        state.videos.delete(id).await?;
    }
    for fid in [&record.mp3_fid, &record.partial_mp3_fid]
        .into_iter()
        .flatten()
    {
        if let Ok(id) = ObjectId::parse_str(fid) {
            state.mp3s.delete(id).await?;
        }
    }
    // An mp3 written by an attempt that died before recording it.
    while let Some(file) = state
        .mp3s
        .find_by_metadata("job_id", &job.to_string())
        .await?
    {
        state.mp3s.delete(file.id).await?;
    }
    state
        .webhooks
        .delete_job(job)
        .await
        .map_err(ApiError::unavailable)?;
    state.jobs.delete(job).await?;
    // A resumable upload's record, kept to tell its client the upload is whole.
    state
        .resumable
        .remove(job)
        .await
        .map_err(ApiError::unavailable)?;
    if let Ok(mut redis) = state.redis.get().await {
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(progress_key(&state.config.redis_key_prefix, job))
            .query_async(&mut redis)
            .await;
    }
    Ok(true)
}

async fn readyz(extract::State(state): extract::State<Arc<State>>) -> Response {
    const LIMIT: Duration = Duration::from_secs(3);
    let timed = |what: &'static str| move |_| format!("{what}: no answer within {LIMIT:?}");
    let (mongo, rabbit, redis) = tokio::join!(
        tokio::time::timeout(LIMIT, state.jobs.ping()),
        tokio::time::timeout(LIMIT, state.publisher.ready()),
        tokio::time::timeout(LIMIT, state.redis.ping()),
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

async fn metrics(extract::State(state): extract::State<Arc<State>>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(e) => ApiError::new(ErrorCode::Internal, e.to_string()).into_response(),
    }
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

fn stored_answer(
    record: &JobRecord,
    owner: &UserId,
    status: StatusCode,
    callback_secret: Option<String>,
) -> ApiResult {
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
        callback_secret,
    };
    Ok(json_response(status, &body))
}

fn video_size_bytes_or_zero(record: &JobRecord) -> u64 {
    u64::try_from(record.video_size_bytes).unwrap_or(0)
}

async fn put_video(
    extract::State(state): extract::State<Arc<State>>,
    Path(job): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let upload = parse_upload(&job, &headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.config.max_upload_bytes) {
        return Err(ApiError::too_large(state.config.max_upload_bytes));
    }
    if let Some(existing) = state.jobs.get(&upload.job).await? {
        return stored_answer(&existing, &upload.owner, StatusCode::OK, None);
    }
    let upload_owner = upload.owner;
    let state_for_check = Arc::clone(&state);
    let job = upload.job;
    let callback_secret = match webhooks::job_callback(&state, &job, &headers).await {
        Ok(secret) => secret,
        Err(refused) => {
            // Refused before the body is read, like a quota refusal: read what the client
            // still sends for a while, so that it gets this answer and not a reset.
            saga::linger(body.into_data_stream());
            return Err(refused);
        }
    };
    // The rest runs as its own task: if the client goes away after the body, the handler's
    // future is dropped, but admitting, storing, recording and publishing still finish or roll
    // back together instead of stopping half way (a reservation left behind would count
    // against its owner until it expired).
    let span = tracing::Span::current();
    let saga_state = Arc::clone(&state);
    let stored = tokio::spawn(
        async move {
            let state = saga_state;
            let saga = Saga {
                admission: &state.quotas,
                blobs: &state.videos,
                jobs: &state.jobs,
                queue: &*state.publisher,
                metrics: &state.metrics,
                max_upload_bytes: state.config.max_upload_bytes,
            };
            saga.store(upload, declared, body.into_data_stream()).await
        }
        .instrument(span),
    )
    .await
    .map_err(|e| ApiError::new(ErrorCode::Internal, format!("storing failed: {e}")));
    let stored = match stored {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) | Err(e) => {
            if callback_secret.is_some() {
                webhooks::forget_job_callback(&state, &job).await;
            }
            return Err(e);
        }
    };
    if let Stored::New(record) = &stored
        && let Err(e) = owners::undo_if_erased(&state_for_check, record).await
    {
        if callback_secret.is_some() {
            webhooks::forget_job_callback(&state, &job).await;
        }
        return Err(e);
    }
    match stored {
        Stored::New(record) => stored_answer(
            &record,
            &record_owner(&record)?,
            StatusCode::CREATED,
            callback_secret,
        ),
        Stored::Existing(record) => {
            stored_answer(&record, &upload_owner, StatusCode::OK, callback_secret)
        }
    }
}

fn record_owner(record: &JobRecord) -> Result<UserId, ApiError> {
    record
        .owner_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the job's record is damaged"))
}
