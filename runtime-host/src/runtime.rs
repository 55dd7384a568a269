//! The loaded application: one wasmtime engine, every component compiled and pre-instantiated,
//! and the state shared across instances (database pools, Redis connections).
//!
//! Each request or message gets a fresh instance from its component's `InstancePre` with the
//! pooling allocator, so instantiation is a few microseconds and no state survives a request.
//! Time limits use epoch interruption: a ticker thread advances the epoch and each store's
//! callback yields to tokio between ticks and traps once the request has gone its limit without
//! progress ([`Activity`]); a request waiting on I/O is bounded the same way by tokio.
//!
//! The pooling allocator has a fixed number of slots and fails an instantiation that finds none
//! free. Every instantiation therefore first takes a permit of [`Runtime`]'s slot semaphore (as
//! many permits as slots) and gives it back once its store is gone: public requests are
//! admitted well below the pool's size ([`crate::admission`]), and the chained, relative and
//! Redis instances that work spawns wait for a slot instead of failing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::activity::{Activity, Cut};
use crate::component_config::ComponentConfig;
use crate::host::bindings::RedisTriggerPre;
use crate::host::{HostServices, HostState};
use crate::http_client::PooledHttpClient;
use crate::manifest::{FileMount, Manifest};
use crate::metrics::Metrics;
use crate::outbound_hosts::AllowedHosts;
use crate::outbound_http::{OutboundHttp, OutboundInterceptor};
use crate::stdio::ComponentOutput;
use crate::template::{Template, TemplateError};
use crate::variables::{ResolvedVariables, VariablesError};

/// Spin's limit on a host-buffered query result (`MAX_HOST_BUFFERED_BYTES` in spin-world).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 128 << 20;

/// Epoch tick; the granularity of request timeouts and of a busy component's yields to tokio.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Dirty bytes per linear memory (and per table) reset in place rather than unmapped when a
/// pooled slot is freed; a request that dirties more has the rest decommitted as usual, so this
/// bounds the resident memory a warm slot keeps.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Variables(#[from] VariablesError),
    #[error(
        "component {component:?}: {path} does not exist; build the wasm components first: scripts/build-components (or `runtime-host build`)"
    )]
    MissingWasm { component: String, path: PathBuf },
    #[error(
        "component {component:?}: cannot compile {path}; check that it is a wasm component and rebuild it (scripts/build-components)"
    )]
    Compile {
        component: String,
        path: PathBuf,
        #[source]
        source: WasmtimeCause,
    },
    #[error(
        "component {component:?} cannot be linked against runtime-host's host interfaces; it imports something runtime-host does not provide"
    )]
    Instantiate {
        component: String,
        #[source]
        source: WasmtimeCause,
    },
    #[error(
        "component {component:?} cannot be linked against runtime-host's host interfaces: {reason}"
    )]
    Link { component: String, reason: String },
    #[error("component {component:?} is used by a {trigger} trigger but does not export {export}")]
    MissingExport {
        component: String,
        trigger: &'static str,
        export: &'static str,
    },
    #[error("component {component:?}: its `files` cannot be copied for it to read")]
    Files {
        component: String,
        source: StageError,
    },
    #[error("wasmtime engine: cannot {what}; check the limits given to runtime-host")]
    Engine {
        what: &'static str,
        #[source]
        source: WasmtimeCause,
    },
    #[error("cannot register the metrics")]
    Metrics(#[from] prometheus::Error),
}

/// wasmtime's error type is not a `std::error::Error` (like anyhow's) but converts into a boxed
/// one that keeps its chain; that box is what the errors above carry as their source.
pub type WasmtimeCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A component's `files` entry that could not be copied into its staging directory.
#[derive(Debug, thiserror::Error)]
#[error("{} cannot be copied; check that it exists and is readable", .path.display())]
pub struct StageError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Why a component invocation produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No progress (no body bytes in or out) for the request time limit.
    #[error("no progress for {0:?} (the request time limit)")]
    Timeout(Duration),
    /// The client sent its request body too slowly ([`crate::body_pace`]).
    #[error("the client sent its request body too slowly")]
    ClientTooSlow,
    #[error("component trapped: {0}")]
    Trap(String),
    #[error("component returned an error: {0}")]
    Guest(String),
    #[error("component finished without sending a response")]
    NoResponse,
    #[error("component {0:?} has no HTTP handler")]
    NotHttp(String),
    #[error("component {0:?} has no Redis handler")]
    NotRedis(String),
    #[error("host error: {0}")]
    Host(String),
}

