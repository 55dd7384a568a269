//! Running a component's `wasi:http` handler for one request: the request handed to the
//! instance as a `wasi:http` incoming request, the handler called (whichever `wasi:http`
//! snapshot it exports), and its response returned as a hyper response whose body streams while
//! the instance runs on.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::activity::{Activity, Cut};
use crate::admission::RequestTicket;
use crate::host::HostState;
use crate::outbound_http::OutboundInterceptor;
use crate::routing::RouteMatch;
use crate::runtime::{HttpInstance, InvokeError, LoadedComponent, Runtime};

/// Runs `component`'s HTTP handler for `request`, whose URI must be absolute. The response
/// is returned as soon as the component sets it; its body streams while the instance runs on.
/// The request time limit counts from the last body frame read or written on `activity`;
/// a client that stalls on it ends the request with [`InvokeError::ClientTooSlow`]. `ticket`
/// (a public request's admission) is held until the instance has ended. `interceptor` serves
/// the instance's own requests to the app.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn invoke<B>(
    runtime: &Arc<Runtime>,
    component: &LoadedComponent,
    mut request: http::Request<B>,
    route: &RouteMatch,
    client: SocketAddr,
    request_id: Arc<str>,
    activity: Activity,
    ticket: Option<RequestTicket>,
    interceptor: Arc<dyn OutboundInterceptor>,
) -> Result<http::Response<HyperOutgoingBody>, InvokeError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let proxy = component
        .http
        .clone()
        .ok_or_else(|| InvokeError::NotHttp(component.id().to_string()))?;
    let full_url = request.uri().to_string();
    for (name, value) in route.headers(&full_url, client) {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| InvokeError::Host(e.to_string()))?;
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                request.headers_mut().insert(name, value);
            }
            Err(_) => {
                tracing::debug!(header = %name, "skipping a spin header that is not a valid header value")
            }
        }
    }
    let scheme = match request.uri().scheme_str() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let request = request.map(|body| activity.watch(body));
    let mut held = runtime
        .instance_store(
            component,
            request_id.clone(),
            activity.clone(),
            Some(interceptor),
        )
        .await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let incoming = held
        .store
        .data_mut()
        .http()
        .new_incoming_request(scheme, request)
        .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
    let outparam = held
        .store
        .data_mut()
        .http()
        .new_response_outparam(tx)
        .map_err(|e| InvokeError::Host(format!("{e:#}")))?;
    let timeout = runtime.config.request_timeout;
    let this = runtime.clone();
    let task_activity = activity.clone();
    let in_flight = runtime.metrics.in_flight(component.id());
    // The instance runs inside the caller's task until it has set its response. Only if it
    // is still running then (a body still streaming) does it move to a task of its own, so
    // a small response costs no spawn and no wake-up of another thread.
    let mut instance = Box::pin(async move {
        let mut held = held;
        let run = async {
            let instance = proxy.instantiate(&mut held.store).await?;
            call_handler(&instance, &mut held.store, incoming, outparam).await
        };
        let outcome = match task_activity.bound(timeout, run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(this.classify(e)),
            Err(Cut::Idle) => Err(InvokeError::Timeout(timeout)),
            Err(Cut::ClientStalled) => Err(InvokeError::ClientTooSlow),
        };
        // The store first (its slot back to the pool), then the permit, then the admission.
        drop(held);
        drop(ticket);
        drop(in_flight);
        outcome
    });
    let finish = |instance| run_to_end(instance, component.id().clone(), request_id.clone());
    let mut rx = rx;
    let set = tokio::select! {
        biased;
        set = &mut rx => set,
        finished = &mut instance => {
            // It may have set its response and returned in the same poll.
            return match rx.try_recv() {
                _ if activity.is_stalled() => Err(InvokeError::ClientTooSlow),
                Ok(Ok(response)) => {
                    if let Err(e) = finished {
                        tracing::error!(component = %component.id(), request_id = %request_id, error = %e, "component failed after sending its response");
                    }
                    Ok(response.map(|body| activity.watch(body).boxed_unsync()))
                }
                Ok(Err(code)) => Err(InvokeError::Guest(format!("{code:?}"))),
                Err(_) => Err(finished.err().unwrap_or(InvokeError::NoResponse)),
            };
        }
        // The client stalled before an answer: whatever the component answers to its
        // failed read, the client gets 408. The instance may clean up until it is cut.
        () = activity.stalled() => {
            tokio::spawn(finish(instance));
            return Err(InvokeError::ClientTooSlow);
        }
    };
    match set {
        Ok(Ok(_)) if activity.is_stalled() => {
            tokio::spawn(finish(instance));
            Err(InvokeError::ClientTooSlow)
        }
        Ok(Ok(response)) => {
            let response = response.map(|body| activity.watch(body).boxed_unsync());
            let mut finish = Box::pin(finish(instance));
            // Most handlers return right after setting a small response: no task needed.
            if futures::FutureExt::now_or_never(&mut finish).is_none() {
                tokio::spawn(finish);
            }
            Ok(response)
        }
        Ok(Err(code)) => {
            // The handler still runs to its end: it may have work left after answering.
            tokio::spawn(finish(instance));
            Err(InvokeError::Guest(format!("{code:?}")))
        }
        // The outparam was dropped unset: the handler has returned or is about to.
        Err(_) => match instance.await {
            Ok(()) => Err(InvokeError::NoResponse),
            Err(e) => Err(e),
        },
    }
}

