//! Outgoing HTTP from components: `allowed_outbound_hosts` enforcement, then delivery.
//!
//! Every request is first classified ([`destination`]) and checked against the component's
//! allowed hosts; a refused one fails with `HttpRequestDenied`, the error code Spin gives. A
//! request the check lets through is offered to the instance's [`OutboundInterceptor`], which
//! serves the app's own requests in-process, as Spin's HTTP trigger does: a relative URL
//! (`/path`, allowed by `http://self`) through the app's router, `http://<id>.spin.internal`
//! by the component `<id>`. This module knows the interceptor only as that trait: the HTTP
//! trigger, which owns the router and the invocation, makes it. Everything else goes out over
//! pooled keep-alive connections (`http://`, [`PooledHttpClient`]) or wasmtime-wasi-http's
//! default client (`https://`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::component_config::ComponentConfig;
use crate::http_client::PooledHttpClient;
use crate::metrics::{Metrics, OutboundKind, Outcome};
use crate::outbound_hosts::{OutboundTarget, log_refusal};

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// The answer to a request served in-process.
pub type InProcessResponse =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// What an [`OutboundInterceptor`] did with a request.
// Returned once per request and never stored: boxing the request would cost an allocation on
// every outbound call for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Intercepted {
    /// Not for the app itself: send it on.
    Continue(http::Request<WasiBody>),
    /// Served in-process; this is its answer.
    Served(InProcessResponse),
}

/// Serves the requests a component makes to its own app without the network. Called only for
/// requests the allowed-hosts check has let through.
pub trait OutboundInterceptor: Send + Sync {
    /// `parent_request_id` is the id of the request or message whose instance sends `request`.
    fn intercept(
        &self,
        request: http::Request<WasiBody>,
        parent_request_id: Arc<str>,
    ) -> Intercepted;
}

/// Where a component's outbound request is meant to go.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// A relative URL: the app's own HTTP trigger.
    SelfRequest,
    /// `http://<id>.spin.internal`: component `id` of the app.
    Component { id: String, target: OutboundTarget },
    /// Anywhere else.
    Network(OutboundTarget),
    /// An absolute URL without a usable host.
    Invalid,
}

/// Classifies `uri`. wasi-http needs an authority, so SDKs fill one in for a relative URL:
/// spin-sdk sends `/path` as `https://:443/path` (an empty host); others write `self.alt`,
/// which Spin accepts as the same thing.
pub fn destination(uri: &http::Uri) -> Destination {
    let relative = match uri.authority() {
        None => true,
        Some(authority) => authority.host().is_empty() || authority.host() == "self.alt",
    };
    if relative {
        return Destination::SelfRequest;
    }
    match target_of(uri) {
        None => Destination::Invalid,
        Some(target) => match target.chaining_target() {
            Some(id) => Destination::Component {
                id: id.to_owned(),
                target,
            },
            None => Destination::Network(target),
        },
    }
}

/// The `wasi:http` hooks of one instance.
pub struct OutboundHttp {
    pub(crate) component: Arc<ComponentConfig>,
    pub(crate) request_id: Arc<str>,
    pub(crate) client: Arc<PooledHttpClient>,
    pub(crate) metrics: Arc<Metrics>,
    /// Serves the app's own requests; `None` only where nothing may be sent (an instance
    /// made to be timed).
    pub(crate) interceptor: Option<Arc<dyn OutboundInterceptor>>,
}

pub(crate) fn target_of(uri: &http::Uri) -> Option<OutboundTarget> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(OutboundTarget {
        scheme,
        host,
        port: uri.port_u16(),
    })
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let component = self.component.clone();
        let request_id = self.request_id.clone();
        let client = self.client.clone();
        let metrics = self.metrics.clone();
        let interceptor = self.interceptor.clone();
        Box::new(async move {
            let outbound = Outbound {
                component: &component,
                request_id,
                client: &client,
                interceptor: interceptor.as_deref(),
            };
            let (kind, result) = outbound.send(request, options).await;
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(HttpError::HttpRequestDenied) => Outcome::Denied,
                Err(_) => Outcome::Error,
            };
            metrics.outbound(&component.id, kind, outcome);
            result
        })
    }
}

/// One outbound request on its way.
struct Outbound<'a> {
    component: &'a ComponentConfig,
    request_id: Arc<str>,
    client: &'a PooledHttpClient,
    interceptor: Option<&'a dyn OutboundInterceptor>,
}

