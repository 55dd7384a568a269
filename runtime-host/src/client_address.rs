//! Which address a request comes from, for the per-client limits.
//!
//! Behind a reverse proxy every connection comes from the proxy, so one busy client would use up
//! the proxy's share for everyone. Proxies the operator names (`--trusted-proxy CIDR`) are
//! believed about the client they forwarded for; nobody else is, since any client can send any
//! header. The rule, which the components apply the same way:
//!
//! 1. The TCP peer is not in a trusted range: the client is the peer; headers are ignored.
//! 2. Otherwise the hops are read from the one header the operator's proxies write
//!    (`X-Forwarded-For` by default, or RFC 7239 `Forwarded` `for=`), every line of it in order,
//!    and walked from the right (the hop the nearest proxy added) to the left: a hop in a trusted
//!    range is skipped; the first one that is not is the client.
//! 3. A hop that is not an IP address (`unknown`, an obfuscated name, garbage) ends the walk: the
//!    client is the trusted address examined just before it, since nothing further left can be
//!    believed. The same holds when the header is absent (the client is the peer itself).
//! 4. Every hop trusted: the client is the leftmost one.
//!
//! Ports (`1.2.3.4:5678`, `"[2001:db8::1]:80"`) are dropped; an IPv4-mapped IPv6 address counts as
//! the IPv4 address it carries.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

/// Which header trusted proxies record the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, ingress-nginx, Traefik, Envoy, most load balancers).
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    #[value(name = "forwarded")]
    Forwarded,
}

/// The trusted proxy ranges and the header they write.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
    header: ForwardedHeader,
}

/// A `--trusted-proxy` value: a CIDR range, or a single address (a /32 or /128).
pub fn parse_range(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| format!("{s:?} is not a CIDR range (e.g. 10.0.0.0/8) or an IP address"))
}

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { ranges, header }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.ranges.iter().any(|range| range.contains(&address))
    }

    /// The client a request from `peer` with `headers` is counted as.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = match self.header {
            ForwardedHeader::XForwardedFor => headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect(),
            ForwardedHeader::Forwarded => headers
                .get_all(http::header::FORWARDED)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(forwarded_for)
                .collect(),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = hop_address(hop) else {
                return client;
            };
            if !self.trusts(address) {
                return address;
            }
            client = address;
        }
        client
    }
}

/// The `for=` parameter of one `Forwarded` element, or "" when it has none (which ends the walk).
fn forwarded_for(element: &str) -> &str {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .map(|(_, value)| value.trim())
        .unwrap_or("")
}

/// An address from a hop as proxies write it: bare, quoted, with a port, IPv6 in brackets.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(address) = IpAddr::from_str(hop) {
        return Some(canonical(address));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (v6, _port) = rest.split_once(']')?;
        return IpAddr::from_str(v6).ok().map(canonical);
    }
    let (v4, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    std::net::Ipv4Addr::from_str(v4).ok().map(IpAddr::V4)
}

/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn proxies(ranges: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(
            ranges.iter().map(|r| parse_range(r).unwrap()).collect(),
            header,
        )
    }

    #[test]
    fn ranges_parse_as_cidrs_or_single_addresses() {
        assert_eq!(parse_range("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_range("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(parse_range("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert!(parse_range("10.0.0.0/33").is_err());
        assert!(parse_range("proxy.local").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let none = TrustedProxies::default();
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(none.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        let some = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(some.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client put a fake address first; the proxy appended the real peer it saw.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // Two trusted proxies in a row, and the list split over two header lines.
        let h = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9", "10.9.9.9"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // With a port, and a mapped address.
        let h = headers("x-forwarded-for", &["203.0.113.9:5555"]);
        assert_eq!(p.client(ip("::ffff:10.1.2.3"), &h), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(p.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        // Every hop trusted: the leftmost.
        let h = headers("x-forwarded-for", &["10.0.0.5, 10.0.0.6"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn a_hop_that_is_not_an_address_stops_the_walk() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["203.0.113.9, unknown, 10.0.0.6"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("10.0.0.6"));
        let h = headers("x-forwarded-for", &["garbage"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_is_read_only_when_configured() {
        let forwarded = headers(
            "forwarded",
            &["for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https, For=10.0.0.6"],
        );
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        assert_eq!(p.client(ip("10.1.2.3"), &forwarded), ip("2001:db8::7"));
        // A proxy that writes X-Forwarded-For passes a client's own Forwarded header through:
        // reading it then would let the client choose its address.
        let xff = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(xff.client(ip("10.1.2.3"), &forwarded), ip("10.1.2.3"));
        // An element without for= ends the walk at the proxy before it.
        let h = headers("forwarded", &["for=203.0.113.9, proto=https"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("10.1.2.3"));
        let h = headers("forwarded", &["for=_hidden, for=10.0.0.6"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), ip("10.0.0.6"));
    }
}
