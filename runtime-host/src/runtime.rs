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
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpView};

use crate::activity::{Activity, Cut};
use crate::admission::RequestTicket;
use crate::host::HostState;
use crate::host::bindings::RedisTriggerPre;
use crate::host::mysql::MysqlPools;
use crate::host::redis::RedisConnections;
use crate::http_client::PooledHttpClient;
use crate::http_trigger::HttpTrigger;
use crate::manifest::{FileMount, Manifest};
use crate::metrics::{Cause, Invocation, Metrics, Trigger, status_class};
use crate::outbound_hosts::AllowedHosts;
use crate::outbound_http::OutboundHttp;
use crate::routing::RouteMatch;
use crate::stdio::ComponentOutput;
use crate::variables::{ComponentVariables, ResolvedVariables, Template, VariablesError};

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
    #[error("component {component:?}: cannot compile {path}: {reason}")]
    Compile {
        component: String,
        path: PathBuf,
        reason: String,
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
    #[error("component {component:?}: files: {reason}")]
    Files { component: String, reason: String },
    #[error("wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot register the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
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
struct SlottedStore {
    store: Store<HostState>,
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

    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<HttpInstance> {
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

enum HttpInstance {
    Wasi0_2(wasmtime_wasi_http::p2::bindings::Proxy),
    Rc2023_11_10(crate::wasi_rc::v2023_11_10::Proxy),
    Rc2023_10_18(crate::wasi_rc::v2023_10_18::Proxy),
}

impl HttpInstance {
    /// The three handlers take the same host objects: only the interface name differs.
    async fn handle(
        &self,
        store: &mut Store<HostState>,
        request: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
        response: wasmtime::component::Resource<
            wasmtime_wasi_http::p2::types::HostResponseOutparam,
        >,
    ) -> wasmtime::Result<()> {
        match self {
            Self::Wasi0_2(proxy) => {
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(store, request, response)
                    .await
            }
            Self::Rc2023_11_10(proxy) => {
                proxy
                    .wasi_http0_2_0_rc_2023_11_10_incoming_handler()
                    .call_handle(store, request, response)
                    .await
            }
            Self::Rc2023_10_18(proxy) => {
                proxy
                    .wasi_http0_2_0_rc_2023_10_18_incoming_handler()
                    .call_handle(store, request, response)
                    .await
            }
        }
    }
}

pub struct LoadedComponent {
    pub id: Arc<str>,
    pub(crate) http: Option<HttpHandler>,
    pub(crate) redis: Option<RedisTriggerPre<HostState>>,
    pub variables: ComponentVariables,
    pub allowed_hosts: AllowedHosts,
    environment: Vec<(String, String)>,
    /// Host directory preopened read-only at `/`, holding the component's `files`.
    files_root: Option<PathBuf>,
}

#[derive(Default)]
pub struct Services {
    pub mysql: MysqlPools,
    pub redis: RedisConnections,
    pub http: PooledHttpClient,
}

pub struct Runtime {
    pub(crate) engine: Engine,
    components: HashMap<String, Arc<LoadedComponent>>,
    pub(crate) services: Services,
    pub(crate) config: RuntimeConfig,
    pub app_name: String,
    pub app_version: Option<String>,
    staging: Option<PathBuf>,
    /// Where relative outbound URLs go; weak because the trigger owns the runtime.
    http_trigger: OnceLock<Weak<HttpTrigger>>,
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
    let engine = Engine::new(&wasm).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
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
        .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
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
        let link_err = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
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
                    reason: format!("{e:#}"),
                })?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Link {
                    component: id.clone(),
                    reason: format!("{e:#}"),
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
                stage_files(&manifest.dir, &decl.files, &root).map_err(|reason| {
                    LoadError::Files {
                        component: id.clone(),
                        reason,
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
                    id: Arc::from(id.as_str()),
                    http,
                    redis,
                    variables: component_vars,
                    allowed_hosts,
                    environment,
                    files_root,
                }),
            );
        }
        Ok(Arc::new(Self {
            engine,
            components,
            services: Services::default(),
            app_name: manifest.application.name.clone(),
            app_version: manifest.application.version.clone(),
            staging: used_staging.then_some(staging),
            http_trigger: OnceLock::new(),
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            metrics: Metrics::new()?,
            config,
        }))
    }

    pub fn component(&self, id: &str) -> Option<&Arc<LoadedComponent>> {
        self.components.get(id)
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Makes `trigger` the target of components' relative outbound URLs (the first one set wins).
    pub fn set_http_trigger(&self, trigger: &Arc<HttpTrigger>) {
        let _ = self.http_trigger.set(Arc::downgrade(trigger));
    }

    pub(crate) fn http_trigger(&self) -> Option<Arc<HttpTrigger>> {
        self.http_trigger.get().and_then(Weak::upgrade)
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

    fn new_store(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
        request_id: Arc<str>,
        activity: Activity,
    ) -> wasmtime::Result<Store<HostState>> {
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
            runtime: self.clone(),
            component: component.clone(),
            request_id: request_id.clone(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHttp {
                runtime: self.clone(),
                component: component.clone(),
                request_id,
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
            .ok_or_else(|| InvokeError::NotHttp(component.id.to_string()))?;
        let slot = self.slot().await?;
        let started = Instant::now();
        let mut store = self
            .new_store(component, Arc::clone(&component.id), Activity::new())
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

    fn classify(&self, e: wasmtime::Error) -> InvokeError {
        if e.downcast_ref::<DeadlineExceeded>().is_some() {
            InvokeError::Timeout(self.config.request_timeout)
        } else if e.downcast_ref::<ClientStalled>().is_some() {
            InvokeError::ClientTooSlow
        } else {
            InvokeError::Trap(format!("{e:?}"))
        }
    }

    /// Runs `component`'s HTTP handler for `request`, whose URI must be absolute. The response
    /// is returned as soon as the component sets it; its body streams while the instance runs on.
    /// The request time limit counts from the last body frame read or written on `activity`;
    /// a client that stalls on it ends the request with [`InvokeError::ClientTooSlow`]. `ticket`
    /// (a public request's admission) is held until the instance has ended.
    #[allow(clippy::too_many_arguments)]
    pub async fn handle_http<B>(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
        mut request: http::Request<B>,
        route: &RouteMatch,
        client: SocketAddr,
        request_id: Arc<str>,
        activity: Activity,
        ticket: Option<RequestTicket>,
    ) -> Result<http::Response<HyperOutgoingBody>, InvokeError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let proxy = component
            .http
            .clone()
            .ok_or_else(|| InvokeError::NotHttp(component.id.to_string()))?;
        let full_url = request.uri().to_string();
        for (name, value) in route.headers(&full_url, client) {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| InvokeError::Host(e.to_string()))?;
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    request.headers_mut().insert(name, value);
                }
                Err(_) => {
                    tracing::debug!(header = %name, "skipping a spin header that is not a valid header value")
                }
            }
        }
        let scheme = match request.uri().scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let request = request.map(|body| activity.watch(body));
        let slot = self.slot().await?;
        let store = self
            .new_store(component, request_id.clone(), activity.clone())
            .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
        let mut held = SlottedStore { store, _slot: slot };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let incoming = held
            .store
            .data_mut()
            .http()
            .new_incoming_request(scheme, request)
            .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
        let outparam = held
            .store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
        let timeout = self.config.request_timeout;
        let this = self.clone();
        let task_activity = activity.clone();
        let in_flight = self.metrics.in_flight(&component.id);
        // The instance runs inside the caller's task until it has set its response. Only if it
        // is still running then (a body still streaming) does it move to a task of its own, so
        // a small response costs no spawn and no wake-up of another thread.
        let mut instance = Box::pin(async move {
            let mut held = held;
            let run = async {
                let instance = proxy.instantiate(&mut held.store).await?;
                instance.handle(&mut held.store, incoming, outparam).await
            };
            let outcome = match task_activity.bound(timeout, run).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(this.classify(e)),
                Err(Cut::Idle) => Err(InvokeError::Timeout(timeout)),
                Err(Cut::ClientStalled) => Err(InvokeError::ClientTooSlow),
            };
            // The store first (its slot back to the pool), then the permit, then the admission.
            drop(held);
            drop(ticket);
            drop(in_flight);
            outcome
        });
        let finish = |instance| run_to_end(instance, component.id.clone(), request_id.clone());
        let mut rx = rx;
        let set = tokio::select! {
            biased;
            set = &mut rx => set,
            finished = &mut instance => {
                // It may have set its response and returned in the same poll.
                return match rx.try_recv() {
                    _ if activity.is_stalled() => Err(InvokeError::ClientTooSlow),
                    Ok(Ok(response)) => {
                        if let Err(e) = finished {
                            tracing::error!(component = %component.id, request_id = %request_id, error = %e, "component failed after sending its response");
                        }
                        Ok(response.map(|body| activity.watch(body).boxed_unsync()))
                    }
                    Ok(Err(code)) => Err(InvokeError::Guest(format!("{code:?}"))),
                    Err(_) => Err(finished.err().unwrap_or(InvokeError::NoResponse)),
                };
            }
            // The client stalled before an answer: whatever the component answers to its
            // failed read, the client gets 408. The instance may clean up until it is cut.
            () = activity.stalled() => {
                tokio::spawn(finish(instance));
                return Err(InvokeError::ClientTooSlow);
            }
        };
        match set {
            Ok(Ok(_)) if activity.is_stalled() => {
                tokio::spawn(finish(instance));
                Err(InvokeError::ClientTooSlow)
            }
            Ok(Ok(response)) => {
                let response = response.map(|body| activity.watch(body).boxed_unsync());
                let mut finish = Box::pin(finish(instance));
                // Most handlers return right after setting a small response: no task needed.
                if futures::FutureExt::now_or_never(&mut finish).is_none() {
                    tokio::spawn(finish);
                }
                Ok(response)
            }
            Ok(Err(code)) => {
                // The handler still runs to its end: it may have work left after answering.
                tokio::spawn(finish(instance));
                Err(InvokeError::Guest(format!("{code:?}")))
            }
            // The outparam was dropped unset: the handler has returned or is about to.
            Err(_) => match instance.await {
                Ok(()) => Err(InvokeError::NoResponse),
                Err(e) => Err(e),
            },
        }
    }

    /// Service chaining: `http://<id>.spin.internal/...` handled by component `<id>` in-process,
    /// with the catch-all route match Spin synthesises for it.
    pub(crate) async fn handle_chained(
        self: &Arc<Self>,
        id: &str,
        mut request: http::Request<WasiBody>,
        parent_request_id: Arc<str>,
    ) -> Result<http::Response<WasiBody>, wasmtime_wasi_http::Error> {
        let Some(component) = self.components.get(id).cloned() else {
            return Err(wasmtime_wasi_http::Error::DestinationNotFound);
        };
        let request_id: Arc<str> = Arc::from(format!("{parent_request_id}/{id}"));
        // The chained component must see its own request, not the caller's Host.
        request.headers_mut().remove(http::header::HOST);
        let path = request.uri().path().to_owned();
        let route = RouteMatch::synthetic(id, &path);
        let client = crate::http_trigger::IN_PROCESS_CLIENT;
        let started = Instant::now();
        let method = request.method().clone();
        let result = self
            .handle_http(
                &component,
                request,
                &route,
                client,
                request_id.clone(),
                Activity::new(),
                None,
            )
            .await;
        let (status, cause) = match &result {
            Ok(response) => (status_class(response.status()), Cause::Component),
            Err(InvokeError::Timeout(_)) => ("5xx", Cause::Timeout),
            Err(_) => ("5xx", Cause::Failed),
        };
        self.metrics.record(&Invocation {
            trigger: Trigger::Chained,
            route: &route.raw_route,
            component: id,
            status,
            cause,
            elapsed: started.elapsed(),
        });
        match result {
            Ok(response) => {
                tracing::info!(
                    request_id = %request_id,
                    component = %id,
                    method = %method,
                    path = %path,
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "chained request"
                );
                Ok(response)
            }
            Err(e) => {
                tracing::error!(request_id = %request_id, component = %id, path = %path, error = %e, "chained request failed");
                Err(wasmtime_wasi_http::Error::InternalError(Some(
                    e.to_string(),
                )))
            }
        }
    }

    /// Runs `component`'s Redis handler for one message.
    pub async fn handle_redis_message(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
        payload: Vec<u8>,
        request_id: Arc<str>,
    ) -> Result<(), InvokeError> {
        let pre = component
            .redis
            .clone()
            .ok_or_else(|| InvokeError::NotRedis(component.id.to_string()))?;
        // A message has no body to stream, so its limit counts from the start.
        let activity = Activity::new();
        let slot = self.slot().await?;
        let _in_flight = self.metrics.in_flight(&component.id);
        let store = self
            .new_store(component, request_id, activity.clone())
            .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
        let mut held = SlottedStore { store, _slot: slot };
        let timeout = self.config.request_timeout;
        let run = async {
            let instance = pre.instantiate_async(&mut held.store).await?;
            instance
                .fermyon_spin_inbound_redis()
                .call_handle_message(&mut held.store, &payload)
                .await
        };
        match activity.bound(timeout, run).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(InvokeError::Guest(format!("{e:?}"))),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(Cut::Idle) => Err(InvokeError::Timeout(timeout)),
            // A message has no client to stall.
            Err(Cut::ClientStalled) => Err(InvokeError::ClientTooSlow),
        }
    }

    /// Releases shared connections; in-flight work must have finished.
    pub async fn close(&self) {
        self.services.mysql.close().await;
    }
}

