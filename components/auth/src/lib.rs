//! Accounts and tokens (private: reachable only through Spin service chaining as
//! `http://auth.spin.internal`; the API is contracts' `auth_api`).
//!
//! [`email`] validates and normalizes addresses, [`password`] holds the policy and argon2id,
//! [`tokens`] signs EdDSA JWTs and publishes the JWKS, [`accounts`] is the `users` table,
//! [`confirmations`] the email confirmation tokens, [`account_mail`] asks the notifier to email an
//! address, [`throttle`] counts attempts in Redis, [`deletion`] deletes an account, [`api`] answers requests, [`config`] reads the
//! Spin variables.

mod account_mail;
mod accounts;
mod api;
mod config;
mod confirmations;
mod deletion;
mod email;
mod password;
mod throttle;
pub mod tokens;

// Exported only in the Wasm build: a native cdylib cannot link WIT export names, and native
// builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(req: spin_sdk::http::Request) -> spin_sdk::http::Response {
    serve(&req)
}

/// Answers one request, with the settings from this instance's Spin variables: the component's
/// whole behaviour, which the export above hands every request to.
pub fn serve(req: &spin_sdk::http::Request) -> spin_sdk::http::Response {
    api::handle(req, || {
        config::load(|name| spin_sdk::variables::get(name).map_err(|e| e.to_string())).map_err(
            |e| {
                // The operator's mistake, logged in full; the caller learns only that auth is misconfigured.
                eprintln!("auth: configuration error: {e}");
                api::ApiError::new(
                    vid2mp3_contracts::ErrorCode::Internal,
                    "auth is misconfigured; the operator has to fix its settings",
                )
            },
        )
    })
}
