//! The service's configuration, read from the environment with loopback defaults, so
//! `vid2mp3-converter serve` runs against `scripts/services` with nothing set but the token.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use vid2mp3_contracts::messages::JOB_EVENTS_CHANNEL;
use vid2mp3_contracts::progress::DEFAULT_REDIS_KEY_PREFIX;
use vid2mp3_contracts::storage_api::{StorageTokenProblem, check_storage_token};
// Secrets never show in `Debug` output or logs: the one type every service holds them in.
pub use vid2mp3_contracts::Secret;
use vid2mp3_contracts::webhook::AllowedHosts;

use crate::job_timeout::JobTimeouts;
use crate::quota::Quotas;
use crate::transcode::Id3Version;

/// What one `serve` process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The internal HTTP storage API (`PUT .../video`, `GET .../mp3`, states, health, metrics).
    Storage,
    /// The `video` queue consumer that converts.
    Worker,
    /// The `mp3` queue consumer that hands events to the notifier through Redis.
    Relay,
    /// The `webhooks` queue consumer that POSTs job events to their owners' callback URLs.
    Webhook,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Storage, Role::Worker, Role::Relay, Role::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Storage => "storage",
            Role::Worker => "worker",
            Role::Relay => "relay",
            Role::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| ConfigError::Invalid {
                name: "--roles",
                value: s.to_owned(),
                expected: "storage, worker, relay or webhook (comma-separated)",
            })
    }
}

/// Parses `storage,worker,relay,webhook` (any subset, any order).
pub fn parse_roles(s: &str) -> Result<BTreeSet<Role>, ConfigError> {
    let roles = s
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(Role::from_str)
        .collect::<Result<BTreeSet<_>, _>>()?;
    if roles.is_empty() {
        return Err(ConfigError::Invalid {
            name: "--roles",
            value: s.to_owned(),
            expected: "at least one of storage, worker, relay, webhook",
        });
    }
    Ok(roles)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{name} is not set; it is required (the bearer token the gateway sends to the storage API)"
    )]
    MissingSecret { name: &'static str },
    #[error("{name} is refused: it is {problem}")]
    WeakSecret {
        name: &'static str,
        problem: StorageTokenProblem,
    },
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub roles: BTreeSet<Role>,
    pub mongo_url: String,
    pub mongo_db: String,
    /// AMQP URL; `heartbeat` is added to it when it has none.
    pub amqp_url: String,
    pub redis_url: String,
    /// Starts every Redis key the converter reads or writes (progress, delivery acks); the
    /// components use the same prefix (Spin variable `redis_key_prefix`).
    pub redis_key_prefix: String,
    pub storage_listen: SocketAddr,
    pub storage_token: Secret,
    pub job_events_channel: String,
    /// Unacked `video` messages one worker holds (= jobs converting at once).
    pub worker_prefetch: u16,
    /// Unacked `mp3` events the relay holds.
    pub relay_prefetch: u16,
    pub amqp_heartbeat: Duration,
    /// Delays before each retry of a transiently failed job; one more attempt than delays.
    pub retry_delays: Vec<Duration>,
    /// How long the relay waits for the notifier's delivery ack before it redelivers.
    pub relay_ack_timeout: Duration,
    /// Pause before an undelivered event is handed back to the queue (grows per message).
    pub relay_redeliver_delay: Duration,
    /// A job's time limit: from the size until the media states its duration, then from the
    /// duration (`crate::job_timeout::JobTimeouts`).
    pub job_timeouts: JobTimeouts,
    /// How long SIGTERM waits for converting jobs before it hands them back to the queue.
    pub shutdown_grace: Duration,
    /// Largest video `PUT` accepts (and a resumable upload may declare).
    pub max_upload_bytes: u64,
    /// How long an unfinished resumable upload is kept after its last piece (and a finished
    /// one's record, which tells a client its upload is whole).
    pub resumable_expiry: Duration,
    /// LAME instances per job (None: one per core).
    pub encode_workers: Option<usize>,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
    /// Delete `mp3s` chunks with no file document at start (left by a crash mid-write).
    pub sweep_orphans_at_start: bool,
    /// The mp3s' ID3v2 version (2.4, or 2.3 for old players).
    pub id3_version: Id3Version,
    /// Take a cover from a video frame when the source has no picture.
    pub cover_from_video: bool,
    /// Per-account limits (`VID2MP3_QUOTA_*`).
    pub quotas: Quotas,
    /// Webhook deliveries (`VID2MP3_WEBHOOK_*`).
    pub webhooks: WebhookSettings,
}