/// One [`Runtime::time_http_instantiation`]: what a request pays before and after its handler.
#[derive(Debug, Clone, Copy)]
pub struct InstantiationTiming {
    /// `Store` and host state (WASI context, limits, epoch deadline).
    pub store: Duration,
    /// `InstancePre::instantiate_async` from the pooling allocator.
    pub instantiate: Duration,
    /// Dropping the instance and store, which returns the slots to the pool.
    pub drop: Duration,
}

/// The trap raised by the epoch callback, recognised to answer 504 rather than 500.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

/// The trap raised by the epoch callback once a stalled client's grace is over (408).
#[derive(Debug, thiserror::Error)]
#[error("the client stalled")]
struct ClientStalled;

/// A store and the pool slot it was given; the slot's permit goes back only after the store
/// (and with it the instance's slot) is gone, so a waiting instantiation never finds the pool
/// full.
pub(crate) struct SlottedStore {
    pub(crate) store: Store<HostState>,
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub request_timeout: Duration,
    /// Bytes a component's linear memories may grow to, per instance.
    pub max_memory_bytes: usize,
    /// Concurrent instances the pooling allocator reserves slots for.
    pub max_instances: u32,
    /// `--env` pairs given to every component on top of its `environment`.
    pub extra_env: Vec<(String, String)>,
    /// `--variable` pairs.
    pub variables: Vec<(String, String)>,
    /// Bytes of one MySQL or Redis result the host reads for a component before refusing it
    /// with Spin's `query result exceeds limit of N bytes` (Spin's fixed limit: 128 MiB).
    pub max_result_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            max_memory_bytes: 256 << 20,
            max_instances: 200,
            extra_env: Vec::new(),
            variables: Vec::new(),
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
        }
    }
}

/// Which `wasi:http/incoming-handler` a component exports: WASI 0.2, or one of the release
/// candidates Spin still runs (spin-sdk 2.x).
#[derive(Clone)]
pub(crate) enum HttpHandler {
    Wasi0_2(ProxyPre<HostState>),
    Rc2023_11_10(crate::wasi_rc::v2023_11_10::ProxyPre<HostState>),
    Rc2023_10_18(crate::wasi_rc::v2023_10_18::ProxyPre<HostState>),
}

