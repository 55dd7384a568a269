//! A minimum pace for request bodies, so a client that sends slowly cannot hold an instance.
//!
//! A client trickling a body at a byte a second never trips the request time limit (every byte
//! is progress), and a few hundred of them held every instance of the pool. A body is therefore
//! timed, but only while the host is waiting for it: when the component is busy elsewhere (its
//! storage slow, say), the client is not asked for bytes and is not blamed for not sending any.
//!
//! The rule is a credit of waiting time: a body starts with `idle` seconds of it, every second
//! the host waits for a frame spends one, and every `min_rate` bytes received earn one back, up
//! to `idle` again. At zero, the body fails (the component sees its read fail) and the
//! invocation is told the client stalled ([`Activity::stall`]), which ends it with 408. So a body
//! that stops is cut after `idle` seconds, one that trickles at `r < min_rate` bytes/s after
//! about `idle / (1 - r/min_rate)` seconds of waiting, and one at `min_rate` or faster never.
//! With `min_rate` 0 only the pause is limited: any byte restores the whole credit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::activity::Activity;

/// How slowly a request body may arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// The longest wait for body bytes, and the most waiting time a fast start can bank.
    pub idle: Duration,
    /// Bytes per second of waiting a body must average; 0 limits pauses only.
    pub min_rate: u64,
}

impl BodyPace {
    /// The waiting time `bytes` earn.
    fn earned(&self, bytes: usize) -> Duration {
        if self.min_rate == 0 {
            self.idle
        } else {
            Duration::from_secs_f64(bytes as f64 / self.min_rate as f64)
        }
    }
}

/// A request body that fails once its client falls below the [`BodyPace`].
pub struct PacedBody<B> {
    inner: B,
    pace: BodyPace,
    activity: Activity,
    credit: Duration,
    /// Since when the host has been asking for a frame that has not come.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl<B> PacedBody<B> {
    pub fn new(inner: B, pace: BodyPace, activity: Activity) -> Self {
        Self {
            inner,
            pace,
            activity,
            credit: pace.idle,
            waiting_since: None,
            timer: None,
            stalled: false,
        }
    }
}

impl<B> Body for PacedBody<B>
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
        if self.stalled {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(since) = self.waiting_since.take() {
                    self.credit = self.credit.saturating_sub(since.elapsed());
                }
                self.timer = None;
                let len = frame.data_ref().map_or(0, Bytes::len);
                let credit = self.credit + self.pace.earned(len);
                self.credit = credit.min(self.pace.idle);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let now = Instant::now();
                let since = *self.waiting_since.get_or_insert(now);
                let deadline = since + self.credit;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.stalled = true;
                self.timer = None;
                self.activity.stall();
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)))
            }
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
    use http_body_util::{BodyExt, StreamBody};

    /// `n` frames of `size` bytes, `gap` apart.
    fn trickle(
        n: usize,
        size: usize,
        gap: Duration,
    ) -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>>>
    {
        StreamBody::new(Box::pin(futures::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(gap).await;
            Some((Ok(Frame::data(Bytes::from(vec![b'x'; size]))), i + 1))
        })))
    }

    fn pace(idle_ms: u64, min_rate: u64) -> BodyPace {
        BodyPace {
            idle: Duration::from_millis(idle_ms),
            min_rate,
        }
    }

    #[tokio::test]
    async fn a_body_at_the_minimum_rate_or_faster_passes() {
        let activity = Activity::new();
        // 200 bytes every 100 ms, twice the minimum, for five times the idle limit.
        let body = PacedBody::new(
            trickle(15, 200, Duration::from_millis(100)),
            pace(300, 1000),
            activity.clone(),
        );
        let bytes = body.collect().await.expect("kept pace").to_bytes();
        assert_eq!(bytes.len(), 3000);
        assert!(!activity.is_stalled());
    }

    #[tokio::test]
    async fn a_trickle_below_the_rate_is_cut_and_the_activity_told() {
        let activity = Activity::new();
        // 20 B/s against 1000 B/s: each 50 ms wait earns 1 ms back.
        let started = Instant::now();
        let body = PacedBody::new(
            trickle(1000, 1, Duration::from_millis(50)),
            pace(300, 1000),
            activity.clone(),
        );
        let outcome = body.collect().await;
        assert!(
            matches!(
                outcome,
                Err(wasmtime_wasi_http::Error::ConnectionReadTimeout)
            ),
            "cut"
        );
        assert!(activity.is_stalled());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "cut after about idle / (1 - r/min_rate): {waited:?}"
        );
    }

    #[tokio::test]
    async fn a_pause_longer_than_idle_is_cut_even_after_a_fast_start() {
        let activity = Activity::new();
        let frames = futures::stream::iter(vec![Ok::<_, std::convert::Infallible>(Frame::data(
            Bytes::from(vec![b'x'; 1 << 20]),
        ))])
        .chain(futures::stream::pending());
        let body = PacedBody::new(
            StreamBody::new(Box::pin(frames)),
            pace(300, 1000),
            activity.clone(),
        );
        let started = Instant::now();
        assert!(body.collect().await.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn with_no_minimum_rate_only_pauses_count() {
        let activity = Activity::new();
        // A byte every 100 ms: slow, but never a pause of 300 ms.
        let body = PacedBody::new(
            trickle(10, 1, Duration::from_millis(100)),
            pace(300, 0),
            activity.clone(),
        );
        assert_eq!(body.collect().await.expect("no pause").to_bytes().len(), 10);
    }

    use futures::StreamExt as _;
}