impl Outbound<'_> {
    /// Sends one outbound request where it belongs; also says which kind it was, for the
    /// metrics.
    async fn send(
        self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> (
        OutboundKind,
        Result<(http::Response<WasiBody>, IoFuture), HttpError>,
    ) {
        let done = |response| Ok((response, Box::new(async { Ok(()) }) as IoFuture));
        let allowed = &self.component.allowed_hosts;
        let destination = destination(request.uri());
        let kind = match &destination {
            Destination::SelfRequest => {
                // As Spin: a relative URL may be used with either scheme once `http://self`,
                // `https://self` or a `*` host allows it.
                if !(allowed.allows_relative("http") || allowed.allows_relative("https")) {
                    log_refusal(&self.component.id, &self.request_id, "http://self");
                    return (OutboundKind::SelfRequest, Err(HttpError::HttpRequestDenied));
                }
                OutboundKind::SelfRequest
            }
            Destination::Invalid => {
                tracing::warn!(component = %self.component.id, request_id = %self.request_id, "outbound request without a host");
                return (OutboundKind::Http, Err(HttpError::HttpRequestUriInvalid));
            }
            Destination::Component { target, .. } | Destination::Network(target) => {
                let kind = match destination {
                    Destination::Component { .. } => OutboundKind::SpinInternal,
                    _ => OutboundKind::Http,
                };
                if !allowed.allows(target) {
                    log_refusal(&self.component.id, &self.request_id, &target.authority());
                    return (kind, Err(HttpError::HttpRequestDenied));
                }
                kind
            }
        };
        let request = match self.interceptor {
            Some(interceptor) => match interceptor.intercept(request, self.request_id.clone()) {
                Intercepted::Served(response) => return (kind, response.await.and_then(done)),
                Intercepted::Continue(request) => request,
            },
            None => request,
        };
        match destination {
            Destination::SelfRequest => {
                // Spin has no origin for relative URLs when the app serves no HTTP and fails
                // the request the same way.
                tracing::warn!(request_id = %self.request_id, "relative outbound request, but the app serves no HTTP");
                return (kind, Err(HttpError::HttpRequestUriInvalid));
            }
            Destination::Component { id, .. } => {
                tracing::warn!(request_id = %self.request_id, component = %id, "chained request, but nothing serves the app's components");
                return (kind, Err(HttpError::DestinationNotFound));
            }
            Destination::Network(_) | Destination::Invalid => {}
        }
        if PooledHttpClient::handles(request.uri(), options.as_ref()) {
            let result = self.client.send(request, options).await;
            return (kind, result.and_then(done));
        }
        let result = wasmtime_wasi_http::default_send_request(request, options)
            .await
            .map(|(response, io)| (response.map(|b| b.boxed_unsync()), Box::new(io) as IoFuture));
        (kind, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(scheme: &str, host: &str, port: Option<u16>) -> OutboundTarget {
        OutboundTarget {
            scheme: scheme.into(),
            host: host.into(),
            port,
        }
    }

    fn network(scheme: &str, host: &str, port: Option<u16>) -> Destination {
        Destination::Network(target(scheme, host, port))
    }

    fn component(id: &str, scheme: &str, host: &str, port: Option<u16>) -> Destination {
        Destination::Component {
            id: id.into(),
            target: target(scheme, host, port),
        }
    }

    #[test]
    fn requests_are_for_the_app_itself_or_go_out() {
        let cases = [
            // what spin-sdk sends for "/path?q=1"
            ("https://:443/path?q=1", Destination::SelfRequest),
            ("http://:80/", Destination::SelfRequest),
            ("/path", Destination::SelfRequest),
            ("http://self.alt/path", Destination::SelfRequest),
            ("https://self.alt:8443/path", Destination::SelfRequest),
            (
                "http://auth.spin.internal/",
                component("auth", "http", "auth.spin.internal", None),
            ),
            (
                "https://Auth.Spin.Internal:8443/x",
                component("auth", "https", "auth.spin.internal", Some(8443)),
            ),
            // only the allowed-hosts pattern is called "self"
            ("http://self/path", network("http", "self", None)),
            (
                "http://self.alt.example.com/",
                network("http", "self.alt.example.com", None),
            ),
            ("http://example.com/", network("http", "example.com", None)),
            ("https://[::1]:8443/", network("https", "::1", Some(8443))),
            // not one component: a chaining name has no dots before the suffix
            (
                "http://a.b.spin.internal/",
                network("http", "a.b.spin.internal", None),
            ),
            (
                "http://spin.internal/",
                network("http", "spin.internal", None),
            ),
        ];
        for (uri, expected) in cases {
            let parsed: http::Uri = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(destination(&parsed), expected, "{uri}");
        }
    }
}
