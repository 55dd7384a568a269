//! A Redis key and channel prefix of the test's own.

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// Keys and channels under `vid2mp3:t:<unique>:`; the keys are deleted when this is dropped.
#[derive(Debug)]
pub struct RedisNamespace {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    prefix: String,
    url: String,
}

impl RedisNamespace {
    pub async fn create() -> anyhow::Result<RedisNamespace> {
        RedisNamespace::create_on(&ServiceUrls::from_env().redis).await
    }

    pub async fn create_on(url: &str) -> anyhow::Result<RedisNamespace> {
        let namespace = RedisNamespace {
            _watchdog: Watchdog::arm(),
            prefix: format!("{}:", unique_name("vid2mp3:t:")),
            url: url.to_owned(),
        };
        // Fail here, naming Redis, rather than deep inside the test.
        let mut conn = namespace.connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(namespace)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `name` inside this namespace (a key or a channel).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn connection(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let unavailable = |error: redis::RedisError| Unavailable {
            service: "Redis",
            script_name: "redis",
            address: address_of(&self.url),
            reason: error.to_string(),
        };
        let client = redis::Client::open(self.url.as_str())?;
        Ok(client
            .get_multiplexed_async_connection()
            .await
            .map_err(unavailable)?)
    }

    /// Every key currently under this namespace.
    pub async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = self.connection().await?;
        scan_prefix(&mut conn, &self.prefix).await
    }
}

async fn scan_prefix(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    // SCAN, not KEYS: the shared server may hold many other tests' keys.
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let url = self.url.clone();
        run_to_completion(&format!("Redis keys {prefix}*"), async move {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let keys = scan_prefix(&mut conn, &prefix).await?;
            if !keys.is_empty() {
                let _: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            }
            Ok(())
        });
    }
}
