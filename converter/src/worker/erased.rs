//! A job whose account was erased while the worker had it.
//!
//! The erasure (`storage_api::owners`) marks the account, then removes its records and files;
//! an attempt that was converting at that moment may still write after it: the day's minutes
//! claim (`media_usage`) and the mp3 it was writing. The worker looks for the mark after its
//! writes, so whichever comes second sees the other and nothing of the account outlives it.

use mongodb::bson::oid::ObjectId;
use tracing::info;
use vid2mp3_contracts::VideoJob;

use super::shared::{Deps, Unsettled};

/// Removes what this job's attempts wrote, when its record is gone and its owner was erased.
/// A job deleted on its own keeps its minutes claim (the work was done), so that case is left.
pub(super) async fn forget_if_erased(deps: &Deps, job: &VideoJob) -> Result<(), Unsettled> {
    if deps.jobs.get(&job.job_id).await?.is_some()
        || !deps
            .deleted_owners
            .is_deleted(&job.owner_id)
            .await
            .map_err(Unsettled::Quota)?
    {
        return Ok(());
    }
    let key = job.job_id.to_string();
    let mut removed = 0u32;
    while let Some(file) = deps.mp3s.find_by_metadata("job_id", &key).await? {
        deps.mp3s.delete(file.id).await?;
        removed += 1;
    }
    // The erasure removes the video with the record; this covers a video it could not reach.
    if let Ok(id) = ObjectId::parse_str(job.video_fid.as_str()) {
        deps.videos.delete(id).await?;
    }
    deps.quotas
        .forget_job(&job.job_id)
        .await
        .map_err(Unsettled::Quota)?;
    info!(
        mp3s_removed = removed,
        "the job's account was erased; removed what the attempt wrote"
    );
    Ok(())
}
