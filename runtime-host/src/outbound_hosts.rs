//! `allowed_outbound_hosts`: which URLs a component may reach, with Spin's rules.
//!
//! A pattern is `scheme://host[:port]`. `scheme` may be `*`; `host` may be `*`, `*.suffix`, a
//! literal name or address, a CIDR range, or `self` (relative URLs to the app itself). With no
//! port the scheme's well-known port is meant; `*` is any port and `a..b` a half-open range.
//! `*.spin.internal` expands to one entry per component, so it allows chaining but nothing else.

use std::net::IpAddr;

pub const SERVICE_CHAINING_SUFFIX: &str = ".spin.internal";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllowedHostsError {
    #[error("{0:?} does not contain a scheme (e.g. 'http://' or '*://')")]
    NoScheme(String),
    #[error("{0:?} is not an allowed-host pattern; to allow everything write '*://*:*'")]
    Bare(String),
    #[error("{pattern:?}: invalid scheme: {reason}")]
    Scheme { pattern: String, reason: String },
    #[error("{pattern:?}: invalid host: {reason}")]
    Host { pattern: String, reason: String },
    #[error("{pattern:?}: invalid port: {reason}")]
    Port { pattern: String, reason: String },
    #[error("{0:?} has a path, which allowed hosts must not have")]
    Path(String),
    // Nested errors here are part of the sentence, as AllowedHosts' Display embeds this one:
    // kept typed (callers can match), not as sources, so a printed chain does not repeat them.
    #[error("invalid template: {0}")]
    Template(crate::template::TemplateError),
    #[error(
        "using default variable value(s) with template {template:?} results in invalid config {rendered:?}: {reason}"
    )]
    InvalidWithDefaults {
        template: String,
        rendered: String,
        reason: Box<AllowedHostsError>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// Stored with its leading dot: `.example.com`.
    Subdomain(String),
    ToSelf,
    Domain(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
    /// Half-open, as Spin's `start..end`.
    Range(u16, u16),
}

/// One parsed entry of `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPattern {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "postgres" => Some(5432),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedPattern {
    pub fn parse(pattern: &str) -> Result<Self, AllowedHostsError> {
        let text = pattern.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(match text {
                "*" | "" | ":" | "?" => AllowedHostsError::Bare(text.to_owned()),
                _ => AllowedHostsError::NoScheme(text.to_owned()),
            });
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') && !looks_like_cidr(rest) {
            return Err(AllowedHostsError::Path(text.to_owned()));
        }
        let (host, port) = split_host_port(rest);
        let scheme_p = if scheme == "*" {
            SchemePattern::Any
        } else if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            SchemePattern::Exact(scheme.to_ascii_lowercase())
        } else {
            return Err(AllowedHostsError::Scheme {
                pattern: text.to_owned(),
                reason: "only letters or '*' are allowed".into(),
            });
        };
        let port_err = |reason: String| AllowedHostsError::Port {
            pattern: text.to_owned(),
            reason,
        };
        let port_p = match port {
            None => match well_known_port(scheme) {
                Some(p) => PortPattern::Exact(p),
                None => {
                    return Err(port_err(format!(
                        "no port given and scheme {scheme:?} has no well-known port"
                    )));
                }
            },
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => {
                    let a = a
                        .parse()
                        .map_err(|_| port_err(format!("{p:?} is not a range of numbers")))?;
                    let b = b
                        .parse()
                        .map_err(|_| port_err(format!("{p:?} is not a range of numbers")))?;
                    PortPattern::Range(a, b)
                }
                None => PortPattern::Exact(
                    p.parse()
                        .map_err(|_| port_err(format!("{p:?} is not a number")))?,
                ),
            },
        };
        let host_p = parse_host(host).map_err(|reason| AllowedHostsError::Host {
            pattern: text.to_owned(),
            reason,
        })?;
        Ok(Self {
            scheme: scheme_p,
            host: host_p,
            port: port_p,
        })
    }

    fn allows(&self, url: &OutboundTarget) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => *s == url.scheme,
        };
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomain(suffix) => url.host.ends_with(suffix.as_str()),
            HostPattern::ToSelf => false,
            HostPattern::Domain(d) => *d == url.host,
            HostPattern::Ip(ip) => url.host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            HostPattern::Cidr(net, bits) => url
                .host
                .parse::<IpAddr>()
                .is_ok_and(|h| cidr_contains(*net, *bits, h)),
        };
        let port_ok = match &self.port {
            PortPattern::Any => true,
            _ => match url.port.or_else(|| well_known_port(&url.scheme)) {
                None => false,
                Some(p) => match self.port {
                    PortPattern::Exact(e) => e == p,
                    PortPattern::Range(a, b) => (a..b).contains(&p),
                    PortPattern::Any => true,
                },
            },
        };
        scheme_ok && host_ok && port_ok
    }

    fn allows_relative(&self, scheme: &str) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => s == scheme,
        };
        scheme_ok && matches!(self.host, HostPattern::Any | HostPattern::ToSelf)
    }
}