/// The rest of an instance's run once its answer is decided: only logged.
async fn run_to_end(
    instance: impl std::future::Future<Output = Result<(), InvokeError>>,
    component: Arc<str>,
    request_id: Arc<str>,
) {
    if let Err(e) = instance.await {
        tracing::error!(component = %component, request_id = %request_id, error = %e, "component failed after sending its response");
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
                VariablesError::Undefined(name) => format!("invalid variable name: {name}"),
                other => other.to_string(),
            })?;
        rendered.push(text);
    }
    AllowedHosts::parse(&rendered, component_ids).map_err(|e| e.to_string())
}

/// Copies a component's `files` under `root`, which is then mounted read-only at `/`.
fn stage_files(manifest_dir: &Path, files: &[FileMount], root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
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

fn copy_tree(source: &Path, destination: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
    if meta.is_dir() {
        std::fs::create_dir_all(destination)
            .map_err(|e| format!("{}: {e}", destination.display()))?;
        let entries =
            std::fs::read_dir(source).map_err(|e| format!("{}: {e}", source.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", source.display()))?;
            copy_tree(&entry.path(), &destination.join(entry.file_name()))?;
        }
    } else {
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(source, destination).map_err(|e| format!("{}: {e}", source.display()))?;
    }
    Ok(())
}
