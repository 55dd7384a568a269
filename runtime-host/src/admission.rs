//! What clients may hold at once, decided before a connection is served or a request takes a
//! component instance.
//!
//! Every instance takes a slot of the pooling allocator, and a request that finds none free
//! cannot run at all: with nothing in front of the pool, a few hundred clients that each hold
//! a request open took every slot and every route answered 500, health checks included. So a
//! request is admitted, or refused with 503 and `Retry-After`, before it is instantiated:
//!
//! - at most `max_concurrent_requests` at once, plus `priority_requests` more kept for the
//!   routes the operator names (`--priority-route`, e.g. the app's health and readiness
//!   routes), so those still answer while the rest is full;
//! - at most `max_requests_per_client` of them from one client address
//!   ([`crate::client_address`]);
//! - connections likewise: `max_connections` in all and `max_connections_per_client` from one
//!   TCP peer (a trusted proxy's connections count only towards the total).
//!
//! Chained, relative and Redis instances are not admitted here (they belong to work already
//! admitted); the pool keeps the rest of its slots for them ([`crate::runtime`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::client_address::TrustedProxies;

/// What a refused client is told to wait: an instance is usually done in well under a second.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The limits, from `runtime-host up`'s flags ([`crate::ClientLimits`]).
#[derive(Debug, Clone)]
pub struct AdmissionLimits {
    pub max_concurrent_requests: usize,
    pub max_requests_per_client: usize,
    pub priority_requests: usize,
    pub priority_routes: PriorityRoutes,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub trusted_proxies: TrustedProxies,
}

/// Request paths that may use the reserved slots: exact (`/healthz`) or a prefix in Spin's
/// wildcard form (`/status/...` matches `/status` and everything under it).
#[derive(Debug, Clone, Default)]
pub struct PriorityRoutes(Vec<String>);

impl PriorityRoutes {
    pub fn parse(routes: &[String]) -> Result<Self, String> {
        let mut parsed = Vec::new();
        for route in routes {
            if !route.starts_with('/') {
                return Err(format!(
                    "priority route {route:?} must be a path starting with / (e.g. /healthz or /status/...)"
                ));
            }
            parsed.push(route.clone());
        }
        Ok(Self(parsed))
    }

    pub fn matches(&self, path: &str) -> bool {
        self.0.iter().any(|route| match route.strip_suffix("/...") {
            Some(prefix) => {
                path == prefix
                    || prefix.is_empty()
                    || path
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            None => path == route,
        })
    }
}

/// Why a connection or request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Requests(usize),
    ClientRequests(usize),
    Connections(usize),
    ClientConnections(usize),
}

