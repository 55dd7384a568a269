//! Waiting that a shutdown cuts short.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Sleeps unless shut down first; returns false when shut down.
pub async fn pause(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
