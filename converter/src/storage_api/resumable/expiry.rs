//! The storage role's sweep of resumable uploads: removes unfinished uploads past their expiry
//! (chunks, reservation, callback, record), drops finished uploads' records once they expire,
//! and finishes uploads whose completion failed (the queue was down).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vid2mp3_contracts::{JobId, UserId};

use super::super::State;
use super::{HOLD, complete, release, remove_unfinished};
use crate::resumable::{Phase, ResumableRecord, Taken};

/// How often the sweep looks at most (more often when uploads expire sooner than twice that).
const EVERY: Duration = Duration::from_secs(60);
/// Uploads handled per look: bounds one look's work.
const BATCH: i64 = 100;

/// Sweeps until `shutdown`.
pub(in crate::storage_api) async fn run_sweep(state: Arc<State>, shutdown: CancellationToken) {
    let every = EVERY
        .min(state.config.resumable_expiry / 2)
        .max(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        sweep_once(&state).await;
    }
}

/// One look; every failure is logged and left for the next.
async fn sweep_once(state: &State) {
    match state.resumable.expired(BATCH).await {
        Ok(records) => {
            for record in records {
                with_hold(state, &record, async |state, job, token, record| {
                    if !record.is_expired() {
                        return;
                    }
                    let outcome = if record.phase == Phase::Complete {
                        state.resumable.remove(job).await.map_err(|e| format!("{e}"))
                    } else {
                        remove_unfinished(state, &record)
                            .await
                            .map_err(|e| format!("{e:?}"))
                    };
                    match outcome {
                        Ok(()) if record.phase == Phase::Complete => {}
                        Ok(()) => info!(%job, offset = record.offset, length = record.length, "expired upload removed"),
                        Err(error) => {
                            release(state, job, token).await;
                            warn!(%job, error, "could not remove an expired upload");
                        }
                    }
                })
                .await;
            }
        }
        Err(error) => warn!(%error, "cannot list expired uploads"),
    }
    match state.resumable.stuck_completing(BATCH).await {
        Ok(records) => {
            for record in records {
                with_hold(state, &record, async |state, job, token, record| {
                    if record.phase == Phase::Completing
                        && let Err(error) = complete::finish(state, job, token, record).await
                    {
                        warn!(%job, ?error, "could not finish an upload yet");
                    }
                    release(state, job, token).await;
                })
                .await;
            }
        }
        Err(error) => warn!(%error, "cannot list uploads waiting to be finished"),
    }
}

/// Runs `work` holding the upload (as a piece would), when nobody else holds it.
async fn with_hold(
    state: &State,
    record: &ResumableRecord,
    work: impl AsyncFnOnce(&State, &JobId, &str, ResumableRecord),
) {
    let (Ok(job), Ok(owner)) = (
        record.job_id.parse::<JobId>(),
        record.owner_id.parse::<UserId>(),
    ) else {
        warn!(job = %record.job_id, "an upload record with unreadable ids; left");
        return;
    };
    let token = uuid::Uuid::now_v7().to_string();
    match state.resumable.take(&job, &owner, &token, HOLD).await {
        Ok(Taken::Held(held)) => work(state, &job, &token, *held).await,
        Ok(Taken::Busy | Taken::Missing) => {}
        Err(error) => warn!(%job, %error, "cannot take an upload to sweep it"),
    }
}
