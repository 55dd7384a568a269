//! auth's settings, from Spin variables (see spin.toml's `[component.auth.variables]`).

use crate::password::HashCost;
use vid2mp3_contracts::spin_variables::secret_variable;
pub use vid2mp3_contracts::{ConfigError, Secret};

use crate::tokens::TokenSigner;

pub struct AuthConfig {
    /// `mysql://user:password@host/db`: holds auth's account password.
    pub db_url: Secret,
    /// `redis://user:password@host:port`: auth's own Redis account.
    pub redis_url: Secret,
    /// Prepended to every Redis key auth writes (tests isolate themselves with it).
    pub redis_key_prefix: String,
    pub signer: TokenSigner,
    pub token_lifetime_secs: u64,
    pub hash_cost: HashCost,
    pub throttle: ThrottleLimits,
    /// How long a confirmation link works.
    pub confirmation_lifetime_secs: u64,
    /// The Redis channel account emails go out on (the notifier's second trigger).
    pub account_emails_channel: String,
}

/// What auth counts in Redis, each per fixed window from the first attempt.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Log-in attempts (and requests for another confirmation link) per typed email.
    pub per_account: u64,
    /// The same, per client address.
    pub per_client: u64,
    pub window_secs: u64,
    /// Sign-ups per client address.
    pub signups_per_client: u64,
    pub signup_window_secs: u64,
    /// Account emails (confirmation links, "already registered") per recipient address.
    pub emails_per_address: u64,
    pub email_window_secs: u64,
}

/// Reads the variables through `get` (the Spin host in the component, a map in tests).
pub fn load(get: impl Fn(&str) -> Result<String, String>) -> Result<AuthConfig, ConfigError> {
    let text = |name: &'static str| get(name).map_err(|e| ConfigError::Missing(name, e));
    let secret = |name: &'static str| secret_variable(&get, name);
    let number = |name: &'static str, min: u64| -> Result<u64, ConfigError> {
        let raw = text(name)?;
        let value: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            problem: format!("'{raw}', not a whole number"),
        })?;
        if value < min {
            return Err(ConfigError::Invalid {
                name,
                problem: format!("{value}, below the minimum of {min}"),
            });
        }
        Ok(value)
    };
    let signer = TokenSigner::new(
        &text("token_key_id")?,
        secret("token_signing_key")?.expose(),
    )
    .map_err(|e| ConfigError::unusable("token_signing_key", e))?;
    let memory_kib =
        u32::try_from(number("password_hash_memory_kib", 8 * 1024)?).map_err(|_| {
            ConfigError::Invalid {
                name: "password_hash_memory_kib",
                problem: "too large".into(),
            }
        })?;
    let passes =
        u32::try_from(number("password_hash_passes", 1)?).map_err(|_| ConfigError::Invalid {
            name: "password_hash_passes",
            problem: "too large".into(),
        })?;
    Ok(AuthConfig {
        db_url: secret("auth_db_url")?,
        redis_url: secret("redis_url")?,
        redis_key_prefix: text("redis_key_prefix")?,
        signer,
        token_lifetime_secs: number("token_lifetime_secs", 60)?,
        hash_cost: HashCost { memory_kib, passes },
        throttle: ThrottleLimits {
            per_account: number("login_failures_per_account", 1)?,
            per_client: number("login_failures_per_client", 1)?,
            window_secs: number("login_failure_window_secs", 1)?,
            signups_per_client: number("signups_per_client", 1)?,
            signup_window_secs: number("signup_window_secs", 1)?,
            emails_per_address: number("account_emails_per_address", 1)?,
            email_window_secs: number("account_email_window_secs", 1)?,
        },
        confirmation_lifetime_secs: number("email_confirmation_lifetime_secs", 60)?,
        account_emails_channel: channel(text("account_emails_channel")?)?,
    })
}

