//! The converter's internal storage API, as the gateway calls it. Every request carries
//! `Authorization: Bearer <storage token>`; errors are `{"error": {"code", "message"}}`.
//!
//! | method and path | what |
//! |---|---|
//! | `PUT /internal/v1/jobs/{job_id}/video` | store the body as the job's video (streamed), then queue it; idempotent per job id |
//! | `GET /internal/v1/jobs/{job_id}` | the job's processing state ([`JobState`]) |
//! | `POST /internal/v1/jobs/states` | the states of many jobs at once ([`JobStatesRequest`] → [`JobStatesResponse`]) |
//! | `GET /internal/v1/jobs/{job_id}/mp3` | the mp3, streamed; `Range` supported |
//! | `DELETE /internal/v1/jobs/{job_id}` | remove the job's video, mp3 and state |
//! | `GET /internal/v1/mp3s/{mp3_fid}` | the state of the job that produced this mp3 (the course's `fid` → its job) |
//! | `POST /internal/v1/uploads/{job_id}` | begin a resumable upload of [`HEADER_UPLOAD_LENGTH`] bytes (the `PUT .../video` headers, no body) → `201` [`ResumableUpload`] |
//! | `GET /internal/v1/uploads/{job_id}` | where a resumable upload is ([`ResumableUpload`]; `404` unknown or expired) |
//! | `PATCH /internal/v1/uploads/{job_id}` | append the body at [`HEADER_UPLOAD_OFFSET`]; the last byte makes the job (→ [`ResumableUpload`]) |
//! | `DELETE /internal/v1/uploads/{job_id}` | end a resumable upload and remove its bytes (`204`; `409` once it is a job) |
//! | `DELETE /internal/v1/owners/{owner_id}` | erase an account: every job's video, mp3 and state, files no job names, upload reservations and minutes claims (`204`, also when there was nothing) |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | liveness, readiness (MongoDB, RabbitMQ, Redis), Prometheus |
//!
//! `PUT .../video` answers `201` with [`StoredVideo`] once the video is in GridFS **and** its
//! `video` message is confirmed by the broker; `200` with the same body when that job id was
//! already stored (idempotent); `409` when the job id exists with a different owner; `503` when
//! the broker did not confirm (the stored video is removed again). A body that ends early leaves
//! nothing stored.
//!
//! Quotas are the owner's (`x-vid2mp3-owner-id`), checked by `PUT .../video` with the code
//! `quota_exceeded` and a message that names the limit, its value and what frees it: `429` when
//! the owner already has the most jobs waiting or converting (an upload under way counts as one)
//! or has used the day's media minutes (with `Retry-After`, seconds until 00:00 UTC); `413` when
//! the video would take the owner's stored bytes (videos, mp3s and uploads under way) over the
//! quota: at once for a declared `Content-Length`, or where the body crosses it. Either way
//! nothing of the upload is kept. A job whose media turn out longer than the minutes left fails
//! with the same code.
//!
//! Other answers, as the converter gives them: `400` for an id that does not parse or a
//! missing/invalid `PUT` header (`x-vid2mp3-owner-id`, `x-vid2mp3-owner-email`; a name that is
//! not percent-encoded UTF-8; an unknown profile or loudness target); `401` without the right token; `404` for an
//! unknown job or mp3; `413` for a video over the converter's size limit. `GET .../mp3` answers
//! `200` (whole file) or `206` (one `Range`, with `Content-Range`) with `Content-Length` and
//! `Accept-Ranges: bytes`, `416` with `Content-Range: bytes */<len>` for a range past the end,
//! and `409` while the job has no mp3 (not done). `DELETE` answers `204`. After an account is
//! erased, a `PUT .../video` of its that finishes is undone and answered `403`.
//! `/healthz`, `/readyz` and `/metrics` need no token (probes and Prometheus call them).
//!
//! Resumable uploads (the gateway's tus routes) take the owner's id on every call and answer
//! `404` for another owner's. A `PATCH` answers `409` with the stored offset in
//! [`HEADER_UPLOAD_OFFSET`] when the piece starts elsewhere, `413` when it goes past the
//! declared length (nothing of that piece is kept), `423` while another piece is being written;
//! a piece cut off keeps every byte that arrived. When the last byte is in, the video is made
//! visible, recorded and queued before the answer (`complete: true`); if queueing fails (`503`)
//! the bytes stay and an empty `PATCH` at the end (or the converter's own sweep) finishes it.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, UserId};

