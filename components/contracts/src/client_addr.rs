//! Which address a request came from, also behind a reverse proxy (the cluster's ingress).
//!
//! Behind a proxy every request's direct peer is the proxy, so per-address limits would count the
//! whole world as one client. The proxy says who its own peer was in `X-Forwarded-For` (or
//! `Forwarded: for=`), appending to whatever the client sent; anything left of the proxy's entry
//! was written by the client and may be a lie. So:
//!
//! - the header is read **only when the direct peer is a trusted proxy**; from anyone else it is
//!   ignored and the peer is the client, whatever the header says;
//! - the client is the **rightmost** address in the header that is not itself a trusted proxy
//!   (walking right to left over the proxies' own entries);
//! - an entry that is not an address (`unknown`, an obfuscated name, garbage) stops the walk: the
//!   nearest trusted hop is then the best-known client;
//! - at most [`MAX_HOPS`] entries are looked at.
//!
//! Only one header is read, the one the proxy writes ([`ForwardedHeader`]): a proxy that appends
//! to `X-Forwarded-For` passes a client's `Forwarded` header through untouched, so reading both
//! would let a client pick the one it forged. runtime-host's per-address connection caps
//! (`--trusted-proxy`) follow the same rule.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// How many header entries, from the right, are looked at: more proxies than this in a row is
/// not a real deployment.
pub const MAX_HOPS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyConfigError {
    #[error("'{0}' is not an IP address or CIDR range (like 10.0.0.0/8, 192.168.1.7 or fd00::/8)")]
    NotARange(String),
    #[error("'{0}' is not a forwarding header; use 'x-forwarded-for' or 'forwarded'")]
    UnknownHeader(String),
}

/// The header a trusted proxy writes the client's address into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (ingress-nginx, Traefik, HAProxy, Envoy, cloud
    /// load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lower-case.
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

impl FromStr for ForwardedHeader {
    type Err = ProxyConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            _ => Err(ProxyConfigError::UnknownHeader(
                s.trim().chars().take(64).collect(),
            )),
        }
    }
}

/// The proxies whose forwarding header is believed: CIDR ranges or single addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
}

impl TrustedProxies {
    /// From a list separated by commas and/or spaces; empty (the default) trusts nobody.
    pub fn parse(list: &str) -> Result<TrustedProxies, ProxyConfigError> {
        let mut ranges = Vec::new();
        for item in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let range = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(canonical(ip)),
                    Err(_) => {
                        return Err(ProxyConfigError::NotARange(item.chars().take(64).collect()));
                    }
                },
            };
            ranges.push(range);
        }
        Ok(TrustedProxies { ranges })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.ranges.iter().any(|range| range.contains(&ip))
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, and then the rightmost
/// address in `header_values` (every value of the forwarding header, in the order received) that
/// is not a trusted proxy. See the module documentation for the whole rule.
pub fn client_address(
    peer: IpAddr,
    header_values: &[&str],
    header: ForwardedHeader,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = match header {
        ForwardedHeader::XForwardedFor => header_values
            .iter()
            .flat_map(|value| value.split(','))
            .map(parse_node)
            .collect(),
        ForwardedHeader::Forwarded => header_values
            .iter()
            .flat_map(|value| split_outside_quotes(value, ','))
            .map(forwarded_for)
            .collect(),
    };
    let mut nearest_trusted = peer;
    for hop in hops.into_iter().rev().take(MAX_HOPS) {
        match hop.map(canonical) {
            Some(ip) if trusted.contains(ip) => nearest_trusted = ip,
            Some(ip) => return ip,
            None => return nearest_trusted,
        }
    }
    nearest_trusted
}

/// The address in a peer as Spin gives it (`spin-client-addr`: `ip:port`, `[v6]:port`) or a
/// forwarding header's node (also without a port); `None` for anything else.
pub fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !after.is_empty() && !is_port_suffix(after) {
            return None;
        }
        return ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    // `1.2.3.4:5678`: exactly one colon (an IPv6 address with a port is always bracketed).
    let (host, port) = text.split_once(':')?;
    if port.contains(':') || !is_port_suffix(&format!(":{port}")) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port_suffix(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack listener reports) as plain IPv4, so one
/// client is one address and `10.0.0.0/8` matches it.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    split_outside_quotes(element, ';')
        .into_iter()
        .find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("for") {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some(parse_node(value))
        })?
}

