//! `up`: load the manifest, start the triggers, run until told to stop.
//!
//! Usable in-process (tests) through [`start`] and [`RunningApp::shutdown`], and by the binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::client_limits::ClientLimits;
use crate::http_trigger::{HttpTrigger, InProcess};
use crate::manifest::{Manifest, RedisTrigger};
use crate::outbound_http::OutboundInterceptor;
use crate::routing::Router;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::runtime_config::RuntimeConfigFile;

/// Looks up an environment variable (for `SPIN_VARIABLE_*`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct UpOptions {
    pub manifest: PathBuf,
    pub listen: SocketAddr,
    pub env: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub request_timeout: Duration,
    pub max_request_body_bytes: u64,
    /// What clients may hold: slow headers and bodies, connections, requests.
    pub client_limits: ClientLimits,
    /// Largest MySQL or Redis result a component may receive (Spin's 128 MiB by default).
    pub max_result_bytes: usize,
    /// Where `SPIN_VARIABLE_*` come from; the process environment unless a test says otherwise.
    pub variable_env: EnvLookup,
    /// `--component-id`: run only these components and their triggers (all when empty).
    pub components: Vec<String>,
    /// `--runtime-config-file`: Spin's runtime config TOML ([`crate::runtime_config`]).
    pub runtime_config: Option<PathBuf>,
    /// `--metrics-listen`: where Prometheus metrics are served ([`crate::metrics_server`]);
    /// nowhere when `None`.
    pub metrics_listen: Option<SocketAddr>,
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
            client_limits: ClientLimits::default(),
            max_result_bytes: crate::runtime::DEFAULT_MAX_RESULT_BYTES,
            variable_env: Arc::new(|k| std::env::var(k).ok()),
            components: Vec::new(),
            runtime_config: None,
            metrics_listen: None,
        }
    }
}

