//! Settles uploads that were begun and never recorded as finished.
//!
//! An upload's job row is written (pending) before the body streams and marked stored after the
//! storage API has accepted it. If the instance ends in between — the process killed, the request's
//! time limit — nobody records the outcome. Such a row is invisible to its owner, so nothing is
//! wrong for them yet, but one case would lose a job: the storage API may have stored and queued
//! the video just before the instance ended, and the job then converts and is emailed while the
//! gateway still hides it. So a row pending for longer than any upload takes is settled by asking
//! the storage API, which owns the truth: a job it knows is recorded as stored (its owner sees it
//! again); one it does not know is removed. A storage or database error leaves the row for the next
//! sweep. Each successful upload sweeps a small batch, so no scheduler is needed. A row whose
//! resumable upload (tus) is still under way is left: storage removes the upload when it
//! expires, and the row goes at a later sweep.

use crate::config::GatewayConfig;
use crate::jobs_store::JobsStore;

/// Longer than the largest upload (2 GiB by default) takes even over a slow link.
const ABANDONED_AFTER_SECS: u32 = 24 * 60 * 60;

/// Rows settled per upload: bounds the extra work any one request does.
const BATCH: u32 = 8;

pub fn sweep_abandoned(config: &GatewayConfig) {
    let found = JobsStore::open(&config.db_url)
        .and_then(|jobs| jobs.abandoned(ABANDONED_AFTER_SECS, BATCH));
    let ids = match found {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("gateway: sweep skipped: {}", e.message);
            return;
        }
    };
    for job in ids {
        let settled = config.storage.state(&job).and_then(|state| {
            if state.is_some() {
                return JobsStore::open(&config.db_url)?
                    .mark_stored(&job)
                    .map(|()| "recorded as stored");
            }
            // A resumable upload still under way (it may run for days, a piece at a time).
            if config
                .storage
                .upload_status(&job, None)?
                .is_some_and(|upload| !upload.complete)
            {
                return Ok("left: its resumable upload is under way");
            }
            JobsStore::open(&config.db_url)?
                .remove(&job)
                .map(|()| "removed: storage never got its video")
        });
        match settled {
            Ok(what) => eprintln!("gateway: abandoned upload job={job} {what}"),
            Err(e) => eprintln!(
                "gateway: abandoned upload job={job} left for the next sweep: {}",
                e.message
            ),
        }
    }
}