fn looks_like_cidr(rest: &str) -> bool {
    let (host, _) = split_host_port(rest);
    host.split_once('/').is_some_and(|(ip, bits)| {
        ip.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
    })
}

/// Splits off a port after the last ':' unless that ':' belongs to an IPv6 address.
fn split_host_port(rest: &str) -> (&str, Option<&str>) {
    if let Some(stripped) = rest.strip_prefix('[') {
        // [v6]:port or [v6]
        if let Some((inside, after)) = stripped.split_once(']') {
            let port = after.strip_prefix(':').filter(|p| !p.is_empty());
            return (&rest[..inside.len() + 2], port);
        }
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, if p.is_empty() { None } else { Some(p) }),
        _ => (rest, None),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(HostPattern::ToSelf);
    }
    if host.starts_with('{') {
        return Err("host lists are not supported".into());
    }
    if let Some((ip, bits)) = host.split_once('/') {
        let ip: IpAddr = ip
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| format!("{host:?} is not a CIDR range"))?;
        let bits: u8 = bits
            .parse()
            .map_err(|_| format!("{host:?} is not a CIDR range"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(format!("{host:?} has a prefix longer than {max}"));
        }
        return Ok(HostPattern::Cidr(ip, bits));
    }
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            return Err("wildcards are allowed only as a prefix ('*.example.com')".into());
        }
        validate_domain(domain)?;
        return Ok(HostPattern::Subdomain(format!(
            ".{}",
            domain.to_ascii_lowercase()
        )));
    }
    if host.contains('*') {
        return Err("wildcards are allowed only as a prefix ('*.example.com')".into());
    }
    validate_domain(host)?;
    Ok(HostPattern::Domain(host.to_ascii_lowercase()))
}

