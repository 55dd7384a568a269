//! The gateway's settings, from Spin variables (see spin.toml's `[component.gateway.variables]`).

use vid2mp3_contracts::client_addr::{ForwardedHeader, TrustedProxies};

use crate::storage_client::StorageEndpoint;
use crate::token_check::{KeySetError, TokenVerifier};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the Spin variable `{0}` is not set: {1}")]
    Missing(&'static str, String),
    #[error("the Spin variable `{name}` is {problem}")]
    Invalid { name: &'static str, problem: String },
    #[error("the Spin variable `token_public_keys` is unusable: {0}")]
    PublicKeys(#[from] KeySetError),
}

pub struct GatewayConfig {
    pub db_url: String,
    pub redis_url: String,
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
    let storage_url = text("storage_url")?;
    let storage =
        StorageEndpoint::parse(&storage_url, text("storage_token")?).map_err(|problem| {
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
    let trusted_proxies =
        TrustedProxies::parse(&text("trusted_proxies")?).map_err(|e| ConfigError::Invalid {
            name: "trusted_proxies",
            problem: e.to_string(),
        })?;
    let forwarded_header = text("trusted_proxy_header")?
        .parse::<ForwardedHeader>()
        .map_err(|e| ConfigError::Invalid {
            name: "trusted_proxy_header",
            problem: e.to_string(),
        })?;
    Ok(GatewayConfig {
        db_url: text("gateway_db_url")?,
        redis_url: text("redis_url")?,
        redis_key_prefix: text("redis_key_prefix")?,
        storage,
        verifier: TokenVerifier::from_jwks(&text("token_public_keys")?)?,
        max_upload_bytes,
        trusted_proxies,
        forwarded_header,
    })
}
