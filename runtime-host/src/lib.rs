//! runtime-host: runs a Spin application (`spin.toml`) on wasmtime, with Spin's HTTP and Redis
//! triggers and the `fermyon:spin@2.0.0` host interfaces declared in `wit/`.

mod activity;
mod admission;
mod app;
pub mod app_source;
mod body_pace;
pub mod build_command;
mod client_address;
mod client_limits;
mod component_config;
mod host;
mod http_client;
mod http_trigger;
pub mod manifest;
mod metrics;
mod metrics_server;
mod outbound_hosts;
mod outbound_http;
mod redis_trigger;
pub mod registry;
mod retain;
mod routing;
pub mod runtime;
mod runtime_config;
mod stdio;
mod template;
mod variables;
mod wasi_rc;

pub use app::{RunningApp, UpOptions, start};
pub use client_limits::ClientLimits;