fn validate_domain(domain: &str) -> Result<(), String> {
    let ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{domain:?} is not a domain name"))
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

/// Where a component wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundTarget {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl OutboundTarget {
    /// Parses a URL such as `mysql://user:pw@db:3306/name`; the user info never leaves this function.
    ///
    /// The URL is parsed exactly as the Redis and MySQL clients parse it when they connect (the
    /// `url` crate), so the host checked is the host connected to, whatever the password holds.
    /// (Spin percent-encodes everything before the first `@` first; a password with a raw `@`,
    /// `#` or `/` is not a valid URL for either: percent-encode it.)
    pub fn parse(url: &str) -> Option<Self> {
        Self::from_url(&url::Url::parse(url).ok()?)
    }

    /// Parses an address a component gives a database interface, as Spin checks it: the user
    /// info is percent-encoded first (so a password with `/` or `#` still parses), and an address
    /// without a host (`localhost:3306`, `db`) is read as `{default_scheme}://{address}`.
    pub fn parse_address(address: &str, default_scheme: &str) -> Option<Self> {
        let address = encode_userinfo(address);
        match url::Url::parse(&address) {
            Ok(url) if url.has_host() => Self::from_url(&url),
            _ => Self::from_url(&url::Url::parse(&format!("{default_scheme}://{address}")).ok()?),
        }
    }

    fn from_url(parsed: &url::Url) -> Option<Self> {
        let host = match parsed.host()? {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        Some(Self {
            scheme: parsed.scheme().to_owned(),
            host,
            port: parsed.port(),
        })
    }

    /// `scheme://host[:port]`, safe to log.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// The component id if this is `http://<id>.spin.internal`.
    pub fn chaining_target(&self) -> Option<&str> {
        let id = self.host.strip_suffix(SERVICE_CHAINING_SUFFIX)?;
        (!id.is_empty() && !id.contains('.')).then_some(id)
    }
}

/// Everything but RFC 3986's unreserved characters.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes the user info of `scheme://user:pass@host...` so that any password parses.
fn encode_userinfo(address: &str) -> String {
    let Some(at) = address.find('@') else {
        return address.to_owned();
    };
    let start = address.find("://").map_or(0, |i| i + 3);
    let path = address[start..].find('/').map_or(usize::MAX, |i| i + start);
    if at < start || at > path {
        return address.to_owned();
    }
    let userinfo = percent_encoding::utf8_percent_encode(&address[start..at], NOT_UNRESERVED);
    format!("{}{userinfo}{}", &address[..start], &address[at..])
}

/// `address` as a component gave it, with the password in its user info (if any) replaced by
/// `****`: what a refusal may show without handing the secret to whoever reads the error.
pub fn redact_password(address: &str) -> String {
    let start = address.find("://").map_or(0, |i| i + 3);
    let authority_end = address[start..]
        .find(['/', '?', '#'])
        .map_or(address.len(), |i| i + start);
    let Some(at) = address[start..authority_end].rfind('@').map(|i| i + start) else {
        return address.to_owned();
    };
    match address[start..at].find(':').map(|i| i + start) {
        Some(colon) => format!("{}****{}", &address[..=colon], &address[at..]),
        None => address.to_owned(),
    }
}

/// An entry that allows nothing rather than being an error: empty, or a bare `http://` or
/// `https://` (what a template renders to when its variable is empty).
pub fn allows_nothing(entry: &str) -> bool {
    matches!(entry.trim(), "" | "http://" | "https://")
}

/// A component's resolved `allowed_outbound_hosts`.
///
/// Entries may name application variables (`mysql://{{ db_host }}`). Spin renders them when
/// the component first connects somewhere, and a template it cannot render (an undeclared
/// variable, a value that is not a valid pattern) fails that connection rather than the app's
/// start. runtime-host knows every value at start, renders them then, and keeps such an error
/// here: every check fails with it, as on Spin.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    patterns: Vec<AllowedPattern>,
    unresolved: Option<String>,
}

