//! runtime-host: runs a Spin application (`spin.toml`) on wasmtime, with Spin's HTTP and Redis
//! triggers and the `fermyon:spin@2.0.0` host interfaces declared in `wit/`.

pub mod activity;
pub mod app;
pub mod build_command;
pub mod host;
pub mod http_client;
pub mod http_trigger;
pub mod manifest;
pub mod outbound_hosts;
pub mod outbound_http;
pub mod redis_trigger;
pub mod routing;
pub mod runtime;
pub mod stdio;
pub mod variables;
pub mod wasi_rc;

pub use app::{RunningApp, UpOptions, start};
