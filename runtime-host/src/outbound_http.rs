//! Outgoing HTTP from components: `allowed_outbound_hosts` enforcement and service chaining.
//!
//! A request to `http://<id>.spin.internal` never touches the network: it is handed to the
//! component `<id>` in-process, as Spin does. A relative URL (`/path`, allowed by `http://self`)
//! goes to the app's own HTTP trigger, also in-process, where Spin sends it to its listening
//! address: the same router and answers, without a TCP round trip. Everything else, once the
//! allowed-hosts check passes, goes out over pooled keep-alive connections (`http://`,
//! [`PooledHttpClient`]) or wasmtime-wasi-http's default client (`https://`); a refused request
//! fails with `HttpRequestDenied`, the error code Spin gives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::http_client::PooledHttpClient;
use crate::metrics::{OutboundKind, Outcome};
use crate::outbound_hosts::{OutboundTarget, log_refusal};
use crate::runtime::{LoadedComponent, Runtime};

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

pub struct OutboundHttp {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) component: Arc<LoadedComponent>,
    pub(crate) request_id: Arc<str>,
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
        let runtime = self.runtime.clone();
        let component = self.component.clone();
        let request_id = self.request_id.clone();
        Box::new(async move {
            let (kind, result) = send(&runtime, &component, request, options, request_id).await;
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(HttpError::HttpRequestDenied) => Outcome::Denied,
                Err(_) => Outcome::Error,
            };
            runtime.metrics.outbound(&component.id, kind, outcome);
            result
        })
    }
}

/// Sends one outbound request where it belongs; also says which kind it was, for the metrics.
async fn send(
    runtime: &Arc<Runtime>,
    component: &Arc<LoadedComponent>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    request_id: Arc<str>,
) -> (
    OutboundKind,
    Result<(http::Response<WasiBody>, IoFuture), HttpError>,
) {
    let done = |response| Ok((response, Box::new(async { Ok(()) }) as IoFuture));
    if is_self_request(request.uri()) {
        // As Spin: a relative URL may be used with either scheme once `http://self`,
        // `https://self` or a `*` host allows it.
        if !(component.allowed_hosts.allows_relative("http")
            || component.allowed_hosts.allows_relative("https"))
        {
            log_refusal(&component.id, &request_id, "http://self");
            return (OutboundKind::SelfRequest, Err(HttpError::HttpRequestDenied));
        }
        let result = to_self(runtime.clone(), request, request_id).await;
        return (OutboundKind::SelfRequest, result.and_then(done));
    }
    let Some(target) = target_of(request.uri()) else {
        tracing::warn!(component = %component.id, request_id = %request_id, "outbound request without a host");
        return (OutboundKind::Http, Err(HttpError::HttpRequestUriInvalid));
    };
    let kind = if target.chaining_target().is_some() {
        OutboundKind::SpinInternal
    } else {
        OutboundKind::Http
    };
    if !component.allowed_hosts.allows(&target) {
        log_refusal(&component.id, &request_id, &target.authority());
        return (kind, Err(HttpError::HttpRequestDenied));
    }
    if let Some(id) = target.chaining_target() {
        let result = chain(runtime.clone(), id.to_owned(), request, request_id).await;
        return (kind, result.and_then(done));
    }
    if PooledHttpClient::handles(request.uri(), options.as_ref()) {
        let result = runtime.services.http.send(request, options).await;
        return (kind, result.and_then(done));
    }
    let result = wasmtime_wasi_http::default_send_request(request, options)
        .await
        .map(|(response, io)| (response.map(|b| b.boxed_unsync()), Box::new(io) as IoFuture));
    (kind, result)
}

/// Whether a request is meant for the app itself. wasi-http needs an authority, so SDKs fill one
/// in for a relative URL: spin-sdk sends `/path` as `https://:443/path` (an empty host); others
/// write `self.alt`, which Spin accepts as the same thing.
fn is_self_request(uri: &http::Uri) -> bool {
    match uri.authority() {
        None => true,
        Some(authority) => authority.host().is_empty() || authority.host() == "self.alt",
    }
}

/// Boxed for the same reason as [`chain`]: the app's own handler may make outbound requests.
fn to_self(
    runtime: Arc<Runtime>,
    request: http::Request<WasiBody>,
    parent_request_id: Arc<str>,
) -> Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>> {
    Box::pin(async move {
        let Some(trigger) = runtime.http_trigger() else {
            // Spin has no origin for relative URLs outside the HTTP trigger (e.g. a Redis
            // handler) and fails the request the same way.
            tracing::warn!(request_id = %parent_request_id, "relative outbound request, but the app serves no HTTP");
            return Err(HttpError::HttpRequestUriInvalid);
        };
        Ok(trigger.handle_self(request, parent_request_id).await)
    })
}

/// Boxed so that a component calling a component does not make the request future's type
/// recursive.
fn chain(
    runtime: Arc<Runtime>,
    id: String,
    request: http::Request<WasiBody>,
    parent_request_id: Arc<str>,
) -> Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>> {
    Box::pin(async move {
        runtime
            .handle_chained(&id, request, parent_request_id)
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_requests_are_relative_or_self_alt() {
        let cases = [
            ("https://:443/path?q=1", true), // what spin-sdk sends for "/path?q=1"
            ("http://:80/", true),
            ("/path", true),
            ("http://self.alt/path", true),
            ("https://self.alt:8443/path", true),
            ("http://self/path", false), // only the allowed-hosts pattern is called "self"
            ("http://self.alt.example.com/", false),
            ("http://example.com/", false),
            ("http://auth.spin.internal/", false),
        ];
        for (uri, expected) in cases {
            let uri: http::Uri = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(is_self_request(&uri), expected, "{uri}");
        }
    }
}
