//! auth's private API, as the gateway calls it through Spin service chaining
//! (`http://auth.spin.internal`). Errors are [`crate::ErrorBody`] JSON.
//!
//! | method and path | what |
//! |---|---|
//! | `POST /users` | sign up ([`Credentials`] → `202` [`CheckInbox`], the same answer whether or not the address has an account; `429` with `Retry-After` when the client's address signed up too often) |
//! | `POST /users/confirmation` | confirm an address with the token from its email ([`Confirmation`] → `200` [`Account`]; `400` for a token that is unknown, used or expired; `409` when another link confirmed the address first) |
//! | `POST /users/confirmation-email` | send the confirmation link again ([`Credentials`] → `202` [`CheckInbox`], always; throttled like a log-in) |
//! | `POST /sessions` | log in ([`Credentials`] → `200` [`Session`]; `401` for any wrong email/password pair; `403` `email_not_confirmed` for the right password of an unconfirmed account; `429` with `Retry-After` when throttled) |
//! | `POST /accounts/deletion-check` | check the password of the account deleting itself ([`AccountDeletion`] → `204`; `403` `forbidden` for a wrong password; `401` when the account is gone; `429` with `Retry-After`, throttled like a log-in) |
//! | `POST /accounts/deletion` | the last step of a deletion: the password again, then the notifier's rows for the address, the confirmation links and the user ([`AccountDeletion`] → `204`; errors as above; `503` when the notifier did not confirm, nothing of the user removed) |
//! | `GET /jwks` | the public keys tokens are signed with (RFC 7517) |
//!
//! Every `POST` carries [`HEADER_CLIENT_ADDR`]: auth counts attempts per client address.

use serde::{Deserialize, Serialize};

use crate::UserId;

pub const USERS_PATH: &str = "/users";
pub const CONFIRMATION_PATH: &str = "/users/confirmation";
pub const CONFIRMATION_EMAIL_PATH: &str = "/users/confirmation-email";
pub const SESSIONS_PATH: &str = "/sessions";
pub const JWKS_PATH: &str = "/jwks";
pub const DELETION_CHECK_PATH: &str = "/accounts/deletion-check";
pub const DELETION_PATH: &str = "/accounts/deletion";

/// The client's address as the gateway worked it out (`client_addr`), for per-address throttling.
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

/// The answer to a sign-up and to a request for another confirmation link: the same words
/// whatever the address's state, so it tells nobody whether the address has an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInbox {
    /// As typed, normalized (trimmed, lower-cased).
    pub email: String,
    /// For people: where to look and what to do next.
    pub message: String,
}

/// The token from a confirmation email's link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub token: String,
}

// The token confirms an address once; it must not end up in a log.
impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmation")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The account deleting itself (the id from its token) and its password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDeletion {
    pub user_id: UserId,
    pub password: String,
}

impl std::fmt::Debug for AccountDeletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountDeletion")
            .field("user_id", &self.user_id)
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
        let t = Confirmation {
            token: "s3cret-token".into(),
        };
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
