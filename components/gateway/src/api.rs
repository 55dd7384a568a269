//! Handling one request: route, authenticate, call the services, answer.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use spin_sdk::http::{IncomingRequest, IncomingResponse, ResponseOutparam};
use vid2mp3_contracts::auth_api::{Confirmation, Credentials};
use vid2mp3_contracts::client_addr::{client_address, parse_node};
use vid2mp3_contracts::webhook::SetWebhook;
use vid2mp3_contracts::{Claims, ErrorCode, FileId, JobId};

use crate::account_deletions::{self, AccountDeletions};
use crate::config::GatewayConfig;
use crate::errors::ApiError;
use crate::http_io::{
    BodyReader, IoError, Reply, RequestHead, ResponseStream, response_header, send_reply,
};
use crate::job_view::{JobPage, decode_cursor, encode_cursor, view};
use crate::jobs_store::{JobsStore, OwnedJob, PageStart};
use crate::routes::{Route, route};
use crate::upload::naming::{content_disposition, mp3_name};
use crate::{account_deletion, auth_client, basic_auth, redis_ping, tus, upload, web, webhook};

/// Sign-up and log-in bodies are a small JSON object.
const MAX_JSON_BODY: usize = 16 * 1024;
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// What a handler produces: a buffered reply or an mp3 to stream from storage.
enum Answer {
    Reply(Reply),
    Mp3 {
        /// Already loaded for the ownership check; streaming needs its storage endpoint.
        config: Box<GatewayConfig>,
        job: OwnedJob,
        range: Option<String>,
        /// The client's `If-Range`: serve `range` only while the mp3 is still that one.
        if_range: Option<String>,
        head_only: bool,
    },
}

pub fn handle(
    req: IncomingRequest,
    out: ResponseOutparam,
    config: impl FnOnce() -> Result<GatewayConfig, ApiError>,
) {
    let head = RequestHead::from_request(&req);
    let started = SystemTime::now();
    let route = route(&head.method, &head.path);
    let (status, answer) = match answer(&head, req, route, config) {
        Ok(Answer::Reply(reply)) => (reply.status, Some(reply)),
        Ok(Answer::Mp3 {
            config,
            job,
            range,
            if_range,
            head_only,
        }) => {
            let range = RangeRequest {
                range: range.as_deref(),
                if_range: if_range.as_deref(),
            };
            return stream_mp3(out, &head, &config, &job, range, head_only);
        }
        Err(e) => {
            let reply = Reply::error(&e);
            (reply.status, Some(reply))
        }
    };
    let elapsed_ms = started.elapsed().map(|d| d.as_millis()).unwrap_or(0);
    eprintln!(
        "gateway: {} {} -> {status} in {elapsed_ms} ms",
        head.method, head.path
    );
    if let Some(reply) = answer {
        send_reply(out, reply);
    }
}