/// A Redis channel name: printable, no spaces, bounded.
fn channel(raw: String) -> Result<String, ConfigError> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 200 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::Invalid {
            name: "account_emails_channel",
            problem: format!(
                "'{}', not a Redis channel name (printable, no spaces, at most 200 characters)",
                name.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars() -> HashMap<&'static str, String> {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend(1u8..=32);
        use base64::Engine;
        HashMap::from([
            ("auth_db_url", "mysql://u:p@127.0.0.1/a".to_owned()),
            ("redis_url", "redis://127.0.0.1".to_owned()),
            ("redis_key_prefix", "vid2mp3:".to_owned()),
            ("token_key_id", "k1".to_owned()),
            (
                "token_signing_key",
                base64::engine::general_purpose::STANDARD.encode(der),
            ),
            ("token_lifetime_secs", "3600".to_owned()),
            ("password_hash_memory_kib", "19456".to_owned()),
            ("password_hash_passes", "2".to_owned()),
            ("login_failures_per_account", "10".to_owned()),
            ("login_failures_per_client", "50".to_owned()),
            ("login_failure_window_secs", "900".to_owned()),
            ("signups_per_client", "20".to_owned()),
            ("signup_window_secs", "3600".to_owned()),
            ("account_emails_per_address", "5".to_owned()),
            ("account_email_window_secs", "3600".to_owned()),
            ("email_confirmation_lifetime_secs", "86400".to_owned()),
            (
                "account_emails_channel",
                "vid2mp3.account-emails".to_owned(),
            ),
        ])
    }

    fn load_from(map: &HashMap<&'static str, String>) -> Result<AuthConfig, ConfigError> {
        load(|name| map.get(name).cloned().ok_or_else(|| "not set".to_owned()))
    }

    #[test]
    fn a_complete_set_loads() {
        let config = load_from(&vars()).unwrap();
        assert_eq!(config.hash_cost.memory_kib, 19456);
        assert_eq!(config.throttle.per_client, 50);
        assert_eq!(config.throttle.signups_per_client, 20);
        assert_eq!(config.confirmation_lifetime_secs, 86400);
        assert_eq!(config.account_emails_channel, "vid2mp3.account-emails");
    }

    #[test]
    fn limits_and_the_channel_are_checked() {
        for (name, value) in [
            ("signups_per_client", "0"),
            ("account_emails_per_address", "many"),
            ("email_confirmation_lifetime_secs", "5"),
            ("account_emails_channel", "two words"),
            ("account_emails_channel", ""),
        ] {
            let mut map = vars();
            map.insert(name, value.into());
            let e = load_from(&map).err().unwrap().to_string();
            assert!(e.contains(name), "{name}={value}: {e}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        let mut map = vars();
        map.remove("auth_db_url");
        let e = load_from(&map).err().unwrap().to_string();
        assert!(e.contains("auth_db_url"), "{e}");

        let mut map = vars();
        map.insert("token_lifetime_secs", "soon".into());
        let e = load_from(&map).err().unwrap().to_string();
        assert!(
            e.contains("token_lifetime_secs") && e.contains("soon"),
            "{e}"
        );

        // spin.toml leaves secrets empty by default: each says it is empty and where it comes from.
        for name in ["auth_db_url", "redis_url", "token_signing_key"] {
            let mut map = vars();
            map.insert(name, String::new());
            let e = load_from(&map).err().unwrap().to_string();
            assert!(
                e.contains(name) && e.contains("empty") && e.contains(".data/secrets"),
                "{e}"
            );
        }

        let mut map = vars();
        map.insert("token_signing_key", "not a key".into());
        let e = load_from(&map).err().unwrap().to_string();
        assert!(
            e.contains("token_signing_key") && e.contains("openssl"),
            "{e}"
        );
    }

    #[test]
    fn a_weak_hash_cost_is_refused() {
        let mut map = vars();
        map.insert("password_hash_memory_kib", "64".into());
        let e = load_from(&map).err().unwrap().to_string();
        assert!(e.contains("password_hash_memory_kib"), "{e}");
    }
}
