//! Conversion progress the converter leaves in Redis (contracts' `progress`).

use spin_sdk::redis::Connection;
use vid2mp3_contracts::JobId;
use vid2mp3_contracts::progress::{JobProgress, progress_key};

/// Progress of converting jobs; a missing or unreadable entry is simply no figure (progress is
/// advisory: the status never depends on it).
pub fn read(redis_url: &str, prefix_free_jobs: &[JobId]) -> Vec<Option<JobProgress>> {
    let Ok(conn) = Connection::open(redis_url) else {
        eprintln!("gateway: Redis unreachable; answering without progress figures");
        return vec![None; prefix_free_jobs.len()];
    };
    prefix_free_jobs
        .iter()
        .map(|job| {
            conn.get(&progress_key(job))
                .ok()
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<JobProgress>(&bytes).ok())
        })
        .collect()
}

pub fn ping(redis_url: &str) -> Result<(), String> {
    let conn = Connection::open(redis_url).map_err(|e| e.to_string())?;
    conn.get("vid2mp3:readyz")
        .map(|_| ())
        .map_err(|e| e.to_string())
}