/// How webhooks are checked and sent.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Hosts a callback may reach despite the address rules, also over plain http (empty by
    /// default; the tests list their receiver on loopback).
    pub allowed_hosts: AllowedHosts,
    /// Delays before each retry of a failed delivery; one more attempt than delays.
    pub retry_delays: Vec<Duration>,
    /// Connecting to a receiver may take this long.
    pub connect_timeout: Duration,
    /// One delivery (connect, send, answer) may take this long.
    pub request_timeout: Duration,
    /// Deliveries in flight at once.
    pub prefetch: u16,
}

impl Config {
    /// Reads `VID2MP3_*` from the environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = |name: &str, default: &str| lookup(name).unwrap_or_else(|| default.to_owned());
        let token = lookup("VID2MP3_STORAGE_TOKEN")
            .filter(|t| !t.trim().is_empty())
            .ok_or(ConfigError::MissingSecret {
                name: "VID2MP3_STORAGE_TOKEN",
            })?;
        check_storage_token(&token).map_err(|problem| ConfigError::WeakSecret {
            name: "VID2MP3_STORAGE_TOKEN",
            problem,
        })?;
        let redis_key_prefix = text("VID2MP3_REDIS_KEY_PREFIX", DEFAULT_REDIS_KEY_PREFIX);
        if redis_key_prefix.is_empty() || redis_key_prefix.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                name: "VID2MP3_REDIS_KEY_PREFIX",
                value: redis_key_prefix,
                expected: "a non-empty prefix without spaces, e.g. vid2mp3:",
            });
        }
        let roles = match lookup("VID2MP3_ROLES") {
            Some(s) => parse_roles(&s)?,
            None => Role::ALL.into_iter().collect(),
        };
        let storage_listen = parse(
            &lookup,
            "VID2MP3_STORAGE_LISTEN",
            "127.0.0.1:8081",
            "an address like 127.0.0.1:8081",
        )?;
        let retry_delays = match lookup("VID2MP3_RETRY_DELAYS_MS") {
            None => vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
            Some(s) => parse_delays(&s)?,
        };
        Ok(Config {
            roles,
            mongo_url: text("VID2MP3_MONGO_URL", "mongodb://127.0.0.1:27017"),
            mongo_db: text("VID2MP3_MONGO_DB", "vid2mp3"),
            amqp_url: text("VID2MP3_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            redis_url: text("VID2MP3_REDIS_URL", "redis://127.0.0.1:6379"),
            redis_key_prefix,
            storage_listen,
            storage_token: Secret::new(token),
            job_events_channel: text("VID2MP3_JOB_EVENTS_CHANNEL", JOB_EVENTS_CHANNEL),
            worker_prefetch: parse(&lookup, "VID2MP3_WORKER_PREFETCH", "1", "1..=65535")
                .and_then(|n: u16| nonzero(n, "VID2MP3_WORKER_PREFETCH"))?,
            relay_prefetch: parse(&lookup, "VID2MP3_RELAY_PREFETCH", "16", "1..=65535")
                .and_then(|n: u16| nonzero(n, "VID2MP3_RELAY_PREFETCH"))?,
            amqp_heartbeat: secs(&lookup, "VID2MP3_AMQP_HEARTBEAT_SECS", "30")?,
            retry_delays,
            relay_ack_timeout: millis(&lookup, "VID2MP3_RELAY_ACK_TIMEOUT_MS", "30000")?,
            relay_redeliver_delay: millis(&lookup, "VID2MP3_RELAY_REDELIVER_DELAY_MS", "1000")?,
            job_timeouts: job_timeouts(&lookup)?,
            shutdown_grace: secs(&lookup, "VID2MP3_SHUTDOWN_GRACE_SECS", "20")?,
            max_upload_bytes: parse(
                &lookup,
                "VID2MP3_MAX_UPLOAD_BYTES",
                "4294967296",
                "a number of bytes",
            )?,
            resumable_expiry: secs(&lookup, "VID2MP3_RESUMABLE_EXPIRY_SECS", "86400")?,
            encode_workers: match lookup("VID2MP3_ENCODE_WORKERS") {
                None => None,
                Some(_) => Some(parse(
                    &lookup,
                    "VID2MP3_ENCODE_WORKERS",
                    "1",
                    "a number of threads",
                )?),
            },
            ffmpeg: PathBuf::from(text("VID2MP3_FFMPEG", "ffmpeg")),
            ffprobe: PathBuf::from(text("VID2MP3_FFPROBE", "ffprobe")),
            sweep_orphans_at_start: parse(
                &lookup,
                "VID2MP3_SWEEP_ORPHANS",
                "true",
                "true or false",
            )?,
            id3_version: parse(&lookup, "VID2MP3_ID3_VERSION", "2.4", "2.4 or 2.3")?,
            cover_from_video: parse(&lookup, "VID2MP3_COVER_FROM_VIDEO", "true", "true or false")?,
            quotas: quotas(&lookup)?,
            webhooks: webhook_settings(&lookup)?,
        })
    }

    /// Attempts a job gets before it is dead-lettered.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.retry_delays.len())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    /// The AMQP URL with the configured heartbeat (unless the URL sets one itself).
    pub fn amqp_url_with_heartbeat(&self) -> String {
        if self.amqp_url.contains("heartbeat=") {
            return self.amqp_url.clone();
        }
        let sep = if self.amqp_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}heartbeat={}",
            self.amqp_url,
            self.amqp_heartbeat.as_secs().max(1)
        )
    }
}

