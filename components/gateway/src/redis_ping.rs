//! The gateway's readiness check of its Redis account. (Job progress is not read here: it comes
//! with each job's state from the storage API.)

use spin_sdk::redis::Connection;
use vid2mp3_contracts::Secret;

/// A read the gateway's Redis account is allowed (its ACL grants reads of `{prefix}readyz`), so
/// readiness fails on a wrong password or a missing grant, not only on a dead server.
pub fn ping(redis_url: &Secret, key_prefix: &str) -> Result<(), String> {
    let conn = Connection::open(redis_url.expose()).map_err(|e| e.to_string())?;
    conn.get(&format!("{key_prefix}readyz"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
