//! auth's private API, as the gateway calls it through Spin service chaining
//! (`http://auth.spin.internal`). Errors are [`crate::ErrorBody`] JSON.
//!
//! | method and path | what |
//! |---|---|
//! | `POST /users` | sign up ([`Credentials`] → `201` [`Account`]; `409` when the email has an account) |
//! | `POST /sessions` | log in ([`Credentials`] → `200` [`Session`]; `401` for any wrong email/password pair; `429` with `Retry-After` when throttled) |
//! | `GET /jwks` | the public keys tokens are signed with (RFC 7517) |

use serde::{Deserialize, Serialize};

use crate::UserId;

pub const USERS_PATH: &str = "/users";
pub const SESSIONS_PATH: &str = "/sessions";
pub const JWKS_PATH: &str = "/jwks";

/// The client's address as the gateway saw it, for per-address login throttling.
pub const HEADER_CLIENT_ADDR: &str = "x-vid2mp3-client-addr";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

// Never print a password, even in a debug log.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: UserId,
    /// Normalized: trimmed and lower-cased.
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub account: Account,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("ada@example.com"));
        assert!(!shown.contains("horse"));
    }
}
