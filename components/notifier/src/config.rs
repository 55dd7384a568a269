//! The notifier's settings, from Spin variables (spin.toml's `[component.notifier.variables]`).
//!
//! Everything is checked here, once per event, so a misconfiguration fails before any email is
//! claimed or sent, with a message naming the variable (never its value when it is a secret).

use vid2mp3_contracts::spin_variables::secret_variable;
pub use vid2mp3_contracts::{ConfigError, Secret};

use crate::mail_api::{Endpoint, MailApi, MailApiKind, Sender};

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// `mysql://user:password@host:port/database`: holds a password, so it is a [`Secret`].
    pub db_url: Secret,
    /// `redis://user:password@host:port`: the notifier's own Redis account, so a [`Secret`].
    pub redis_url: Secret,
    /// Starts the delivery-ack keys (the converter's `VID2MP3_REDIS_KEY_PREFIX` is the same).
    pub redis_key_prefix: String,
    pub mail: MailApi,
    /// Where users reach the gateway, without a trailing slash: the links in emails start here.
    pub public_base_url: String,
}

/// Reads the variables through `get` (the Spin host in the component, a map in tests).
pub fn load(get: impl Fn(&str) -> Result<String, String>) -> Result<NotifierConfig, ConfigError> {
    let text = |name: &'static str| get(name).map_err(|e| ConfigError::Missing(name, e));
    let invalid = |name: &'static str, problem: String| ConfigError::Invalid { name, problem };

    let secret = |name: &'static str| secret_variable(&get, name);
    let db_url = secret("notifier_db_url")?;
    let db_host = text("mysql_host")?.trim().to_owned();
    check_db_host(db_url.expose(), &db_host)?;

    let redis_url = secret("redis_url")?;
    if !redis_url.expose().starts_with("redis://") && !redis_url.expose().starts_with("rediss://") {
        // Not the value: it may hold a password.
        return Err(invalid(
            "redis_url",
            "not a redis:// URL (redis://USER:PASSWORD@HOST:PORT)".into(),
        ));
    }
    let redis_key_prefix = text("redis_key_prefix")?.trim().to_owned();
    if redis_key_prefix.is_empty() {
        return Err(invalid(
            "redis_key_prefix",
            "empty; the default is vid2mp3:".into(),
        ));
    }

    let kind = match text("mail_api")?.trim() {
        "mailpit" => MailApiKind::Mailpit,
        "sendgrid" => MailApiKind::SendGrid,
        other => {
            return Err(invalid(
                "mail_api",
                format!("'{other}'; it must be 'mailpit' or 'sendgrid'"),
            ));
        }
    };
    let endpoint = Endpoint::parse(&text("mail_api_url")?)
        .map_err(|problem| invalid("mail_api_url", problem))?;
    let api_key = Secret::new(text("mail_api_key")?.trim());
    if kind == MailApiKind::SendGrid && api_key.is_empty() {
        return Err(invalid(
            "mail_api_key",
            "empty, but mail_api = 'sendgrid' needs an API key".into(),
        ));
    }
    let from_email = text("mail_from")?.trim().to_owned();
    if !crate::event::is_plausible_address(&from_email) {
        return Err(invalid(
            "mail_from",
            format!("'{from_email}', not an email address"),
        ));
    }
    let from_name = text("mail_from_name")?.trim().to_owned();

    let public_base_url = text("public_base_url")?
        .trim()
        .trim_end_matches('/')
        .to_owned();
    if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
        return Err(invalid(
            "public_base_url",
            format!("'{public_base_url}', not an http(s) URL"),
        ));
    }

    Ok(NotifierConfig {
        db_url,
        redis_url,
        redis_key_prefix,
        mail: MailApi {
            kind,
            endpoint,
            api_key,
            from: Sender {
                email: from_email,
                name: from_name,
            },
        },
        public_base_url,
    })
}

/// `allowed_outbound_hosts` cannot take `notifier_db_url` (it holds credentials and a path, which
/// Spin's allowed-host patterns refuse), so spin.toml allows `mysql://{{ mysql_host }}`.
/// The two must name the same server; when they do not, say so here rather than let the host
/// refuse the connection with a message that does not mention either variable.
fn check_db_host(db_url: &str, db_host: &str) -> Result<(), ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        name: "notifier_db_url",
        problem,
    };
    let rest = db_url
        .strip_prefix("mysql://")
        .ok_or_else(|| invalid("not a mysql:// URL".into()))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    // Credentials may contain '@' only percent-encoded, so the last '@' ends them.
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.is_empty() {
        return Err(invalid("a URL without a host".into()));
    }
    if with_default_port(host_port) != with_default_port(db_host) {
        // Only the host and port are shown: the URL itself holds a password.
        return Err(invalid(format!(
            "for the server {host_port}, but mysql_host (what allowed_outbound_hosts permits) is '{db_host}'; set both to the same host:port"
        )));
    }
    Ok(())
}

