//! Conversion progress the converter leaves in Redis (contracts' `progress`).

use spin_sdk::redis::Connection;
use vid2mp3_contracts::JobId;
use vid2mp3_contracts::progress::{JobProgress, progress_key};

/// Progress of converting jobs; a missing or unreadable entry is simply no figure (progress is
/// advisory: the status never depends on it).
pub fn read(redis_url: &str, key_prefix: &str, jobs: &[JobId]) -> Vec<Option<JobProgress>> {
    let Ok(conn) = Connection::open(redis_url) else {
        eprintln!("gateway: Redis unreachable; answering without progress figures");
        return vec![None; jobs.len()];
    };
    jobs.iter()
        .map(|job| {
            conn.get(&progress_key(key_prefix, job))
                .ok()
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<JobProgress>(&bytes).ok())
        })
        .collect()
}

/// A read the gateway's Redis account is allowed (its ACL grants reads under the prefix it
/// uses), so readiness fails on a wrong password or a missing grant, not only on a dead server.
pub fn ping(redis_url: &str, key_prefix: &str) -> Result<(), String> {
    let conn = Connection::open(redis_url).map_err(|e| e.to_string())?;
    conn.get(&format!("{key_prefix}readyz"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