/// The three handlers take the same host objects: only the interface name differs.
async fn call_handler(
    instance: &HttpInstance,
    store: &mut Store<HostState>,
    request: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
    response: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
) -> wasmtime::Result<()> {
    match instance {
        HttpInstance::Wasi0_2(proxy) => {
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, request, response)
                .await
        }
        HttpInstance::Rc2023_11_10(proxy) => {
            proxy
                .wasi_http0_2_0_rc_2023_11_10_incoming_handler()
                .call_handle(store, request, response)
                .await
        }
        HttpInstance::Rc2023_10_18(proxy) => {
            proxy
                .wasi_http0_2_0_rc_2023_10_18_incoming_handler()
                .call_handle(store, request, response)
                .await
        }
    }
}

/// The rest of an instance's run once its answer is decided: only logged.
async fn run_to_end(
    instance: impl std::future::Future<Output = Result<(), InvokeError>>,
    component: Arc<str>,
    request_id: Arc<str>,
) {
    if let Err(e) = instance.await {
        tracing::error!(component = %component, request_id = %request_id, error = %e, "component failed after sending its response");
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    use super::*;
    use crate::http_trigger::InProcess;
    use crate::runtime::testing;

    type TestBody = http_body_util::combinators::MapErr<
        Empty<Bytes>,
        fn(Infallible) -> wasmtime_wasi_http::Error,
    >;

    fn get(uri: &str) -> http::Request<TestBody> {
        let body: TestBody = Empty::new().map_err(|e: Infallible| match e {});
        http::Request::get(uri).body(body).expect("a request")
    }

    async fn call(runtime: &Arc<Runtime>, uri: &str) -> (u16, String) {
        let hello = runtime
            .component("hello")
            .cloned()
            .expect("hello is loaded");
        let request = get(uri);
        let route = RouteMatch::synthetic("hello", request.uri().path());
        let response = invoke(
            runtime,
            &hello,
            request,
            &route,
            "127.0.0.1:1234".parse().expect("an address"),
            Arc::from("test"),
            Activity::new(),
            None,
            InProcess::new(runtime.clone(), None),
        )
        .await
        .expect("hello answers");
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_get_runs_the_handler_and_returns_its_response() {
        let runtime = testing::hello_app(&[]);
        assert_eq!(
            call(&runtime, "http://localhost/").await,
            (200, "hello".into())
        );
        // The instance and its slot are gone once the response has been read.
        assert_eq!(runtime.free_slots(), 4);
    }

    #[tokio::test]
    async fn a_chained_request_is_served_in_process_through_the_interceptor() {
        let runtime = testing::hello_app(&["http://hello.spin.internal"]);
        let chained = "http://localhost/?to=http%3A%2F%2Fhello.spin.internal%2F";
        assert_eq!(call(&runtime, chained).await, (200, "hello".into()));
        let metrics = runtime.render_metrics().expect("metrics render");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("runtime_host_requests_total")
                    && l.contains("trigger=\"chained\"")
                    && l.ends_with(" 1")),
            "{metrics}"
        );
        // Without the allowed host the same request is refused before the interceptor.
        let runtime = testing::hello_app(&[]);
        let (status, body) = call(&runtime, chained).await;
        assert_eq!(status, 502);
        assert!(body.contains("HttpRequestDenied"), "{body}");
    }
}