fn answer(
    head: &RequestHead,
    req: IncomingRequest,
    route: Route,
    config: impl FnOnce() -> Result<GatewayConfig, ApiError>,
) -> Result<Answer, ApiError> {
    let reply = |r: Reply| Ok(Answer::Reply(r));
    match route {
        Route::Health => reply(Reply::json(200, &json!({"status": "ok"}))),
        Route::OpenApi => reply(Reply::text(200, "application/json", OPENAPI_JSON)),
        Route::WebPage => reply(web::reply(web::Asset::Page, head.header("if-none-match"))),
        Route::WebAsset(asset) => reply(web::reply(asset, head.header("if-none-match"))),
        Route::NotFound => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "there is nothing at {}; the API is under /api/v1 (see /api/v1/openapi.json)",
                head.path
            ),
        )),
        Route::MethodNotAllowed(allow) => {
            let mut e = ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "{} is not allowed on {}; use {allow}",
                    head.method, head.path
                ),
            )
            .with_header("allow", allow);
            e.status = Some(405);
            Err(e)
        }
        Route::Ready => reply(readiness(&config()?)),
        Route::SignUp => {
            let credentials = json_credentials(req)?;
            let client = client_addr(head, &config()?);
            // 202 whatever the address's state: accepted, and the rest happens by email.
            reply(Reply::json(
                202,
                &auth_client::sign_up(&credentials, &client)?,
            ))
        }
        Route::ConfirmEmail => {
            let confirmation: Confirmation = json_body(req, "{\"token\": \"...\"}")?;
            let client = client_addr(head, &config()?);
            reply(Reply::json(
                200,
                &auth_client::confirm(&confirmation, &client)?,
            ))
        }
        Route::ConfirmationEmail => {
            let credentials = json_credentials(req)?;
            let client = client_addr(head, &config()?);
            reply(Reply::json(
                202,
                &auth_client::send_link_again(&credentials, &client)?,
            ))
        }
        Route::LogIn => {
            let credentials = match head.header("authorization").and_then(basic_auth::parse) {
                Some((email, password)) => Credentials { email, password },
                None => json_credentials(req)?,
            };
            let client = client_addr(head, &config()?);
            reply(Reply::json(
                200,
                &auth_client::log_in(&credentials, &client)?,
            ))
        }
        Route::DeleteAccount => {
            let config = config()?;
            let claims = verified_claims(head, &config)?;
            let request: account_deletion::DeletionRequest =
                json_body(req, "{\"password\": \"...\"} (nothing was deleted)")?;
            let client = client_addr(head, &config);
            account_deletion::delete_account(&claims, request, &client, &config)?;
            reply(Reply::empty(204))
        }
        Route::CourseLogin => {
            let (email, password) = head
                .header("authorization")
                .and_then(basic_auth::parse)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::Unauthorized,
                        "log in with HTTP Basic: curl -X POST -u EMAIL:PASSWORD .../login",
                    )
                    .with_header("www-authenticate", "Basic realm=\"vid2mp3\"")
                })?;
            // A Basic challenge only where the client spoke Basic: a browser's fetch to /api/v1
            // must never get the native password dialog.
            let client = client_addr(head, &config()?);
            let session = auth_client::log_in(&Credentials { email, password }, &client)
                .map_err(basic_challenge)?;
            reply(Reply::text(200, "text/plain; charset=utf-8", session.token))
        }
        Route::Upload | Route::CourseUpload => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            let body = BodyReader::of_request(req)
                .map_err(|e| ApiError::internal("reading the upload", e))?;
            // A job's own webhook on the API's route only; the course's `/upload` is as it was.
            let callback_url = match route {
                Route::Upload => head.query_param("callback_url"),
                _ => None,
            };
            let job = upload::upload(head, body, &claims, &config, callback_url)?;
            // The course's client expects 200; our API says what happened: accepted, not done.
            let status = if route == Route::CourseUpload {
                200
            } else {
                202
            };
            let mut r = Reply::json(status, &job);
            r.headers.push(("location".into(), job.links.this.clone()));
            reply(r)
        }
        Route::UploadOptions => reply(tus::options(&config()?)),
        Route::BeginUpload
        | Route::UploadStatus(_)
        | Route::AppendUpload(_)
        | Route::EndUpload(_) => {
            let tus_answer = || {
                let config = config()?;
                let claims = authenticate(head, &config)?;
                match &route {
                    Route::BeginUpload => tus::create(head, &claims, &config),
                    Route::UploadStatus(id) => tus::status(head, id, &claims, &config),
                    Route::EndUpload(id) => tus::terminate(head, id, &claims, &config),
                    Route::AppendUpload(id) => {
                        let body = BodyReader::of_request(req)
                            .map_err(|e| ApiError::internal("reading the piece", e))?;
                        tus::append(head, id, body, &claims, &config)
                    }
                    _ => Err(ApiError::internal("routing", "not a tus route")),
                }
            };
            // tus clients look for the version on every answer, errors included.
            tus_answer()
                .map(Answer::Reply)
                .map_err(|e| e.with_header("tus-resumable", tus::protocol::VERSION))
        }
        Route::ListJobs => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            reply(Reply::json(200, &list_jobs(head, &claims, &config)?))
        }
        Route::GetJob(id) => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            let job = owned_job(&config, &id, &claims)?;
            let state = config.storage.state(&job.id)?;
            reply(Reply::json(200, &view(&job, state.as_ref())))
        }
        Route::DeleteJob(id) => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            let job = owned_job(&config, &id, &claims)?;
            // Files first: a failure leaves the job listed (and deletable again), never an
            // invisible job whose files live on.
            config.storage.delete(&job.id)?;
            JobsStore::open(&config.db_url)?.remove(&job.id)?;
            eprintln!("gateway: deleted job={} user={}", job.id, claims.sub);
            reply(Reply::empty(204))
        }
        Route::GetMp3(id) => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            let job = owned_job(&config, &id, &claims)?;
            Ok(Answer::Mp3 {
                config: Box::new(config),
                job,
                range: head.header("range").map(str::to_owned),
                if_range: head.header("if-range").map(str::to_owned),
                head_only: head.method.eq_ignore_ascii_case("HEAD"),
            })
        }
        Route::GetWebhook => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            reply(Reply::json(
                200,
                &webhook::get(&config.storage, &claims.sub)?,
            ))
        }
        Route::PutWebhook => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            let request: SetWebhook = json_body(req, "{\"url\": \"https://...\"}")?;
            let set = webhook::put(&config.storage, &claims.sub, &request)?;
            eprintln!("gateway: webhook set user={}", claims.sub);
            reply(Reply::json(200, &set))
        }
        Route::DeleteWebhook => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            webhook::delete(&config.storage, &claims.sub)?;
            eprintln!("gateway: webhook removed user={}", claims.sub);
            reply(Reply::empty(204))
        }
        Route::CourseDownload => {
            let config = config()?;
            let claims = authenticate(head, &config)?;
            let fid = head.query_param("fid").ok_or_else(|| {
                ApiError::bad_request("say which mp3: GET /download?fid=<the id from your email>")
            })?;
            let fid: FileId = fid.parse().map_err(|_| {
                ApiError::bad_request(format!("'{fid}' is not an mp3 id (24 hex digits)"))
            })?;
            let mp3_missing = || ApiError::new(ErrorCode::NotFound, "no such mp3 among yours");
            let state = config.storage.job_of_mp3(&fid)?.ok_or_else(mp3_missing)?;
            if state.owner_id != claims.sub {
                return Err(mp3_missing());
            }
            let job = JobsStore::open(&config.db_url)?
                .find_owned(&state.job_id, &claims.sub)?
                .ok_or_else(mp3_missing)?;
            Ok(Answer::Mp3 {
                config: Box::new(config),
                job,
                range: head.header("range").map(str::to_owned),
                if_range: head.header("if-range").map(str::to_owned),
                head_only: false,
            })
        }
    }
}

