//! "Forget this address": published by auth on the account-emails channel when an account is
//! deleted, so the notifier removes its log rows for the address (job emails and account
//! emails). The notifier writes [`erased_ack_key`] when done; auth waits for it before it
//! removes the user, so a deletion never ends with the notifier's rows left behind (if no ack
//! comes, the deletion answers 503 and is retried).

use serde::{Deserialize, Serialize};

/// The field that tells an erasure from an account email or a job event on a channel.
pub const ERASURE_FIELD: &str = "erase_account";
pub const ACCOUNT_ERASURE_VERSION: u32 = 1;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountErasure {
    pub version: u32,
    /// Unique per request; the ack is written under it.
    pub erase_account: uuid::Uuid,
    /// The account's address (normalized), as the notifier's rows hold it.
    pub recipient: String,
}

// The address is personal data: never in a log, even a debug one.
impl std::fmt::Debug for AccountErasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountErasure")
            .field("version", &self.version)
            .field("erase_account", &self.erase_account)
            .finish_non_exhaustive()
    }
}

/// Whether a message on a notifier channel is an erasure.
pub fn is_erasure(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get(ERASURE_FIELD).map(|_| ()))
        .is_some()
}

/// Where the notifier acknowledges erasure `id` (under the install's key prefix).
pub fn erased_ack_key(key_prefix: &str, id: &uuid::Uuid) -> String {
    format!("{key_prefix}erased:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erasure_is_told_apart_and_never_shows_its_address() {
        let e = AccountErasure {
            version: ACCOUNT_ERASURE_VERSION,
            erase_account: uuid::Uuid::nil(),
            recipient: "ada@example.com".into(),
        };
        let bytes = serde_json::to_vec(&e).unwrap();
        assert!(is_erasure(&bytes));
        assert!(!is_erasure(br#"{"account_email": "confirm"}"#));
        assert!(!format!("{e:?}").contains("ada@"));
        assert_eq!(
            erased_ack_key("vid2mp3:", &uuid::Uuid::nil()),
            "vid2mp3:erased:00000000-0000-0000-0000-000000000000"
        );
    }
}
