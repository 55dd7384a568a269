//! The HTTP trigger's [`OutboundInterceptor`]: a component's requests to its own app are served
//! in-process, as Spin's HTTP trigger serves them, without a TCP round trip:
//!
//! - a relative URL goes through the app's router as a new public-route request to the
//!   trigger's listening address (where Spin sends it), when the app serves HTTP;
//! - `http://<id>.spin.internal/...` is handled by component `<id>` with the catch-all route
//!   match Spin synthesises for it (private components included);
//! - everything else is left to the network.
//!
//! Every instance the HTTP trigger (or the Redis trigger) starts gets one, so a chained or
//! relative request may itself chain.

use std::sync::Arc;
use std::time::Instant;

use wasmtime_wasi_http::WasiBody;

use super::{HttpTrigger, IN_PROCESS_CLIENT, invoke};
use crate::activity::Activity;
use crate::metrics::{Cause, Invocation, Trigger, status_class};
use crate::outbound_http::{Destination, Intercepted, OutboundInterceptor, destination};
use crate::routing::RouteMatch;
use crate::runtime::{InvokeError, Runtime};

/// Serves the app's own requests: chained ones with `runtime`'s components, relative ones
/// through `server`.
pub struct InProcess {
    runtime: Arc<Runtime>,
    /// The app's HTTP trigger; `None` when the app serves no HTTP (a relative URL then fails).
    server: Option<Arc<HttpTrigger>>,
}

impl InProcess {
    pub fn new(runtime: Arc<Runtime>, server: Option<Arc<HttpTrigger>>) -> Arc<Self> {
        Arc::new(Self { runtime, server })
    }
}

impl OutboundInterceptor for InProcess {
    fn intercept(
        &self,
        request: http::Request<WasiBody>,
        parent_request_id: Arc<str>,
    ) -> Intercepted {
        match destination(request.uri()) {
            Destination::SelfRequest => match &self.server {
                Some(server) => {
                    let server = server.clone();
                    Intercepted::Served(Box::pin(async move {
                        Ok(server.handle_self(request, parent_request_id).await)
                    }))
                }
                None => Intercepted::Continue(request),
            },
            Destination::Component { id, .. } => {
                let interceptor = Arc::new(Self {
                    runtime: self.runtime.clone(),
                    server: self.server.clone(),
                });
                // Boxed, so that a component calling a component does not make the request
                // future's type recursive.
                Intercepted::Served(Box::pin(chain(interceptor, id, request, parent_request_id)))
            }
            Destination::Network(_) | Destination::Invalid => Intercepted::Continue(request),
        }
    }
}

