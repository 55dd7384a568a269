//! The gateway's settings, from Spin variables (see spin.toml's `[component.gateway.variables]`).

use vid2mp3_contracts::client_addr::{ForwardedHeader, TrustedProxies};

use vid2mp3_contracts::spin_variables::secret_variable;
use vid2mp3_contracts::storage_api::check_storage_token;
pub use vid2mp3_contracts::{ConfigError, Secret};

use crate::storage_client::StorageEndpoint;
use crate::token_check::TokenVerifier;

pub struct GatewayConfig {
    /// `mysql://user:password@host/db`: holds the gateway account's password.
    pub db_url: Secret,
    /// `redis://user:password@host:port`: the gateway's own Redis account.
    pub redis_url: Secret,
    pub redis_key_prefix: String,
    pub storage: StorageEndpoint,
    pub verifier: TokenVerifier,
    pub max_upload_bytes: u64,
    /// The proxies (the ingress) whose forwarding header says who the client is; none by default.
    pub trusted_proxies: TrustedProxies,
    /// The header those proxies write the client's address into.
    pub forwarded_header: ForwardedHeader,
}

pub fn load(get: impl Fn(&str) -> Result<String, String>) -> Result<GatewayConfig, ConfigError> {
    let text = |name: &'static str| get(name).map_err(|e| ConfigError::Missing(name, e));
    let required = |name: &'static str| secret_variable(&get, name);
    let storage_url = text("storage_url")?;
    let storage_token = text("storage_token")?;
    // The converter refuses the same tokens at start-up; refusing them here too names the
    // variable on this side instead of answering every upload with the storage API's 401.
    check_storage_token(&storage_token).map_err(|problem| ConfigError::Invalid {
        name: "storage_token",
        problem: problem.to_string(),
    })?;
    let storage =
        StorageEndpoint::parse(&storage_url, Secret::new(storage_token)).map_err(|problem| {
            ConfigError::Invalid {
                name: "storage_url",
                problem,
            }
        })?;
    let raw_max = text("max_upload_bytes")?;
    let max_upload_bytes = raw_max
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::Invalid {
            name: "max_upload_bytes",
            problem: format!("'{raw_max}', not a positive whole number of bytes"),
        })?;
    let trusted_proxies = TrustedProxies::parse(&text("trusted_proxies")?)
        .map_err(|e| ConfigError::unusable("trusted_proxies", e))?;
    let forwarded_header = text("trusted_proxy_header")?
        .parse::<ForwardedHeader>()
        .map_err(|e| ConfigError::unusable("trusted_proxy_header", e))?;
    Ok(GatewayConfig {
        db_url: required("gateway_db_url")?,
        redis_url: required("redis_url")?,
        redis_key_prefix: text("redis_key_prefix")?,
        storage,
        verifier: TokenVerifier::from_jwks(required("token_public_keys")?.expose())
            .map_err(|e| ConfigError::unusable("token_public_keys", e))?,
        max_upload_bytes,
        trusted_proxies,
        forwarded_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(token: &str) -> Result<GatewayConfig, ConfigError> {
        load(|name| match name {
            "storage_url" => Ok("http://127.0.0.1:8081".to_owned()),
            "storage_token" => Ok(token.to_owned()),
            other => Err(format!("{other} is not set in this test")),
        })
    }

    #[test]
    fn a_short_or_placeholder_storage_token_is_refused_saying_how_to_make_one() {
        for token in [
            "",
            "s3cret",
            "CHANGE-ME",
            "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
        ] {
            let Err(error) = load_with(token) else {
                panic!("{token:?} was accepted");
            };
            let message = error.to_string();
            assert!(message.contains("`storage_token`"), "{message}");
            assert!(message.contains("openssl rand -base64 32"), "{message}");
        }
    }

    #[test]
    fn a_generated_storage_token_is_accepted() {
        let Err(error) = load_with("u8Xq1rV0cJ7mN3bT5yW9zK2hL4pD6fG8sA0eR1iO3tY=") else {
            panic!("the test sets too few variables to load a whole config");
        };
        // It got past the token to the next variable.
        assert!(!error.to_string().contains("storage_token"), "{error}");
    }

    #[test]
    fn empty_secrets_say_where_they_come_from() {
        for empty in ["gateway_db_url", "redis_url", "token_public_keys"] {
            let result = load(|name| {
                let value = match name {
                    _ if name == empty => "",
                    "storage_url" => "http://127.0.0.1:8081",
                    "storage_token" => "u8Xq1rV0cJ7mN3bT5yW9zK2hL4pD6fG8sA0eR1iO3tY=",
                    "max_upload_bytes" => "1000",
                    "gateway_db_url" => "mysql://u:p@127.0.0.1:3306/g",
                    "redis_url" => "redis://u:p@127.0.0.1:6379",
                    "redis_key_prefix" => "vid2mp3:",
                    "trusted_proxies" => "",
                    "trusted_proxy_header" => "x-forwarded-for",
                    other => return Err(format!("{other} is not set in this test")),
                };
                Ok(value.to_owned())
            });
            let Err(error) = result else {
                panic!("an empty {empty} was accepted");
            };
            let message = error.to_string();
            assert!(
                message.contains(empty)
                    && message.contains("empty")
                    && message.contains(".data/secrets"),
                "{message}"
            );
        }
    }
}
