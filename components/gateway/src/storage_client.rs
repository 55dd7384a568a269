//! The converter's storage API (contracts' `storage_api`), as the gateway calls it.

use spin_sdk::wit::wasi::http0_2_0::types as wt;
use vid2mp3_contracts::storage_api::{
    self, HEADER_CALLBACK_URL, HEADER_LOUDNESS, HEADER_ORIGINAL_NAME, HEADER_OWNER_EMAIL,
    HEADER_OWNER_ID, HEADER_PROFILE, HEADER_UPLOAD_LENGTH, HEADER_UPLOAD_OFFSET, JobState,
    JobStatesRequest, JobStatesResponse, ResumableUpload, StoredVideo,
};
use vid2mp3_contracts::{
    ErrorBody, ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, Secret, UserId,
};

use crate::errors::ApiError;
use crate::http_io::{BodyLimit, Fetched, IoError, StreamedRequest, Target, fetch};

/// Answers of the JSON calls are small; a states list of 100 jobs is a few tens of KB.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Where the storage API is and the token it wants.
pub struct StorageEndpoint {
    https: bool,
    authority: String,
    base_path: String,
    token: Secret,
}

impl StorageEndpoint {
    /// `url`: `http(s)://host:port[/base]`.
    pub fn parse(url: &str, token: Secret) -> Result<StorageEndpoint, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("'{url}', not an http:// or https:// URL"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(format!("'{url}', which has no host"));
        }
        if token.expose().trim().is_empty() {
            return Err("set, but `storage_token` is empty".into());
        }
        Ok(StorageEndpoint {
            https,
            authority: authority.to_owned(),
            base_path: format!("/{}", path.trim_end_matches('/'))
                .trim_end_matches('/')
                .to_owned(),
            token,
        })
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }

    fn target<'a>(&'a self, method: wt::Method, path: &'a str) -> Target<'a> {
        Target {
            method,
            https: self.https,
            authority: &self.authority,
            path_and_query: path,
        }
    }

    pub(crate) fn call(
        &self,
        method: wt::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Fetched, ApiError> {
        let full = format!("{}{path}", self.base_path);
        let mut headers = vec![("authorization".to_owned(), self.bearer())];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        fetch(
            &self.target(method, &full),
            &headers,
            body.as_deref().unwrap_or_default(),
            BodyLimit::Refuse(MAX_ANSWER_BYTES),
            None,
        )
        .map_err(|e| ApiError::unavailable("the storage service", e))
    }

    /// A job's processing state; `None` when the converter has no such job.
    pub fn state(&self, job: &JobId) -> Result<Option<JobState>, ApiError> {
        let resp = self.call(wt::Method::Get, &storage_api::job_path(job), None)?;
        match resp.status {
            200 => parse(&resp).map(Some),
            404 => Ok(None),
            _ => Err(unexpected(&resp)),
        }
    }

    pub fn states(&self, jobs: Vec<JobId>) -> Result<Vec<JobState>, ApiError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let body = serde_json::to_vec(&JobStatesRequest { job_ids: jobs })
            .map_err(|e| ApiError::internal("storage request", e))?;
        let resp = self.call(wt::Method::Post, &storage_api::states_path(), Some(body))?;
        match resp.status {
            200 => parse::<JobStatesResponse>(&resp).map(|r| r.jobs),
            _ => Err(unexpected(&resp)),
        }
    }

    /// The state of the job that produced mp3 `fid`.
    pub fn job_of_mp3(&self, fid: &FileId) -> Result<Option<JobState>, ApiError> {
        let resp = self.call(wt::Method::Get, &storage_api::mp3_lookup_path(fid), None)?;
        match resp.status {
            200 => parse(&resp).map(Some),
            404 => Ok(None),
            _ => Err(unexpected(&resp)),
        }
    }

    /// Removes the job's files and state; a job already gone is not an error.
    pub fn delete(&self, job: &JobId) -> Result<(), ApiError> {
        let resp = self.call(wt::Method::Delete, &storage_api::job_path(job), None)?;
        match resp.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(unexpected(&resp)),
        }
    }

    /// Erases everything storage holds of `owner` (`DELETE /internal/v1/owners/{owner}`).
    pub fn delete_owner(&self, owner: &UserId) -> Result<(), ApiError> {
        let resp = self.call(wt::Method::Delete, &storage_api::owner_path(owner), None)?;
        match resp.status {
            204 => Ok(()),
            _ => Err(unexpected(&resp)),
        }
    }

    pub fn ready(&self) -> Result<(), String> {
        let path = format!("{}/readyz", self.base_path);
        match fetch(
            &self.target(wt::Method::Get, &path),
            &[],
            &[],
            BodyLimit::Refuse(MAX_ANSWER_BYTES),
            None,
        ) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("answered {}", r.status)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The headers that describe an upload's video (`PUT .../video`, `POST .../uploads`).
    fn upload_headers(&self, upload: &VideoUpload) -> Vec<(String, String)> {
        let mut headers = vec![
            ("authorization".to_owned(), self.bearer()),
            ("content-type".to_owned(), upload.content_type.clone()),
            (HEADER_OWNER_ID.to_owned(), upload.owner.to_string()),
            (HEADER_OWNER_EMAIL.to_owned(), upload.owner_email.clone()),
            (
                HEADER_ORIGINAL_NAME.to_owned(),
                percent_encoding::utf8_percent_encode(
                    &upload.original_name,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            ),
            (
                HEADER_PROFILE.to_owned(),
                upload.profile.as_str().to_owned(),
            ),
        ];
        if let Some(target) = upload.loudness_lufs {
            headers.push((HEADER_LOUDNESS.to_owned(), target.lufs().to_string()));
        }
        if let Some(length) = upload.content_length {
            headers.push(("content-length".to_owned(), length.to_string()));
        }
        if let Some(url) = &upload.callback_url {
            headers.push((HEADER_CALLBACK_URL.to_owned(), url.clone()));
        }
        headers
    }

    /// Starts `PUT .../video`; the caller streams the body and finishes (or drops to abort).
    pub fn start_video_upload(&self, upload: &VideoUpload) -> Result<StreamedRequest, IoError> {
        let path = format!("{}{}", self.base_path, storage_api::video_path(&upload.job));
        let headers = self.upload_headers(upload);
        StreamedRequest::start(&self.target(wt::Method::Put, &path), &headers, None)
    }

    /// Begins a resumable upload of `length` bytes (`POST .../uploads/{job}`).
    pub fn begin_upload(&self, upload: &VideoUpload, length: u64) -> Result<Fetched, ApiError> {
        let path = format!(
            "{}{}",
            self.base_path,
            storage_api::upload_path(&upload.job)
        );
        let mut headers = self.upload_headers(upload);
        headers.retain(|(name, _)| name != "content-length");
        headers.push((HEADER_UPLOAD_LENGTH.to_owned(), length.to_string()));
        fetch(
            &self.target(wt::Method::Post, &path),
            &headers,
            &[],
            BodyLimit::Refuse(MAX_ANSWER_BYTES),
            None,
        )
        .map_err(|e| ApiError::unavailable("the storage service", e))
    }

    /// Where a resumable upload is; `None` when storage has no such upload (of `owner`, when
    /// given) or it expired.
    pub fn upload_status(
        &self,
        job: &JobId,
        owner: Option<&UserId>,
    ) -> Result<Option<ResumableUpload>, ApiError> {
        let resp = self.owner_call(wt::Method::Get, job, owner)?;
        match resp.status {
            200 => parse(&resp).map(Some),
            404 => Ok(None),
            _ => Err(unexpected(&resp)),
        }
    }

    /// Ends an unfinished resumable upload (`DELETE .../uploads/{job}`); the answer as it came.
    pub fn end_upload(&self, job: &JobId, owner: &UserId) -> Result<Fetched, ApiError> {
        self.owner_call(wt::Method::Delete, job, Some(owner))
    }

    fn owner_call(
        &self,
        method: wt::Method,
        job: &JobId,
        owner: Option<&UserId>,
    ) -> Result<Fetched, ApiError> {
        let path = format!("{}{}", self.base_path, storage_api::upload_path(job));
        let mut headers = vec![("authorization".to_owned(), self.bearer())];
        if let Some(owner) = owner {
            headers.push((HEADER_OWNER_ID.to_owned(), owner.to_string()));
        }
        fetch(
            &self.target(method, &path),
            &headers,
            &[],
            BodyLimit::Refuse(MAX_ANSWER_BYTES),
            None,
        )
        .map_err(|e| ApiError::unavailable("the storage service", e))
    }

    /// Starts `PATCH .../uploads/{job}` at `offset`; the caller streams the piece and finishes.
    pub fn start_upload_piece(
        &self,
        job: &JobId,
        owner: &UserId,
        offset: u64,
    ) -> Result<StreamedRequest, IoError> {
        let path = format!("{}{}", self.base_path, storage_api::upload_path(job));
        let headers = vec![
            ("authorization".to_owned(), self.bearer()),
            (
                "content-type".to_owned(),
                "application/offset+octet-stream".to_owned(),
            ),
            (HEADER_OWNER_ID.to_owned(), owner.to_string()),
            (HEADER_UPLOAD_OFFSET.to_owned(), offset.to_string()),
        ];
        StreamedRequest::start(&self.target(wt::Method::Patch, &path), &headers, None)
    }

    /// Starts `GET .../mp3`, passing the client's `Range` on.
    pub fn open_mp3(
        &self,
        job: &JobId,
        range: Option<&str>,
    ) -> Result<wt::IncomingResponse, IoError> {
        let path = format!("{}{}", self.base_path, storage_api::mp3_path(job));
        let mut headers = vec![("authorization".to_owned(), self.bearer())];
        if let Some(range) = range {
            headers.push(("range".to_owned(), range.to_owned()));
        }
        StreamedRequest::start(&self.target(wt::Method::Get, &path), &headers, None)?.finish()
    }
}

/// Parses a resumable upload's answer.
pub fn resumable_upload(resp: &Fetched) -> Result<ResumableUpload, ApiError> {
    parse(resp)
}

/// What the storage API needs to know about an upload besides its bytes.
pub struct VideoUpload {
    pub job: JobId,
    pub owner: UserId,
    pub owner_email: String,
    pub original_name: String,
    pub content_type: String,
    pub profile: QualityProfile,
    pub loudness_lufs: Option<LoudnessTarget>,
    /// Known for raw uploads; a multipart upload's file length is not known in advance.
    pub content_length: Option<u64>,
    /// The job's own webhook, checked by the storage API.
    pub callback_url: Option<String>,
}

/// The storage API's answer to an upload (`retry_after`: its `Retry-After` header).
pub fn stored_video(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> Result<StoredVideo, ApiError> {
    match status {
        200 | 201 => {
            serde_json::from_slice(body).map_err(|e| ApiError::internal("the storage answer", e))
        }
        _ => Err(quota_refusal(status, retry_after, body)
            .or_else(|| crate::webhook::callback_refusal(status, body))
            .unwrap_or_else(|| error_from(status, body))),
    }
}

/// A refusal by one of the account's quotas, which the storage API enforces: passed on as it
/// came (its status, its words naming the limit, `Retry-After`), since the user can act on it.
/// Every other storage error stays an internal matter (`503`).
fn quota_refusal(status: u16, retry_after: Option<&str>, body: &[u8]) -> Option<ApiError> {
    let body = serde_json::from_slice::<ErrorBody>(body).ok()?;
    if body.error.code != ErrorCode::QuotaExceeded || !(400..500).contains(&status) {
        return None;
    }
    let mut e = ApiError::new(ErrorCode::QuotaExceeded, body.error.message);
    e.status = Some(status);
    match retry_after.map(str::trim) {
        Some(secs) if !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()) => {
            Some(e.with_header("retry-after", secs))
        }
        _ => Some(e),
    }
}

/// The storage API's refusal of a resumable upload's request, for the client: its words are
/// written for the uploader (where the upload is, what to send), so the user-facing statuses
/// pass through with the stored offset; anything else is ours (`503`).
pub fn upload_refusal(
    status: u16,
    retry_after: Option<&str>,
    offset: Option<&str>,
    body: &[u8],
) -> ApiError {
    if let Some(quota) = quota_refusal(status, retry_after, body) {
        return quota;
    }
    if let Some(callback) = crate::webhook::callback_refusal(status, body) {
        return callback;
    }
    let passed_on = matches!(status, 403 | 404 | 409 | 413 | 423 | 503);
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if passed_on && b.error.code.http_status() == status => {
            let e = ApiError::new(b.error.code, b.error.message);
            match offset.map(str::trim) {
                Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
                    e.with_header("upload-offset", n)
                }
                _ => e,
            }
        }
        _ => error_from(status, body),
    }
}

