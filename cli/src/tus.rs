//! The client side of the server's resumable uploads: tus 1.0.0 (core, creation, termination,
//! expiration) on `/api/v1/uploads`. One request per method here; when to resume, retry or give
//! up is `commands::upload`'s business.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use url::Url;
use vid2mp3_contracts::LoudnessTarget;

use crate::api_client::ApiClient;
use crate::errors::CliError;

pub const TUS_VERSION: &str = "1.0.0";
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Small requests (create, HEAD, DELETE) answer at once, or something is wrong.
const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A PATCH of one piece (16 MiB) may take a while on a slow link, but not forever: a connection
/// that stalls must end in a retry from the server's offset, not a hang.
const PATCH_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What an upload asks of its job; `None` leaves each to the server's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobOptions<'a> {
    pub profile: Option<&'a str>,
    pub loudness: Option<LoudnessTarget>,
    pub callback_url: Option<&'a str>,
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs (tus 1.0.0, creation).
pub fn encode_metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key} {}", STANDARD.encode(value.as_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

/// The metadata of an upload of `name` (sent as `filetype`) with the job's options.
pub fn upload_metadata(name: &str, filetype: &str, job: JobOptions<'_>) -> String {
    let loudness = job.loudness.map(|t| t.lufs().to_string());
    let mut pairs = vec![("filename", name), ("filetype", filetype)];
    if let Some(p) = job.profile {
        pairs.push(("profile", p));
    }
    if let Some(l) = &loudness {
        pairs.push(("loudness", l));
    }
    if let Some(c) = job.callback_url {
        pairs.push(("callback_url", c));
    }
    encode_metadata(&pairs)
}

/// The answer to a creation.
#[derive(Debug, Clone)]
pub struct Created {
    pub upload_url: Url,
    /// The upload's id, which is also its future job's id.
    pub id: String,
    pub callback_secret: Option<String>,
}

#[derive(Deserialize)]
struct CreatedBody {
    id: String,
    #[serde(default)]
    upload_url: Option<String>,
    #[serde(default)]
    callback_secret: Option<String>,
}

/// Where an upload stands on the server (HEAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadProgress {
    pub offset: u64,
    pub length: u64,
}

/// Why a PATCH did not store its bytes.
#[derive(Debug)]
pub enum PatchError {
    /// 409: the server has `offset` bytes, not what we said.
    Conflict {
        offset: Option<u64>,
    },
    Failed(CliError),
}

impl From<CliError> for PatchError {
    fn from(e: CliError) -> PatchError {
        PatchError::Failed(e)
    }
}

/// A failure worth retrying from the server's offset: the network, a server error, or another
/// PATCH of the same upload still running (423).
pub fn is_transient(e: &CliError) -> bool {
    match e {
        CliError::Unreachable { .. } => true,
        CliError::Api { status, .. } => *status == 423 || (500..=599).contains(status),
        _ => false,
    }
}

/// The tus requests, with the CLI's session.
pub struct TusClient<'a> {
    api: &'a ApiClient,
}

