//! The public entry point of vid2mp3.
//!
//! Today it answers only its liveness probe; every other path is an honest 404 in the
//! API's error shape. The API itself (accounts, uploads, jobs, downloads) is issue 4; of it,
//! [`token_check`] (verifying auth's tokens locally) is built.

pub mod token_check;

use spin_sdk::http::Response;
#[cfg(target_arch = "wasm32")]
use spin_sdk::http::{IntoResponse, Request};
#[cfg(target_arch = "wasm32")]
use spin_sdk::http_component;

// Exported only in the Wasm build: a native cdylib cannot link WIT export names, and native
// builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    Ok(route(req.path()))
}

pub fn route(path: &str) -> Response {
    match path {
        "/healthz" => json(200, r#"{"status":"ok"}"#.to_owned()),
        other => json(
            404,
            serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {other}")}})
                .to_string(),
        ),
    }
}

fn json(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_is_ok() {
        assert_eq!(*route("/healthz").status(), 200);
    }

    #[test]
    fn unknown_path_is_a_json_404() {
        let response = route("/nope");
        assert_eq!(*response.status(), 404);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}
