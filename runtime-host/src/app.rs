//! `up`: load the manifest, start the triggers, run until told to stop.
//!
//! Usable in-process (tests) through [`start`] and [`RunningApp::shutdown`], and by the binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::http_trigger::HttpTrigger;
use crate::manifest::Manifest;
use crate::routing::Router;
use crate::runtime::{Runtime, RuntimeConfig};

/// Looks up an environment variable (for `SPIN_VARIABLE_*`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct UpOptions {
    pub manifest: PathBuf,
    pub listen: SocketAddr,
    pub env: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub request_timeout: Duration,
    pub max_request_body_bytes: u64,
    /// Where `SPIN_VARIABLE_*` come from; the process environment unless a test says otherwise.
    pub variable_env: EnvLookup,
}

impl UpOptions {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            env: Vec::new(),
            variables: Vec::new(),
            request_timeout: Duration::from_secs(60),
            max_request_body_bytes: 10 << 30,
            variable_env: Arc::new(|k| std::env::var(k).ok()),
        }
    }
}

pub struct RunningApp {
    /// The bound address (useful with port 0); `None` when the app has no HTTP routes.
    pub http_addr: Option<SocketAddr>,
    pub runtime: Arc<Runtime>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub async fn start(options: UpOptions) -> anyhow::Result<RunningApp> {
    let manifest = Manifest::load(&options.manifest)?;
    let config = RuntimeConfig {
        request_timeout: options.request_timeout,
        extra_env: options.env.clone(),
        variables: options.variables.clone(),
        ..RuntimeConfig::default()
    };
    let variable_env = options.variable_env.clone();
    let runtime = Runtime::load(&manifest, config, move |k| variable_env(k))?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let public: Vec<(&str, &crate::routing::RouteSpec)> = manifest
        .http_triggers
        .iter()
        .filter_map(|t| t.route.as_ref().map(|r| (t.component.as_str(), r)))
        .collect();
    let mut http_addr = None;
    if !manifest.http_triggers.is_empty() {
        let (router, duplicates) = Router::build(public)?;
        for route in duplicates {
            tracing::warn!(route = %route, "route declared more than once; the last declaration serves it");
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        http_addr = Some(addr);
        let trigger = Arc::new(HttpTrigger::new(
            runtime.clone(),
            router,
            options.max_request_body_bytes,
        ));
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            if let Err(e) = trigger.serve(listener, shutdown).await {
                tracing::error!(error = %e, "http trigger stopped");
            }
        }));
        tracing::info!(address = %addr, url = %format!("http://{addr}"), "serving");
    }
    tasks.extend(crate::redis_trigger::spawn(
        runtime.clone(),
        &manifest.redis_triggers,
        stop_rx,
    ));
    Ok(RunningApp {
        http_addr,
        runtime,
        stop,
        tasks,
    })
}

impl RunningApp {
    /// Stops accepting work, waits for in-flight requests, then closes shared connections.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.runtime.close().await;
    }
}