pub struct RunningApp {
    /// The bound address (useful with port 0); `None` when the app has no HTTP routes.
    pub http_addr: Option<SocketAddr>,
    /// The metrics listener's bound address, when `--metrics-listen` asked for one.
    pub metrics_addr: Option<SocketAddr>,
    pub runtime: Arc<Runtime>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub async fn start(options: UpOptions) -> anyhow::Result<RunningApp> {
    let manifest = Manifest::load(&options.manifest)?;
    let manifest = crate::retain::retain_components(manifest, &options.components)?;
    let runtime_config = match &options.runtime_config {
        Some(path) => RuntimeConfigFile::load(path)?,
        None => RuntimeConfigFile::default(),
    };
    for key in &runtime_config.ignored {
        tracing::warn!(
            key = %key,
            "runtime config: [{key}] has no effect on runtime-host (it has no key-value stores, SQLite or LLMs, and logs to stderr); ignored"
        );
    }
    let admission = options.client_limits.admission()?;
    let mut config = RuntimeConfig {
        request_timeout: options.request_timeout,
        max_instances: options.client_limits.max_instances,
        extra_env: options.env.clone(),
        variables: options.variables.clone(),
        max_result_bytes: options.max_result_bytes,
        ..RuntimeConfig::default()
    };
    if let Some(bytes) = runtime_config.max_instance_memory {
        config.max_memory_bytes = bytes;
    }
    let variable_env = with_providers(options.variable_env.clone(), runtime_config);
    let options = UpOptions {
        variable_env,
        ..options
    };
    let variable_env = options.variable_env.clone();
    let redis_triggers =
        render_redis_addresses(&manifest, &options.variables, |k| variable_env(k))?;
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
    // What serves the app's own requests of a Redis-triggered instance: the HTTP trigger's
    // interceptor, or one that only chains when the app serves no HTTP.
    let mut interceptor: Arc<dyn OutboundInterceptor> = InProcess::new(runtime.clone(), None);
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
        let trigger = HttpTrigger::new(
            runtime.clone(),
            router,
            options.max_request_body_bytes,
            &options.client_limits,
            admission,
            addr,
        )?;
        interceptor = trigger.interceptor();
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
    let mut metrics_addr = None;
    if let Some(listen) = options.metrics_listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen for metrics on {listen} (--metrics-listen)"))?;
        let addr = listener.local_addr()?;
        metrics_addr = Some(addr);
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tasks.push(tokio::spawn(crate::metrics_server::serve(
            runtime.clone(),
            listener,
            shutdown,
        )));
        tracing::info!(address = %addr, url = %format!("http://{addr}/metrics"), "serving metrics");
    }
    tasks.extend(crate::redis_trigger::spawn(
        runtime.clone(),
        interceptor,
        &redis_triggers,
        stop_rx,
    ));
    Ok(RunningApp {
        http_addr,
        metrics_addr,
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

/// `SPIN_VARIABLE_<NAME>` lookups answered first by the runtime config's variable providers, then
/// by the environment: Spin asks `--variable`, then the configured providers, then its default
/// environment provider (which is always there), then the manifest's default.
fn with_providers(env: EnvLookup, config: RuntimeConfigFile) -> EnvLookup {
    if config.variables_providers.is_empty() {
        return env;
    }
    Arc::new(move |key| {
        key.strip_prefix("SPIN_VARIABLE_")
            .and_then(|name| config.variable(&name.to_ascii_lowercase(), &|k| env(k)))
            .or_else(|| env(key))
    })
}

/// Redis trigger addresses may name application variables (`address = "{{ redis_url }}"`), as
/// Spin allows, so one manifest serves a laptop and a cluster.
fn render_redis_addresses(
    manifest: &Manifest,
    overrides: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<RedisTrigger>> {
    let variables = crate::variables::ResolvedVariables::resolve(manifest, overrides, env)?;
    manifest
        .redis_triggers
        .iter()
        .map(|t| {
            let template = crate::template::Template::parse(&t.address).map_err(|e| {
                anyhow::anyhow!("the redis trigger address of {:?}: {e}", t.component)
            })?;
            let address = template
                .render(|name| variables.app_value(name).map(str::to_owned))
                .map_err(|e| {
                    anyhow::anyhow!("the redis trigger address of {:?}: {e}", t.component)
                })?;
            Ok(RedisTrigger {
                address,
                ..t.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest whose app-level Redis address is `{{ redis_url }}`, plus `extra_triggers`.
    fn manifest_with(extra_triggers: &str) -> Result<Manifest, crate::manifest::ManifestError> {
        let text = format!(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[application.trigger.redis]
address = "{{{{ redis_url }}}}"
[variables]
redis_url = {{ default = "redis://127.0.0.1:6379" }}
[[trigger.redis]]
channel = "c"
component = "a"
{extra_triggers}
[component.a]
source = "a.wasm"
"#
        );
        Manifest::parse(
            &text,
            std::path::Path::new("/tmp/spin.toml"),
            std::path::Path::new("/tmp"),
        )
    }

    #[test]
    fn redis_trigger_addresses_render_application_variables() {
        // `other_host` is not declared: the manifest must be refused at load, or fail rendering.
        match manifest_with(
            "[[trigger.redis]]\nchannel = \"d\"\ncomponent = \"a\"\naddress = \"redis://{{ other_host }}:6380\"",
        ) {
            Ok(m) => {
                let e = render_redis_addresses(&m, &[], |_| None).unwrap_err();
                assert!(e.to_string().contains("other_host"), "{e}");
            }
            Err(e) => assert!(e.to_string().contains("other_host"), "{e}"),
        }
        let manifest = manifest_with("").unwrap();
        let rendered = render_redis_addresses(&manifest, &[], |_| None).unwrap();
        assert_eq!(rendered[0].address, "redis://127.0.0.1:6379");
        let overridden = render_redis_addresses(
            &manifest,
            &[("redis_url".into(), "redis://redis.data:6379".into())],
            |_| None,
        )
        .unwrap();
        assert_eq!(overridden[0].address, "redis://redis.data:6379");
    }
}
