//! What the worker's parts share: the stores it uses, and why a message could not be settled.

use std::sync::Arc;

use crate::config::Config;
use crate::deleted_owners::DeletedOwners;
use crate::gridfs::{Bucket, GridFsError};
use crate::job_state::{JobStateError, JobStore};
use crate::metrics::Metrics;
use crate::queue::QueueError;
use crate::quota::QuotaStore;
use crate::redis_conn::RedisConnection;

/// What the worker uses: the job records, the quotas (media minutes), both buckets, Redis for
/// progress, and the metrics. Events, retries and dead letters go out on the consuming
/// connection, so no publisher of its own.
pub struct Deps {
    pub config: Arc<Config>,
    pub jobs: JobStore,
    pub quotas: QuotaStore,
    pub videos: Bucket,
    pub mp3s: Bucket,
    pub deleted_owners: DeletedOwners,
    pub redis: Arc<RedisConnection>,
    pub metrics: Metrics,
    /// Resumable uploads under way, whose chunks the orphan sweep must leave alone.
    pub resumable: crate::resumable::ResumableStore,
}

/// Why a message could not be settled: it goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum Unsettled {
    #[error("job state: {0}")]
    State(#[from] JobStateError),
    #[error("GridFS: {0}")]
    GridFs(#[from] GridFsError),
    #[error("broker: {0}")]
    Queue(#[from] QueueError),
    #[error("media minutes ledger: {0}")]
    Quota(#[source] mongodb::error::Error),
    #[error("a message for {queue} cannot be encoded: {source}")]
    Encode {
        queue: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the worker is shutting down")]
    ShuttingDown,
}
