//! Webhooks: which callback URLs are accepted and which addresses a callback may reach.
//!
//! One set of rules for both checks: the converter's storage API checks a URL when a webhook is
//! created ([`check_url`]), and the converter's webhook sender checks every address the URL's
//! host resolves to right before it connects ([`refused_range`]). A callback may not reach the
//! platform's own network: loopback, private (RFC 1918, ULA), link-local, CGNAT, unspecified,
//! multicast, broadcast, documentation and benchmarking ranges, cloud metadata addresses, and
//! IPv6 forms that embed one of those IPv4 addresses (mapped, compatible, NAT64, 6to4). An
//! operator may list hosts that are allowed anyway ([`AllowedHosts`]); a listed host may also be
//! called over plain `http://`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// The longest callback URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Headers of a webhook delivery (the Standard Webhooks names).
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How every [`UrlProblem`] message starts, so a service passing one on can tell it from its
/// own errors.
pub const URL_PROBLEM_PREFIX: &str = "the callback URL";

/// Why a callback URL is refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("the callback URL is longer than {MAX_URL_LEN} bytes; use a shorter one")]
    TooLong,
    #[error(
        "the callback URL is not a valid absolute URL ({0}); send one like https://example.com/hooks/vid2mp3"
    )]
    Invalid(String),
    #[error("the callback URL must use https:// (got {0}://)")]
    NotHttps(String),
    #[error(
        "the callback URL must not carry a user name or password; authenticate the webhook by its signature instead"
    )]
    UserInfo,
    #[error("the callback URL has no host name")]
    NoHost,
    #[error(
        "the callback URL points at {address}, a {range} address, which webhooks may not reach; use a public address"
    )]
    RefusedAddress {
        address: IpAddr,
        range: &'static str,
    },
}

/// Hosts an operator allows despite the rules (`host` or `host:port`; a name, an IPv4 address or
/// a bracketed IPv6 address). Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<(String, Option<u16>)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a host or host:port (like hooks.example.com, 127.0.0.1:8443 or [::1]:9000)")]
pub struct AllowedHostError(pub String);

impl AllowedHosts {
    /// A comma-separated list; blanks are ignored.
    pub fn parse(list: &str) -> Result<AllowedHosts, AllowedHostError> {
        let mut hosts = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || AllowedHostError(entry.to_owned());
            let url = Url::parse(&format!("http://{entry}")).map_err(|_| bad())?;
            if url.path() != "/" || url.username() != "" || url.query().is_some() {
                return Err(bad());
            }
            let host = url.host_str().ok_or_else(bad)?.to_ascii_lowercase();
            hosts.push((host, url.port()));
        }
        Ok(AllowedHosts(hosts))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `url`'s host (and port, where the entry names one) is listed.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let port = url.port_or_known_default();
        self.0
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| Some(p) == port))
    }
}

