//! Outgoing HTTP from components: `allowed_outbound_hosts` enforcement and service chaining.
//!
//! A request to `http://<id>.spin.internal` never touches the network: it is handed to the
//! component `<id>` in-process, as Spin does. Everything else goes through wasmtime-wasi-http's
//! default client once the allowed-hosts check passes; a refused request fails with
//! `HttpRequestDenied`, the error code Spin gives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outbound_hosts::OutboundTarget;
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
            let Some(target) = target_of(request.uri()) else {
                tracing::warn!(component = %component.id, request_id = %request_id, "outbound request without a host");
                return Err(HttpError::HttpRequestUriInvalid);
            };
            if !component.allowed_hosts.allows(&target) {
                tracing::warn!(
                    component = %component.id,
                    request_id = %request_id,
                    target = %target.authority(),
                    "outbound request denied by allowed_outbound_hosts"
                );
                return Err(HttpError::HttpRequestDenied);
            }
            if let Some(id) = target.chaining_target() {
                let response = chain(runtime, id.to_owned(), request, request_id).await?;
                return Ok((response, Box::new(async { Ok(()) }) as IoFuture));
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(|b| b.boxed_unsync()), Box::new(io) as IoFuture))
        })
    }
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
