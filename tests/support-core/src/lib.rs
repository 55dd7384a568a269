//! Isolated resources on the shared backing services, so tests run in parallel without seeing
//! each other: each test gets its own MySQL database, RabbitMQ vhost, Redis key prefix, Mongo
//! database and Mailpit address, and each is removed when its handle is dropped (also when the
//! test panics). The services under test log in as accounts of the test's own with their
//! production rights: a MySQL account per database ([`MySqlDatabase::service_url`]) and a Redis
//! user per service confined to the test's prefix ([`RedisNamespace::service_users`]); the test
//! itself uses the tests' MySQL account and Redis's admin ([`ServiceUrls`]).
//!
//! The services themselves are started by `scripts/services start` (which `scripts/test` runs).
//! When one is not answering, creating its resource fails with [`Unavailable`], which names the
//! service, where it was looked for, and how to start it.
//!
//! This crate does not depend on runtime-host, so runtime-host's own tests use it;
//! `vid2mp3-test-support` re-exports all of it and adds the platform run under runtime-host.

mod cleanup;
mod config;
mod mailpit;
mod mongo;
mod mysql;
mod private_server;
mod rabbitmq;
mod ready;
mod redis_namespace;
mod tcp_proxy;
pub mod test_media;
mod watchdog;
mod workspace;

pub use config::ServiceUrls;
pub use mailpit::{MailMessage, Mailbox};
pub use mongo::MongoDatabase;
pub use mysql::{MySqlDatabase, SERVICE_PRIVILEGES};
pub use private_server::PrivateServer;
pub use rabbitmq::{RabbitVhost, rabbit_vhost_exists};
pub use ready::{eventually, http_ok, listening};
pub use redis_namespace::{REDIS_USERS, RedisNamespace, RedisUsers};
pub use tcp_proxy::TcpProxy;
pub use watchdog::Watchdog;
pub use workspace::{target_dir, tools_venv, wasm_component, workspace_root};

/// A backing service did not answer; the message says which and what to do.
#[derive(Debug, thiserror::Error)]
#[error(
    "{service} is not answering at {address} ({reason}); start it with `scripts/services start {script_name}`"
)]
pub struct Unavailable {
    pub service: &'static str,
    pub script_name: &'static str,
    pub address: String,
    pub reason: String,
}

/// A name no other test run uses: tests in parallel and runs on one machine never collide.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &id[..16])
}
