//! `serve`: one process running the roles it is given (storage API, worker, relay, webhook) on shared
//! connections, until it is told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, Role};
use crate::deleted_owners::DeletedOwners;
use crate::gridfs::{Bucket, MP3S_BUCKET, VIDEOS_BUCKET};
use crate::job_state::JobStore;
use crate::metrics::Metrics;
use crate::queue::Publisher;
use crate::quota::QuotaStore;
use crate::redis_conn::RedisConnection;
use crate::resumable::ResumableStore;
use crate::webhook::store::WebhookStore;
use crate::{relay, storage_api, webhook, worker};

/// The connections the roles are made from. Each role gets only the parts it uses
/// ([`crate::storage_api::State`], [`crate::worker::Deps`], [`crate::relay::Deps`]); the
/// publisher of `video` jobs is made only for the storage API.
struct Shared {
    config: Arc<Config>,
    jobs: JobStore,
    /// The accounts' quotas, counted from the records above.
    quotas: QuotaStore,
    videos: Bucket,
    mp3s: Bucket,
    /// Erased accounts, which uploads and conversions still under way check after writing.
    deleted_owners: DeletedOwners,
    redis: Arc<RedisConnection>,
    metrics: Metrics,
    /// The accounts' webhooks (set through the storage API, read by the webhook sender).
    webhooks: WebhookStore,
    /// Resumable uploads under way (the storage API's; the worker's orphan sweep reads them).
    resumable: ResumableStore,
}

impl Shared {
    async fn connect(config: Config) -> anyhow::Result<Shared> {
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
        Ok(Shared {
            jobs: JobStore::new(&db),
            quotas: QuotaStore::new(&db, config.quotas),
            webhooks: WebhookStore::new(&db),
            resumable: ResumableStore::new(&db),
            videos: Bucket::new(&db, VIDEOS_BUCKET),
            mp3s: Bucket::new(&db, MP3S_BUCKET),
            deleted_owners: DeletedOwners::new(&db),
            redis: Arc::new(redis),
            metrics: Metrics::new().context("registering metrics")?,
            config: Arc::new(config),
        })
    }

    /// Indexes the queries rely on; a failure is logged (MongoDB may be starting) and the
    /// queries still work, only slower.
    async fn ensure_indexes(&self) {
        let results = [
            self.videos
                .ensure_indexes()
                .await
                .map_err(anyhow::Error::from),
            self.mp3s
                .ensure_indexes()
                .await
                .map_err(anyhow::Error::from),
            self.jobs
                .ensure_indexes()
                .await
                .map_err(anyhow::Error::from),
            self.quotas
                .ensure_indexes()
                .await
                .map_err(anyhow::Error::from),
            self.resumable
                .ensure_indexes()
                .await
                .map_err(anyhow::Error::from),
        ];
        for error in results.into_iter().filter_map(Result::err) {
            warn!(
                error = format!("{error:#}"),
                "cannot create a MongoDB index"
            );
        }
    }

    fn storage(&self, publisher: Arc<Publisher>) -> storage_api::State {
        storage_api::State {
            config: Arc::clone(&self.config),
            jobs: self.jobs.clone(),
            quotas: self.quotas.clone(),
            videos: self.videos.clone(),
            mp3s: self.mp3s.clone(),
            deleted_owners: self.deleted_owners.clone(),
            redis: Arc::clone(&self.redis),
            publisher,
            metrics: self.metrics.clone(),
            webhooks: self.webhooks.clone(),
            resumable: self.resumable.clone(),
        }
    }

    fn worker(&self) -> worker::Deps {
        worker::Deps {
            config: Arc::clone(&self.config),
            jobs: self.jobs.clone(),
            quotas: self.quotas.clone(),
            videos: self.videos.clone(),
            mp3s: self.mp3s.clone(),
            deleted_owners: self.deleted_owners.clone(),
            redis: Arc::clone(&self.redis),
            metrics: self.metrics.clone(),
            resumable: self.resumable.clone(),
        }
    }

    fn webhook(&self) -> webhook::Deps {
        webhook::Deps {
            config: Arc::clone(&self.config),
            store: self.webhooks.clone(),
        }
    }

    fn relay(&self) -> relay::Deps {
        relay::Deps {
            config: Arc::clone(&self.config),
            redis: Arc::clone(&self.redis),
            metrics: self.metrics.clone(),
        }
    }
}

/// How long the start waits for MongoDB's indexes.
const INDEX_SETUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A running `serve`.
pub struct RunningService {
    /// Where the storage API listens (when that role runs).
    pub storage_addr: Option<SocketAddr>,
    /// The roles' metrics (what `/metrics` serves).
    pub metrics: Metrics,
    /// The storage API's publisher, closed once every role stopped.
    publisher: Option<Arc<Publisher>>,
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
                    failure.get_or_insert(anyhow::Error::new(error).context("a role panicked"));
                }
            }
        }
        if let Some(publisher) = &self.publisher {
            publisher.close().await;
        }
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
    let shared = Shared::connect(config).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut storage_addr = None;
    let mut publisher = None;
    info!(roles = ?roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "starting");
    // Indexes first, before any request or job can write: creating a collection's index while
    // the first documents go into it made the MongoDB-wire test server (SecantusDB) retry a
    // write conflict forever. Bounded, because a Mongo that is down must not stop the start.
    if tokio::time::timeout(INDEX_SETUP_LIMIT, shared.ensure_indexes())
        .await
        .is_err()
    {
        warn!(
            limit_secs = INDEX_SETUP_LIMIT.as_secs(),
            "MongoDB indexes not created in time; serving without them"
        );
    }
    if roles.contains(&Role::Storage) {
        let listen = shared.config.storage_listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (VID2MP3_STORAGE_LISTEN)"))?;
        let addr = listener.local_addr()?;
        storage_addr = Some(addr);
        info!(%addr, "storage API listening");
        let video_publisher = Arc::new(Publisher::new(
            shared.config.amqp_url_with_heartbeat(),
            "vid2mp3-converter storage".into(),
            shared.config.retry_delays.clone(),
        ));
        publisher = Some(Arc::clone(&video_publisher));
        let state = Arc::new(shared.storage(video_publisher));
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            (
                Role::Storage,
                storage_api::serve(listener, state, shutdown).await,
            )
        });
    }
    if roles.contains(&Role::Worker) {
        let deps = Arc::new(shared.worker());
        let shutdown = shutdown.clone();
        tasks.spawn(async move { (Role::Worker, worker::run(deps, shutdown).await) });
    }
    if roles.contains(&Role::Relay) {
        let deps = Arc::new(shared.relay());
        let shutdown = shutdown.clone();
        tasks.spawn(async move { (Role::Relay, relay::run(deps, shutdown).await) });
    }
    if roles.contains(&Role::Webhook) {
        let deps = Arc::new(shared.webhook());
        let shutdown = shutdown.clone();
        tasks.spawn(async move { (Role::Webhook, webhook::run(deps, shutdown).await) });
    }
    Ok(RunningService {
        storage_addr,
        metrics: shared.metrics,
        publisher,
        shutdown,
        tasks,
    })
}