fn basic_challenge(e: ApiError) -> ApiError {
    if e.status() == 401 {
        e.with_header("www-authenticate", "Basic realm=\"vid2mp3\"")
    } else {
        e
    }
}

fn json_credentials(req: IncomingRequest) -> Result<Credentials, ApiError> {
    json_body(req, "{\"email\": \"...\", \"password\": \"...\"}")
}

/// A small JSON body (`shape` says what it should look like).
fn json_body<T: serde::de::DeserializeOwned>(
    req: IncomingRequest,
    shape: &str,
) -> Result<T, ApiError> {
    let body = BodyReader::of_request(req)
        .map_err(|e| ApiError::internal("reading the body", e))?
        .read_to_end(MAX_JSON_BODY)
        .map_err(|e| match e {
            IoError::TooLarge { .. } => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body must be a JSON object under {MAX_JSON_BODY} bytes"),
            ),
            _ => ApiError::bad_request("the body was cut off; send it again"),
        })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body must be JSON {shape}: {e}")))
}

/// The client's address for auth's per-address counters: the direct peer (Spin's
/// `spin-client-addr`, "ip:port"), or, when that peer is a trusted proxy, the rightmost untrusted
/// hop of the header the proxy writes (`contracts::client_addr`). A spoofed header from anyone
/// else changes nothing.
fn client_addr(head: &RequestHead, config: &GatewayConfig) -> String {
    let Some(peer) = head.header("spin-client-addr").and_then(parse_node) else {
        return "unknown".to_owned();
    };
    let header = config.forwarded_header;
    client_address(
        peer,
        &head.header_all(header.name()),
        header,
        &config.trusted_proxies,
    )
    .to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The token's claims, signature and time checked locally; its account not looked up.
fn verified_claims(head: &RequestHead, config: &GatewayConfig) -> Result<Claims, ApiError> {
    Ok(config
        .verifier
        .verify_header(head.header("authorization"), now_secs())?)
}

/// The claims of a valid token whose account is neither deleted nor being deleted (one
/// primary-key lookup: `account_deletions`).
fn authenticate(head: &RequestHead, config: &GatewayConfig) -> Result<Claims, ApiError> {
    let claims = verified_claims(head, config)?;
    match AccountDeletions::open(&config.db_url)?.state(&claims.sub)? {
        None => Ok(claims),
        Some(state) => Err(account_deletions::refused(state)),
    }
}

fn owned_job(config: &GatewayConfig, id: &str, claims: &Claims) -> Result<OwnedJob, ApiError> {
    let id: JobId = id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "'{}' is not a job id",
            id.chars().take(64).collect::<String>()
        ))
    })?;
    JobsStore::open(&config.db_url)?
        .find_owned(&id, &claims.sub)?
        .ok_or_else(ApiError::job_not_found)
}

