//! `DELETE /api/v1/account`: the account deletes itself, with its password.
//!
//! Order (each step tolerates what an earlier, interrupted attempt already did, so the same
//! request made again finishes the job):
//! 1. auth checks the password (throttled like a log-in); a wrong one deletes nothing (403).
//! 2. the account is marked `deleting` here: from now on its tokens open only this route, so
//!    no upload or other request adds to what is being removed.
//! 3. the storage API erases the account's jobs, videos, mp3s, uploads and quota records (it
//!    marks the account first, so uploads and conversions still under way undo themselves).
//! 4. the gateway's job rows (also those of uploads still pending).
//! 5. auth checks the password again, has the notifier forget the address, removes the user.
//! 6. the account is marked `deleted`: its tokens open nothing.

use vid2mp3_contracts::Claims;
use vid2mp3_contracts::auth_api::AccountDeletion;

use crate::account_deletions::{AccountDeletions, DeletionState};
use crate::auth_client;
use crate::config::GatewayConfig;
use crate::errors::ApiError;
use crate::jobs_store::JobsStore;

/// The request's body: `{"password": "..."}`.
#[derive(serde::Deserialize)]
pub struct DeletionRequest {
    pub password: String,
}

/// Runs the steps above for the token's account; `Ok` once it is gone.
pub fn delete_account(
    claims: &Claims,
    request: DeletionRequest,
    client_addr: &str,
    config: &GatewayConfig,
) -> Result<(), ApiError> {
    let user = claims.sub;
    let deletions = AccountDeletions::open(&config.db_url)?;
    let state = deletions.state(&user)?;
    if state == Some(DeletionState::Deleted) {
        return Err(crate::account_deletions::refused(DeletionState::Deleted));
    }
    if request.password.is_empty() {
        return Err(ApiError::bad_request(
            "send your password: {\"password\": \"...\"}; nothing was deleted",
        ));
    }
    let deletion = AccountDeletion {
        user_id: user,
        password: request.password,
    };
    match auth_client::check_deletion(&deletion, client_addr) {
        Ok(()) => {}
        // auth removed the user in an attempt that stopped before its last step here.
        Err(e) if e.status() == 401 && state == Some(DeletionState::Deleting) => {
            return finish(&deletions, claims);
        }
        Err(e) => return Err(e),
    }
    deletions.set(&user, DeletionState::Deleting)?;
    config.storage.delete_owner(&user)?;
    JobsStore::open(&config.db_url)?.remove_owner(&user)?;
    match auth_client::delete_account(&deletion, client_addr) {
        Ok(()) => {}
        Err(e) if e.status() == 401 => {}
        Err(e) => return Err(e),
    }
    finish(&deletions, claims)
}

fn finish(deletions: &AccountDeletions, claims: &Claims) -> Result<(), ApiError> {
    deletions.set(&claims.sub, DeletionState::Deleted)?;
    eprintln!("gateway: deleted account user={}", claims.sub);
    Ok(())
}