impl HttpHandler {
    /// The handler a component exports, if exactly one; two are an error, as on Spin.
    fn find(pre: &wasmtime::component::InstancePre<HostState>) -> Result<Option<Self>, String> {
        let found: Vec<Self> = [
            ProxyPre::new(pre.clone()).ok().map(Self::Wasi0_2),
            crate::wasi_rc::v2023_11_10::ProxyPre::new(pre.clone())
                .ok()
                .map(Self::Rc2023_11_10),
            crate::wasi_rc::v2023_10_18::ProxyPre::new(pre.clone())
                .ok()
                .map(Self::Rc2023_10_18),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[Self; 1]>::try_from(found) {
            Ok([one]) => Ok(Some(one)),
            Err(found) if found.is_empty() => Ok(None),
            // Spin's words.
            Err(_) => Err(
                "component exports multiple different handlers but it's expected to export only one"
                    .into(),
            ),
        }
    }

    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<HttpInstance> {
        Ok(match self {
            Self::Wasi0_2(pre) => HttpInstance::Wasi0_2(pre.instantiate_async(store).await?),
            Self::Rc2023_11_10(pre) => {
                HttpInstance::Rc2023_11_10(pre.instantiate_async(store).await?)
            }
            Self::Rc2023_10_18(pre) => {
                HttpInstance::Rc2023_10_18(pre.instantiate_async(store).await?)
            }
        })
    }
}

/// An instance of a component's HTTP handler; the HTTP trigger calls it.
pub(crate) enum HttpInstance {
    Wasi0_2(wasmtime_wasi_http::p2::bindings::Proxy),
    Rc2023_11_10(crate::wasi_rc::v2023_11_10::Proxy),
    Rc2023_10_18(crate::wasi_rc::v2023_10_18::Proxy),
}

/// A compiled component: its pre-instantiated exports and what it runs with.
pub struct LoadedComponent {
    pub config: Arc<ComponentConfig>,
    pub(crate) http: Option<HttpHandler>,
    pub(crate) redis: Option<RedisTriggerPre<HostState>>,
}

impl LoadedComponent {
    pub fn id(&self) -> &Arc<str> {
        &self.config.id
    }
}

pub struct Runtime {
    pub(crate) engine: Engine,
    components: HashMap<String, Arc<LoadedComponent>>,
    pub(crate) services: Arc<HostServices>,
    http_client: Arc<PooledHttpClient>,
    pub(crate) config: RuntimeConfig,
    pub app_name: String,
    pub app_version: Option<String>,
    staging: Option<PathBuf>,
    /// One permit per slot of the pooling allocator.
    slots: Arc<Semaphore>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(dir) = &self.staging {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn engine(config: &RuntimeConfig) -> Result<Engine, LoadError> {
    let mut wasm = wasmtime::Config::new();
    wasm.wasm_component_model(true);
    wasm.epoch_interruption(true);
    let n = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(config.max_memory_bytes);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // By default every freed slot is madvise'd away and the next instance page-faults its
        // memory and tables back in: measured at about a sixth of a hello request's host CPU.
        // With PAGEMAP_SCAN only the pages an instance dirtied are reset in place, so nothing is
        // unmapped and a reused slot takes no faults. Without it, keeping memory resident would
        // mean memset-ing the whole kept range on every request, so the default stays.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES);
    }
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&wasm).map_err(|e| LoadError::Engine {
        what: "be configured",
        source: e.into(),
    })?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            // Stops when the engine is gone, so tests that start many runtimes do not leak.
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| LoadError::Engine {
            what: "start the epoch thread",
            source: e.into(),
        })?;
    Ok(engine)
}

