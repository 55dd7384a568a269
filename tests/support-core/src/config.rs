//! Where the services are: the same variables and defaults as `scripts/lib/common.sh`.

use std::path::PathBuf;

use crate::workspace::workspace_root;

/// The addresses of the shared services, from `VID2MP3_*_URL` or loopback defaults.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    /// MySQL server, no database, as the tests' account (`vid2mp3_tests`: it may create the
    /// `vid2mp3_t_*` databases and accounts confined to them): `mysql://user:password@host:port`.
    pub mysql: String,
    /// Redis as its admin user (it makes each test's service users).
    pub redis: String,
    /// AMQP URL of the default vhost.
    pub amqp: String,
    /// RabbitMQ's management API, with credentials: `http://guest:guest@host:port`.
    pub rabbitmq_management: String,
    pub mongo: String,
    pub mailpit: String,
}

impl ServiceUrls {
    /// `scripts/test` exports every URL. Run by hand (`cargo test -p ...`), the passwords
    /// `scripts/services` made are read from `.data/secrets/` as common.sh would.
    pub fn from_env() -> ServiceUrls {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let mysql_port = var("VID2MP3_MYSQL_PORT", "3306");
        let redis_port = var("VID2MP3_REDIS_PORT", "6379");
        let mysql_default = match dev_password("mysql-vid2mp3_tests") {
            Some(password) => format!("mysql://vid2mp3_tests:{password}@127.0.0.1:{mysql_port}"),
            None => format!("mysql://vid2mp3_tests@127.0.0.1:{mysql_port}"),
        };
        let redis_default = match dev_password("redis-vid2mp3-admin") {
            Some(password) => format!("redis://vid2mp3-admin:{password}@127.0.0.1:{redis_port}"),
            None => format!("redis://127.0.0.1:{redis_port}"),
        };
        ServiceUrls {
            mysql: var("VID2MP3_MYSQL_URL", &mysql_default),
            redis: var("VID2MP3_REDIS_URL", &redis_default),
            amqp: var("VID2MP3_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            rabbitmq_management: var(
                "VID2MP3_RABBITMQ_MANAGEMENT_URL",
                "http://guest:guest@127.0.0.1:15672",
            ),
            mongo: var("VID2MP3_MONGO_URL", "mongodb://127.0.0.1:27017"),
            mailpit: var("VID2MP3_MAILPIT_URL", "http://127.0.0.1:8025"),
        }
    }
}

/// A development password `scripts/services` made (`.data/secrets/<name>.password`, or under
/// `VID2MP3_DATA`), if there is one.
fn dev_password(name: &str) -> Option<String> {
    let data = std::env::var_os("VID2MP3_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".data"));
    let text =
        std::fs::read_to_string(data.join("secrets").join(format!("{name}.password"))).ok()?;
    let password = text.trim();
    (!password.is_empty()).then(|| password.to_owned())
}

/// `host:port` of a server URL (`default_port` when it names none): what spin.toml's
/// `allowed_outbound_hosts` open (`mysql://{{ mysql_host }}`, `redis://{{ redis_host }}`).
pub(crate) fn host_port(url: &str, default_port: u16) -> anyhow::Result<String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("a server URL that does not parse: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("a server URL without a host"))?;
    Ok(format!("{host}:{}", parsed.port().unwrap_or(default_port)))
}

/// `host:port` of a URL, for messages (never the credentials).
pub(crate) fn address_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}:{}",
            parsed.host_str().unwrap_or("?"),
            parsed
                .port_or_known_default()
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        ),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}