impl<'a> TusClient<'a> {
    pub fn new(api: &'a ApiClient) -> TusClient<'a> {
        TusClient { api }
    }

    fn request(&self, rb: RequestBuilder) -> Result<RequestBuilder, CliError> {
        self.api.authed(rb.header("Tus-Resumable", TUS_VERSION))
    }

    async fn send(&self, rb: RequestBuilder) -> Result<Response, CliError> {
        rb.send().await.map_err(|e| self.api.unreachable(&e))
    }

    /// POST /api/v1/uploads: a new upload of `length` bytes.
    pub async fn create(&self, length: u64, metadata: &str) -> Result<Created, CliError> {
        let rb = self
            .api
            .http()
            .post(self.api.api_url(&["uploads"]))
            .header("Upload-Length", length)
            .header("Upload-Metadata", metadata)
            .timeout(SMALL_REQUEST_TIMEOUT);
        let r = self.send(self.request(rb)?).await?;
        if r.status() != StatusCode::CREATED {
            return Err(self.failure(r).await);
        }
        let location = header_str(r.headers(), "location").map(str::to_owned);
        let text = r.text().await.map_err(|e| self.api.unreachable(&e))?;
        // The body names the job; a plain tus server answers without one, and then the id is
        // the upload URL's last segment, as it is on ours.
        let body = serde_json::from_str::<CreatedBody>(&text).ok();
        let location = location
            .or_else(|| body.as_ref().and_then(|b| b.upload_url.clone()))
            .ok_or_else(|| {
                CliError::UnexpectedAnswer(
                    "the server created an upload but did not say where".into(),
                )
            })?;
        let upload_url = self.api.resolve(&location)?;
        let id = match &body {
            Some(b) => b.id.clone(),
            None => upload_url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    CliError::UnexpectedAnswer(format!("no upload id in {upload_url}"))
                })?,
        };
        Ok(Created {
            upload_url,
            id,
            callback_secret: body.and_then(|b| b.callback_secret),
        })
    }

    /// HEAD: how far the upload is; `None` when the server does not know it (any more).
    pub async fn progress(&self, upload: &Url) -> Result<Option<UploadProgress>, CliError> {
        let rb = self
            .api
            .http()
            .head(upload.clone())
            .timeout(SMALL_REQUEST_TIMEOUT);
        let r = self.send(self.request(rb)?).await?;
        match r.status() {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            s if s.is_success() => Ok(Some(UploadProgress {
                offset: required_number(r.headers(), "upload-offset")?,
                length: required_number(r.headers(), "upload-length")?,
            })),
            _ => Err(self.failure(r).await),
        }
    }

    /// PATCH `len` bytes of `body` at `offset`; the server's new offset.
    pub async fn patch(
        &self,
        upload: &Url,
        offset: u64,
        body: reqwest::Body,
        len: u64,
    ) -> Result<u64, PatchError> {
        let rb = self
            .api
            .http()
            .patch(upload.clone())
            .header(reqwest::header::CONTENT_TYPE, OFFSET_OCTET_STREAM)
            .header("Upload-Offset", offset)
            // Declared up front, so the server can refuse a piece that would go past the end.
            .header(reqwest::header::CONTENT_LENGTH, len)
            .timeout(PATCH_TIMEOUT)
            .body(body);
        let r = self.send(self.request(rb)?).await?;
        match r.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                Ok(required_number(r.headers(), "upload-offset")?)
            }
            StatusCode::CONFLICT => Err(PatchError::Conflict {
                offset: header_str(r.headers(), "upload-offset").and_then(|v| v.parse().ok()),
            }),
            _ => Err(PatchError::Failed(self.failure(r).await)),
        }
    }

    /// DELETE (termination): the server forgets the upload. An unknown one is fine.
    pub async fn terminate(&self, upload: &Url) -> Result<(), CliError> {
        let rb = self
            .api
            .http()
            .delete(upload.clone())
            .timeout(SMALL_REQUEST_TIMEOUT);
        let r = self.send(self.request(rb)?).await?;
        match r.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.failure(r).await),
        }
    }

    async fn failure(&self, r: Response) -> CliError {
        self.api.api_error(r).await
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn required_number(headers: &HeaderMap, name: &str) -> Result<u64, CliError> {
    header_str(headers, name)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            CliError::UnexpectedAnswer(format!(
                "the server's upload answer has no usable {name} header"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(metadata: &str) -> Vec<(String, String)> {
        metadata
            .split(',')
            .map(|pair| {
                let (k, v) = pair.split_once(' ').expect("key value");
                let v = String::from_utf8(STANDARD.decode(v).expect("base64")).expect("utf-8");
                (k.to_owned(), v)
            })
            .collect()
    }

    #[test]
    fn metadata_is_key_space_base64_pairs() {
        assert_eq!(
            encode_metadata(&[
                ("filename", "world_domination_plan.pdf"),
                ("is_confidential", "")
            ]),
            // The example of the tus 1.0.0 specification, one value empty.
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential "
        );
    }

    #[test]
    fn names_with_commas_spaces_and_unicode_survive() {
        let name = "holiday, day 1 – Zürich.mkv";
        let m = upload_metadata(name, "video/x-matroska", JobOptions::default());
        assert_eq!(m.matches(',').count(), 1, "{m}");
        assert_eq!(
            decode(&m),
            [
                ("filename".to_owned(), name.to_owned()),
                ("filetype".to_owned(), "video/x-matroska".to_owned())
            ]
        );
    }

    #[test]
    fn job_options_become_metadata_only_when_given() {
        let m = upload_metadata(
            "a.mp4",
            "video/mp4",
            JobOptions {
                profile: Some("cbr128"),
                loudness: Some(LoudnessTarget::SPEECH),
                callback_url: Some("https://hooks.example/x?a=1,2"),
            },
        );
        let pairs = decode(&m);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("profile"), Some("cbr128"));
        assert_eq!(get("loudness"), Some("-16"));
        assert_eq!(get("callback_url"), Some("https://hooks.example/x?a=1,2"));
        assert_eq!(pairs.len(), 5);
    }

    #[test]
    fn only_the_network_server_errors_and_423_are_retried() {
        let api = |status| CliError::Api {
            status,
            code: "x".into(),
            message: "m".into(),
        };
        for status in [423, 500, 502, 503] {
            assert!(is_transient(&api(status)), "{status}");
        }
        for status in [400, 401, 404, 409, 412, 413, 415, 429] {
            assert!(!is_transient(&api(status)), "{status}");
        }
        assert!(is_transient(&CliError::Unreachable {
            server: "s".into(),
            reason: "r".into()
        }));
        assert!(!is_transient(&CliError::Usage("u".into())));
    }

    #[test]
    fn offsets_come_from_headers_or_a_clear_error() {
        let mut h = HeaderMap::new();
        assert!(matches!(
            required_number(&h, "upload-offset"),
            Err(CliError::UnexpectedAnswer(_))
        ));
        h.insert("upload-offset", "12345".parse().unwrap());
        assert_eq!(required_number(&h, "upload-offset").unwrap(), 12345);
        h.insert("upload-offset", "-1".parse().unwrap());
        assert!(required_number(&h, "upload-offset").is_err());
    }
}