impl Runtime {
    /// Compiles and links every component. `env` looks up `SPIN_VARIABLE_*` overrides.
    pub fn load(
        manifest: &Manifest,
        config: RuntimeConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Arc<Self>, LoadError> {
        let variables = ResolvedVariables::resolve(manifest, &config.variables, env)?;
        let engine = engine(&config)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        let link_err = |e: wasmtime::Error| LoadError::Engine {
            what: "add the host interfaces to the linker",
            source: e.into(),
        };
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link_err)?;
        crate::wasi_rc::add_to_linker(&mut linker).map_err(link_err)?;
        crate::host::bindings::RedisTrigger::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(link_err)?;

        let http_components: Vec<&str> = manifest
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        let redis_components: Vec<&str> = manifest
            .redis_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        let ids: Vec<String> = manifest.components.keys().cloned().collect();
        let staging = std::env::temp_dir().join(format!(
            "runtime-host-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut used_staging = false;

        let mut components = HashMap::new();
        for (id, decl) in &manifest.components {
            if !decl.source.exists() {
                return Err(LoadError::MissingWasm {
                    component: id.clone(),
                    path: decl.source.clone(),
                });
            }
            let component =
                Component::from_file(&engine, &decl.source).map_err(|e| LoadError::Compile {
                    component: id.clone(),
                    path: decl.source.clone(),
                    source: e.into(),
                })?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Instantiate {
                    component: id.clone(),
                    source: e.into(),
                })?;
            let http = HttpHandler::find(&pre).map_err(|reason| LoadError::Link {
                component: id.clone(),
                reason,
            })?;
            let redis = RedisTriggerPre::new(pre).ok();
            if http.is_none() && http_components.contains(&id.as_str()) {
                return Err(LoadError::MissingExport {
                    component: id.clone(),
                    trigger: "http",
                    export: "wasi:http/incoming-handler (@0.2.x, @0.2.0-rc-2023-11-10 or @0.2.0-rc-2023-10-18)",
                });
            }
            if redis.is_none() && redis_components.contains(&id.as_str()) {
                return Err(LoadError::MissingExport {
                    component: id.clone(),
                    trigger: "redis",
                    export: "fermyon:spin/inbound-redis",
                });
            }
            let component_vars = variables.component(id);
            let allowed_hosts = resolve_allowed_hosts(&decl.allowed_outbound_hosts, &variables, &ids)
                .unwrap_or_else(|reason| {
                    tracing::warn!(
                        component = %id,
                        error = %reason,
                        "allowed_outbound_hosts cannot be rendered: the component's outbound connections will fail with this error, as on Spin"
                    );
                    AllowedHosts::unresolved(reason)
                });
            let files_root = if decl.files.is_empty() {
                None
            } else {
                used_staging = true;
                let root = staging.join(id);
                stage_files(&manifest.dir, &decl.files, &root).map_err(|source| {
                    LoadError::Files {
                        component: id.clone(),
                        source,
                    }
                })?;
                Some(root)
            };
            let mut environment: Vec<(String, String)> = decl
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            environment.extend(config.extra_env.iter().cloned());
            components.insert(
                id.clone(),
                Arc::new(LoadedComponent {
                    config: Arc::new(ComponentConfig {
                        id: Arc::from(id.as_str()),
                        variables: component_vars,
                        allowed_hosts,
                        environment,
                        files_root,
                    }),
                    http,
                    redis,
                }),
            );
        }
        let metrics = Metrics::new()?;
        Ok(Arc::new(Self {
            engine,
            components,
            services: Arc::new(HostServices::new(metrics.clone(), config.max_result_bytes)),
            http_client: Arc::new(PooledHttpClient::default()),
            app_name: manifest.application.name.clone(),
            app_version: manifest.application.version.clone(),
            staging: used_staging.then_some(staging),
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            metrics,
            config,
        }))
    }

    pub fn component(&self, id: &str) -> Option<&Arc<LoadedComponent>> {
        self.components.get(id)
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Waits for a free slot of the instance pool.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, InvokeError> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| InvokeError::Host("the instance pool is closed".into()))
    }

    /// Slots of the instance pool not in use now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// The Prometheus text exposition of this app's metrics ([`crate::metrics`]).
    pub fn render_metrics(&self) -> Result<String, prometheus::Error> {
        let capacity = self.config.max_instances as usize;
        self.metrics
            .render(capacity.saturating_sub(self.free_slots()), capacity)
    }

    /// A store for one instance of `component`, once a slot of the instance pool is free. Its
    /// time limit counts from the last progress on `activity`; `interceptor` serves the
    /// instance's requests to its own app.
    pub(crate) async fn instance_store(
        &self,
        component: &LoadedComponent,
        request_id: Arc<str>,
        activity: Activity,
        interceptor: Option<Arc<dyn OutboundInterceptor>>,
    ) -> Result<SlottedStore, InvokeError> {
        let slot = self.slot().await?;
        let store = self
            .new_store(component, request_id, activity, interceptor)
            .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
        Ok(SlottedStore { store, _slot: slot })
    }

