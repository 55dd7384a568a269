//! Conversion progress: the converter's worker writes it to Redis while a job converts, and the
//! converter's storage API reads it back into the job's state (`storage_api::JobState`'s
//! `progress_percent` and `eta_ms`), the one place it is read; the gateway shows what that state
//! says. It is advisory (a lost update only makes a bar lag), so it lives in Redis with a TTL
//! rather than in the converter's durable job record.

use serde::{Deserialize, Serialize};

use crate::JobId;

/// How long a progress entry outlives its last update; a job that stops reporting (its worker
/// died) stops showing a stale figure after this long.
pub const PROGRESS_TTL_SECS: u64 = 600;

/// The Redis key prefix of an install that sets none: every key the services share (progress,
/// delivery acks) and each service's own keys start with the configured prefix, which is what
/// lets Redis ACLs confine each service to its keys and lets tests share one Redis.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "vid2mp3:";

/// The Redis key holding a converting job's [`JobProgress`] as JSON, under `prefix`.
pub fn progress_key(prefix: &str, job: &JobId) -> String {
    format!("{prefix}progress:{job}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// 0–99 while converting (100 is only ever reported by the job's state once it is done).
    pub percent: u8,
    /// Estimated time left, when the converter can tell.
    pub eta_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_the_job() {
        let job: JobId = "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11".parse().unwrap();
        assert_eq!(
            progress_key(DEFAULT_REDIS_KEY_PREFIX, &job),
            "vid2mp3:progress:0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11"
        );
    }

    #[test]
    fn progress_round_trips() {
        let p = JobProgress {
            percent: 42,
            eta_ms: Some(1500),
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(text, r#"{"percent":42,"eta_ms":1500}"#);
        assert_eq!(serde_json::from_str::<JobProgress>(&text).unwrap(), p);
    }
}