impl Refusal {
    /// The limit, as the metrics' `reason` label names it.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Requests(_) => "requests",
            Refusal::ClientRequests(_) => "client_requests",
            Refusal::Connections(_) => "connections",
            Refusal::ClientConnections(_) => "client_connections",
        }
    }

    /// The 503's body: what is full and when to try again.
    pub fn message(&self) -> String {
        let retry = RETRY_AFTER_SECS;
        match self {
            Refusal::Requests(n) => format!(
                "the server is handling {n} requests, the most it takes at once; retry in {retry} s\n"
            ),
            Refusal::ClientRequests(n) => format!(
                "your address already has {n} requests in progress, the most one client may have; \
                 retry in {retry} s, once one has finished\n"
            ),
            Refusal::Connections(n) => format!(
                "the server has {n} connections open, the most it takes; retry in {retry} s\n"
            ),
            Refusal::ClientConnections(n) => format!(
                "your address already has {n} connections open, the most one client may have; \
                 close an idle one or retry in {retry} s\n"
            ),
        }
    }

    /// The whole HTTP/1.1 answer for a connection refused before its request was read.
    pub fn raw_response(&self) -> Vec<u8> {
        let body = self.message();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
             retry-after: {RETRY_AFTER_SECS}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

#[derive(Default)]
struct Counts {
    requests: usize,
    client_requests: HashMap<IpAddr, usize>,
    connections: usize,
    client_connections: HashMap<IpAddr, usize>,
}

pub struct Admission {
    limits: AdmissionLimits,
    counts: Mutex<Counts>,
}

/// An admitted request; its place is given back when this is dropped (when its instance ends).
pub struct RequestTicket {
    admission: Arc<Admission>,
    client: IpAddr,
}

/// An admitted connection; given back on drop.
pub struct ConnectionTicket {
    admission: Arc<Admission>,
    /// `None` for a trusted proxy, whose connections count only towards the total.
    peer: Option<IpAddr>,
}

fn give_back(map: &mut HashMap<IpAddr, usize>, address: IpAddr) {
    if let Some(n) = map.get_mut(&address) {
        *n -= 1;
        if *n == 0 {
            map.remove(&address);
        }
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Counts stay consistent even if a holder panicked: every update is a single step.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn admit_connection(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionTicket, Refusal> {
        let per_client = !self.limits.trusted_proxies.trusts(peer);
        let mut counts = self.counts();
        if counts.connections >= self.limits.max_connections {
            return Err(Refusal::Connections(self.limits.max_connections));
        }
        if per_client {
            let n = counts.client_connections.entry(peer).or_insert(0);
            if *n >= self.limits.max_connections_per_client {
                let limit = self.limits.max_connections_per_client;
                if *n == 0 {
                    counts.client_connections.remove(&peer);
                }
                return Err(Refusal::ClientConnections(limit));
            }
            *n += 1;
        }
        counts.connections += 1;
        Ok(ConnectionTicket {
            admission: self.clone(),
            peer: per_client.then_some(peer),
        })
    }

    /// Admits a request from `client` (as [`TrustedProxies::client`] resolved it) for `path`.
    pub fn admit_request(
        self: &Arc<Self>,
        client: IpAddr,
        path: &str,
    ) -> Result<RequestTicket, Refusal> {
        let limit = if self.limits.priority_routes.matches(path) {
            self.limits.max_concurrent_requests + self.limits.priority_requests
        } else {
            self.limits.max_concurrent_requests
        };
        let mut counts = self.counts();
        if counts.requests >= limit {
            return Err(Refusal::Requests(self.limits.max_concurrent_requests));
        }
        let n = counts.client_requests.entry(client).or_insert(0);
        if *n >= self.limits.max_requests_per_client {
            let limit = self.limits.max_requests_per_client;
            if *n == 0 {
                counts.client_requests.remove(&client);
            }
            return Err(Refusal::ClientRequests(limit));
        }
        *n += 1;
        counts.requests += 1;
        Ok(RequestTicket {
            admission: self.clone(),
            client,
        })
    }

    /// Requests and connections held now.
    #[cfg(test)]
    pub fn in_use(&self) -> (usize, usize) {
        let counts = self.counts();
        (counts.requests, counts.connections)
    }
}

impl Drop for RequestTicket {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.requests -= 1;
        give_back(&mut counts.client_requests, self.client);
    }
}

impl Drop for ConnectionTicket {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.connections -= 1;
        if let Some(peer) = self.peer {
            give_back(&mut counts.client_connections, peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            max_concurrent_requests: 4,
            max_requests_per_client: 3,
            priority_requests: 1,
            priority_routes: PriorityRoutes::parse(&["/healthz".into(), "/status/...".into()])
                .unwrap(),
            max_connections: 5,
            max_connections_per_client: 2,
            trusted_proxies: TrustedProxies::new(
                vec!["10.0.0.0/8".parse().unwrap()],
                Default::default(),
            ),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn priority_routes_match_exactly_or_by_prefix() {
        let routes = limits().priority_routes;
        assert!(routes.matches("/healthz"));
        assert!(!routes.matches("/healthz/x"));
        assert!(!routes.matches("/healthzz"));
        assert!(routes.matches("/status"));
        assert!(routes.matches("/status/a/b"));
        assert!(!routes.matches("/statusx"));
        assert!(PriorityRoutes::parse(&["healthz".into()]).is_err());
    }

    #[test]
    fn requests_are_capped_per_client_and_in_all_with_a_reserve() {
        let admission = Admission::new(limits());
        let a: Vec<_> = (0..3)
            .map(|_| admission.admit_request(ip("192.0.2.1"), "/x").unwrap())
            .collect();
        assert_eq!(
            admission.admit_request(ip("192.0.2.1"), "/x").err(),
            Some(Refusal::ClientRequests(3))
        );
        let b = admission.admit_request(ip("192.0.2.2"), "/x").unwrap();
        assert_eq!(
            admission.admit_request(ip("192.0.2.3"), "/x").err(),
            Some(Refusal::Requests(4))
        );
        // The reserve: a priority route still gets in, once.
        let probe = admission
            .admit_request(ip("192.0.2.3"), "/healthz")
            .unwrap();
        assert_eq!(
            admission.admit_request(ip("192.0.2.4"), "/status/db").err(),
            Some(Refusal::Requests(4))
        );
        drop(probe);
        drop(b);
        drop(a);
        assert_eq!(admission.in_use(), (0, 0));
        assert!(admission.counts().client_requests.is_empty());
    }

    #[test]
    fn connections_are_capped_per_peer_except_trusted_proxies() {
        let admission = Admission::new(limits());
        let mine: Vec<_> = (0..2)
            .map(|_| admission.admit_connection(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(
            admission.admit_connection(ip("192.0.2.1")).err(),
            Some(Refusal::ClientConnections(2))
        );
        let proxied: Vec<_> = (0..3)
            .map(|_| admission.admit_connection(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(
            admission.admit_connection(ip("10.0.0.1")).err(),
            Some(Refusal::Connections(5))
        );
        drop(mine);
        drop(proxied);
        assert_eq!(admission.in_use(), (0, 0));
        assert!(admission.counts().client_connections.is_empty());
    }

    #[test]
    fn refusals_say_what_is_full_and_when_to_retry() {
        let raw = String::from_utf8(Refusal::ClientConnections(64).raw_response()).unwrap();
        assert!(
            raw.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{raw}"
        );
        assert!(raw.contains("\r\nretry-after: 1\r\n"), "{raw}");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("64 connections") && body.contains("retry in 1 s"));
    }
}
