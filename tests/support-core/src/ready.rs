//! Waiting for something to become ready: the one polling loop the tests share (a server's port,
//! a health URL, a value that shows up in a store).

use std::future::Future;
use std::time::Duration;

/// Pause between two checks: short, since everything polled is on loopback.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` until it gives a value, for up to `within`; `None` once that time is over.
/// `check` runs at least once, and once more after the deadline has passed, so a slow check
/// never loses its last chance.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until something accepts TCP connections on `address` (`host:port`).
pub async fn listening(address: &str, within: Duration) -> anyhow::Result<()> {
    eventually(within, || async {
        tokio::net::TcpStream::connect(address).await.ok().map(drop)
    })
    .await
    .ok_or_else(|| {
        anyhow::anyhow!(
            "nothing listening on {address} after {} s",
            within.as_secs()
        )
    })
}

/// Waits until `GET url` answers with a 2xx status.
pub async fn http_ok(url: &str, within: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    eventually(within, || async {
        let response = client.get(url).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await
    .ok_or_else(|| anyhow::anyhow!("{url} did not answer 2xx within {} s", within.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eventually_returns_the_first_value_or_gives_up() {
        let mut calls = 0;
        let found = eventually(Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(found, Some(3));

        let started = tokio::time::Instant::now();
        let never: Option<()> = eventually(Duration::from_millis(200), || async { None }).await;
        assert_eq!(never, None);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn listening_sees_a_bound_port_and_not_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let open = listener.local_addr().expect("its address").to_string();
        listening(&open, Duration::from_secs(2))
            .await
            .expect("a bound port is listening");
        drop(listener);
        let e = listening(&open, Duration::from_millis(200))
            .await
            .expect_err("a closed port is not");
        assert!(e.to_string().contains(&open), "{e}");
    }
}
