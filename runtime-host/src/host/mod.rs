//! The per-instance host state and the Spin interfaces it implements.
//!
//! Every request or message gets a fresh `Store<HostState>`, so nothing a component does can leak
//! into the next one; what is shared (database pools, Redis connections, the metrics) is a
//! [`HostServices`] reached through an `Arc`.

pub mod mysql;
pub mod redis;
pub mod redis_reply_limit;
pub mod variables;

use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::component_config::ComponentConfig;
use crate::metrics::{Metrics, OutboundKind, Outcome};
use crate::outbound_http::OutboundHttp;

/// Generated from `wit/`: the imports our components may use and the Redis trigger export.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "vid2mp3:runtime-host/redis-trigger",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "fermyon:spin/mysql@2.0.0.connection": crate::host::mysql::MysqlConnection,
            "fermyon:spin/redis@2.0.0.connection": crate::host::redis::RedisConnection,
        },
    });
}

/// What every instance's host calls share: connection pools, the metrics, the result limit.
pub struct HostServices {
    pub mysql: mysql::MysqlPools,
    pub redis: redis::RedisConnections,
    pub metrics: Arc<Metrics>,
    /// Bytes of one MySQL or Redis result a component may receive (`--max-result-bytes`).
    pub max_result_bytes: usize,
}

impl HostServices {
    pub fn new(metrics: Arc<Metrics>, max_result_bytes: usize) -> Self {
        Self {
            mysql: mysql::MysqlPools::default(),
            redis: redis::RedisConnections::default(),
            metrics,
            max_result_bytes,
        }
    }
}

pub struct HostState {
    pub(crate) services: Arc<HostServices>,
    pub(crate) component: Arc<ComponentConfig>,
    /// Correlates this instance's log lines (stdout, outbound calls) with its request or message.
    pub(crate) request_id: Arc<str>,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutboundHttp,
    pub(crate) limits: StoreLimits,
}

impl HostState {
    /// Counts one MySQL or Redis call of this instance's component, and passes its result on.
    pub(crate) fn counted<T, E>(&self, kind: OutboundKind, result: Result<T, E>) -> Result<T, E> {
        self.count_outbound(kind, Outcome::of(&result));
        result
    }

    pub(crate) fn count_outbound(&self, kind: OutboundKind, outcome: Outcome) {
        self.services
            .metrics
            .outbound(&self.component.id, kind, outcome);
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