/// The fewest characters a storage token may have: 32 random characters are well beyond
/// guessing, and `openssl rand -base64 32` (44 characters) clears it.
pub const MIN_STORAGE_TOKEN_CHARS: usize = 32;

/// How to make a token, for every message that refuses one.
pub const MAKE_STORAGE_TOKEN: &str = "make one with `openssl rand -base64 32`";

/// Words that mark a value copied from an example rather than generated (compared in lowercase
/// with everything but letters and digits removed, so `CHANGE-ME` and `change_me` are caught).
/// Each is long enough that a random token contains it by chance with negligible probability.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "replaceme",
    "placeholder",
    "example",
    "storagetoken",
    "yourtoken",
];

/// Why a storage token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageTokenProblem {
    #[error("empty; {MAKE_STORAGE_TOKEN}")]
    Empty,
    #[error(
        "too short ({chars} characters; at least {MIN_STORAGE_TOKEN_CHARS} are required); {MAKE_STORAGE_TOKEN}"
    )]
    TooShort { chars: usize },
    #[error("a placeholder copied from an example, not a secret; {MAKE_STORAGE_TOKEN}")]
    Placeholder,
}

/// Checks the bearer token of the storage API, on both sides of it (the converter refuses to
/// start, the gateway to call it): anyone who can reach the storage API with the token can read
/// and delete every user's files, so a short or example token is a configuration error.
pub fn check_storage_token(token: &str) -> Result<(), StorageTokenProblem> {
    let token = token.trim();
    if token.is_empty() {
        return Err(StorageTokenProblem::Empty);
    }
    let chars = token.chars().count();
    if chars < MIN_STORAGE_TOKEN_CHARS {
        return Err(StorageTokenProblem::TooShort { chars });
    }
    let normalized: String = token
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let distinct = token
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    // A generated token of this length uses many symbols; `xxxx…` or `0000…` was typed.
    if distinct < 8 || PLACEHOLDER_WORDS.iter().any(|w| normalized.contains(w)) {
        return Err(StorageTokenProblem::Placeholder);
    }
    Ok(())
}

pub const JOBS_PATH: &str = "/internal/v1/jobs";
pub const MP3S_PATH: &str = "/internal/v1/mp3s";
pub const OWNERS_PATH: &str = "/internal/v1/owners";
pub const UPLOADS_PATH: &str = "/internal/v1/uploads";

/// The length a resumable upload declares when it begins.
pub const HEADER_UPLOAD_LENGTH: &str = "x-vid2mp3-upload-length";
/// Where a `PATCH`'s piece starts; in a `409`, where the upload is.
pub const HEADER_UPLOAD_OFFSET: &str = "x-vid2mp3-upload-offset";

/// Headers of `PUT .../video` besides `Content-Type` (the video's media type).
pub const HEADER_OWNER_ID: &str = "x-vid2mp3-owner-id";
/// The uploader's email, which the job's events carry to the notifier.
pub const HEADER_OWNER_EMAIL: &str = "x-vid2mp3-owner-email";
/// The file's name as uploaded, percent-encoded (UTF-8).
pub const HEADER_ORIGINAL_NAME: &str = "x-vid2mp3-original-name";
pub const HEADER_PROFILE: &str = "x-vid2mp3-profile";
/// The loudness target in whole LUFS (`-16`); absent: not levelled.
pub const HEADER_LOUDNESS: &str = "x-vid2mp3-loudness";
/// A callback URL for this job's outcome (`contracts::webhook`); absent: the account's webhook,
/// if any.
pub const HEADER_CALLBACK_URL: &str = "x-vid2mp3-callback-url";

pub fn video_path(job: &JobId) -> String {
    format!("{JOBS_PATH}/{job}/video")
}

pub fn job_path(job: &JobId) -> String {
    format!("{JOBS_PATH}/{job}")
}

pub fn mp3_path(job: &JobId) -> String {
    format!("{JOBS_PATH}/{job}/mp3")
}