fn parse<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    let value = lookup(name).unwrap_or_else(|| default.to_owned());
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        value,
        expected,
    })
}

fn nonzero(n: u16, name: &'static str) -> Result<u16, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid {
            name,
            value: "0".into(),
            expected: "at least 1",
        });
    }
    Ok(n)
}

fn secs(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    parse(lookup, name, default, "a number of seconds").map(Duration::from_secs)
}

fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    parse(lookup, name, default, "a number of milliseconds").map(Duration::from_millis)
}

fn job_timeouts(lookup: &impl Fn(&str) -> Option<String>) -> Result<JobTimeouts, ConfigError> {
    let d = JobTimeouts::default();
    let timeouts = JobTimeouts {
        base: secs(
            lookup,
            "VID2MP3_JOB_TIMEOUT_BASE_SECS",
            &d.base.as_secs().to_string(),
        )?,
        per_mib: millis(
            lookup,
            "VID2MP3_JOB_TIMEOUT_PER_MIB_MS",
            &d.per_mib.as_millis().to_string(),
        )?,
        per_media_minute: millis(
            lookup,
            "VID2MP3_JOB_TIMEOUT_PER_MEDIA_MINUTE_MS",
            &d.per_media_minute.as_millis().to_string(),
        )?,
        max: secs(
            lookup,
            "VID2MP3_JOB_TIMEOUT_MAX_SECS",
            &d.max.as_secs().to_string(),
        )?,
    };
    if timeouts.max < timeouts.base {
        return Err(ConfigError::Invalid {
            name: "VID2MP3_JOB_TIMEOUT_MAX_SECS",
            value: timeouts.max.as_secs().to_string(),
            expected: "at least VID2MP3_JOB_TIMEOUT_BASE_SECS",
        });
    }
    Ok(timeouts)
}

fn quotas(lookup: &impl Fn(&str) -> Option<String>) -> Result<Quotas, ConfigError> {
    let d = Quotas::default();
    let positive = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
        let n: u64 = parse(
            lookup,
            name,
            &default.to_string(),
            "a whole number, at least 1",
        )?;
        if n == 0 {
            return Err(ConfigError::Invalid {
                name,
                value: "0".into(),
                expected: "a whole number, at least 1",
            });
        }
        Ok(n)
    };
    let small = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
        u32::try_from(positive(name, u64::from(default))?).map_err(|_| ConfigError::Invalid {
            name,
            value: lookup(name).unwrap_or_default(),
            expected: "a whole number from 1 to 4294967295",
        })
    };
    Ok(Quotas {
        stored_bytes: positive("VID2MP3_QUOTA_STORED_BYTES", d.stored_bytes)?,
        queued_jobs: small("VID2MP3_QUOTA_QUEUED_JOBS", d.queued_jobs)?,
        media_minutes_per_day: small(
            "VID2MP3_QUOTA_MEDIA_MINUTES_PER_DAY",
            d.media_minutes_per_day,
        )?,
    })
}

