//! "Email this address about its account": published by auth on a Redis channel, sent by the
//! notifier (the only component that talks to the mail API).
//!
//! Redis pub/sub is not durable: a message published while no notifier listens, or whose send
//! fails, is gone. Nothing is lost with it but an email: the person asks for another link
//! (`POST /api/v1/users/confirmation-email`), which makes a new token and a new message. Several
//! notifier replicas each receive every message; the notifier's log of account emails (keyed by
//! `message_id`) lets exactly one of them send it.

use serde::{Deserialize, Serialize};

/// The Redis channel auth publishes account emails on (Spin variable `account_emails_channel`,
/// which must name the channel of the notifier's second `[[trigger.redis]]`).
pub const ACCOUNT_EMAILS_CHANNEL: &str = "vid2mp3.account-emails";
/// The version of [`AccountEmail`].
pub const ACCOUNT_EMAIL_VERSION: u32 = 1;
/// The field that tells an account email from a job event on a channel (its value is the kind).
pub const KIND_FIELD: &str = "account_email";
/// Where a confirmation link points, under the public base URL; the token follows in the
/// fragment (`#token=...`), which browsers never send to a server or put in a `Referer`.
pub const CONFIRM_PAGE_PATH: &str = "/confirm";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEmail {
    pub version: u32,
    /// Unique per email; the notifier sends each at most once.
    pub message_id: uuid::Uuid,
    /// The address (normalized by auth at sign-up).
    pub to: String,
    #[serde(flatten)]
    pub kind: AccountEmailKind,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "account_email", rename_all = "snake_case")]
pub enum AccountEmailKind {
    /// "Confirm your address": a link with a single-use token, valid until `expires_at`.
    Confirm {
        token: String,
        /// Seconds since the Unix epoch.
        expires_at: u64,
    },
    /// Someone signed up with an address that already has a confirmed account. Fixed words: no
    /// text of the sender's choosing reaches the address.
    AlreadyRegistered,
}

impl AccountEmailKind {
    /// `"confirm"` or `"already_registered"`, as on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountEmailKind::Confirm { .. } => "confirm",
            AccountEmailKind::AlreadyRegistered => "already_registered",
        }
    }
}

// The token confirms an address: never in a log, even a debug one.
impl std::fmt::Debug for AccountEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountEmail")
            .field("version", &self.version)
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("kind", &self.kind.as_str())
            .finish()
    }
}

impl std::fmt::Debug for AccountEmailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The link a confirmation email gives, under `public_base_url` (no trailing slash).
pub fn confirm_link(public_base_url: &str, token: &str) -> String {
    format!("{public_base_url}{CONFIRM_PAGE_PATH}#token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirm() -> AccountEmail {
        AccountEmail {
            version: ACCOUNT_EMAIL_VERSION,
            message_id: uuid::Uuid::now_v7(),
            to: "ada@example.com".into(),
            kind: AccountEmailKind::Confirm {
                token: "tok-123".into(),
                expires_at: 4_000_000_000,
            },
        }
    }

    #[test]
    fn the_kind_is_a_field_of_its_own_and_round_trips() {
        for email in [
            confirm(),
            AccountEmail {
                kind: AccountEmailKind::AlreadyRegistered,
                ..confirm()
            },
        ] {
            let value = serde_json::to_value(&email).unwrap();
            assert_eq!(value[KIND_FIELD], email.kind.as_str());
            assert_eq!(
                serde_json::from_value::<AccountEmail>(value).unwrap(),
                email
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        assert!(!format!("{:?}", confirm()).contains("tok-123"));
    }

    #[test]
    fn the_link_carries_the_token_in_the_fragment() {
        assert_eq!(
            confirm_link("https://vid2mp3.example", "abc"),
            "https://vid2mp3.example/confirm#token=abc"
        );
    }
}