/// Checks a callback URL as it is created: bounded, absolute, `https` (or a listed host), no
/// user info, and not an address literal in a refused range. A host name is checked again, by
/// its addresses, whenever a delivery connects.
pub fn check_url(text: &str, allowed: &AllowedHosts) -> Result<Url, UrlProblem> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlProblem::TooLong);
    }
    let url = Url::parse(text.trim()).map_err(|e| UrlProblem::Invalid(e.to_string()))?;
    let listed = allowed.allows(&url);
    match url.scheme() {
        "https" => {}
        "http" if listed => {}
        other => return Err(UrlProblem::NotHttps(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::UserInfo);
    }
    let address = match url.host() {
        None => return Err(UrlProblem::NoHost),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(address) = address
        && !listed
        && let Some(range) = refused_range(address)
    {
        return Err(UrlProblem::RefusedAddress { address, range });
    }
    Ok(url)
}

/// The refused range `address` is in, by name, or `None` when a webhook may connect to it.
pub fn refused_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn net(text: &str) -> IpNet {
    // The tables below are literals; a typo fails every test at once.
    text.parse().unwrap_or_else(|_| panic!("bad range {text}"))
}

fn refused_v4(a: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[(&str, &str)] = &[
        ("169.254.169.254/32", "cloud metadata"),
        ("0.0.0.0/8", "unspecified (\"this network\")"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("169.254.0.0/16", "link-local"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    ];
    if a == Ipv4Addr::BROADCAST {
        return Some("broadcast");
    }
    let ip = IpAddr::V4(a);
    RANGES
        .iter()
        .find(|(range, _)| net(range).contains(&ip))
        .map(|(_, name)| *name)
}

fn refused_v6(a: Ipv6Addr) -> Option<&'static str> {
    // IPv6 forms that carry an IPv4 address reach that address (or a gateway to it).
    if let Some(v4) = a.to_ipv4_mapped() {
        return refused_v4(v4).map(|_| "IPv4-mapped private or reserved");
    }
    let embedded = |prefix: &str| net(prefix).contains(&IpAddr::V6(a));
    let o = a.octets();
    if embedded("64:ff9b::/96") || embedded("::/96") && !a.is_unspecified() && !a.is_loopback() {
        let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        return refused_v4(v4).map(|_| "IPv6-embedded private or reserved");
    }
    if embedded("2002::/16") {
        let v4 = Ipv4Addr::new(o[2], o[3], o[4], o[5]);
        return refused_v4(v4).map(|_| "6to4 private or reserved");
    }
    const RANGES: &[(&str, &str)] = &[
        ("fd00:ec2::254/128", "cloud metadata"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private (ULA)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
    ];
    let ip = IpAddr::V6(a);
    RANGES
        .iter()
        .find(|(range, _)| net(range).contains(&ip))
        .map(|(_, name)| *name)
}

/// What a webhook delivery says (the JSON body, signed as sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    /// `job.done` or `job.failed`.
    pub r#type: String,
    /// The same as the `webhook-id` header: stable across retries, so a receiver can ignore a
    /// delivery it has already handled.
    pub delivery_id: String,
    /// When the event was sent (RFC 3339).
    pub timestamp: String,
    pub data: WebhookJob,
}

/// The job as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    pub id: crate::JobId,
    /// `done` or `failed`.
    pub status: String,
    pub original_name: String,
    /// The mp3's id (the course's `fid`) when done.
    pub mp3_fid: Option<crate::FileId>,
    pub mp3_size_bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    /// Where the owner downloads the mp3 (relative to the API's address) when done.
    pub download: Option<String>,
    pub error: Option<crate::storage_api::JobError>,
}

/// The delivery id of a job's outcome: the same for every attempt and every duplicate event.
pub fn delivery_id(job: &crate::JobId, kind: &str) -> String {
    format!("{job}-{kind}")
}

/// The account's webhook, as the storage API and the gateway show it (`secret` only in the
/// answer that created it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountWebhook {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// The storage API's path of an account's webhook (`GET`, `PUT` [`SetWebhook`], `DELETE`).
pub fn account_webhook_path(owner: &crate::UserId) -> String {
    format!("/internal/v1/accounts/{owner}/webhook")
}

/// `PUT` body: the URL to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWebhook {
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> AllowedHosts {
        AllowedHosts::default()
    }

    #[test]
    fn the_address_table() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "169.254.1.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().unwrap();
            assert!(refused_range(ip).is_some(), "{text} must be refused");
        }
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "93.184.215.14",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for text in allowed {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(refused_range(ip), None, "{text} must be allowed");
        }
        assert_eq!(
            refused_range("169.254.169.254".parse().unwrap()),
            Some("cloud metadata")
        );
    }

    #[test]
    fn urls_are_checked_at_creation() {
        assert!(check_url("https://hooks.example.com/vid2mp3?x=1", &none()).is_ok());
        assert!(check_url("https://8.8.8.8:8443/h", &none()).is_ok());
        type Expect = fn(&UrlProblem) -> bool;
        let cases: &[(&str, Expect)] = &[
            (
                "http://hooks.example.com/",
                |p| matches!(p, UrlProblem::NotHttps(s) if s == "http"),
            ),
            ("ftp://hooks.example.com/", |p| {
                matches!(p, UrlProblem::NotHttps(_))
            }),
            ("https://user:pw@hooks.example.com/", |p| {
                *p == UrlProblem::UserInfo
            }),
            ("https://user@hooks.example.com/", |p| {
                *p == UrlProblem::UserInfo
            }),
            ("hooks.example.com/x", |p| {
                matches!(p, UrlProblem::Invalid(_))
            }),
            (
                "https://169.254.169.254/latest/meta-data",
                |p| matches!(p, UrlProblem::RefusedAddress { range, .. } if *range == "cloud metadata"),
            ),
            (
                "https://127.0.0.1/",
                |p| matches!(p, UrlProblem::RefusedAddress { range, .. } if *range == "loopback"),
            ),
            // The WHATWG parser reads these forms as the IPv4 address they spell.
            ("https://2130706433/", |p| {
                matches!(p, UrlProblem::RefusedAddress { .. })
            }),
            ("https://0x7f.1/", |p| {
                matches!(p, UrlProblem::RefusedAddress { .. })
            }),
            ("https://[::ffff:10.0.0.1]/", |p| {
                matches!(p, UrlProblem::RefusedAddress { .. })
            }),
            ("https://[fd00:ec2::254]/", |p| {
                matches!(p, UrlProblem::RefusedAddress { .. })
            }),
        ];
        for (url, expected) in cases {
            let problem = check_url(url, &none()).expect_err(url);
            assert!(expected(&problem), "{url}: {problem:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, &none()), Err(UrlProblem::TooLong));
    }

    #[test]
    fn a_listed_host_may_be_local_and_plain_http() {
        let allowed = AllowedHosts::parse(" 127.0.0.1:9000, receiver.test ,[::1]").unwrap();
        assert!(check_url("http://127.0.0.1:9000/hook", &allowed).is_ok());
        assert!(check_url("http://receiver.test/hook", &allowed).is_ok());
        assert!(check_url("https://[::1]/hook", &allowed).is_ok());
        // Another port of a listed host:port is not listed.
        assert!(matches!(
            check_url("http://127.0.0.1:9001/hook", &allowed),
            Err(UrlProblem::NotHttps(_))
        ));
        assert!(matches!(
            check_url("https://127.0.0.1:9001/hook", &allowed),
            Err(UrlProblem::RefusedAddress { .. })
        ));
        // Listing a host does not allow user info.
        assert_eq!(
            check_url("http://a:b@127.0.0.1:9000/", &allowed),
            Err(UrlProblem::UserInfo)
        );
        assert!(AllowedHosts::parse("").unwrap().is_empty());
        assert!(AllowedHosts::parse("http://x/").is_err());
        assert!(AllowedHosts::parse("a b").is_err());
    }

    #[test]
    fn every_refusal_says_it_is_about_the_callback_url() {
        let problems = [
            UrlProblem::TooLong,
            UrlProblem::Invalid("x".into()),
            UrlProblem::NotHttps("http".into()),
            UrlProblem::UserInfo,
            UrlProblem::NoHost,
            UrlProblem::RefusedAddress {
                address: "127.0.0.1".parse().unwrap(),
                range: "loopback",
            },
        ];
        for problem in problems {
            assert!(
                problem.to_string().starts_with(URL_PROBLEM_PREFIX),
                "{problem}"
            );
        }
    }

    #[test]
    fn delivery_ids_are_stable_per_job_and_outcome() {
        let job = crate::JobId::new();
        assert_eq!(delivery_id(&job, "done"), delivery_id(&job, "done"));
        assert_ne!(delivery_id(&job, "done"), delivery_id(&job, "failed"));
    }
}
