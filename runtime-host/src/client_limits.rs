//! `runtime-host up`'s limits on what clients may hold: slow headers, slow bodies, too many
//! connections or requests. Spin leaves these to the ingress in front of it; runtime-host
//! serves clients directly, so it has its own (runtime-host/README.md states each rule).

use std::time::Duration;

use ipnet::IpNet;

use crate::admission::{AdmissionLimits, PriorityRoutes};
use crate::body_pace::BodyPace;
use crate::client_address::{ForwardedHeader, TrustedProxies, parse_range};

/// The flags, with their defaults; [`Default`] gives the same values.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientLimits {
    /// Seconds a client has to send a request's headers, from when its connection opens or its
    /// previous response ends (so also how long an idle keep-alive connection stays open).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,
    /// Longest wait for request-body bytes, in seconds; with --request-body-min-rate, the most
    /// waiting time a body can bank. A body that falls behind ends with 408.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_body_idle_secs: u64,
    /// Bytes per second a request body must average while the host waits for it (0: only
    /// --request-body-idle-secs applies).
    #[arg(long, default_value_t = 1024)]
    pub request_body_min_rate: u64,
    /// Public requests served at once (each holds a component instance); more get 503 with
    /// Retry-After.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrent_requests: u64,
    /// Public requests one client address may have in progress at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests_per_client: u64,
    /// A request path that may use the reserved slots (--priority-requests) when the rest are
    /// taken: exact (/healthz) or a prefix (/status/...). Repeatable.
    #[arg(long = "priority-route", value_name = "ROUTE")]
    pub priority_routes: Vec<String>,
    /// Requests kept in reserve, beyond --max-concurrent-requests, for the priority routes.
    #[arg(long, default_value_t = 8)]
    pub priority_requests: u64,
    /// Open connections in all; more are answered 503 and closed.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Open connections from one client address (a trusted proxy's are not counted per address).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_client: u64,
    /// A proxy whose forwarding header is believed, as a CIDR range or an address. Repeatable;
    /// none by default (every client is its TCP peer).
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_range)]
    pub trusted_proxies: Vec<IpNet>,
    /// The header trusted proxies name the client in.
    #[arg(long, value_enum, default_value_t = ForwardedHeader::XForwardedFor)]
    pub client_address_header: ForwardedHeader,
    /// Component instances the pool holds at once: public requests, their reserve, and every
    /// chained, relative and Redis-triggered instance.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_instances: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 20,
            request_body_idle_secs: 20,
            request_body_min_rate: 1024,
            max_concurrent_requests: 128,
            max_requests_per_client: 32,
            priority_routes: Vec::new(),
            priority_requests: 8,
            max_connections: 4096,
            max_connections_per_client: 64,
            trusted_proxies: Vec::new(),
            client_address_header: ForwardedHeader::XForwardedFor,
            max_instances: 200,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientLimitsError {
    #[error(
        "--max-concurrent-requests ({requests}) plus --priority-requests ({reserve}) must leave \
         slots of the instance pool (--max-instances {instances}) for chained and Redis instances; \
         lower them or raise --max-instances"
    )]
    PoolTooSmall {
        requests: u64,
        reserve: u64,
        instances: u32,
    },
    #[error("{0}")]
    PriorityRoute(String),
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl ClientLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn body_pace(&self) -> BodyPace {
        BodyPace {
            idle: Duration::from_secs(self.request_body_idle_secs),
            min_rate: self.request_body_min_rate,
        }
    }

    /// The admission limits, checked against the pool they must fit in.
    pub fn admission(&self) -> Result<AdmissionLimits, ClientLimitsError> {
        let public = self
            .max_concurrent_requests
            .saturating_add(self.priority_requests);
        if public >= u64::from(self.max_instances) {
            return Err(ClientLimitsError::PoolTooSmall {
                requests: self.max_concurrent_requests,
                reserve: self.priority_requests,
                instances: self.max_instances,
            });
        }
        Ok(AdmissionLimits {
            max_concurrent_requests: count(self.max_concurrent_requests),
            max_requests_per_client: count(self.max_requests_per_client),
            priority_requests: count(self.priority_requests),
            priority_routes: PriorityRoutes::parse(&self.priority_routes)
                .map_err(ClientLimitsError::PriorityRoute)?,
            max_connections: count(self.max_connections),
            max_connections_per_client: count(self.max_connections_per_client),
            trusted_proxies: TrustedProxies::new(
                self.trusted_proxies.clone(),
                self.client_address_header,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: ClientLimits,
    }

    #[test]
    fn the_flag_defaults_are_the_default() {
        let parsed = Cli::parse_from(["x"]).limits;
        let default = ClientLimits::default();
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
        assert!(default.admission().is_ok());
    }

    #[test]
    fn flags_parse_and_are_checked_against_the_pool() {
        let parsed = Cli::parse_from([
            "x",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "192.0.2.1",
            "--priority-route",
            "/healthz",
            "--client-address-header",
            "forwarded",
            "--max-concurrent-requests",
            "195",
        ])
        .limits;
        assert_eq!(parsed.trusted_proxies.len(), 2);
        assert_eq!(parsed.client_address_header, ForwardedHeader::Forwarded);
        let e = parsed.admission().unwrap_err();
        assert!(e.to_string().contains("--max-instances"), "{e}");
        assert!(Cli::try_parse_from(["x", "--trusted-proxy", "nope"]).is_err());
        assert!(Cli::try_parse_from(["x", "--max-connections", "0"]).is_err());
        let bad_route = Cli::parse_from(["x", "--priority-route", "healthz"]).limits;
        assert!(bad_route.admission().is_err());
    }
}
