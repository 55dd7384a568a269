//! The gateway's `/api/v1`, as the client uses it. Errors come back as `CliError`s carrying
//! the API's own `{"error": {"code", "message"}}`, so a message always says what the server said.

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::errors::{CliError, ErrorChain};

pub struct ApiClient {
    http: Client,
    server: Url,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl ApiClient {
    /// `extra_roots` are trusted for https besides the built-in Mozilla roots.
    pub fn new(
        server: Url,
        token: Option<String>,
        extra_roots: &[reqwest::Certificate],
    ) -> Result<ApiClient, CliError> {
        let mut builder = Client::builder()
            // Connecting should be quick; the transfers themselves may take as long as they take.
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("vid2mp3-cli/", env!("CARGO_PKG_VERSION")));
        for cert in extra_roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        let http = builder
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up HTTP: {}", ErrorChain(&e))))?;
        Ok(ApiClient {
            http,
            server,
            token,
        })
    }

    /// The server URL plus path segments, each percent-encoded (a job id typed by a user
    /// cannot reach another path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(crate) fn authed(&self, rb: RequestBuilder) -> Result<RequestBuilder, CliError> {
        match &self.token {
            Some(t) => Ok(rb.bearer_auth(t)),
            None => Err(CliError::NotLoggedIn {
                server: self.server_name(),
                reason: "not logged in".into(),
            }),
        }
    }

    pub fn server_name(&self) -> String {
        crate::config_store::server_key(&self.server)
    }

    /// The HTTP client (for the tus module, which sends its own requests).
    pub(crate) fn http(&self) -> &Client {
        &self.http
    }

    /// A path or URL the server answered with (a tus `Location`), resolved against the server.
    pub(crate) fn resolve(&self, location: &str) -> Result<Url, CliError> {
        self.server.join(location).map_err(|e| CliError::Api {
            status: 502,
            code: "bad_location".into(),
            message: format!(
                "the server answered with an unusable upload address {location:?} ({e})"
            ),
        })
    }

    /// `/api/v1/<segments...>` on the server.
    pub(crate) fn api_url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.url(&all)
    }

    pub(crate) fn unreachable(&self, e: &reqwest::Error) -> CliError {
        CliError::Unreachable {
            server: self.server_name(),
            reason: ErrorChain(e).to_string(),
        }
    }

    /// Sends; a non-2xx answer becomes `CliError::Api`.
    async fn send(&self, rb: RequestBuilder) -> Result<Response, CliError> {
        let r = rb.send().await.map_err(|e| self.unreachable(&e))?;
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(self.api_error(r).await)
        }
    }

    pub async fn api_error(&self, r: Response) -> CliError {
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => CliError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => CliError::Api {
                status: status.as_u16(),
                code: "http".into(),
                message: format!(
                    "the server answered {status}{}",
                    if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text.chars().take(200).collect::<String>())
                    }
                ),
            },
        }
    }

    async fn json(&self, r: Response) -> Result<Value, CliError> {
        r.json().await.map_err(|e| self.unreachable(&e))
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Value, CliError> {
        let rb = self
            .http
            .post(self.url(&["api", "v1", "users"]))
            .json(&json!({"email": email, "password": password}));
        let r = self.send(rb).await?;
        self.json(r).await
    }

    pub async fn confirm(&self, token: &str) -> Result<Value, CliError> {
        let rb = self
            .http
            .post(self.url(&["api", "v1", "users", "confirmation"]))
            .json(&json!({ "token": token }));
        let r = self.send(rb).await?;
        self.json(r).await
    }

    pub async fn send_link_again(&self, email: &str, password: &str) -> Result<Value, CliError> {
        let rb = self
            .http
            .post(self.url(&["api", "v1", "users", "confirmation-email"]))
            .json(&json!({"email": email, "password": password}));
        let r = self.send(rb).await?;
        self.json(r).await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Result<Value, CliError> {
        let rb = self
            .http
            .post(self.url(&["api", "v1", "sessions"]))
            .json(&json!({"email": email, "password": password}));
        let r = self.send(rb).await?;
        self.json(r).await
    }

    pub async fn list_jobs(&self, limit: u32, cursor: Option<&str>) -> Result<Value, CliError> {
        let mut url = self.url(&["api", "v1", "jobs"]);
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        if let Some(c) = cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let r = self.send(self.authed(self.http.get(url))?).await?;
        self.json(r).await
    }

    pub async fn job(&self, id: &str) -> Result<Value, CliError> {
        let rb = self.authed(self.http.get(self.url(&["api", "v1", "jobs", id])))?;
        let r = self.send(rb).await?;
        self.json(r).await
    }

    pub async fn webhook(&self) -> Result<Value, CliError> {
        let rb = self.authed(self.http.get(self.url(&["api", "v1", "webhook"])))?;
        let r = self.send(rb).await?;
        self.json(r).await
    }

    pub async fn set_webhook(&self, url: &str) -> Result<Value, CliError> {
        let rb = self
            .http
            .put(self.url(&["api", "v1", "webhook"]))
            .json(&json!({ "url": url }));
        let r = self.send(self.authed(rb)?).await?;
        self.json(r).await
    }

    pub async fn remove_webhook(&self) -> Result<(), CliError> {
        let rb = self.authed(self.http.delete(self.url(&["api", "v1", "webhook"])))?;
        self.send(rb).await.map(drop)
    }

    pub async fn delete_job(&self, id: &str) -> Result<(), CliError> {
        let rb = self.authed(self.http.delete(self.url(&["api", "v1", "jobs", id])))?;
        self.send(rb).await.map(drop)
    }

    /// Deletes the token's account (`DELETE /api/v1/account`) with its password.
    pub async fn delete_account(&self, password: &str) -> Result<(), CliError> {
        let rb = self.authed(
            self.http
                .delete(self.url(&["api", "v1", "account"]))
                .json(&json!({"password": password})),
        )?;
        self.send(rb).await.map(drop)
    }

    /// The mp3, from `range` on if given, and then only if it is still the file with the ETag
    /// `if_range` (otherwise the server sends all of it). 200, 206 and 416 are returned as they
    /// are (the caller's resume logic decides); other statuses become errors.
    pub async fn mp3(
        &self,
        id: &str,
        range: Option<&str>,
        if_range: Option<&str>,
    ) -> Result<Response, CliError> {
        let mut rb = self.http.get(self.url(&["api", "v1", "jobs", id, "mp3"]));
        if let Some(r) = range {
            rb = rb.header(reqwest::header::RANGE, r);
            if let Some(tag) = if_range {
                rb = rb.header(reqwest::header::IF_RANGE, tag);
            }
        }
        let r = self
            .authed(rb)?
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match r.status().as_u16() {
            200 | 206 | 416 => Ok(r),
            _ => Err(self.api_error(r).await),
        }
    }

    pub fn transfer_error(&self, e: &reqwest::Error) -> CliError {
        self.unreachable(e)
    }
}