fn list_jobs(
    head: &RequestHead,
    claims: &Claims,
    config: &GatewayConfig,
) -> Result<JobPage, ApiError> {
    let limit = match head.query_param("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be 1 to {MAX_PAGE}, not '{l}'"))
            })?,
    };
    let start = match head.query_param("cursor") {
        None => None,
        Some(c) => Some(decode_cursor(&c).ok_or_else(|| {
            ApiError::bad_request("the cursor is not one this API gave out; start again without it")
        })?),
    };
    let owned = JobsStore::open(&config.db_url)?.list_owned(&claims.sub, start.as_ref(), limit)?;
    let ids: Vec<JobId> = owned.iter().map(|j| j.id).collect();
    let states = config.storage.states(ids)?;
    let jobs = owned
        .iter()
        .map(|job| view(job, states.iter().find(|s| s.job_id == job.id)))
        .collect();
    let next_cursor = (owned.len() == limit as usize)
        .then(|| owned.last())
        .flatten()
        .map(|last| {
            encode_cursor(&PageStart {
                created_ms: last.created_ms,
                id: last.id,
            })
        });
    Ok(JobPage { jobs, next_cursor })
}

fn readiness(config: &GatewayConfig) -> Reply {
    let mysql = JobsStore::open(&config.db_url)
        .map_err(|e| e.message)
        .and_then(|s| s.ping());
    let redis = redis_ping::ping(&config.redis_url, &config.redis_key_prefix);
    let storage = config.storage.ready();
    let word = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "unavailable" };
    for (name, r) in [("mysql", &mysql), ("redis", &redis), ("storage", &storage)] {
        if let Err(e) = r {
            eprintln!("gateway: readiness: {name} is not ready: {e}");
        }
    }
    let ready = mysql.is_ok() && redis.is_ok() && storage.is_ok();
    Reply::json(
        if ready { 200 } else { 503 },
        &json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {"mysql": word(&mysql), "redis": word(&redis), "storage": word(&storage)},
        }),
    )
}

/// A download's `Range` and `If-Range` headers.
#[derive(Clone, Copy)]
struct RangeRequest<'a> {
    range: Option<&'a str>,
    if_range: Option<&'a str>,
}

/// Whether an `If-Range` validator names the mp3 whose `ETag` storage reported (RFC 9110
/// §13.1.5): only a strong entity tag can match, compared strongly. A date never matches (the
/// mp3 has no Last-Modified), nor does a weak tag or a missing `ETag`; a client then gets the
/// whole mp3 instead of a range of a file it does not have the beginning of.
fn if_range_matches(validator: &str, etag: Option<&str>) -> bool {
    let validator = validator.trim();
    let strong = |t: &str| t.len() >= 2 && t.starts_with('"') && t.ends_with('"');
    match etag.map(str::trim) {
        Some(etag) => strong(validator) && strong(etag) && validator == etag,
        None => false,
    }
}

/// Opens the mp3 at storage for `request`. Storage knows `Range` but not `If-Range`, so that is
/// applied here: a range answer of another mp3 than the validator names is replaced by the whole
/// mp3 (200), as the standard says, so a client resuming a partial file never appends the rest
/// of a different one.
fn open_mp3(
    config: &GatewayConfig,
    job: &OwnedJob,
    request: RangeRequest<'_>,
) -> Result<IncomingResponse, IoError> {
    let response = config.storage.open_mp3(&job.id, request.range)?;
    // Without a Range, If-Range means nothing (RFC 9110: it MUST be ignored).
    let (Some(_), Some(validator)) = (request.range, request.if_range) else {
        return Ok(response);
    };
    match response.status() {
        206 => {
            let etag = response_header(&response, "etag");
            if if_range_matches(validator, etag.as_deref()) {
                Ok(response)
            } else {
                drop(response);
                config.storage.open_mp3(&job.id, None)
            }
        }
        416 => {
            // Storage's 416 has no ETag: the whole mp3's answer tells which file this is. A 416
            // is right only for the file the client named; for any other it gets that file.
            let whole = config.storage.open_mp3(&job.id, None)?;
            let etag = response_header(&whole, "etag");
            if whole.status() == 200 && !if_range_matches(validator, etag.as_deref()) {
                Ok(whole)
            } else {
                Ok(response)
            }
        }
        _ => Ok(response),
    }
}

