//! The public entry point of vid2mp3: the `/api/v1` JSON API, the course's three routes
//! (`/login`, `/upload`, `/download`), health and readiness, and the web page at `/` ([`web`]).
//!
//! Rooms: [`routes`] (which handler), [`api`] (handling a request), [`token_check`] (auth's tokens,
//! verified locally), [`auth_client`] (sign-up and log-in through service chaining),
//! [`jobs_store`] (who owns which job, MySQL), [`storage_client`] (the converter's storage API),
//! [`upload`] (checked, streamed uploads), [`job_view`] (what a job looks like to clients),
//! [`account_deletion`] (an account deleting itself) and [`account_deletions`] (whose tokens are
//! refused), [`webhook`] (the account's webhook, kept by the converter), [`redis_ping`]
//! (readiness), [`http_io`] (requests and answers over WASI HTTP; outgoing calls and body reads
//! from `vid2mp3-wasi-http`), [`config`] (Spin variables).

mod account_deletion;
mod account_deletions;
pub mod api;
mod auth_client;
mod basic_auth;
mod config;
mod errors;
mod http_io;
mod job_view;
mod jobs_store;
mod media_sniff;
mod redis_ping;
mod routes;
mod storage_client;
pub mod token_check;
mod tus;
mod upload;
mod web;
mod webhook;

use errors::ApiError;

/// The configuration from Spin variables; a mistake is logged for the operator and answered as
/// a 500 without details.
pub fn load_config() -> Result<config::GatewayConfig, ApiError> {
    config::load(|name| spin_sdk::variables::get(name).map_err(|e| e.to_string())).map_err(|e| {
        eprintln!("gateway: configuration error: {e}");
        ApiError::new(
            vid2mp3_contracts::ErrorCode::Internal,
            "the gateway is misconfigured; the operator has to fix its settings",
        )
    })
}

// Exported only in the Wasm build: a native cdylib cannot link WIT export names, and native
// builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    api::handle(req, out, load_config);
}