/// Where everything of an account is erased (`DELETE`).
pub fn owner_path(owner: &UserId) -> String {
    format!("{OWNERS_PATH}/{owner}")
}

/// Where the job that produced mp3 `fid` is looked up (→ [`JobState`]).
pub fn mp3_lookup_path(fid: &FileId) -> String {
    format!("{MP3S_PATH}/{fid}")
}

/// A resumable upload, by the job id it becomes.
pub fn upload_path(job: &JobId) -> String {
    format!("{UPLOADS_PATH}/{job}")
}

pub fn states_path() -> String {
    format!("{JOBS_PATH}/states")
}

/// The answer to a stored video: the job is queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVideo {
    pub job_id: JobId,
    pub video_fid: FileId,
    pub size_bytes: u64,
    /// The signing secret of the job's callback URL, when the upload named one; shown only here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
}

/// Where a resumable upload is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumableUpload {
    pub job_id: JobId,
    pub owner_id: UserId,
    /// The declared length.
    pub length: u64,
    /// Bytes stored so far (from the start).
    pub offset: u64,
    /// When an unfinished upload is removed (Unix milliseconds); moved on by every piece. A
    /// finished one's record is kept until then too.
    pub expires_at_ms: i64,
    /// The job is recorded and queued.
    pub complete: bool,
    /// The signing secret of the job's callback URL, when the upload named one; shown only in
    /// the answer that began the upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Converting,
    Done,
    Failed,
}

/// A job's processing state, owned by the converter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub job_id: JobId,
    pub owner_id: UserId,
    pub status: JobStatus,
    pub profile: QualityProfile,
    /// The loudness the mp3 is levelled to; absent when the job does not level it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness_lufs: Option<LoudnessTarget>,
    pub attempts: u32,
    /// 0–99 while converting; 100 when done.
    pub progress_percent: u8,
    /// While converting, the converter's estimate of the time left, when it can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
    pub video_fid: FileId,
    pub video_size_bytes: u64,
    pub mp3_fid: Option<FileId>,
    pub mp3_size_bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub error: Option<JobError>,
    /// RFC 3339 timestamps.
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatesRequest {
    pub job_ids: Vec<JobId>,
}

/// States of the jobs that exist, in no particular order; unknown ids are simply absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatesResponse {
    pub jobs: Vec<JobState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_job() {
        let job: JobId = "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11".parse().unwrap();
        assert_eq!(
            video_path(&job),
            "/internal/v1/jobs/0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11/video"
        );
        assert_eq!(
            mp3_path(&job),
            "/internal/v1/jobs/0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11/mp3"
        );
    }

    #[test]
    fn generated_tokens_pass() {
        // `openssl rand -base64 32` and scripts/lib/common.sh's base64url form.
        for token in [
            "q3Vx0m8cU1yJq7o2w9d8Yk3n4Qe6b5Rr+Tz1Lp0aHs4=",
            "Vb0h4WkQ1mP9xT3zR7yN2cL5sD8fG6jA1qE0uI4oKtM",
            &"a1b2c3d4".repeat(4),
        ] {
            assert_eq!(check_storage_token(token), Ok(()), "{token}");
        }
    }

    #[test]
    fn short_tokens_are_refused_saying_how_to_make_one() {
        for token in ["s3cret", "t", &"x1y2".repeat(7)] {
            let problem = check_storage_token(token).unwrap_err();
            assert!(
                matches!(problem, StorageTokenProblem::TooShort { .. }),
                "{token}"
            );
            let message = problem.to_string();
            assert!(message.contains("at least 32"), "{message}");
            assert!(message.contains("openssl rand -base64 32"), "{message}");
        }
        assert_eq!(check_storage_token("   "), Err(StorageTokenProblem::Empty));
    }

    #[test]
    fn placeholders_are_refused_even_when_long() {
        for token in [
            "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
            "changeme_changeme_changeme_changeme",
            "replace-me-with-a-real-storage-token-please",
            "your-token-goes-here-0123456789abcdef",
            "00000000000000000000000000000000000000",
            "abababababababababababababababababab",
        ] {
            let problem = check_storage_token(token).unwrap_err();
            assert_eq!(problem, StorageTokenProblem::Placeholder, "{token}");
            assert!(problem.to_string().contains("openssl rand -base64 32"));
        }
    }
}
