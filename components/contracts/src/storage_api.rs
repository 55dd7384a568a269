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
//! not percent-encoded UTF-8; an unknown profile); `401` without the right token; `404` for an
//! unknown job or mp3; `413` for a video over the converter's size limit. `GET .../mp3` answers
//! `200` (whole file) or `206` (one `Range`, with `Content-Range`) with `Content-Length` and
//! `Accept-Ranges: bytes`, `416` with `Content-Range: bytes */<len>` for a range past the end,
//! and `409` while the job has no mp3 (not done). `DELETE` answers `204`.
//! `/healthz`, `/readyz` and `/metrics` need no token (probes and Prometheus call them).

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, FileId, JobId, QualityProfile, UserId};

pub const JOBS_PATH: &str = "/internal/v1/jobs";
pub const MP3S_PATH: &str = "/internal/v1/mp3s";

/// Headers of `PUT .../video` besides `Content-Type` (the video's media type).
pub const HEADER_OWNER_ID: &str = "x-vid2mp3-owner-id";
/// The uploader's email, which the job's events carry to the notifier.
pub const HEADER_OWNER_EMAIL: &str = "x-vid2mp3-owner-email";
/// The file's name as uploaded, percent-encoded (UTF-8).
pub const HEADER_ORIGINAL_NAME: &str = "x-vid2mp3-original-name";
pub const HEADER_PROFILE: &str = "x-vid2mp3-profile";

pub fn video_path(job: &JobId) -> String {
    format!("{JOBS_PATH}/{job}/video")
}

pub fn job_path(job: &JobId) -> String {
    format!("{JOBS_PATH}/{job}")
}

pub fn mp3_path(job: &JobId) -> String {
    format!("{JOBS_PATH}/{job}/mp3")
}

/// Where the job that produced mp3 `fid` is looked up (→ [`JobState`]).
pub fn mp3_lookup_path(fid: &FileId) -> String {
    format!("{MP3S_PATH}/{fid}")
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
    pub attempts: u32,
    /// 0–100 while converting; 100 when done.
    pub progress_percent: u8,
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
}