fn with_default_port(host_port: &str) -> String {
    let host_port = host_port.to_ascii_lowercase();
    let has_port = match host_port.rsplit_once(':') {
        // An IPv6 address without a port ends in ']'.
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    if has_port {
        host_port
    } else {
        format!("{host_port}:3306")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars() -> HashMap<&'static str, String> {
        HashMap::from([
            (
                "notifier_db_url",
                "mysql://vid2mp3:pw@127.0.0.1:3306/vid2mp3_notifier".to_owned(),
            ),
            ("mysql_host", "127.0.0.1:3306".to_owned()),
            (
                "redis_url",
                "redis://vid2mp3-notifier:pw@127.0.0.1:6379".to_owned(),
            ),
            ("redis_key_prefix", "vid2mp3:".to_owned()),
            ("mail_api", "mailpit".to_owned()),
            ("mail_api_url", "http://127.0.0.1:8025".to_owned()),
            ("mail_api_key", String::new()),
            ("mail_from", "noreply@vid2mp3.localhost".to_owned()),
            ("mail_from_name", "vid2mp3".to_owned()),
            ("public_base_url", "http://127.0.0.1:3000/".to_owned()),
        ])
    }

    fn load_from(map: &HashMap<&'static str, String>) -> Result<NotifierConfig, ConfigError> {
        load(|name| map.get(name).cloned().ok_or_else(|| "not set".to_owned()))
    }

    #[test]
    fn the_defaults_load() {
        let config = load_from(&vars()).unwrap();
        assert_eq!(config.mail.kind, MailApiKind::Mailpit);
        assert_eq!(config.public_base_url, "http://127.0.0.1:3000");
        assert_eq!(config.mail.endpoint.to_string(), "http://127.0.0.1:8025");
    }

    #[test]
    fn secrets_do_not_print() {
        let mut map = vars();
        map.insert("mail_api", "sendgrid".into());
        map.insert("mail_api_key", "SG.very-secret".into());
        let config = load_from(&map).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains(":pw@"), "{shown}");
        assert!(!shown.contains("vid2mp3-notifier:pw"), "{shown}");
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&str, &str)] = &[
            ("mail_api", "smtp"),
            ("mail_api_url", "127.0.0.1:8025"),
            ("mail_api_url", "http://mail.example.com/v3"),
            ("public_base_url", "example.com"),
            ("mail_from", "not an address"),
            ("redis_url", "127.0.0.1:6379"),
            ("redis_url", ""),
            ("redis_key_prefix", ""),
            ("notifier_db_url", ""),
            ("notifier_db_url", "postgres://x@127.0.0.1/db"),
        ];
        for (name, value) in cases {
            let mut map = vars();
            map.insert(name, (*value).to_owned());
            let e = load_from(&map).err().unwrap().to_string();
            assert!(e.contains(name), "{name}={value}: {e}");
        }
        let mut map = vars();
        map.remove("public_base_url");
        let e = load_from(&map).err().unwrap().to_string();
        assert!(e.contains("public_base_url"), "{e}");
    }

    #[test]
    fn sendgrid_needs_a_key() {
        let mut map = vars();
        map.insert("mail_api", "sendgrid".into());
        let e = load_from(&map).err().unwrap().to_string();
        assert!(e.contains("mail_api_key"), "{e}");
    }

    #[test]
    fn the_database_host_must_be_the_allowed_one() {
        let mut map = vars();
        map.insert(
            "notifier_db_url",
            "mysql://u:secret@db.internal:3306/n".into(),
        );
        let e = load_from(&map).err().unwrap().to_string();
        assert!(
            e.contains("mysql_host") && e.contains("db.internal:3306"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");

        // The default port is the same server.
        map.insert("mysql_host", "db.internal".into());
        assert!(load_from(&map).is_ok());
        map.insert("notifier_db_url", "mysql://u:p%40ss@DB.internal/n".into());
        assert!(load_from(&map).is_ok());
    }
}