impl AllowedHosts {
    /// `entries` are already rendered (templates resolved). Empty entries, and a bare `http://`
    /// or `https://` (what a template with an empty value renders to), allow nothing, as in Spin.
    pub fn parse<S: AsRef<str>>(
        entries: &[S],
        component_ids: &[String],
    ) -> Result<Self, AllowedHostsError> {
        let mut patterns = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if allows_nothing(entry) {
                continue;
            }
            let pattern = AllowedPattern::parse(entry)?;
            if let HostPattern::Subdomain(suffix) = &pattern.host
                && suffix == SERVICE_CHAINING_SUFFIX
            {
                for id in component_ids {
                    patterns.push(AllowedPattern {
                        host: HostPattern::Domain(format!("{id}{SERVICE_CHAINING_SUFFIX}")),
                        ..pattern.clone()
                    });
                }
            } else {
                patterns.push(pattern);
            }
        }
        Ok(Self {
            patterns,
            unresolved: None,
        })
    }

    /// Allows nothing, and says why to every database connection that asks.
    pub fn unresolved(reason: String) -> Self {
        Self {
            patterns: Vec::new(),
            unresolved: Some(reason),
        }
    }

    /// Why the entries could not be rendered, if they could not.
    pub fn unresolved_reason(&self) -> Option<&str> {
        self.unresolved.as_deref()
    }

    /// Spin's check of a database address: an address that does not parse is refused, and once
    /// it parses, entries that could not be rendered are an error with their reason.
    pub fn check(&self, target: Option<&OutboundTarget>) -> Result<bool, String> {
        let Some(target) = target else {
            return Ok(false);
        };
        match &self.unresolved {
            Some(reason) => Err(reason.clone()),
            None => Ok(self.allows(target)),
        }
    }

    pub fn allows(&self, target: &OutboundTarget) -> bool {
        self.unresolved.is_none() && self.patterns.iter().any(|p| p.allows(target))
    }

    pub fn allows_url(&self, url: &str) -> bool {
        OutboundTarget::parse(url).is_some_and(|t| self.allows(&t))
    }

    /// Whether a relative URL (the app itself) may be requested with `scheme`.
    pub fn allows_relative(&self, scheme: &str) -> bool {
        self.unresolved.is_none() && self.patterns.iter().any(|p| p.allows_relative(scheme))
    }
}

