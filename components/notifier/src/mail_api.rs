//! The HTTP mail APIs: Mailpit's send API (local runs and tests) and a SendGrid-v3-compatible API
//! (production). Building a request and reading its answer are plain functions, tested natively;
//! only [`HttpMailer`] talks to the network, through `wasi:http` inside the component.
//!
//! SendGrid is a third-party SaaS that the tests cannot reach: its request body is unit-tested
//! against the v3 `mail/send` format, and the end-to-end tests use Mailpit.

use std::fmt;

use serde_json::json;

use crate::config::Secret;
use crate::email::Email;

/// How long one send may take at most, per phase. Bounded so that a claim in the sent log can
/// only be "in flight" for a known time: see `sent_log::STALE_CLAIM_SECS`.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;
pub const FIRST_BYTE_TIMEOUT_SECS: u64 = 30;
pub const BETWEEN_BYTES_TIMEOUT_SECS: u64 = 10;
/// A provider's answer is a small JSON document; more than this is not read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of a provider's error answer goes into a log line.
const MAX_DETAIL_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailApiKind {
    Mailpit,
    SendGrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// `scheme://host[:port]` of the mail API: exactly what `allowed_outbound_hosts` can name, so
/// the same variable serves both (a path would be refused there, so it is refused here too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub authority: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let url = url.trim();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("'{url}', not an http:// or https:// URL"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() {
            return Err(format!("'{url}', a URL without a host"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(format!(
                "'{url}': give only scheme://host[:port]; the API paths are fixed and allowed_outbound_hosts cannot hold a path"
            ));
        }
        if authority.contains('@') || authority.contains(char::is_whitespace) {
            return Err(
                "a URL with credentials or spaces; the API key has its own variable".into(),
            );
        }
        Ok(Endpoint {
            scheme,
            authority: authority.to_owned(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub email: String,
    pub name: String,
}

/// A configured mail API.
#[derive(Debug, Clone)]
pub struct MailApi {
    pub kind: MailApiKind,
    pub endpoint: Endpoint,
    /// Sent only to SendGrid (as a bearer token); Mailpit's send API takes none here.
    pub api_key: Secret,
    pub from: Sender,
}

/// An HTTP request ready to go. `Debug` leaves header values out: one of them is the API key.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    pub endpoint: Endpoint,
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl PreparedRequest {
    pub fn url(&self) -> String {
        format!("{}{}", self.endpoint, self.path)
    }

    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedRequest")
            .field("url", &self.url())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// What came back over HTTP, before it is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// SendGrid's id for the message (`X-Message-Id`), when present.
    pub message_id_header: Option<String>,
    pub body: Vec<u8>,
}

/// The provider took the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id for it, when it gives one.
    pub provider_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailApiError {
    /// No answer: connection refused, DNS, timeout, or refused by allowed_outbound_hosts.
    #[error("cannot reach the mail API at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// An answer that says "not now" or "not like this" about the service rather than about this
    /// email (5xx, 429, a wrong URL or API key): the same email can succeed later.
    #[error("the mail API at {endpoint} answered {status}: {detail}")]
    Unavailable {
        endpoint: String,
        status: u16,
        detail: String,
    },
    /// The provider refused this email itself (400/413/422): sending it again cannot help.
    #[error("the mail API at {endpoint} refused this email ({status}): {detail}")]
    Rejected {
        endpoint: String,
        status: u16,
        detail: String,
    },
}

impl MailApiError {
    /// Whether retrying the same email can never succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailApiError::Rejected { .. })
    }
}

impl MailApi {
    /// The request that sends `email`.
    pub fn request(&self, email: &Email) -> PreparedRequest {
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("user-agent", "vid2mp3-notifier".to_owned()),
        ];
        let (path, body) = match self.kind {
            MailApiKind::Mailpit => (
                "/api/v1/send",
                json!({
                    "From": { "Email": self.from.email, "Name": self.from.name },
                    "To": [ { "Email": email.to } ],
                    "Subject": email.subject,
                    "Text": email.text,
                    "HTML": email.html,
                }),
            ),
            MailApiKind::SendGrid => {
                headers.push(("authorization", format!("Bearer {}", self.api_key.expose())));
                (
                    "/v3/mail/send",
                    json!({
                        "personalizations": [ { "to": [ { "email": email.to } ] } ],
                        "from": { "email": self.from.email, "name": self.from.name },
                        "subject": email.subject,
                        // v3 requires text/plain before text/html.
                        "content": [
                            { "type": "text/plain", "value": email.text },
                            { "type": "text/html", "value": email.html },
                        ],
                    }),
                )
            }
        };
        PreparedRequest {
            endpoint: self.endpoint.clone(),
            path,
            headers,
            body: body.to_string().into_bytes(),
        }
    }

    /// Judges an answer: accepted, worth retrying, or refused for good.
    pub fn interpret(&self, response: &RawResponse) -> Result<Accepted, MailApiError> {
        let endpoint = self.endpoint.to_string();
        let status = response.status;
        if (200..300).contains(&status) {
            let provider_id = match self.kind {
                // Mailpit answers {"ID": "..."}.
                MailApiKind::Mailpit => serde_json::from_slice::<serde_json::Value>(&response.body)
                    .ok()
                    .and_then(|v| v.get("ID").and_then(|id| id.as_str()).map(str::to_owned)),
                // SendGrid answers 202 with no body and the id in a header.
                MailApiKind::SendGrid => response.message_id_header.clone(),
            };
            return Ok(Accepted {
                provider_id: provider_id.map(|id| id.chars().take(255).collect()),
            });
        }
        let detail = detail_of(&response.body);
        match status {
            400 | 413 | 422 => Err(MailApiError::Rejected {
                endpoint,
                status,
                detail,
            }),
            // 401/403 (a wrong key) and 404 (a wrong URL) are the operator's to fix; the email
            // must survive until they do, so they count as "unavailable", not "rejected".
            _ => Err(MailApiError::Unavailable {
                endpoint,
                status,
                detail,
            }),
        }
    }
}

/// One line of a provider's answer, fit for a log.
fn detail_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut detail: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DETAIL_CHARS)
        .collect();
    if detail.trim().is_empty() {
        detail = "(no body)".into();
    }
    detail.trim().to_owned()
}

