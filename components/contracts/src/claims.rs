//! The claims of the access tokens auth signs (EdDSA) and the gateway verifies.

use serde::{Deserialize, Serialize};

use crate::UserId;

/// `iss` of every token auth issues.
pub const TOKEN_ISSUER: &str = "vid2mp3-auth";
/// `aud` of tokens meant for the gateway's API.
pub const TOKEN_AUDIENCE: &str = "vid2mp3-api";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: UserId,
    pub email: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// Unique per token.
    pub jti: uuid::Uuid,
}
