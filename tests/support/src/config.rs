//! Where the services are: the same variables and defaults as `scripts/lib/common.sh`.

/// The addresses of the shared services, from `VID2MP3_*_URL` or loopback defaults.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    /// MySQL server, no database: `mysql://user:password@host:port`.
    pub mysql: String,
    pub redis: String,
    /// AMQP URL of the default vhost.
    pub amqp: String,
    /// RabbitMQ's management API, with credentials: `http://guest:guest@host:port`.
    pub rabbitmq_management: String,
    pub mongo: String,
    pub mailpit: String,
}

impl ServiceUrls {
    pub fn from_env() -> ServiceUrls {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        ServiceUrls {
            mysql: var(
                "VID2MP3_MYSQL_URL",
                "mysql://vid2mp3:vid2mp3@127.0.0.1:3306",
            ),
            redis: var("VID2MP3_REDIS_URL", "redis://127.0.0.1:6379"),
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
