//! A Redis key and channel prefix of the test's own, and ACL users confined to it.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of, host_port};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// The Redis users of an install, one line each (`<user> <ACL rules>`); the same file the Redis
/// pod and scripts/services render into their ACL files.
pub const REDIS_USERS: &str = include_str!("../../../deploy/k8s/base/data/redis-users.conf");

/// The user the renderers give every right; tests already log in as the admin they were given.
const ADMIN_USER: &str = "vid2mp3-admin";

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

    /// Redis as the admin the test was given (every right; for the test's own checks).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `host:port` of the server: spin.toml's `redis_host`.
    pub fn server_host(&self) -> anyhow::Result<String> {
        host_port(&self.url, 6379)
    }

    /// `name` inside this namespace (a key or a channel).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn connection(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        connect(&self.url).await
    }

    /// Every key currently under this namespace.
    pub async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = self.connection().await?;
        scan_prefix(&mut conn, &self.prefix).await
    }

    /// One ACL user per service of [`REDIS_USERS`], with that service's rules, its keys under this
    /// namespace's prefix and each channel renamed by `channels` (production name, test name):
    /// what each service gets in production, confined to this test. A channel the rules name
    /// but `channels` does not rename is an error, so no test user reaches a production channel.
    pub async fn service_users(&self, channels: &[(&str, &str)]) -> anyhow::Result<RedisUsers> {
        let renames: BTreeMap<&str, &str> = channels.iter().copied().collect();
        let base = url::Url::parse(&self.url).context("the Redis URL")?;
        // `vid2mp3:t:<id>:` → `vid2mp3-t-<id>-`: a user name per test and service.
        let user_prefix = self.prefix.replace(':', "-");
        let mut users = RedisUsers {
            admin_url: self.url.clone(),
            urls: BTreeMap::new(),
            names: Vec::new(),
        };
        let mut conn = self.connection().await?;
        for line in REDIS_USERS.lines() {
            let mut words = line.split_whitespace();
            let Some(user) = words.next().filter(|w| !w.starts_with('#')) else {
                continue;
            };
            if user == ADMIN_USER {
                continue;
            }
            let service = user.strip_prefix("vid2mp3-").unwrap_or(user);
            let name = format!("{user_prefix}{service}");
            let password = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            let mut rules = vec!["reset".to_owned(), "on".to_owned(), format!(">{password}")];
            for rule in words {
                rules.push(match rule.strip_prefix('&') {
                    Some(channel) => {
                        let renamed = renames.get(channel).with_context(|| {
                            format!(
                                "redis-users.conf gives {user} the channel {channel}, which this \
                                 test does not rename; pass its test name to service_users"
                            )
                        })?;
                        format!("&{renamed}")
                    }
                    None => rule.replace("{prefix}", &self.prefix),
                });
            }
            let _: () = redis::cmd("ACL")
                .arg("SETUSER")
                .arg(&name)
                .arg(&rules)
                .query_async(&mut conn)
                .await
                .with_context(|| format!("creating the Redis user {name} (ACL SETUSER)"))?;
            users.names.push(name.clone());
            let mut url = base.clone();
            url.set_username(&name)
                .map_err(|()| anyhow::anyhow!("{} takes no user name", address_of(&self.url)))?;
            url.set_password(Some(&password))
                .map_err(|()| anyhow::anyhow!("{} takes no password", address_of(&self.url)))?;
            users.urls.insert(service.to_owned(), url.to_string());
        }
        Ok(users)
    }
}

/// A test's Redis users, one per service (gateway, auth, notifier, converter), deleted (and
/// their connections closed) when this is dropped.
#[derive(Debug)]
pub struct RedisUsers {
    admin_url: String,
    /// Service name → `redis://<user>:<password>@host:port`.
    urls: BTreeMap<String, String>,
    names: Vec<String>,
}

impl RedisUsers {
    /// `redis://<user>:<password>@host:port` of `service`'s user.
    ///
    /// # Panics
    /// When redis-users.conf has no user for `service`: a mistake in the test itself.
    pub fn url(&self, service: &str) -> &str {
        self.urls.get(service).map_or_else(
            || panic!("redis-users.conf has no user vid2mp3-{service}"),
            String::as_str,
        )
    }
}

impl Drop for RedisUsers {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        if names.is_empty() {
            return;
        }
        let url = self.admin_url.clone();
        run_to_completion(&format!("Redis users {names:?}"), async move {
            let mut conn = connect(&url).await?;
            let _: u64 = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&names)
                .query_async(&mut conn)
                .await?;
            Ok(())
        });
    }
}

async fn connect(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let unavailable = |error: redis::RedisError| Unavailable {
        service: "Redis",
        script_name: "redis",
        address: address_of(url),
        reason: error.to_string(),
    };
    let client = redis::Client::open(url)?;
    Ok(client
        .get_multiplexed_async_connection()
        .await
        .map_err(unavailable)?)
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
            let mut conn = connect(&url).await?;
            let keys = scan_prefix(&mut conn, &prefix).await?;
            if !keys.is_empty() {
                let _: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            }
            Ok(())
        });
    }
}
