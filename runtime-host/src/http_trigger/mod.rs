//! The HTTP trigger: accepts connections, routes each request as Spin does, and answers.
//!
//! Runtime answers (never from a component): `/.well-known/spin/health` and `/info`; 404 with
//! an empty body when no route matches; 413 when the declared body is over the limit; 400 when
//! the request has no usable Host; 503 with `Retry-After` when a connection or request is over
//! the client limits ([`crate::admission`]); 408 when the client sent its body too slowly
//! ([`crate::body_pace`]) before a response; 504 when the request went its time limit without
//! progress (no body bytes read or written) before a response;
//! 500 when the component trapped or failed, with the reason in the log, not in the body.
//!
//! A client that does not finish its headers within the header timeout (counted from the
//! connection's start or its previous response) has its connection closed.
//!
//! The trigger owns HTTP invocation ([`invoke`]: a component's `wasi:http` handler run for a
//! request) and the requests components make to their own app ([`interceptor`]: relative URLs
//! and `http://<id>.spin.internal`, served in-process). The runtime only provides instances.

mod interceptor;
mod invoke;

pub use interceptor::InProcess;

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::activity::Activity;
use crate::admission::{Admission, RETRY_AFTER_SECS, Refusal, RequestTicket};
use crate::body_pace::{BodyPace, PacedBody};
use crate::client_limits::ClientLimits;
use crate::metrics::{Cause, Invocation, Trigger, status_class};
use crate::outbound_http::OutboundInterceptor;
use crate::routing::{Router, WELL_KNOWN_PREFIX};
use crate::runtime::{InvokeError, Runtime};

/// How long in-flight requests get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A refused connection's request is read (and dropped) for at most this long and this much
/// after its 503 is written, so that closing it does not reset the connection before the
/// client has read the answer.
const REFUSAL_DRAIN_TIME: Duration = Duration::from_secs(1);
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;

/// A failing accept (out of file descriptors, most often) is retried after this pause rather
/// than at once in a loop that would take a whole core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The client address a component sees on a request from its own app (chained or relative).
pub(crate) const IN_PROCESS_CLIENT: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

pub struct HttpTrigger {
    runtime: Arc<Runtime>,
    router: Router,
    max_body_bytes: u64,
    /// The listening address, which Spin uses as the origin of relative outbound URLs.
    origin: Authority,
    admission: Arc<Admission>,
    header_read_timeout: Duration,
    body_pace: BodyPace,
}

/// What [`HttpTrigger::route`] decided: the answer, and for the metrics and the log which
/// route and component it was and who answered.
struct Routed {
    response: Response<HyperOutgoingBody>,
    /// The manifest's route pattern, when one matched (or the well-known path answered).
    route: Option<Cow<'static, str>>,
    component: Option<String>,
    cause: Cause,
}

impl Routed {
    fn host(response: Response<HyperOutgoingBody>, cause: Cause) -> Self {
        Self {
            response,
            route: None,
            component: None,
            cause,
        }
    }
}

/// Who a request is from, for a public request (admitted against the client limits); `None`
/// for a request of the app's own (a relative URL), which belongs to one already admitted.
struct Public {
    client: IpAddr,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

impl HttpTrigger {
    /// A trigger serving on `local_addr`, the origin of components' relative outbound URLs.
    pub fn new(
        runtime: Arc<Runtime>,
        router: Router,
        max_body_bytes: u64,
        limits: &ClientLimits,
        admission: crate::admission::AdmissionLimits,
        local_addr: SocketAddr,
    ) -> anyhow::Result<Arc<Self>> {
        if router.contains_reserved_route() {
            tracing::error!(
                "routes under {WELL_KNOWN_PREFIX} are handled by the runtime and will never reach a component"
            );
        }
        let origin = Authority::try_from(local_addr.to_string())
            .map_err(|e| anyhow::anyhow!("{local_addr} is not a URI authority: {e}"))?;
        Ok(Arc::new(Self {
            runtime,
            router,
            max_body_bytes,
            origin,
            admission: Admission::new(admission),
            header_read_timeout: limits.header_read_timeout(),
            body_pace: limits.body_pace(),
        }))
    }