/// Streams an mp3 from storage to the client, `Range` passed through and `If-Range` applied.
fn stream_mp3(
    out: ResponseOutparam,
    head: &RequestHead,
    config: &GatewayConfig,
    job: &OwnedJob,
    range: RangeRequest<'_>,
    head_only: bool,
) {
    let fail = |out: ResponseOutparam, e: ApiError| {
        eprintln!("gateway: {} {} -> {}", head.method, head.path, e.status());
        send_reply(out, Reply::error(&e));
    };
    let response = match open_mp3(config, job, range) {
        Ok(r) => r,
        Err(e) => return fail(out, ApiError::unavailable("the storage service", e)),
    };
    let status = response.status();
    match status {
        200 | 206 => {}
        // Storage answers 409 for a job that has no mp3 (converting, failed) and 404 for one
        // whose mp3 is gone; to the owner both are "no mp3", as the API documents (a 503 here
        // told clients to retry a request that can never succeed: found by schemathesis).
        404 | 409 => {
            return fail(
                out,
                ApiError::new(
                    ErrorCode::NotFound,
                    "this job has no mp3 yet; check its status",
                ),
            );
        }
        416 => {
            let mut e = ApiError::new(
                ErrorCode::BadRequest,
                "the requested range is outside the mp3; ask again without Range or within its size",
            );
            e.status = Some(416);
            if let Some(cr) = response_header(&response, "content-range") {
                e = e.with_header("content-range", cr);
            }
            return fail(out, e);
        }
        other => {
            return fail(
                out,
                ApiError::unavailable(
                    "the storage service",
                    format!("answered {other} for an mp3"),
                ),
            );
        }
    }
    let mut headers = vec![
        ("content-type".to_owned(), "audio/mpeg".to_owned()),
        ("accept-ranges".to_owned(), "bytes".to_owned()),
        ("cache-control".to_owned(), "private, no-store".to_owned()),
        (
            "content-disposition".to_owned(),
            content_disposition(&mp3_name(&job.original_name)),
        ),
    ];
    for name in ["content-length", "content-range", "etag", "last-modified"] {
        if let Some(v) = response_header(&response, name) {
            headers.push((name.to_owned(), v));
        }
    }
    let mut body = match BodyReader::of_response(&response) {
        Ok(b) => b,
        Err(e) => return fail(out, ApiError::unavailable("the storage service", e)),
    };
    let mut stream = match ResponseStream::start(out, status, &headers) {
        Ok(s) => s,
        Err((Some(out), e)) => return fail(out, ApiError::internal("starting the download", e)),
        Err((None, e)) => return eprintln!("gateway: could not start the download: {e}"),
    };
    let mut sent = 0u64;
    if !head_only {
        loop {
            match body.next_chunk() {
                Ok(Some(chunk)) => {
                    sent += chunk.len() as u64;
                    if let Err(e) = stream.write(&chunk) {
                        // The client went away; dropping the stream unfinished tells the host.
                        eprintln!(
                            "gateway: download job={} stopped after {sent} bytes: {e}",
                            job.id
                        );
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Storage broke off mid-body: end the answer broken, never "complete but short".
                    eprintln!(
                        "gateway: download job={} storage broke off after {sent} bytes: {e}",
                        job.id
                    );
                    return;
                }
            }
        }
    }
    stream.finish();
    eprintln!(
        "gateway: {} {} -> {status} job={} bytes={sent}",
        head.method, head.path, job.id
    );
}

#[cfg(test)]
mod tests {
    use super::if_range_matches;

    #[test]
    fn if_range_matches_only_the_same_strong_tag() {
        let tag = Some("\"66b1c0ffee0123456789abcd\"");
        assert!(if_range_matches("\"66b1c0ffee0123456789abcd\"", tag));
        assert!(if_range_matches(" \"66b1c0ffee0123456789abcd\" ", tag));
        // Another file's tag, a weak tag, a date, nothing to compare with: the whole mp3.
        assert!(!if_range_matches("\"0000c0ffee0123456789abcd\"", tag));
        assert!(!if_range_matches("W/\"66b1c0ffee0123456789abcd\"", tag));
        assert!(!if_range_matches("Wed, 21 Oct 2015 07:28:00 GMT", tag));
        assert!(!if_range_matches("\"66b1c0ffee0123456789abcd\"", None));
        assert!(!if_range_matches("W/\"x\"", Some("W/\"x\"")));
        assert!(!if_range_matches("\"", Some("\"")));
    }
}
