//! `DELETE /internal/v1/owners/{owner_id}`: erases everything the converter holds of an account
//! (its jobs' records, videos, mp3s, progress, callbacks and delivery records, files no record
//! names, resumable uploads under way, upload reservations and minutes claims, its webhook), when
//! the account is deleted.
//!
//! The account is marked first ([`crate::deleted_owners`]), so an upload that records its job
//! after the jobs were listed finds the mark and undoes itself, and a conversion that finishes
//! afterwards removes what it wrote (`worker::erased`). Every step removes what is there and
//! tolerates what is gone, so a call that fails half way is simply made again.

use std::sync::Arc;

use axum::extract::{self, Path};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tracing::{info, warn};
use vid2mp3_contracts::{ErrorCode, JobId, UserId};

use super::{ApiError, ApiResult, State, erase_job};
use crate::job_state::JobRecord;

pub(super) async fn delete_owner(
    extract::State(state): extract::State<Arc<State>>,
    Path(owner): Path<String>,
) -> ApiResult {
    let owner: UserId = owner.parse().map_err(|e: vid2mp3_contracts::IdError| {
        ApiError::new(ErrorCode::BadRequest, e.to_string())
    })?;
    state
        .deleted_owners
        .mark(&owner)
        .await
        .map_err(ApiError::unavailable)?;
    let mut jobs = 0u32;
    for id in state.jobs.ids_of_owner(&owner).await? {
        let Ok(job) = id.parse::<JobId>() else {
            warn!(job = %id, "a job record with an unreadable id; left");
            continue;
        };
        if erase_job(&state, &job).await? {
            jobs += 1;
        }
    }
    // Resumable uploads not finished yet (a finished one's record went with its job).
    let mut uploads = 0u32;
    for record in state
        .resumable
        .of_owner(&owner)
        .await
        .map_err(ApiError::unavailable)?
    {
        super::resumable::remove_unfinished(&state, &record).await?;
        uploads += 1;
    }
    // Files no record names: an upload cut off before its record, an attempt that died.
    let owner_key = owner.to_string();
    let mut files = 0u32;
    for bucket in [&state.videos, &state.mp3s] {
        while let Some(file) = bucket.find_by_metadata("owner_id", &owner_key).await? {
            bucket.delete(file.id).await?;
            files += 1;
        }
    }
    let quota_records = state
        .quotas
        .forget_owner(&owner)
        .await
        .map_err(ApiError::unavailable)?;
    // The account's webhook (URL and signing secret); each job's own went with the job.
    state
        .webhooks
        .delete(&owner)
        .await
        .map_err(ApiError::unavailable)?;
    info!(%owner, jobs, uploads, files, quota_records, "account erased");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// After an upload recorded its job: if the account was erased meanwhile, the job goes again
/// and the upload is refused (its `video` message finds no record and is dropped).
pub(super) async fn undo_if_erased(state: &State, record: &JobRecord) -> Result<(), ApiError> {
    let Ok(owner) = record.owner_id.parse::<UserId>() else {
        return Ok(());
    };
    let erased = state
        .deleted_owners
        .is_deleted(&owner)
        .await
        .map_err(ApiError::unavailable)?;
    if !erased {
        return Ok(());
    }
    if let Ok(job) = record.job_id.parse::<JobId>() {
        erase_job(state, &job).await?;
    }
    warn!(%owner, job = %record.job_id, "an upload finished for an erased account; removed");
    Err(ApiError::new(
        ErrorCode::Forbidden,
        "this account has been deleted; nothing of the upload was kept",
    ))
}
