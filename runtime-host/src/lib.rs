//! runtime-host: runs a Spin application (`spin.toml`) on wasmtime, with Spin's HTTP and Redis
//! triggers and the `fermyon:spin@2.0.0` host interfaces declared in `wit/`.

pub mod activity;
pub mod admission;
pub mod app;
pub mod app_source;
pub mod body_pace;
pub mod build_command;
pub mod client_address;
pub mod client_limits;
pub mod component_config;
pub mod host;
pub mod http_client;
pub mod http_trigger;
pub mod manifest;
pub mod metrics;
pub mod metrics_server;
pub mod outbound_hosts;
pub mod outbound_http;
pub mod redis_trigger;
pub mod registry;
pub mod retain;
pub mod routing;
pub mod runtime;
pub mod runtime_config;
pub mod stdio;
pub mod template;
pub mod variables;
pub mod wasi_rc;

pub use app::{RunningApp, UpOptions, start};
pub use client_limits::ClientLimits;