    /// The interceptor for the instances this trigger starts: it serves their requests to the
    /// app through this trigger.
    pub fn interceptor(self: &Arc<Self>) -> Arc<dyn OutboundInterceptor> {
        InProcess::new(self.runtime.clone(), Some(self.clone()))
    }

    /// Serves until `shutdown` resolves, then lets open connections finish (up to a grace period).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, client) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                            continue;
                        }
                    };
                    let ticket = match self.admission.admit_connection(client.ip()) {
                        Ok(ticket) => ticket,
                        Err(refusal) => {
                            self.runtime.metrics.refused(refusal.reason());
                            tracing::debug!(client = %client, reason = %refusal.message().trim_end(), "connection refused");
                            tokio::spawn(refuse_connection(stream, refusal));
                            continue;
                        }
                    };
                    // A response written in pieces (a streamed body, whose head may go out
                    // before the first chunk) must not wait on Nagle for the client's ACK.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(client = %client, error = %e, "cannot set TCP_NODELAY");
                    }
                    let this = self.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let this = this.clone();
                        async move { Ok::<_, Infallible>(this.handle(req, client).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .timer(TokioTimer::new())
                        .header_read_timeout(self.header_read_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(client = %client, error = %e, "connection ended with an error");
                        }
                        drop(ticket);
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!("shutting down: waiting for in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("grace period over; dropping open connections"),
        }
        Ok(())
    }

    /// A component's request to a relative URL. Spin sends it to the trigger's own address, so
    /// it arrives as a new request from outside: public routes only, Host = that address.
    pub(crate) async fn handle_self(
        self: &Arc<Self>,
        mut request: Request<WasiBody>,
        parent_request_id: Arc<str>,
    ) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let request_id: Arc<str> = Arc::from(format!("{parent_request_id}/self"));
        let path_and_query = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(http::uri::Scheme::HTTP)
            .authority(self.origin.clone())
            .path_and_query(path_and_query)
            .build();
        let host = HeaderValue::from_str(self.origin.as_str());
        let (Ok(uri), Ok(host)) = (uri, host) else {
            // Both are made of an authority and a path that already parsed.
            tracing::error!(request_id = %request_id, "cannot rebuild a relative request's URI");
            return text(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new());
        };
        *request.uri_mut() = uri;
        request.headers_mut().insert(http::header::HOST, host);
        self.route_and_log(
            request,
            IN_PROCESS_CLIENT,
            request_id,
            started,
            Trigger::SelfRequest,
            Activity::new(),
            None,
        )
        .await
    }

    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let request_id: Arc<str> = Arc::from(uuid::Uuid::now_v7().simple().to_string());
        let public = Public {
            client: self
                .admission
                .limits()
                .trusted_proxies
                .client(client.ip(), request.headers()),
        };
        let activity = Activity::new();
        let pace = self.body_pace;
        let paced_activity = activity.clone();
        let request = request.map(|body| PacedBody::new(body, pace, paced_activity));
        self.route_and_log(
            request,
            client,
            request_id,
            started,
            Trigger::Http,
            activity,
            Some(public),
        )
        .await
    }

    /// [`Self::route`], then the request's one log line.
    #[allow(clippy::too_many_arguments)]
    async fn route_and_log<B>(
        self: &Arc<Self>,
        request: Request<B>,
        client: SocketAddr,
        request_id: Arc<str>,
        started: Instant,
        trigger: Trigger,
        activity: Activity,
        public: Option<Public>,
    ) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let Routed {
            response,
            route,
            component,
            cause,
        } = self
            .route(request, client, request_id.clone(), activity, public)
            .await;
        let elapsed = started.elapsed();
        let component = component.as_deref().unwrap_or("-");
        self.runtime.metrics.record(&Invocation {
            trigger,
            route: route.as_deref().unwrap_or("-"),
            component,
            status: status_class(response.status()),
            cause,
            elapsed,
        });
        let message = match trigger {
            Trigger::SelfRequest => "self request",
            _ => "http request",
        };
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            component,
            status = response.status().as_u16(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "{message}"
        );
        response
    }

    async fn route<B>(
        self: &Arc<Self>,
        mut request: Request<B>,
        client: SocketAddr,
        request_id: Arc<str>,
        activity: Activity,
        public: Option<Public>,
    ) -> Routed
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let path = request.uri().path().to_owned();
        if let Some(well_known) = path.strip_prefix(WELL_KNOWN_PREFIX) {
            let (response, label) = self.well_known(well_known);
            let mut routed = Routed::host(response, Cause::Host);
            routed.route = Some(Cow::Borrowed(label));
            return routed;
        }
        let Some(route) = self.router.route(&path) else {
            return Routed::host(text(StatusCode::NOT_FOUND, Bytes::new()), Cause::NoRoute);
        };
        let answer = |response, cause| Routed {
            response,
            route: Some(Cow::Owned(route.raw_route.clone())),
            component: Some(route.component.clone()),
            cause,
        };
        let Some(component) = self.runtime.component(&route.component).cloned() else {
            tracing::error!(component = %route.component, "route points at an unknown component");
            return answer(
                text(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
                Cause::Failed,
            );
        };
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return answer(
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body exceeds the limit of {} bytes\n",
                        self.max_body_bytes
                    ),
                ),
                Cause::Rejected,
            );
        }
        if let Err(reason) = absolutize_uri(&mut request) {
            return answer(
                text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
                Cause::Rejected,
            );
        }
        // Admission last: a request refused for another reason takes no place.
        let ticket: Option<RequestTicket> = match public {
            Some(public) => match self.admission.admit_request(public.client, &path) {
                Ok(ticket) => Some(ticket),
                Err(refusal) => {
                    self.runtime.metrics.refused(refusal.reason());
                    return answer(unavailable(refusal), Cause::Admission);
                }
            },
            None => None,
        };
        request.headers_mut().remove(http::header::CONNECTION);
        let request = request.map(|body| LimitedBody::new(body, self.max_body_bytes));
        let result = invoke::invoke(
            &self.runtime,
            &component,
            request,
            &route,
            client,
            request_id.clone(),
            activity,
            ticket,
            self.interceptor(),
        )
        .await;
        let (response, cause) = match result {
            Ok(response) => (response, Cause::Component),
            Err(InvokeError::ClientTooSlow) => {
                tracing::info!(request_id = %request_id, component = %component.id(), "the client sent its request body too slowly");
                let pace = self.body_pace;
                let mut response = text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body arrived too slowly: it may pause at most {} s and must \
                         average {} bytes/s; send it again\n",
                        pace.idle.as_secs(),
                        pace.min_rate
                    ),
                );
                let headers = response.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                // The rest of the body is not worth waiting for.
                headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                (response, Cause::SlowBody)
            }
            Err(InvokeError::Timeout(limit)) => {
                tracing::error!(request_id = %request_id, component = %component.id(), "request timed out after {limit:?}");
                (
                    text(StatusCode::GATEWAY_TIMEOUT, "request timed out\n"),
                    Cause::Timeout,
                )
            }
            Err(e) => {
                tracing::error!(request_id = %request_id, component = %component.id(), error = %e, "component failed");
                (
                    text(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
                    Cause::Failed,
                )
            }
        };
        Routed {
            response,
            route: Some(Cow::Owned(route.raw_route)),
            component: Some(route.component),
            cause,
        }
    }

    /// The host's answer under [`WELL_KNOWN_PREFIX`], and its route label: the two paths the
    /// host serves, and one label for anything else under the prefix.
    fn well_known(&self, name: &str) -> (Response<HyperOutgoingBody>, &'static str) {
        match name {
            "health" => (text(StatusCode::OK, "OK"), "/.well-known/spin/health"),
            "info" => {
                let mut info = serde_json::json!({ "name": self.runtime.app_name });
                if let Some(v) = &self.runtime.app_version {
                    info["version"] = serde_json::Value::String(v.clone());
                }
                let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
                let mut response = text(StatusCode::OK, body);
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                (response, "/.well-known/spin/info")
            }
            _ => (
                text(StatusCode::NOT_FOUND, Bytes::new()),
                "/.well-known/spin/...",
            ),
        }
    }
}

