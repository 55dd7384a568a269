//! `--metrics-listen`: the metrics on a listener of their own, never the app's, so that a
//! scraper can be let in by address while clients of the app never see them.
//!
//! Only `GET /metrics` is served (404 for any other path, 405 for any other method). The
//! listener is bounded like the app's: a client has [`HEADER_READ_TIMEOUT`] for a request's
//! head, and at most [`MAX_CONNECTIONS`] connections are open at once (more are closed at once).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::runtime::Runtime;

/// A scraper sends its request at once; anything slower is not one.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Scrapers are few (a Prometheus or two, a person with curl).
const MAX_CONNECTIONS: usize = 16;

/// A failing accept is retried after this pause rather than in a loop that takes a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `runtime`'s metrics on `listener` until `shutdown` resolves.
pub async fn serve(
    runtime: Arc<Runtime>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics listener: accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    tracing::debug!(peer = %peer, "metrics listener: too many connections; closing one");
                    drop(stream);
                    continue;
                };
                let runtime = runtime.clone();
                let service = hyper::service::service_fn(move |request| {
                    let runtime = runtime.clone();
                    async move { Ok::<_, Infallible>(answer(&runtime, &request)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(peer = %peer, error = %e, "metrics connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => return,
        }
    }
}

fn answer(runtime: &Runtime, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "only /metrics is served here\n".into(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match runtime.render_metrics() {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render the metrics");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the metrics; see runtime-host's log\n".into(),
            )
        }
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
