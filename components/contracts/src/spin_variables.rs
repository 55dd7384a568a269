//! What a component says when one of its Spin variables is missing or wrong: the same sentences
//! from the gateway, auth and the notifier, naming the variable and never a secret's value.

use std::error::Error as StdError;

use crate::Secret;

/// A component's settings could not be read from its Spin variables.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the Spin variable `{0}` is not set: {1}")]
    Missing(&'static str, String),
    #[error("the Spin variable `{name}` is {problem}")]
    Invalid { name: &'static str, problem: String },
    /// The value parses but cannot be used (a key that does not decode, ...); the cause is kept.
    #[error("the Spin variable `{name}` is unusable: {source}")]
    Unusable {
        name: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// What a secret variable left at its empty default is told: spin.toml gives secrets no value, so
/// that each app runs with only its own components' secrets.
pub const EMPTY_SECRET: &str = "empty: it holds a secret, so it has no default; scripts/up sets it \
     from .data/secrets/, Kubernetes from the Secret vid2mp3-secrets";

/// A secret variable read through `get` (the Spin host in a component, a map in tests): refused
/// when empty, held as a [`Secret`] so that it never reaches a log.
pub fn secret_variable(
    get: impl Fn(&str) -> Result<String, String>,
    name: &'static str,
) -> Result<Secret, ConfigError> {
    let value = get(name).map_err(|e| ConfigError::Missing(name, e))?;
    let value = value.trim();
    if value.is_empty() {
        return Err(ConfigError::Invalid {
            name,
            problem: EMPTY_SECRET.into(),
        });
    }
    Ok(Secret::new(value))
}

impl ConfigError {
    pub fn unusable(name: &'static str, source: impl StdError + Send + Sync + 'static) -> Self {
        ConfigError::Unusable {
            name,
            source: Box::new(source),
        }
    }

    /// The variable the error is about.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing(name, _)
            | ConfigError::Invalid { name, .. }
            | ConfigError::Unusable { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("not base64")]
    struct BadKey;

    #[test]
    fn an_empty_secret_says_where_secrets_come_from_and_a_set_one_is_kept_whole() {
        let get = |value: &'static str| move |_: &str| Ok::<_, String>(value.to_owned());
        let error = secret_variable(get("  "), "redis_url").unwrap_err();
        assert_eq!(error.variable(), "redis_url");
        assert!(error.to_string().contains(".data/secrets/"), "{error}");
        assert!(error.to_string().contains("vid2mp3-secrets"), "{error}");
        let missing = secret_variable(|_: &str| Err("not declared".into()), "redis_url");
        assert!(matches!(missing, Err(ConfigError::Missing("redis_url", _))));
        let url = "redis://auth:pw@127.0.0.1:6379";
        assert_eq!(
            secret_variable(get(url), "redis_url").unwrap().expose(),
            url
        );
    }

    #[test]
    fn each_error_names_its_variable_and_keeps_its_cause() {
        let missing = ConfigError::Missing("db_url", "no such variable".into());
        assert_eq!(
            missing.to_string(),
            "the Spin variable `db_url` is not set: no such variable"
        );
        let unusable = ConfigError::unusable("token_signing_key", BadKey);
        assert_eq!(unusable.variable(), "token_signing_key");
        assert_eq!(
            unusable.to_string(),
            "the Spin variable `token_signing_key` is unusable: not base64"
        );
        assert_eq!(
            unusable.source().map(ToString::to_string).as_deref(),
            Some("not base64")
        );
    }
}