/// Splits on `separator` except inside a quoted string (RFC 7230 quoted-string, with `\` escapes).
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(peer: &str, values: &[&str], trusted: &str) -> IpAddr {
        client_address(
            ip(peer),
            values,
            ForwardedHeader::XForwardedFor,
            &TrustedProxies::parse(trusted).unwrap(),
        )
    }

    fn fwd(peer: &str, values: &[&str], trusted: &str) -> IpAddr {
        client_address(
            ip(peer),
            values,
            ForwardedHeader::Forwarded,
            &TrustedProxies::parse(trusted).unwrap(),
        )
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(xff("203.0.113.9", &["1.2.3.4"], ""), ip("203.0.113.9"));
        assert_eq!(
            xff("203.0.113.9", &["1.2.3.4"], "10.0.0.0/8"),
            ip("203.0.113.9")
        );
        assert_eq!(
            fwd("203.0.113.9", &["for=1.2.3.4"], "10.0.0.0/8"),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = "10.0.0.0/8";
        // The ingress appended the client's address to what the client sent.
        assert_eq!(
            xff("10.1.2.3", &["6.6.6.6, 198.51.100.7"], trusted),
            ip("198.51.100.7")
        );
        // Two proxies in the cluster: the second one's entry is skipped.
        assert_eq!(
            xff("10.1.2.3", &["6.6.6.6, 198.51.100.7, 10.9.9.9"], trusted),
            ip("198.51.100.7")
        );
        // Repeated headers are one list, in order.
        assert_eq!(
            xff(
                "10.1.2.3",
                &["6.6.6.6", "198.51.100.7", "10.9.9.9"],
                trusted
            ),
            ip("198.51.100.7")
        );
        // No header at all: the proxy itself is all there is.
        assert_eq!(xff("10.1.2.3", &[], trusted), ip("10.1.2.3"));
        // Every hop a proxy: the farthest one.
        assert_eq!(
            xff("10.1.2.3", &["10.0.0.5, 10.0.0.6"], trusted),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn garbage_stops_at_the_nearest_trusted_hop() {
        let trusted = "10.0.0.0/8";
        assert_eq!(xff("10.1.2.3", &["unknown"], trusted), ip("10.1.2.3"));
        assert_eq!(
            xff("10.1.2.3", &["1.2.3.4, not-an-ip, 10.0.0.9"], trusted),
            ip("10.0.0.9")
        );
        assert_eq!(xff("10.1.2.3", &[""], trusted), ip("10.1.2.3"));
        // A client's garbage left of the proxy's entry is never reached.
        assert_eq!(
            xff("10.1.2.3", &["<script>, 198.51.100.7"], trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn only_so_many_hops_are_read() {
        let many = vec!["10.0.0.1"; MAX_HOPS + 5].join(", ");
        let value = format!("198.51.100.7, {many}");
        assert_eq!(xff("10.1.2.3", &[&value], "10.0.0.0/8"), ip("10.0.0.1"));
    }

    #[test]
    fn addresses_with_ports_brackets_and_mapped_v4() {
        assert_eq!(parse_node("192.0.2.1:8080"), Some(ip("192.0.2.1")));
        assert_eq!(parse_node("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node(" 2001:db8::1 "), Some(ip("2001:db8::1")));
        for bad in [
            "",
            "unknown",
            "_hidden",
            "1.2.3.4:",
            "1.2.3.4:x",
            "[::1]x",
            "[::1",
            "example.com:80",
        ] {
            assert_eq!(parse_node(bad), None, "{bad:?}");
        }
        // A dual-stack listener's view of an IPv4 peer matches an IPv4 range.
        assert_eq!(
            xff("::ffff:10.1.2.3", &["::ffff:198.51.100.7"], "10.0.0.0/8"),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_elements_and_quoted_nodes() {
        let trusted = "10.0.0.0/8, 2001:db8:ffff::/48";
        assert_eq!(
            fwd(
                "10.1.2.3",
                &["for=6.6.6.6, for=\"198.51.100.7:4711\";proto=https;by=10.1.2.3"],
                trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            fwd(
                "2001:db8:ffff::1",
                &["For=\"[2001:db8:cafe::17]:4711\""],
                trusted
            ),
            ip("2001:db8:cafe::17")
        );
        // An element without for=, or an obfuscated node, stops the walk.
        assert_eq!(fwd("10.1.2.3", &["proto=https"], trusted), ip("10.1.2.3"));
        assert_eq!(fwd("10.1.2.3", &["for=_gazonk"], trusted), ip("10.1.2.3"));
        // A comma inside a client's quoted string does not shift the proxy's entry.
        assert_eq!(
            fwd("10.1.2.3", &["for=\"a,b\", for=198.51.100.7"], trusted),
            ip("198.51.100.7")
        );
        // The X-Forwarded-For rule does not read Forwarded, nor the other way round.
        assert_eq!(
            xff("10.1.2.3", &["for=198.51.100.7"], trusted),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_trusted_list_parses_ranges_and_single_addresses() {
        let t = TrustedProxies::parse(" 10.0.0.0/8,192.168.1.7  fd00::/8 ,").unwrap();
        assert!(t.contains(ip("10.255.0.1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("2001:db8::1")));
        // Host bits set are the network they belong to.
        assert!(
            TrustedProxies::parse("10.1.2.3/8")
                .unwrap()
                .contains(ip("10.9.9.9"))
        );
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let e = TrustedProxies::parse("10.0.0.0/8, ingress").unwrap_err();
        assert_eq!(e, ProxyConfigError::NotARange("ingress".into()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn header_names() {
        assert_eq!(
            "X-Forwarded-For".parse::<ForwardedHeader>(),
            Ok(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(
            " forwarded ".parse::<ForwardedHeader>(),
            Ok(ForwardedHeader::Forwarded)
        );
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }
}