/// Service chaining: `http://<id>.spin.internal/...` handled by component `<id>` in-process,
/// with the catch-all route match Spin synthesises for it.
async fn chain(
    interceptor: Arc<InProcess>,
    id: String,
    mut request: http::Request<WasiBody>,
    parent_request_id: Arc<str>,
) -> Result<http::Response<WasiBody>, wasmtime_wasi_http::Error> {
    let runtime = interceptor.runtime.clone();
    let Some(component) = runtime.component(&id).cloned() else {
        return Err(wasmtime_wasi_http::Error::DestinationNotFound);
    };
    let request_id: Arc<str> = Arc::from(format!("{parent_request_id}/{id}"));
    // The chained component must see its own request, not the caller's Host.
    request.headers_mut().remove(http::header::HOST);
    let path = request.uri().path().to_owned();
    let route = RouteMatch::synthetic(&id, &path);
    let started = Instant::now();
    let method = request.method().clone();
    let result = invoke::invoke(
        &runtime,
        &component,
        request,
        &route,
        IN_PROCESS_CLIENT,
        request_id.clone(),
        Activity::new(),
        None,
        interceptor,
    )
    .await;
    let (status, cause) = match &result {
        Ok(response) => (status_class(response.status()), Cause::Component),
        Err(InvokeError::Timeout(_)) => ("5xx", Cause::Timeout),
        Err(_) => ("5xx", Cause::Failed),
    };
    runtime.metrics.record(&Invocation {
        trigger: Trigger::Chained,
        route: &route.raw_route,
        component: &id,
        status,
        cause,
        elapsed: started.elapsed(),
    });
    match result {
        Ok(response) => {
            tracing::info!(
                request_id = %request_id,
                component = %id,
                method = %method,
                path = %path,
                status = response.status().as_u16(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "chained request"
            );
            Ok(response)
        }
        Err(e) => {
            tracing::error!(request_id = %request_id, component = %id, path = %path, error = %e, "chained request failed");
            Err(wasmtime_wasi_http::Error::InternalError(Some(
                e.to_string(),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    use super::*;
    use crate::client_limits::ClientLimits;
    use crate::routing::Router;
    use crate::runtime::testing;

    fn request(uri: &str) -> http::Request<WasiBody> {
        let body = Empty::<Bytes>::new()
            .map_err(|e: std::convert::Infallible| match e {})
            .boxed_unsync();
        http::Request::get(uri).body(body).expect("a request")
    }

    /// The app's HTTP trigger (not listening: relative requests never touch the network).
    fn trigger(runtime: &Arc<Runtime>, allowed: &[&str]) -> Arc<HttpTrigger> {
        let manifest = testing::manifest(&testing::hello_manifest(allowed));
        let routes: Vec<_> = manifest
            .http_triggers
            .iter()
            .filter_map(|t| t.route.as_ref().map(|r| (t.component.as_str(), r)))
            .collect();
        let (router, _) = Router::build(routes).expect("routes");
        let limits = ClientLimits::default();
        let admission = limits.admission().expect("default limits");
        let origin: SocketAddr = "127.0.0.1:3000".parse().expect("an address");
        HttpTrigger::new(runtime.clone(), router, 1 << 20, &limits, admission, origin)
            .expect("a trigger")
    }

    async fn answer(intercepted: Intercepted) -> Result<(u16, String), wasmtime_wasi_http::Error> {
        let Intercepted::Served(response) = intercepted else {
            panic!("not served in-process");
        };
        let response = response.await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    #[tokio::test]
    async fn the_apps_own_requests_are_served_and_the_rest_go_out() {
        let runtime = testing::hello_app(&[]);
        let with_server = trigger(&runtime, &[]).interceptor();
        let without_server: Arc<dyn OutboundInterceptor> = InProcess::new(runtime.clone(), None);
        let parent: Arc<str> = Arc::from("parent");
        for interceptor in [&with_server, &without_server] {
            for uri in ["http://example.com/", "https://hello.example.com:8443/x"] {
                assert!(
                    matches!(
                        interceptor.intercept(request(uri), parent.clone()),
                        Intercepted::Continue(r) if r.uri() == uri
                    ),
                    "{uri} goes out"
                );
            }
            // Chaining needs no HTTP listener.
            let chained =
                interceptor.intercept(request("http://hello.spin.internal/"), parent.clone());
            assert_eq!(answer(chained).await.ok(), Some((200, "hello".into())));
            let unknown =
                interceptor.intercept(request("http://nobody.spin.internal/"), parent.clone());
            assert!(matches!(
                answer(unknown).await,
                Err(wasmtime_wasi_http::Error::DestinationNotFound)
            ));
        }
        // A relative URL goes through the router when the app serves HTTP, and is left to fail
        // (there is no origin) when it does not.
        for uri in ["https://:443/", "http://self.alt/anything"] {
            let served = with_server.intercept(request(uri), parent.clone());
            assert_eq!(
                answer(served).await.ok(),
                Some((200, "hello".into())),
                "{uri}"
            );
            assert!(
                matches!(
                    without_server.intercept(request(uri), parent.clone()),
                    Intercepted::Continue(_)
                ),
                "{uri}"
            );
        }
        let metrics = runtime.render_metrics().expect("metrics render");
        for trigger in ["chained", "self"] {
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with("runtime_host_requests_total")
                        && l.contains(&format!("trigger=\"{trigger}\""))
                        && l.contains("status=\"2xx\"")),
                "{trigger}: {metrics}"
            );
        }
    }
}
