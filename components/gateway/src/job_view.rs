//! A job as the public API shows it: the gateway's ownership record joined with the converter's
//! processing state (which carries the conversion's progress: the storage API reads it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use vid2mp3_contracts::storage_api::{JobError, JobState, JobStatus};
use vid2mp3_contracts::{ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile};

use crate::jobs_store::{OwnedJob, PageStart};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub id: JobId,
    pub status: JobStatus,
    pub progress_percent: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
    pub original_name: String,
    pub content_type: String,
    pub profile: Option<QualityProfile>,
    /// The integrated loudness (LUFS) the mp3 is levelled to; absent when not levelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loudness_lufs: Option<LoudnessTarget>,
    pub attempts: u32,
    pub video_size_bytes: Option<u64>,
    /// The mp3's id: the `fid` of the course's `GET /download?fid=`.
    pub mp3_fid: Option<FileId>,
    pub mp3_size_bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub error: Option<JobError>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub links: JobLinks,
    /// The signing secret of the job's callback URL: only in the answer to an upload that
    /// named one, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub mp3: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `?cursor=` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

pub fn view(job: &OwnedJob, state: Option<&JobState>) -> JobView {
    let this = format!("/api/v1/jobs/{}", job.id);
    let created_at = rfc3339(job.created_ms);
    let Some(state) = state else {
        // Stored, yet the converter has no record: it lost it. Say so instead of "queued" forever.
        return JobView {
            id: job.id,
            status: JobStatus::Failed,
            progress_percent: 0,
            eta_ms: None,
            original_name: job.original_name.clone(),
            content_type: job.content_type.clone(),
            profile: None,
            loudness_lufs: None,
            attempts: 0,
            video_size_bytes: None,
            mp3_fid: None,
            mp3_size_bytes: None,
            duration_ms: None,
            error: Some(JobError {
                code: ErrorCode::Internal,
                message: "the converter has no record of this job; please upload the video again"
                    .into(),
            }),
            created_at,
            updated_at: None,
            callback_secret: None,
            links: JobLinks { this, mp3: None },
        };
    };
    let (progress_percent, eta_ms) = match state.status {
        JobStatus::Done => (100, None),
        JobStatus::Converting => (state.progress_percent.min(99), state.eta_ms),
        JobStatus::Queued | JobStatus::Failed => (state.progress_percent.min(99), None),
    };
    JobView {
        id: job.id,
        status: state.status,
        progress_percent,
        eta_ms,
        original_name: job.original_name.clone(),
        content_type: job.content_type.clone(),
        profile: Some(state.profile),
        loudness_lufs: state.loudness_lufs,
        attempts: state.attempts,
        video_size_bytes: Some(state.video_size_bytes),
        mp3_fid: state.mp3_fid.clone(),
        mp3_size_bytes: state.mp3_size_bytes,
        duration_ms: state.duration_ms,
        error: state.error.clone(),
        created_at,
        updated_at: Some(state.updated_at.clone()),
        callback_secret: None,
        links: JobLinks {
            mp3: (state.status == JobStatus::Done).then(|| format!("{this}/mp3")),
            this,
        },
    }
}

/// `2026-11-28T03:23:13.123Z`.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Cursors are opaque to clients: base64url of `created_ms:job_id`.
pub fn encode_cursor(start: &PageStart) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", start.created_ms, start.id))
}

pub fn decode_cursor(cursor: &str) -> Option<PageStart> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (ms, id) = text.split_once(':')?;
    Some(PageStart {
        created_ms: ms.parse().ok()?,
        id: id.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vid2mp3_contracts::UserId;

    fn job() -> OwnedJob {
        OwnedJob {
            id: JobId::new(),
            original_name: "talk.mkv".into(),
            content_type: "video/x-matroska".into(),
            created_ms: 1_795_000_000_123,
        }
    }

    fn state(job: &OwnedJob, status: JobStatus) -> JobState {
        JobState {
            job_id: job.id,
            owner_id: UserId::new(),
            status,
            profile: QualityProfile::Standard,
            loudness_lufs: None,
            attempts: 1,
            progress_percent: 0,
            eta_ms: None,
            video_fid: "65f0c0ffee65f0c0ffee65f0".parse().unwrap(),
            video_size_bytes: 1000,
            mp3_fid: (status == JobStatus::Done)
                .then(|| "65f0c0ffee65f0c0ffee65f1".parse().unwrap()),
            mp3_size_bytes: None,
            duration_ms: None,
            error: None,
            created_at: "2026-11-28T00:00:00Z".into(),
            updated_at: "2026-11-28T00:00:01Z".into(),
        }
    }

    #[test]
    fn converting_jobs_show_their_progress_and_done_jobs_100() {
        let j = job();
        let mut converting = state(&j, JobStatus::Converting);
        (converting.progress_percent, converting.eta_ms) = (42, Some(900));
        let v = view(&j, Some(&converting));
        assert_eq!((v.progress_percent, v.eta_ms), (42, Some(900)));
        assert_eq!(v.links.mp3, None);
        let v = view(&j, Some(&state(&j, JobStatus::Done)));
        assert_eq!(v.progress_percent, 100);
        assert_eq!(v.links.mp3, Some(format!("/api/v1/jobs/{}/mp3", j.id)));
    }

    #[test]
    fn a_job_the_converter_lost_is_failed_with_a_reason() {
        let v = view(&job(), None);
        assert_eq!(v.status, JobStatus::Failed);
        assert!(v.error.unwrap().message.contains("upload"));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_none() {
        let start = PageStart {
            created_ms: 1_795_000_000_123,
            id: JobId::new(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&start)), Some(start));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("12:not-an-id")), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}
