//! One POST to a callback URL, after checking every address it would reach.
//!
//! The URL is checked again (the allow-list may have changed since it was stored), its host is
//! resolved here, and every address must be outside the refused ranges
//! (`vid2mp3_contracts::webhook::refused_range`) unless the operator listed the host. The HTTP
//! client is then pinned to exactly those addresses (`resolve_to_addrs`), so a second lookup
//! cannot answer differently (DNS rebinding). Redirects are never followed, proxies from the
//! environment are not used, and connecting and the whole request each have a time limit. The
//! answer's body is not read.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};
use vid2mp3_contracts::webhook::{
    AllowedHosts, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, check_url, refused_range,
};

/// Why a delivery did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Never retried: the URL or an address it resolves to is not allowed. Nothing was sent.
    #[error("refused: {0}")]
    Refused(String),
    /// Retried later: the receiver could not be reached, did not answer in time, or answered
    /// other than 2xx.
    #[error("{0}")]
    Failed(String),
}

/// One signed delivery.
pub struct Delivery<'a> {
    pub url: &'a str,
    pub id: &'a str,
    pub timestamp: u64,
    pub signature: &'a str,
    pub body: Vec<u8>,
}

/// Limits of one delivery.
#[derive(Debug, Clone)]
pub struct Limits {
    pub allowed: AllowedHosts,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// Sends `delivery`; Ok with the receiver's status when it was 2xx.
pub async fn send(delivery: Delivery<'_>, limits: &Limits) -> Result<u16, SendError> {
    let url = check_url(delivery.url, &limits.allowed)
        .map_err(|problem| SendError::Refused(problem.to_string()))?;
    let addresses = checked_addresses(&url, limits).await?;
    let mut client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.request_timeout)
        .user_agent("vid2mp3-webhooks/1");
    if let Some(Host::Domain(name)) = url.host() {
        client = client.resolve_to_addrs(name, &addresses);
    }
    let client = client
        .build()
        .map_err(|e| SendError::Failed(format!("cannot make an HTTP client: {e}")))?;
    let answer = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_ID, delivery.id)
        .header(HEADER_TIMESTAMP, delivery.timestamp.to_string())
        .header(HEADER_SIGNATURE, delivery.signature)
        .body(delivery.body)
        .send()
        .await
        .map_err(|e| SendError::Failed(describe(e, limits)))?;
    let status = answer.status();
    // The body is not needed; dropping the answer closes the connection unread.
    drop(answer);
    if status.is_success() {
        Ok(status.as_u16())
    } else if status.is_redirection() {
        Err(SendError::Failed(format!(
            "the receiver answered {status} (a redirect); webhooks do not follow redirects, so set the final URL"
        )))
    } else {
        Err(SendError::Failed(format!("the receiver answered {status}")))
    }
}

/// The addresses `url` reaches, each allowed (or the host listed by the operator).
async fn checked_addresses(url: &Url, limits: &Limits) -> Result<Vec<SocketAddr>, SendError> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| SendError::Refused("the callback URL has no port".into()))?;
    let addresses: Vec<SocketAddr> = match url.host() {
        None => return Err(SendError::Refused("the callback URL has no host".into())),
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(limits.connect_timeout, lookup).await {
                Err(_) => return Err(SendError::Failed(format!("looking up {name} timed out"))),
                Ok(Err(e)) => return Err(SendError::Failed(format!("cannot look up {name}: {e}"))),
                Ok(Ok(found)) => found.collect(),
            }
        }
    };
    if addresses.is_empty() {
        return Err(SendError::Failed("the host has no address".into()));
    }
    if !limits.allowed.allows(url) {
        // One refused address refuses the host: a name that mixes public and private addresses
        // could otherwise be steered to the private one.
        if let Some((address, range)) = addresses
            .iter()
            .find_map(|a| refused_range(a.ip()).map(|range| (a.ip(), range)))
        {
            return Err(SendError::Refused(format!(
                "{} resolves to {address}, a {range} address, which webhooks may not reach",
                url.host_str().unwrap_or_default()
            )));
        }
    }
    Ok(addresses)
}

/// Without the URL: its path or query may carry the receiver's own token, and this goes to the log.
fn describe(error: reqwest::Error, limits: &Limits) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        format!(
            "the receiver did not answer within {:?} (connecting: {:?})",
            limits.request_timeout, limits.connect_timeout
        )
    } else if error.is_connect() {
        format!("cannot connect to the receiver: {error}")
    } else {
        format!("the request failed: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(allowed: &str) -> Limits {
        Limits {
            allowed: AllowedHosts::parse(allowed).unwrap(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
        }
    }

    async fn send_to(url: &str, allowed: &str) -> Result<u16, SendError> {
        let delivery = Delivery {
            url,
            id: "id",
            timestamp: 1,
            signature: "v1,x",
            body: b"{}".to_vec(),
        };
        send(delivery, &limits(allowed)).await
    }

    /// A listener that counts the connections it accepts.
    async fn listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            // Held open, never answered.
            let mut open = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                open.push(s);
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_without_connecting() {
        let (port, seen) = listener().await;
        let answer = send_to(&format!("https://localhost:{port}/hook"), "").await;
        assert!(
            matches!(&answer, Err(SendError::Refused(why)) if why.contains("loopback")),
            "{answer:?}"
        );
        let literal = send_to(&format!("https://127.0.0.1:{port}/hook"), "").await;
        assert!(matches!(literal, Err(SendError::Refused(_))), "{literal:?}");
        let metadata = send_to("https://169.254.169.254/latest", "").await;
        assert!(
            matches!(metadata, Err(SendError::Refused(_))),
            "{metadata:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out() {
        let (port, seen) = listener().await;
        let started = std::time::Instant::now();
        let answer = send_to(
            &format!("http://127.0.0.1:{port}/hook"),
            &format!("127.0.0.1:{port}"),
        )
        .await;
        assert!(
            matches!(&answer, Err(SendError::Failed(why)) if why.contains("did not answer")),
            "{answer:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_never_repeats_the_url_and_its_token() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let answer = send_to(
            &format!("http://127.0.0.1:{port}/hook?token=s3cret-token"),
            &format!("127.0.0.1:{port}"),
        )
        .await;
        match answer {
            Err(SendError::Failed(why)) => {
                assert!(why.contains("cannot connect"), "{why}");
                assert!(!why.contains("s3cret-token"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let answer = send_to(
            &format!("http://127.0.0.1:{port}/hook"),
            &format!("127.0.0.1:{port}"),
        )
        .await;
        assert!(
            matches!(&answer, Err(SendError::Failed(why)) if why.contains("redirect")),
            "{answer:?}"
        );
    }
}
