//! The Redis connection the roles share: progress keys, the job-event channel, delivery acks.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;
use tracing::warn;
use vid2mp3_contracts::JobId;
use vid2mp3_contracts::progress::{JobProgress, progress_key};

/// A Redis connection made on first use (Redis may be down when the service starts) that
/// reconnects by itself afterwards.
pub struct RedisConnection {
    client: redis::Client,
    manager: Mutex<Option<ConnectionManager>>,
    /// `VID2MP3_REDIS_KEY_PREFIX`: the progress keys read here start with it.
    key_prefix: String,
}

const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisConnection {
    pub fn new(url: &str, key_prefix: &str) -> Result<RedisConnection, redis::RedisError> {
        Ok(RedisConnection {
            client: redis::Client::open(url)?,
            manager: Mutex::new(None),
            key_prefix: key_prefix.to_owned(),
        })
    }

    pub async fn get(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut manager = self.manager.lock().await;
        if let Some(m) = manager.as_ref() {
            return Ok(m.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2);
        let m = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *manager = Some(m.clone());
        Ok(m)
    }

    /// The progress of converting jobs, where Redis has one (advisory: errors give none).
    pub async fn progress(&self, jobs: &[JobId]) -> Vec<Option<JobProgress>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let read = async {
            let mut conn = self.get().await?;
            let keys: Vec<String> = jobs
                .iter()
                .map(|job| progress_key(&self.key_prefix, job))
                .collect();
            let values: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
            Ok::<_, redis::RedisError>(values)
        };
        match read.await {
            Ok(values) => values
                .into_iter()
                .map(|v| v.and_then(|text| serde_json::from_str(&text).ok()))
                .collect(),
            Err(error) => {
                warn!(%error, "cannot read progress from Redis");
                vec![None; jobs.len()]
            }
        }
    }

    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
