//! Accounts and tokens (private: reachable only through Spin service chaining).
//!
//! The HTTP API is not built yet (issue 4): every request gets a 501 that says so, so no caller
//! can mistake this for a working login. Its building blocks are: [`email`] (validation and
//! normalization), [`password`] (policy, argon2id) and [`tokens`] (EdDSA JWTs, JWKS).

pub mod email;
pub mod password;
pub mod tokens;

use spin_sdk::http::Response;
#[cfg(target_arch = "wasm32")]
use spin_sdk::http::{IntoResponse, Request};
#[cfg(target_arch = "wasm32")]
use spin_sdk::http_component;

// Exported only in the Wasm build: a native cdylib cannot link WIT export names, and native
// builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
#[http_component]
fn handle(_req: Request) -> anyhow::Result<impl IntoResponse> {
    Ok(not_implemented())
}

pub fn not_implemented() -> Response {
    Response::builder()
        .status(501)
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"error": {"code": "not_implemented", "message": "auth is not built yet"}})
                .to_string(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_request_is_501() {
        assert_eq!(*super::not_implemented().status(), 501);
    }
}
