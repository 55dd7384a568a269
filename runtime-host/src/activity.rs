//! A request's time limit counts from its last sign of progress, not from its start.
//!
//! A 2 GiB upload at a modest 20 MB/s takes well over a minute, and a component that streams it
//! on is working the whole time; a fixed deadline would cut it off. So every request-body frame
//! the component reads and every response-body frame the client takes pushes the deadline back.
//! A component that spins, or waits on something that never answers, still ends at the limit.
//!
//! The client can end an invocation too: when its request body falls below the minimum pace
//! ([`crate::body_pace`]) the body fails, the invocation is marked stalled, and it is cut
//! [`STALL_GRACE`] later if it has not ended by itself (time to clean up after the failed read).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// How long an invocation whose client stalled may run on before it is cut: enough to notice
/// the failed read, undo what it started (a pending row, an outgoing upload) and answer.
pub const STALL_GRACE: Duration = Duration::from_secs(2);

/// When an invocation last made progress. Cheap to clone; shared by its bodies and its store.
#[derive(Clone, Debug)]
pub struct Activity(Arc<Clock>);

#[derive(Debug)]
struct Clock {
    started: Instant,
    /// Microseconds after `started` of the latest progress.
    last_micros: AtomicU64,
    /// Microseconds after `started` (plus one, so 0 means never) at which the client stalled.
    stalled_micros: AtomicU64,
    stall: Notify,
}

/// Why [`Activity::bound`] stopped an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// It went its limit without progress.
    Idle,
    /// Its client stalled, and it was still running [`STALL_GRACE`] later.
    ClientStalled,
}

impl Activity {
    pub fn new() -> Self {
        Self(Arc::new(Clock {
            started: Instant::now(),
            last_micros: AtomicU64::new(0),
            stalled_micros: AtomicU64::new(0),
            stall: Notify::new(),
        }))
    }

    fn micros_now(&self) -> u64 {
        u64::try_from(self.0.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The client stopped sending its request body in time.
    pub fn stall(&self) {
        let now = self.micros_now().saturating_add(1);
        if self
            .0
            .stalled_micros
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.0.stall.notify_waiters();
        }
    }

    pub fn is_stalled(&self) -> bool {
        self.0.stalled_micros.load(Ordering::Relaxed) != 0
    }

    /// Resolves once the client has stalled.
    pub async fn stalled(&self) {
        loop {
            let notified = self.0.stall.notified();
            if self.is_stalled() {
                return;
            }
            notified.await;
        }
    }

    /// When a stalled invocation is cut; `None` while its client is keeping pace.
    fn cut_at(&self) -> Option<Instant> {
        match self.0.stalled_micros.load(Ordering::Relaxed) {
            0 => None,
            at => Some(self.0.started + Duration::from_micros(at - 1) + STALL_GRACE),
        }
    }

    /// Whether the invocation must stop now, and why (for the epoch callback).
    pub fn must_stop(&self, limit: Duration) -> Option<Cut> {
        if self.cut_at().is_some_and(|at| Instant::now() >= at) {
            Some(Cut::ClientStalled)
        } else if self.is_idle(limit) {
            Some(Cut::Idle)
        } else {
            None
        }
    }

    /// Records progress now.
    pub fn touch(&self) {
        let micros = self.micros_now();
        self.0.last_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// The instant at which the invocation times out unless it makes progress first.
    pub fn deadline(&self, limit: Duration) -> Instant {
        let last = Duration::from_micros(self.0.last_micros.load(Ordering::Relaxed));
        self.0.started + last + limit
    }

    pub fn is_idle(&self, limit: Duration) -> bool {
        Instant::now() >= self.deadline(limit)
    }

    /// Runs `work` until it finishes, goes `limit` without progress, or its client stalled
    /// [`STALL_GRACE`] ago.
    pub async fn bound<F: Future>(&self, limit: Duration, work: F) -> Result<F::Output, Cut> {
        tokio::pin!(work);
        loop {
            let deadline = match self.cut_at() {
                Some(cut) => cut.min(self.deadline(limit)),
                None => self.deadline(limit),
            };
            tokio::select! {
                output = &mut work => return Ok(output),
                () = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(cut) = self.must_stop(limit) {
                        return Err(cut);
                    }
                }
                // A stall moves the deadline closer: recompute it.
                () = self.stalled(), if !self.is_stalled() => {}
            }
        }
    }

    /// `body`, recording progress at every frame that passes through it.
    pub fn watch<B>(&self, body: B) -> WatchedBody<B> {
        WatchedBody {
            inner: body,
            activity: self.clone(),
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// A body that records progress on its [`Activity`] whenever a frame is taken from it.
pub struct WatchedBody<B> {
    inner: B,
    activity: Activity,
}

impl<B> Body for WatchedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            self.activity.touch();
        }
        polled
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
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn idle_work_ends_at_the_limit() {
        let activity = Activity::new();
        let limit = Duration::from_millis(200);
        let started = Instant::now();
        let outcome = activity.bound(limit, std::future::pending::<()>()).await;
        assert_eq!(outcome, Err(Cut::Idle));
        assert!(started.elapsed() >= limit);
    }

    #[tokio::test]
    async fn progress_pushes_the_deadline_back() {
        let activity = Activity::new();
        let limit = Duration::from_millis(300);
        // Five frames 100 ms apart: 500 ms in all, longer than the limit, never idle for it.
        let frames = futures::stream::unfold(0, |n| async move {
            if n == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"x"))),
                n + 1,
            ))
        });
        let body = activity.watch(StreamBody::new(Box::pin(frames)));
        let collected = activity.bound(limit, body.collect()).await;
        let bytes = collected
            .expect("progress kept it alive")
            .expect("the body is infallible")
            .to_bytes();
        assert_eq!(bytes.len(), 5);

        // The same limit with a stall longer than it in the middle.
        let activity = Activity::new();
        let frames = futures::stream::unfold(0, |n| async move {
            if n == 2 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(if n == 1 { 600 } else { 10 })).await;
            Some((
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"x"))),
                n + 1,
            ))
        });
        let body = activity.watch(StreamBody::new(Box::pin(frames)));
        assert!(activity.bound(limit, body.collect()).await.is_err());
    }

    #[tokio::test]
    async fn a_stalled_client_cuts_the_work_after_the_grace() {
        let activity = Activity::new();
        let limit = Duration::from_secs(60);
        let stall = {
            let activity = activity.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                activity.stall();
            }
        };
        let started = Instant::now();
        let (outcome, ()) =
            tokio::join!(activity.bound(limit, std::future::pending::<()>()), stall);
        assert_eq!(outcome, Err(Cut::ClientStalled));
        let took = started.elapsed();
        assert!(
            took >= STALL_GRACE && took < STALL_GRACE + Duration::from_secs(1),
            "{took:?}"
        );
        assert_eq!(activity.must_stop(limit), Some(Cut::ClientStalled));
    }
}