fn webhook_settings(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<WebhookSettings, ConfigError> {
    let hosts = lookup("VID2MP3_WEBHOOK_ALLOWED_HOSTS").unwrap_or_default();
    let allowed_hosts = AllowedHosts::parse(&hosts).map_err(|_| ConfigError::Invalid {
        name: "VID2MP3_WEBHOOK_ALLOWED_HOSTS",
        value: hosts.clone(),
        expected: "comma-separated host or host:port entries, e.g. hooks.internal:8443",
    })?;
    let retry_delays = match lookup("VID2MP3_WEBHOOK_RETRY_DELAYS_MS") {
        None => [10, 60, 300, 1800, 7200]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        Some(s) => parse_delays_of("VID2MP3_WEBHOOK_RETRY_DELAYS_MS", &s)?,
    };
    Ok(WebhookSettings {
        allowed_hosts,
        retry_delays,
        connect_timeout: millis(lookup, "VID2MP3_WEBHOOK_CONNECT_TIMEOUT_MS", "5000")?,
        request_timeout: millis(lookup, "VID2MP3_WEBHOOK_TIMEOUT_MS", "15000")?,
        prefetch: parse(lookup, "VID2MP3_WEBHOOK_PREFETCH", "16", "1..=65535")
            .and_then(|n: u16| nonzero(n, "VID2MP3_WEBHOOK_PREFETCH"))?,
    })
}

fn parse_delays(s: &str) -> Result<Vec<Duration>, ConfigError> {
    parse_delays_of("VID2MP3_RETRY_DELAYS_MS", s)
}

fn parse_delays_of(name: &'static str, s: &str) -> Result<Vec<Duration>, ConfigError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| ConfigError::Invalid {
                    name,
                    value: s.to_owned(),
                    expected: "comma-separated milliseconds, e.g. 5000,30000,120000",
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A token of the length and variety `openssl rand -base64 32` gives.
    const TOKEN: &str = "u8Xq1rV0cJ7mN3bT5yW9zK2hL4pD6fG8sA0eR1iO3tY=";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn refuses_to_start_without_the_token_and_names_it() {
        let error = config(&[]).unwrap_err();
        assert!(
            error.to_string().contains("VID2MP3_STORAGE_TOKEN"),
            "{error}"
        );
        assert!(config(&[("VID2MP3_STORAGE_TOKEN", "  ")]).is_err());
    }

    #[test]
    fn defaults_are_loopback() {
        let c = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert_eq!(c.mongo_url, "mongodb://127.0.0.1:27017");
        assert_eq!(c.storage_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.job_events_channel, JOB_EVENTS_CHANNEL);
        assert_eq!(c.roles.len(), 4);
        assert!(
            c.webhooks.allowed_hosts.is_empty(),
            "no host allowed by default"
        );
        assert_eq!(c.max_attempts(), 4);
        assert_eq!(
            c.amqp_url_with_heartbeat(),
            "amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=30"
        );
    }

    #[test]
    fn tags_default_to_id3v24_with_a_frame_cover_and_v23_is_a_setting() {
        let c = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert_eq!((c.id3_version, c.cover_from_video), (Id3Version::V24, true));
        let c = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_ID3_VERSION", "2.3"),
            ("VID2MP3_COVER_FROM_VIDEO", "false"),
        ])
        .unwrap();
        assert_eq!(
            (c.id3_version, c.cover_from_video),
            (Id3Version::V23, false)
        );
        let error = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_ID3_VERSION", "1"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("VID2MP3_ID3_VERSION"), "{error}");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let c = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert!(!format!("{c:?}").contains(TOKEN));
    }

    #[test]
    fn a_short_or_placeholder_token_is_refused_saying_how_to_make_one() {
        for token in [
            "s3cret",
            "CHANGE-ME",
            "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
        ] {
            let error = config(&[("VID2MP3_STORAGE_TOKEN", token)]).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("VID2MP3_STORAGE_TOKEN"), "{message}");
            assert!(message.contains("openssl rand -base64 32"), "{message}");
            // The refused value is never repeated back (it may be a real, if weak, secret).
            assert!(!message.contains(token), "{message}");
        }
    }

    #[test]
    fn the_redis_key_prefix_defaults_to_the_components_one() {
        let c = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert_eq!(c.redis_key_prefix, "vid2mp3:");
        let c = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_REDIS_KEY_PREFIX", "vid2mp3:t:1:"),
        ])
        .unwrap();
        assert_eq!(c.redis_key_prefix, "vid2mp3:t:1:");
        let error = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_REDIS_KEY_PREFIX", ""),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("VID2MP3_REDIS_KEY_PREFIX"));
    }

    #[test]
    fn bad_values_are_named() {
        let error = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_WORKER_PREFETCH", "many"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("VID2MP3_WORKER_PREFETCH"));
        assert!(
            config(&[
                ("VID2MP3_STORAGE_TOKEN", TOKEN),
                ("VID2MP3_WORKER_PREFETCH", "0")
            ])
            .is_err()
        );
        assert!(
            config(&[
                ("VID2MP3_STORAGE_TOKEN", TOKEN),
                ("VID2MP3_RETRY_DELAYS_MS", "1,x")
            ])
            .is_err()
        );
        let error = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_WEBHOOK_ALLOWED_HOSTS", "http://hooks.internal/"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("VID2MP3_WEBHOOK_ALLOWED_HOSTS"));
        let error = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_WEBHOOK_RETRY_DELAYS_MS", "10,soon"),
        ])
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("VID2MP3_WEBHOOK_RETRY_DELAYS_MS")
        );
    }

    #[test]
    fn webhook_settings_come_from_the_environment() {
        let c = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            (
                "VID2MP3_WEBHOOK_ALLOWED_HOSTS",
                "127.0.0.1:9000, hooks.internal",
            ),
            ("VID2MP3_WEBHOOK_RETRY_DELAYS_MS", "500,1000"),
        ])
        .unwrap();
        assert!(!c.webhooks.allowed_hosts.is_empty());
        assert_eq!(
            c.webhooks.retry_delays,
            vec![Duration::from_millis(500), Duration::from_millis(1000)]
        );
        let defaults = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert_eq!(defaults.webhooks.retry_delays.len(), 5);
        assert_eq!(defaults.webhooks.request_timeout, Duration::from_secs(15));
    }

    #[test]
    fn job_timeouts_come_from_the_environment() {
        let c = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert_eq!(c.job_timeouts, JobTimeouts::default());
        let c = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_JOB_TIMEOUT_BASE_SECS", "10"),
            ("VID2MP3_JOB_TIMEOUT_PER_MIB_MS", "500"),
            ("VID2MP3_JOB_TIMEOUT_PER_MEDIA_MINUTE_MS", "3000"),
            ("VID2MP3_JOB_TIMEOUT_MAX_SECS", "60"),
        ])
        .unwrap();
        assert_eq!(
            c.job_timeouts,
            JobTimeouts {
                base: Duration::from_secs(10),
                per_mib: Duration::from_millis(500),
                per_media_minute: Duration::from_secs(3),
                max: Duration::from_secs(60),
            }
        );
        let error = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_JOB_TIMEOUT_MAX_SECS", "5"),
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("VID2MP3_JOB_TIMEOUT_MAX_SECS"),
            "{error}"
        );
    }

    #[test]
    fn quotas_come_from_the_environment_and_must_be_positive() {
        let c = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN)]).unwrap();
        assert_eq!(c.quotas, Quotas::default());
        let c = config(&[
            ("VID2MP3_STORAGE_TOKEN", TOKEN),
            ("VID2MP3_QUOTA_STORED_BYTES", "1000000"),
            ("VID2MP3_QUOTA_QUEUED_JOBS", "3"),
            ("VID2MP3_QUOTA_MEDIA_MINUTES_PER_DAY", "60"),
        ])
        .unwrap();
        assert_eq!(
            c.quotas,
            Quotas {
                stored_bytes: 1_000_000,
                queued_jobs: 3,
                media_minutes_per_day: 60,
            }
        );
        for (name, value) in [
            ("VID2MP3_QUOTA_QUEUED_JOBS", "0"),
            ("VID2MP3_QUOTA_QUEUED_JOBS", "99999999999"),
            ("VID2MP3_QUOTA_STORED_BYTES", "-1"),
            ("VID2MP3_QUOTA_MEDIA_MINUTES_PER_DAY", "lots"),
        ] {
            let error = config(&[("VID2MP3_STORAGE_TOKEN", TOKEN), (name, value)]).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn roles_parse_as_a_set() {
        assert_eq!(
            parse_roles("worker, relay")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![Role::Worker, Role::Relay]
        );
        assert!(parse_roles("").is_err());
        assert!(parse_roles("storage,cooking").is_err());
    }
}