/// How Spin reports a refused outbound destination: the destination as `scheme://host[:port]`
/// (`http://self` for the app itself) and the entry that would allow it.
pub fn log_refusal(component: &str, request_id: &str, destination: &str) {
    if destination == "http://self" || destination == "https://self" {
        tracing::warn!(
            component,
            request_id,
            "A component tried to make an HTTP request to its own app but it does not have permission. To allow this request, add 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section."
        );
    } else {
        tracing::warn!(
            component,
            request_id,
            "A component tried to make an outbound network connection to disallowed destination '{destination}'. To allow this request, add 'allowed_outbound_hosts = [\"{destination}\"]' to the manifest component section."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["auth".into(), "gateway".into()]
    }

    #[test]
    fn matcher_table() {
        // (pattern, url, allowed)
        let cases: &[(&str, &str, bool)] = &[
            // scheme and default ports
            ("http://example.com", "http://example.com/x", true),
            ("http://example.com", "http://example.com:80/x", true),
            ("http://example.com", "http://example.com:8080/x", false),
            ("http://example.com", "https://example.com/x", false),
            ("https://example.com", "https://example.com", true),
            ("https://example.com", "https://example.com:443", true),
            ("*://example.com:*", "https://example.com:8443", true),
            ("*://example.com:*", "mysql://example.com", true),
            // explicit and any ports
            ("http://example.com:8080", "http://example.com:8080/", true),
            ("http://example.com:8080", "http://example.com/", false),
            ("http://example.com:*", "http://example.com:1/", true),
            ("http://example.com:*", "http://example.com/", true),
            // ranges are half-open
            ("http://localhost:8000..8002", "http://localhost:8000", true),
            ("http://localhost:8000..8002", "http://localhost:8001", true),
            (
                "http://localhost:8000..8002",
                "http://localhost:8002",
                false,
            ),
            (
                "http://localhost:8000..8002",
                "http://localhost:7999",
                false,
            ),
            // host wildcards
            ("http://*.example.com", "http://api.example.com", true),
            ("http://*.example.com", "http://a.b.example.com", true),
            ("http://*.example.com", "http://example.com", false),
            ("http://*.example.com", "http://badexample.com", false),
            ("http://*:*", "http://anything.at.all:1234", true),
            ("*://*:*", "redis://10.0.0.1:6380", true),
            // literal hosts match exactly (case-insensitively)
            ("http://Example.com", "http://example.COM", true),
            ("http://example.com", "http://example.com.evil.org", false),
            ("http://example.com", "http://sub.example.com", false),
            // IPs and CIDR
            ("redis://127.0.0.1", "redis://127.0.0.1:6379", true),
            ("redis://127.0.0.1", "redis://127.0.0.2:6379", false),
            (
                "mysql://127.0.0.1:*",
                "mysql://vid2mp3:pw@127.0.0.1:3306/db",
                true,
            ),
            ("mysql://127.0.0.1", "mysql://127.0.0.1:3307/db", false),
            ("http://10.0.0.0/8:*", "http://10.1.2.3:99", true),
            ("http://10.0.0.0/8:*", "http://11.1.2.3:99", false),
            ("http://[::1]:8080", "http://[::1]:8080", true),
            ("http://[::1]:8080", "http://[::2]:8080", false),
            // service chaining
            (
                "http://auth.spin.internal",
                "http://auth.spin.internal/login",
                true,
            ),
            (
                "http://auth.spin.internal",
                "http://gateway.spin.internal/",
                false,
            ),
            (
                "http://*.spin.internal",
                "http://gateway.spin.internal/",
                true,
            ),
            (
                "http://*.spin.internal",
                "http://unknown.spin.internal/",
                false,
            ),
            (
                "https://auth.spin.internal",
                "http://auth.spin.internal/",
                false,
            ),
            // self is only for relative URLs
            ("http://self", "http://self/", false),
        ];
        for (pattern, url, expected) in cases {
            let hosts = AllowedHosts::parse(&[*pattern], &ids())
                .unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(hosts.allows_url(url), *expected, "{pattern} vs {url}");
        }
    }

    #[test]
    fn empty_list_allows_nothing() {
        let hosts = AllowedHosts::parse::<&str>(&[], &ids()).expect("empty parses");
        assert!(!hosts.allows_url("http://example.com"));
        assert!(!hosts.allows_url("http://auth.spin.internal"));
        assert!(!hosts.allows_relative("http"));
        // A template that rendered to nothing is skipped, not an error.
        let hosts = AllowedHosts::parse(&["", "http://"], &ids()).expect("skipped");
        assert!(!hosts.allows_url("http://example.com"));
    }

    #[test]
    fn relative_urls_need_self_or_any_host() {
        let cases: &[(&str, &str, bool)] = &[
            ("http://self", "http", true),
            ("http://self", "https", false),
            ("*://self:*", "https", true),
            ("http://*:*", "http", true),
            ("http://example.com", "http", false),
        ];
        for (pattern, scheme, expected) in cases {
            let hosts = AllowedHosts::parse(&[*pattern], &ids()).expect("parses");
            assert_eq!(
                hosts.allows_relative(scheme),
                *expected,
                "{pattern} / {scheme}"
            );
        }
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        let cases = [
            "example.com",
            "*",
            "",
            "http://example.com/path",
            "http://exa*mple.com",
            "http://*.*.example.com",
            "ftp://example.com",
            "http://example.com:eighty",
            "http://example.com:1..x",
            "ht-tp://example.com",
            "http://{a,b}.com",
            "http://10.0.0.0/40",
            "*://example.com", // no well-known port for "any scheme"
        ];
        for pattern in cases {
            assert!(
                AllowedPattern::parse(pattern).is_err(),
                "{pattern:?} should be rejected"
            );
        }
    }

    #[test]
    fn chaining_target_is_only_a_direct_child_of_spin_internal() {
        let t =
            |u: &str| OutboundTarget::parse(u).and_then(|t| t.chaining_target().map(str::to_owned));
        assert_eq!(t("http://auth.spin.internal/x"), Some("auth".into()));
        assert_eq!(t("http://a.b.spin.internal/x"), None);
        assert_eq!(t("http://spin.internal/x"), None);
        assert_eq!(t("http://auth.spin.internal.evil.org/"), None);
    }

    #[test]
    fn credentials_in_an_allowed_host_are_refused_as_in_spin() {
        // Spin parses `redis://user:pw@host:6379` as the host `user:pw@host`, which is not a
        // host: a credentialed URL cannot be an allowed host, so spin.toml separates the two.
        for pattern in [
            "redis://vid2mp3-gateway:pw@127.0.0.1:6379",
            "redis://vid2mp3-gateway@127.0.0.1:6379",
            "mysql://vid2mp3_auth:pw@db:3306",
        ] {
            assert!(
                AllowedPattern::parse(pattern).is_err(),
                "{pattern:?} should be rejected"
            );
        }
    }

    #[test]
    fn addresses_parse_as_spin_reads_them() {
        let t =
            |a: &str, scheme: &str| OutboundTarget::parse_address(a, scheme).map(|t| t.authority());
        // A host-less address gets the interface's scheme, as Spin retries it.
        assert_eq!(
            t("localhost:10000", "mysql").as_deref(),
            Some("mysql://localhost:10000")
        );
        assert_eq!(t("hello", "mysql").as_deref(), Some("mysql://hello"));
        assert_eq!(
            t("redis://r:6380", "redis").as_deref(),
            Some("redis://r:6380")
        );
        // A password with URL delimiters still parses (as in Spin, up to a '/' in it).
        assert_eq!(
            t("mysql://u:p#s?s@db:3307/x", "mysql").as_deref(),
            Some("mysql://db:3307")
        );
        assert_eq!(t("", "mysql"), None);
    }

    #[test]
    fn passwords_are_redacted_and_nothing_else_changes() {
        let cases = [
            (
                "mysql://spin:spin@localhost:3306/spin_dev",
                "mysql://spin:****@localhost:3306/spin_dev",
            ),
            ("mysql://spin@localhost/db", "mysql://spin@localhost/db"),
            (
                "mysql://localhost:3306/db?user=a",
                "mysql://localhost:3306/db?user=a",
            ),
            ("redis://:secret@r:6379", "redis://:****@r:6379"),
            ("hello", "hello"),
            ("mysql://u:p@ss@db/x", "mysql://u:****@db/x"),
        ];
        for (address, expected) in cases {
            assert_eq!(redact_password(address), expected, "{address}");
        }
    }

    #[test]
    fn credentialed_urls_match_the_host_pattern() {
        let hosts = AllowedHosts::parse(&["redis://127.0.0.1:6379"], &ids()).expect("parses");
        for url in [
            "redis://vid2mp3-gateway:0f3a9c@127.0.0.1:6379",
            "redis://vid2mp3-gateway:p%23ss%3Fw%40rd@127.0.0.1:6379",
            "redis://:only-a-password@127.0.0.1:6379",
        ] {
            assert!(hosts.allows_url(url), "{url}");
        }
        // A password cannot smuggle in another host: what is checked is where the client goes.
        assert!(!hosts.allows_url("redis://u:x@evil.example:6379#@127.0.0.1:6379"));
        assert!(!hosts.allows_url("redis://u:x@evil.example:6379/@127.0.0.1:6379"));
        let t = OutboundTarget::parse("redis://u:p%23ss@10.0.0.7:6380/0").expect("parses");
        assert_eq!(t.authority(), "redis://10.0.0.7:6380");
    }

    #[test]
    fn unresolved_entries_allow_nothing_and_keep_the_reason() {
        let hosts = AllowedHosts::unresolved("invalid variable name: h".into());
        assert!(!hosts.allows_url("http://example.com"));
        assert!(!hosts.allows_relative("http"));
        assert_eq!(hosts.unresolved_reason(), Some("invalid variable name: h"));
    }

    #[test]
    fn authority_hides_credentials() {
        let t = OutboundTarget::parse("mysql://root:hunter2@db:3306/x").expect("parses");
        assert_eq!(t.authority(), "mysql://db:3306");
    }
}