/// Sends emails somewhere.
pub trait Mailer {
    fn send(&self, email: &Email) -> Result<Accepted, MailApiError>;
}

/// The real mail API over `wasi:http`.
pub struct HttpMailer {
    pub api: MailApi,
}

impl Mailer for HttpMailer {
    fn send(&self, email: &Email) -> Result<Accepted, MailApiError> {
        let request = self.api.request(email);
        let response = transport::send(&request).map_err(|reason| MailApiError::Unreachable {
            endpoint: self.api.endpoint.to_string(),
            reason,
        })?;
        self.api.interpret(&response)
    }
}

/// `wasi:http/outgoing-handler` with timeouts (spin-sdk's `send` sets none, which would let a
/// hung provider hold a claim for as long as the host allows).
mod transport {
    use spin_sdk::wit::wasi::http0_2_0::types::Method;
    use vid2mp3_wasi_http::{BodyLimit, Target, Timeouts, fetch};

    use super::{PreparedRequest, RawResponse};

    const TIMEOUTS: Timeouts = Timeouts {
        connect_secs: super::CONNECT_TIMEOUT_SECS,
        first_byte_secs: super::FIRST_BYTE_TIMEOUT_SECS,
        between_bytes_secs: super::BETWEEN_BYTES_TIMEOUT_SECS,
    };