/// 503 for a request over the client limits: why, and when to retry.
fn unavailable(refusal: Refusal) -> Response<HyperOutgoingBody> {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, refusal.message());
    let headers = response.headers_mut();
    headers.insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(RETRY_AFTER_SECS),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Answers a connection over the connection limits with 503 before reading its request, then
/// closes it once the client has had a moment to read the answer.
async fn refuse_connection(mut stream: TcpStream, refusal: Refusal) {
    let answer = refusal.raw_response();
    let drain = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while read < REFUSAL_DRAIN_BYTES {
            match stream.read(&mut buf).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_DRAIN_TIME, drain).await;
}

/// Gives the request an absolute URI (`http://<Host><path>`) as Spin does, refusing a request
/// whose Host header and URI authority disagree.
fn absolutize_uri<B>(request: &mut Request<B>) -> Result<(), String> {
    let header = match request.headers().get(http::header::HOST) {
        Some(h) => Some(
            h.to_str()
                .map_err(|_| "the Host header is not valid UTF-8".to_owned())?
                .parse::<http::uri::Authority>()
                .map_err(|_| "the Host header is not a valid authority".to_owned())?,
        ),
        None => None,
    };
    let mut parts = request.uri().clone().into_parts();
    let authority = match (header, parts.authority.take()) {
        (None, None) => return Err("no Host header".into()),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => return Err("the Host header does not match the request URI".into()),
    };
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *request.uri_mut() =
        http::Uri::from_parts(parts).map_err(|e| format!("invalid request URI: {e}"))?;
    Ok(())
}

