//! The public entry point of vid2mp3: the `/api/v1` JSON API, the course's three routes
//! (`/login`, `/upload`, `/download`), health and readiness, and the web page at `/` ([`web`]).
//!
//! Rooms: [`routes`] (which handler), [`api`] (handling a request), [`token_check`] (auth's tokens,
//! verified locally), [`auth_client`] (sign-up and log-in through service chaining),
//! [`jobs_store`] (who owns which job, MySQL), [`storage_client`] (the converter's storage API),
//! [`upload`] (checked, streamed uploads), [`job_view`] (what a job looks like to clients),
//! [`progress`] (Redis), [`http_io`] (streaming WASI HTTP), [`config`] (Spin variables),
//! [`webhook`] (the account's webhook, kept by the converter).

pub mod api;
pub mod auth_client;
pub mod basic_auth;
pub mod config;
pub mod errors;
pub mod http_io;
pub mod job_view;
pub mod jobs_store;
pub mod media_sniff;
pub mod progress;
pub mod routes;
pub mod storage_client;
pub mod token_check;
pub mod upload;
pub mod web;
pub mod webhook;

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