    fn new_store(
        &self,
        component: &LoadedComponent,
        request_id: Arc<str>,
        activity: Activity,
        interceptor: Option<Arc<dyn OutboundInterceptor>>,
    ) -> wasmtime::Result<Store<HostState>> {
        let component = &component.config;
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(ComponentOutput::new(
            component.id.clone(),
            request_id.clone(),
            "stdout",
        ))
        .stderr(ComponentOutput::new(
            component.id.clone(),
            request_id.clone(),
            "stderr",
        ))
        .envs(&component.environment);
        if let Some(root) = &component.files_root {
            wasi.preopened_dir(root, "/", FsPerms::ReadOnly)?;
        }
        let state = HostState {
            services: self.services.clone(),
            component: component.clone(),
            request_id: request_id.clone(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHttp {
                component: component.clone(),
                request_id,
                client: self.http_client.clone(),
                metrics: self.metrics.clone(),
                interceptor,
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(self.config.max_memory_bytes)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let limit = self.config.request_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| match activity.must_stop(limit) {
            Some(Cut::Idle) => Err(wasmtime::Error::new(DeadlineExceeded)),
            Some(Cut::ClientStalled) => Err(wasmtime::Error::new(ClientStalled)),
            None => Ok(UpdateDeadline::Yield(1)),
        });
        Ok(store)
    }

    /// Builds a store and an HTTP instance of `component` exactly as a request does, calls
    /// nothing, and drops both, timing each step (for `examples/instantiation.rs`).
    pub async fn time_http_instantiation(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
    ) -> Result<InstantiationTiming, InvokeError> {
        let proxy = component
            .http
            .as_ref()
            .ok_or_else(|| InvokeError::NotHttp(component.id().to_string()))?;
        let slot = self.slot().await?;
        let started = Instant::now();
        let mut store = self
            .new_store(component, Arc::clone(component.id()), Activity::new(), None)
            .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
        let stored = Instant::now();
        // The instance is a handle into the store; dropping the store frees it.
        proxy
            .instantiate(&mut store)
            .await
            .map_err(|e| self.classify(e))?;
        let instantiated = Instant::now();
        drop(store);
        let dropped = Instant::now();
        drop(slot);
        Ok(InstantiationTiming {
            store: stored - started,
            instantiate: instantiated - stored,
            drop: dropped - instantiated,
        })
    }

    /// What a trap or host error of an instance means for its request or message.
    pub(crate) fn classify(&self, e: wasmtime::Error) -> InvokeError {
        if e.downcast_ref::<DeadlineExceeded>().is_some() {
            InvokeError::Timeout(self.config.request_timeout)
        } else if e.downcast_ref::<ClientStalled>().is_some() {
            InvokeError::ClientTooSlow
        } else {
            InvokeError::Trap(format!("{e:?}"))
        }
    }

    /// Releases shared connections; in-flight work must have finished.
    pub async fn close(&self) {
        self.services.mysql.close().await;
    }
}

/// Renders a component's `allowed_outbound_hosts` with the application's variables (not the
/// component's: Spin resolves these templates against `[variables]`) and parses them. The error
/// is Spin's text for the first entry that cannot be rendered or parsed, which Spin reports on
/// the component's first connection.
fn resolve_allowed_hosts(
    entries: &[String],
    variables: &ResolvedVariables,
    component_ids: &[String],
) -> Result<AllowedHosts, String> {
    let mut rendered = Vec::with_capacity(entries.len());
    for entry in entries {
        let template = Template::parse_unchecked(entry)
            .map_err(|e| format!("invalid variable template: {e}"))?;
        let text = template
            .render(|name| variables.app_value(name).map(str::to_owned))
            .map_err(|e| match e {
                TemplateError::Undefined(name) => format!("invalid variable name: {name}"),
                other => other.to_string(),
            })?;
        rendered.push(text);
    }
    AllowedHosts::parse(&rendered, component_ids).map_err(|e| e.to_string())
}

/// Copies a component's `files` under `root`, which is then mounted read-only at `/`.
fn stage_files(manifest_dir: &Path, files: &[FileMount], root: &Path) -> Result<(), StageError> {
    std::fs::create_dir_all(root).map_err(stage_error(root))?;
    for mount in files {
        let (source, destination) = match mount {
            FileMount::Path(p) => (manifest_dir.join(p), root.join(p)),
            FileMount::Mapping(m) => (
                manifest_dir.join(&m.source),
                root.join(m.destination.trim_start_matches('/')),
            ),
        };
        copy_tree(&source, &destination)?;
    }
    Ok(())
}

fn stage_error(path: &Path) -> impl FnOnce(std::io::Error) -> StageError {
    let path = path.to_owned();
    move |source| StageError { path, source }
}

fn copy_tree(source: &Path, destination: &Path) -> Result<(), StageError> {
    let meta = std::fs::metadata(source).map_err(stage_error(source))?;
    if meta.is_dir() {
        std::fs::create_dir_all(destination).map_err(stage_error(destination))?;
        let entries = std::fs::read_dir(source).map_err(stage_error(source))?;
        for entry in entries {
            let entry = entry.map_err(stage_error(source))?;
            copy_tree(&entry.path(), &destination.join(entry.file_name()))?;
        }
    } else {
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(stage_error(parent))?;
        }
        std::fs::copy(source, destination).map_err(stage_error(source))?;
    }
    Ok(())
}

/// Loading the test fixtures for the crate's unit tests (built by `scripts/build-components`).
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::{Runtime, RuntimeConfig};
    use crate::manifest::Manifest;

