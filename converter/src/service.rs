//! `serve`: one process running the roles it is given (storage API, worker, relay) on shared
//! connections, until it is told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mongodb::Database;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use vid2mp3_contracts::JobId;
use vid2mp3_contracts::progress::{JobProgress, progress_key};

use crate::config::{Config, Role};
use crate::gridfs::{Bucket, MP3S_BUCKET, VIDEOS_BUCKET};
use crate::job_state::JobStore;
use crate::metrics::Metrics;
use crate::queue::Publisher;
use crate::quota::QuotaStore;

/// What every role shares: the configuration and the connections to the backing services.
pub struct Services {
    pub config: Config,
    pub db: Database,
    pub jobs: JobStore,
    /// The accounts' quotas, counted from the records above.
    pub quotas: QuotaStore,
    pub videos: Bucket,
    pub mp3s: Bucket,
    pub redis: RedisConnection,
    /// Publishes `video` jobs for the storage API.
    pub publisher: Publisher,
    pub metrics: Metrics,
}

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

impl Services {
    pub async fn connect(config: Config) -> anyhow::Result<Arc<Services>> {
        let mut options = mongodb::options::ClientOptions::parse(&config.mongo_url)
            .await
            .context("VID2MP3_MONGO_URL is not a MongoDB connection string")?;
        options.app_name = Some("vid2mp3-converter".into());
        // Fail operations within seconds while the server is away, rather than the driver's 30.
        options.server_selection_timeout = Some(Duration::from_secs(5));
        options.connect_timeout = Some(Duration::from_secs(5));
        let client = mongodb::Client::with_options(options)?;
        let db = client.database(&config.mongo_db);
        let redis = RedisConnection::new(&config.redis_url, &config.redis_key_prefix)
            .context("VID2MP3_REDIS_URL is not a Redis URL")?;
        let publisher = Publisher::new(
            config.amqp_url_with_heartbeat(),
            "vid2mp3-converter storage".into(),
            config.retry_delays.clone(),
        );
        Ok(Arc::new(Services {
            jobs: JobStore::new(&db),
            quotas: QuotaStore::new(&db, config.quotas),
            videos: Bucket::new(&db, VIDEOS_BUCKET),
            mp3s: Bucket::new(&db, MP3S_BUCKET),
            redis,
            publisher,
            metrics: Metrics::new().context("registering metrics")?,
            db,
            config,
        }))
    }

    /// Indexes the queries rely on; a failure is logged (MongoDB may be starting) and the
    /// queries still work, only slower.
    pub async fn ensure_indexes(&self) {
        let results = [
            self.videos
                .ensure_indexes()
                .await
                .map_err(|e| e.to_string()),
            self.mp3s.ensure_indexes().await.map_err(|e| e.to_string()),
            self.jobs.ensure_indexes().await.map_err(|e| e.to_string()),
            self.quotas
                .ensure_indexes()
                .await
                .map_err(|e| e.to_string()),
        ];
        for error in results.into_iter().filter_map(Result::err) {
            warn!(%error, "cannot create a MongoDB index");
        }
    }
}

/// How long the start waits for MongoDB's indexes.
const INDEX_SETUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A running `serve`.
pub struct RunningService {
    /// Where the storage API listens (when that role runs).
    pub storage_addr: Option<SocketAddr>,
    pub services: Arc<Services>,
    shutdown: CancellationToken,
    tasks: JoinSet<(Role, anyhow::Result<()>)>,
}

impl RunningService {
    /// Cancelling this token stops the service gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until every role ended (after a shutdown) or one failed.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut failure = None;
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((role, Ok(()))) => info!(%role, "stopped"),
                Ok((role, Err(error))) => {
                    warn!(%role, error = format!("{error:#}"), "role failed; stopping the others");
                    self.shutdown.cancel();
                    failure.get_or_insert(error.context(format!("the {role} role failed")));
                }
                Err(error) => {
                    self.shutdown.cancel();
                    failure.get_or_insert(anyhow::anyhow!("a role panicked: {error}"));
                }
            }
        }
        self.services.publisher.close().await;
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Stops gracefully and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Starts the configured roles. Binding the storage API's address is the only thing that fails
/// here; backing services that are down are waited for by each role.
pub async fn start(config: Config) -> anyhow::Result<RunningService> {
    let roles = config.roles.clone();
    let services = Services::connect(config).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut storage_addr = None;
    info!(roles = ?roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "starting");
    // Indexes first, before any request or job can write: creating a collection's index while
    // the first documents go into it made the MongoDB-wire test server (SecantusDB) retry a
    // write conflict forever. Bounded, because a Mongo that is down must not stop the start.
    if tokio::time::timeout(INDEX_SETUP_LIMIT, services.ensure_indexes())
        .await
        .is_err()
    {
        warn!(
            limit_secs = INDEX_SETUP_LIMIT.as_secs(),
            "MongoDB indexes not created in time; serving without them"
        );
    }
    if roles.contains(&Role::Storage) {
        let listener = tokio::net::TcpListener::bind(services.config.storage_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (VID2MP3_STORAGE_LISTEN)",
                    services.config.storage_listen
                )
            })?;
        let addr = listener.local_addr()?;
        storage_addr = Some(addr);
        info!(%addr, "storage API listening");
        let services = Arc::clone(&services);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            (
                Role::Storage,
                crate::storage_api::serve(listener, services, shutdown).await,
            )
        });
    }
    if roles.contains(&Role::Worker) {
        let services = Arc::clone(&services);
        let shutdown = shutdown.clone();
        tasks.spawn(async move { (Role::Worker, crate::worker::run(services, shutdown).await) });
    }
    if roles.contains(&Role::Relay) {
        let services = Arc::clone(&services);
        let shutdown = shutdown.clone();
        tasks.spawn(async move { (Role::Relay, crate::relay::run(services, shutdown).await) });
    }
    Ok(RunningService {
        storage_addr,
        services,
        shutdown,
        tasks,
    })
}

/// Sleeps unless shut down first; returns false when shut down.
pub async fn pause(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
