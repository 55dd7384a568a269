//! The client for components' outbound `http://` requests to other hosts: keep-alive
//! connections pooled per host for the whole process, as Spin pools them.
//!
//! wasmtime-wasi-http's default client opens a TCP connection per request and closes it after
//! the response. Besides the handshake on both sides, every request then leaves a socket in
//! TIME_WAIT for a minute: a gateway answering a few hundred status requests a second to a
//! storage API on another pod would run through the ephemeral ports. `https://` requests (rare
//! here: the mail provider's API) and requests that set their own connect timeout still go
//! through the default client.

use std::error::Error as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Sleep;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// wasmtime-wasi-http's default for each of the three request timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long an unused connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Unused connections kept per host; more concurrent requests open more, then close them.
const MAX_IDLE_PER_HOST: usize = 64;

pub struct PooledHttpClient {
    client: Client<HttpConnector, WasiBody>,
}

impl Default for PooledHttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(DEFAULT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .build(connector);
        Self { client }
    }
}

impl PooledHttpClient {
    /// Whether this client can send a request with these options: plain HTTP, and a connect
    /// timeout equal to the pool's (a connection may be reused, so a per-request one cannot hold).
    pub fn handles(uri: &http::Uri, options: Option<&RequestOptions>) -> bool {
        uri.scheme() == Some(&http::uri::Scheme::HTTP)
            && options
                .and_then(|o| o.connect_timeout)
                .is_none_or(|t| t == DEFAULT_TIMEOUT)
    }

    /// Sends `request` (absolute URI) over a pooled connection, with the first-byte and
    /// between-bytes timeouts the default client applies.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let between_bytes = options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let response = tokio::time::timeout(first_byte, self.client.request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(client_error)?;
        Ok(response.map(|incoming| {
            BetweenBytes::new(incoming.map_err(HttpError::from), between_bytes).boxed_unsync()
        }))
    }
}

/// The wasi-http error for a failed pooled request: the connection's I/O error where there is
/// one (refused, reset, unreachable), else hyper's.
fn client_error(error: hyper_util::client::legacy::Error) -> HttpError {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return HttpError::Connect(io::Error::new(io.kind(), io.to_string()));
        }
        source = cause.source();
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && hyper.is_timeout()
        {
            return HttpError::HttpResponseTimeout;
        }
        source = cause.source();
    }
    HttpError::InternalError(Some(error.to_string()))
}

/// A response body that fails when no frame arrives for `limit`.
struct BetweenBytes<B> {
    inner: B,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> BetweenBytes<B> {
    fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> Body for BetweenBytes<B>
where
    B: Body<Data = Bytes, Error = HttpError> + Unpin,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + self.limit;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(frame)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
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

    #[test]
    fn only_plain_http_with_the_pools_connect_timeout_is_pooled() {
        let http: http::Uri = "http://storage:8081/x".parse().expect("a URI");
        let https: http::Uri = "https://api.example.com/x".parse().expect("a URI");
        let with_connect = |t| RequestOptions {
            connect_timeout: Some(t),
            first_byte_timeout: None,
            between_bytes_timeout: None,
        };
        assert!(PooledHttpClient::handles(&http, None));
        assert!(PooledHttpClient::handles(
            &http,
            Some(&with_connect(DEFAULT_TIMEOUT))
        ));
        assert!(!PooledHttpClient::handles(
            &http,
            Some(&with_connect(Duration::from_secs(2)))
        ));
        assert!(!PooledHttpClient::handles(&https, None));
    }
}