    pub fn send(prepared: &PreparedRequest) -> Result<RawResponse, String> {
        let headers: Vec<(String, String)> = prepared
            .headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let target = Target {
            method: Method::Post,
            https: prepared.endpoint.scheme == super::Scheme::Https,
            authority: &prepared.endpoint.authority,
            path_and_query: prepared.path,
        };
        // A provider's answer is judged by its status; only its start is kept for the log.
        let answer = fetch(
            &target,
            &headers,
            &prepared.body,
            BodyLimit::Truncate(super::MAX_RESPONSE_BYTES),
            Some(&TIMEOUTS),
        )
        .map_err(|e| e.to_string())?;
        Ok(RawResponse {
            status: answer.status,
            message_id_header: answer.header("x-message-id").map(str::to_owned),
            body: answer.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email {
            to: "ada@example.com".into(),
            subject: "Your mp3 of \"talk.mkv\" is ready".into(),
            text: "plain".into(),
            html: "<p>html</p>".into(),
        }
    }

    fn api(kind: MailApiKind, url: &str, key: &str) -> MailApi {
        MailApi {
            kind,
            endpoint: Endpoint::parse(url).unwrap(),
            api_key: Secret::new(key),
            from: Sender {
                email: "noreply@vid2mp3.example".into(),
                name: "vid2mp3".into(),
            },
        }
    }

    fn body(request: &PreparedRequest) -> serde_json::Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    #[test]
    fn mailpit_request() {
        let request = api(MailApiKind::Mailpit, "http://127.0.0.1:8025/", "").request(&email());
        assert_eq!(request.url(), "http://127.0.0.1:8025/api/v1/send");
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        assert_eq!(request.header("authorization"), None);
        assert_eq!(
            body(&request),
            json!({
                "From": {"Email": "noreply@vid2mp3.example", "Name": "vid2mp3"},
                "To": [{"Email": "ada@example.com"}],
                "Subject": "Your mp3 of \"talk.mkv\" is ready",
                "Text": "plain",
                "HTML": "<p>html</p>",
            })
        );
    }

    #[test]
    fn sendgrid_request() {
        let request =
            api(MailApiKind::SendGrid, "https://api.sendgrid.com", "SG.key").request(&email());
        assert_eq!(request.url(), "https://api.sendgrid.com/v3/mail/send");
        assert_eq!(request.header("authorization"), Some("Bearer SG.key"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            body(&request),
            json!({
                "personalizations": [{"to": [{"email": "ada@example.com"}]}],
                "from": {"email": "noreply@vid2mp3.example", "name": "vid2mp3"},
                "subject": "Your mp3 of \"talk.mkv\" is ready",
                "content": [
                    {"type": "text/plain", "value": "plain"},
                    {"type": "text/html", "value": "<p>html</p>"},
                ],
            })
        );
    }

    #[test]
    fn the_api_key_never_prints() {
        let api = api(
            MailApiKind::SendGrid,
            "https://api.sendgrid.com",
            "SG.secret",
        );
        let request = api.request(&email());
        let shown = format!("{request:?} {api:?}");
        assert!(!shown.contains("SG.secret"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
    }

    #[test]
    fn answers_are_judged() {
        let mailpit = api(MailApiKind::Mailpit, "http://127.0.0.1:8025", "");
        let ok = RawResponse {
            status: 200,
            message_id_header: None,
            body: br#"{"ID":"iAfZVVe2UQfNSG5BAjgYwa"}"#.to_vec(),
        };
        assert_eq!(
            mailpit.interpret(&ok).unwrap().provider_id.as_deref(),
            Some("iAfZVVe2UQfNSG5BAjgYwa")
        );
        let sendgrid = api(MailApiKind::SendGrid, "https://api.sendgrid.com", "k");
        let accepted = RawResponse {
            status: 202,
            message_id_header: Some("abc123".into()),
            body: Vec::new(),
        };
        assert_eq!(
            sendgrid
                .interpret(&accepted)
                .unwrap()
                .provider_id
                .as_deref(),
            Some("abc123")
        );

        let answer = |status: u16| RawResponse {
            status,
            message_id_header: None,
            body: b"{\"errors\":[{\"message\":\"bad\"}]}\n".to_vec(),
        };
        for status in [400, 413, 422] {
            let e = sendgrid.interpret(&answer(status)).unwrap_err();
            assert!(e.is_permanent(), "{status}: {e}");
            assert!(e.to_string().contains("bad"), "{e}");
        }
        for status in [401, 403, 404, 408, 429, 500, 502, 503] {
            let e = sendgrid.interpret(&answer(status)).unwrap_err();
            assert!(!e.is_permanent(), "{status}: {e}");
        }
    }

    #[test]
    fn long_error_answers_are_cut() {
        let mailpit = api(MailApiKind::Mailpit, "http://127.0.0.1:8025", "");
        let e = mailpit
            .interpret(&RawResponse {
                status: 503,
                message_id_header: None,
                body: vec![b'x'; 10_000],
            })
            .unwrap_err()
            .to_string();
        assert!(e.len() < 500, "{}", e.len());
    }

    #[test]
    fn endpoints_are_scheme_host_and_port_only() {
        assert_eq!(
            Endpoint::parse("https://api.sendgrid.com/")
                .unwrap()
                .to_string(),
            "https://api.sendgrid.com"
        );
        for bad in [
            "api.sendgrid.com",
            "ftp://x",
            "http://",
            "http://host/v3",
            "http://user:pw@host",
            "http://host?x=1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