fn parse<T: serde::de::DeserializeOwned>(resp: &Fetched) -> Result<T, ApiError> {
    serde_json::from_slice(&resp.body).map_err(|e| ApiError::internal("the storage answer", e))
}

fn unexpected(resp: &Fetched) -> ApiError {
    error_from(resp.status, &resp.body)
}

fn error_from(status: u16, body: &[u8]) -> ApiError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| format!("{}: {}", b.error.code.as_str(), b.error.message))
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(200).collect());
    ApiError::unavailable(
        "the storage service",
        format!("answered {status}: {detail}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: ErrorCode, message: &str) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody::new(code, message)).unwrap()
    }

    #[test]
    fn quota_refusals_pass_through_as_they_came() {
        let words = "quota exceeded: queued jobs. You have 20 jobs waiting";
        let e = stored_video(429, None, &body(ErrorCode::QuotaExceeded, words)).unwrap_err();
        assert_eq!((e.status(), e.code), (429, ErrorCode::QuotaExceeded));
        assert_eq!(e.message, words);
        assert!(e.headers.is_empty());
        let e = stored_video(
            429,
            Some(" 3600 "),
            &body(ErrorCode::QuotaExceeded, "minutes"),
        )
        .unwrap_err();
        assert_eq!(e.headers, vec![("retry-after".into(), "3600".into())]);
        let e =
            stored_video(413, Some("soon"), &body(ErrorCode::QuotaExceeded, "bytes")).unwrap_err();
        assert_eq!(e.status(), 413);
        assert!(e.headers.is_empty(), "only whole seconds are passed on");
    }

    #[test]
    fn other_storage_errors_stay_internal() {
        for (status, code) in [
            (400, ErrorCode::BadRequest),
            (413, ErrorCode::PayloadTooLarge),
            (503, ErrorCode::Unavailable),
            // A quota code on a 5xx is not a refusal the user can act on.
            (500, ErrorCode::QuotaExceeded),
        ] {
            let e = stored_video(status, None, &body(code, "details for the log")).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unavailable, "{status}");
            assert!(!e.message.contains("details"), "{status}");
        }
        let e = stored_video(429, None, b"not json").unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
    }
}