    /// The `.wasm` of a fixture crate (`fixture_hello`), where `scripts/build-components` puts it.
    pub(crate) fn fixture(crate_name: &str) -> PathBuf {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                // A test binary sits in <target>/<profile>/deps/.
                let exe = std::env::current_exe().ok()?;
                exe.ancestors().nth(3).map(Path::to_path_buf)
            })
            .unwrap_or_else(|| PathBuf::from("target"));
        let path = target
            .join("wasm32-wasip2/component")
            .join(format!("{crate_name}.wasm"));
        assert!(
            path.is_file(),
            "{} is missing: build the wasm components first: scripts/build-components",
            path.display()
        );
        path
    }

    pub(crate) fn manifest(text: &str) -> Manifest {
        let dir = std::env::temp_dir();
        Manifest::parse(text, &dir.join("spin.toml"), &dir).expect("the test manifest parses")
    }

    /// A runtime for `manifest` with a small instance pool.
    pub(crate) fn load(text: &str) -> Arc<Runtime> {
        let config = RuntimeConfig {
            max_instances: 4,
            ..RuntimeConfig::default()
        };
        Runtime::load(&manifest(text), config, |_| None).expect("the test app loads")
    }

    /// One `hello` component (an HTTP handler answering `hello`, or fetching `?to=<url>`) on
    /// `/...`, allowed to reach `allowed`.
    pub(crate) fn hello_app(allowed: &[&str]) -> Arc<Runtime> {
        load(&hello_manifest(allowed))
    }

    pub(crate) fn hello_manifest(allowed: &[&str]) -> String {
        let hosts: Vec<String> = allowed.iter().map(|h| format!("{h:?}")).collect();
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
             [component.hello]\nsource = {:?}\nallowed_outbound_hosts = [{}]\n",
            fixture("fixture_hello").display().to_string(),
            hosts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_wasm_is_refused_with_what_to_do() {
        let manifest = testing::manifest(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"a\"\n\
             [component.a]\nsource = \"/nonexistent/a.wasm\"\n",
        );
        let Err(e) = Runtime::load(&manifest, RuntimeConfig::default(), |_| None) else {
            panic!("a component without its .wasm loaded");
        };
        assert!(matches!(e, LoadError::MissingWasm { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/a.wasm") && text.contains("scripts/build-components"),
            "{text}"
        );
    }

    #[test]
    fn a_trigger_needs_its_export() {
        // redis-probe exports no HTTP handler.
        let manifest = testing::manifest(&format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"r\"\n\
             [component.r]\nsource = {:?}\n",
            testing::fixture("fixture_redis_probe")
                .display()
                .to_string()
        ));
        let Err(e) = Runtime::load(&manifest, RuntimeConfig::default(), |_| None) else {
            panic!("an HTTP trigger on a component without a handler loaded");
        };
        assert!(
            matches!(
                e,
                LoadError::MissingExport {
                    trigger: "http",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn an_instance_holds_a_pool_slot_until_its_store_is_gone() {
        let runtime = testing::hello_app(&[]);
        let hello = runtime
            .component("hello")
            .cloned()
            .expect("hello is loaded");
        assert!(hello.http.is_some() && hello.redis.is_none());
        assert_eq!(runtime.free_slots(), 4);
        let held = runtime
            .instance_store(&hello, Arc::from("r1"), Activity::new(), None)
            .await
            .expect("a store");
        assert_eq!(runtime.free_slots(), 3);
        drop(held);
        assert_eq!(runtime.free_slots(), 4);
        let timing = runtime
            .time_http_instantiation(&hello)
            .await
            .expect("hello instantiates");
        assert!(timing.instantiate > Duration::ZERO);
        assert_eq!(runtime.free_slots(), 4);
    }

    #[test]
    fn deadline_and_stall_traps_are_told_apart_from_other_traps() {
        let runtime = testing::hello_app(&[]);
        let limit = runtime.config().request_timeout;
        assert!(matches!(
            runtime.classify(wasmtime::Error::new(DeadlineExceeded)),
            InvokeError::Timeout(t) if t == limit
        ));
        assert!(matches!(
            runtime.classify(wasmtime::Error::new(ClientStalled)),
            InvokeError::ClientTooSlow
        ));
        assert!(matches!(
            runtime.classify(wasmtime::Error::msg("unreachable")),
            InvokeError::Trap(_)
        ));
    }

    #[test]
    fn allowed_hosts_render_application_variables_in_spins_words() {
        let manifest = testing::manifest(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [variables]\ndb_host = { default = \"db.internal\" }\n\
             [component.a]\nsource = \"a.wasm\"\n",
        );
        let variables =
            ResolvedVariables::resolve(&manifest, &[], |_| None).expect("variables resolve");
        let ids = vec!["a".to_owned()];
        let allowed =
            resolve_allowed_hosts(&["mysql://{{ db_host }}:3306".into()], &variables, &ids)
                .expect("renders");
        let target = |host: &str| crate::outbound_hosts::OutboundTarget {
            scheme: "mysql".into(),
            host: host.into(),
            port: Some(3306),
        };
        assert!(allowed.allows(&target("db.internal")));
        assert!(!allowed.allows(&target("other.internal")));
        let e = resolve_allowed_hosts(&["mysql://{{ nope }}".into()], &variables, &ids)
            .expect_err("an undeclared variable");
        assert_eq!(e, "invalid variable name: nope");
    }

    #[test]
    fn files_are_staged_as_mounted() {
        let base = std::env::temp_dir().join(format!("rh-stage-{}", uuid::Uuid::new_v4()));
        let source = base.join("app");
        std::fs::create_dir_all(source.join("static/css")).expect("dirs");
        std::fs::write(source.join("static/css/a.css"), "a").expect("file");
        std::fs::write(source.join("config.txt"), "c").expect("file");
        let root = base.join("root");
        let mounts = [
            FileMount::Path("config.txt".into()),
            FileMount::Mapping(crate::manifest::FileMapping {
                source: "static".into(),
                destination: "/assets".into(),
            }),
        ];
        stage_files(&source, &mounts, &root).expect("staged");
        assert_eq!(
            std::fs::read_to_string(root.join("config.txt"))
                .ok()
                .as_deref(),
            Some("c")
        );
        assert_eq!(
            std::fs::read_to_string(root.join("assets/css/a.css"))
                .ok()
                .as_deref(),
            Some("a")
        );
        let missing = stage_files(&source, &[FileMount::Path("nope".into())], &root)
            .expect_err("a missing source");
        assert!(missing.path.ends_with("nope"), "{missing}");
        assert!(missing.to_string().contains("nope"), "{missing}");
        assert_eq!(
            missing.source.kind(),
            std::io::ErrorKind::NotFound,
            "the io error is kept as the source"
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