/// A request body that fails once more than `limit` bytes have arrived, for bodies without a
/// Content-Length (chunked) or that lie about it.
pub struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
}

impl<B> LimitedBody<B> {
    pub fn new(inner: B, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.remaining {
                        let limit = self.limit;
                        self.remaining = 0;
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit)),
                        )));
                    }
                    self.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limited_body_fails_past_the_limit() {
        let body = Full::new(Bytes::from(vec![0u8; 10]));
        let collected = LimitedBody::new(body, 10).collect().await;
        assert!(collected.is_ok(), "exactly the limit passes");
        let body = Full::new(Bytes::from(vec![0u8; 11]));
        let collected = LimitedBody::new(body, 10).collect().await;
        assert!(matches!(
            collected,
            Err(wasmtime_wasi_http::Error::HttpRequestBodySize(Some(10)))
        ));
    }

    #[test]
    fn uris_are_made_absolute_from_host() {
        let mut r = Request::builder()
            .uri("/a?b=1")
            .header("host", "example.com:3000")
            .body(())
            .expect("request");
        absolutize_uri(&mut r).expect("absolutizes");
        assert_eq!(r.uri().to_string(), "http://example.com:3000/a?b=1");

        let mut r = Request::builder().uri("/a").body(()).expect("request");
        assert!(absolutize_uri(&mut r).is_err(), "no Host");

        let mut r = Request::builder()
            .uri("http://a.com/x")
            .header("host", "b.com")
            .body(())
            .expect("request");
        assert!(absolutize_uri(&mut r).is_err(), "mismatched Host");
    }
}
