//! Accounts and tokens (private: reachable only through Spin service chaining).
//!
//! Not built yet (issue 4): every request gets a 501 that says so, so no caller can
//! mistake this for a working login.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(_req: Request) -> anyhow::Result<impl IntoResponse> {
    Ok(not_implemented())
}

fn not_implemented() -> Response {
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
