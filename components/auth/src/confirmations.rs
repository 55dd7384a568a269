//! Email confirmation tokens: made here, mailed by the notifier, redeemed once.
//!
//! A token is 32 random bytes (base64url, 43 characters); the `email_confirmations` table keeps
//! only its SHA-256, so reading the table confirms nothing. Each row also keeps the password hash
//! chosen in the sign-up that sent it: the link a person opens decides the password, so someone
//! who signs up with another person's address cannot make that person's click confirm a password
//! the stranger knows without the owner opening the stranger's link.
//!
//! Redeeming is a claim in one statement (`UPDATE ... WHERE used_at IS NULL AND expires_at >
//! now`) with a nonce of this request, read back: of two requests with the same token only one
//! finds its nonce (Spin's MySQL interface gives no affected-row count, nor a transaction across
//! calls).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use spin_sdk::mysql::{Connection, ParameterValue};
use vid2mp3_contracts::UserId;

use crate::accounts::{StoreError, as_i64, text_value};

/// Bytes of randomness in a token (256 bits: guessing one is not a plan).
const TOKEN_BYTES: usize = 32;
/// A token as it appears in a link: base64url without padding.
pub const TOKEN_CHARS: usize = 43;
/// Expired or used rows are kept this long (so an old link gets a precise answer), then removed,
/// a bounded batch at each new confirmation.
const KEEP_SPENT_SECS: u32 = 7 * 24 * 3600;
const PURGE_BATCH: u32 = 100;

#[derive(Debug, thiserror::Error)]
#[error("no randomness for a confirmation token")]
pub struct RandomError(#[from] getrandom::Error);

/// A new token, and the hash that is stored for it.
pub fn new_token() -> Result<(String, String), RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// SHA-256 of the token's text, lower-case hex: what the table is keyed by.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` can be a token at all (checked before any query).
pub fn is_well_formed(text: &str) -> bool {
    text.len() == TOKEN_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a token was worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Claimed now: confirm this account with this password hash.
    Valid {
        user_id: UserId,
        password_hash: String,
    },
    /// Used before (by this link, or made worthless by another that confirmed the address).
    Used,
    /// Never used, and too old now.
    Expired,
    /// Not one of ours (or removed long ago).
    Unknown,
}

pub struct Confirmations<'c> {
    conn: &'c Connection,
}

impl<'c> Confirmations<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Confirmations { conn }
    }

    /// Records a token (by its hash) for `user_id`, valid for `lifetime_secs`, and removes a
    /// batch of long-spent ones.
    pub fn insert(
        &self,
        token_hash: &str,
        user_id: UserId,
        password_hash: &str,
        lifetime_secs: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!(
                    "DELETE FROM email_confirmations \
                     WHERE expires_at < CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND LIMIT {PURGE_BATCH}"
                ),
                &[ParameterValue::Uint32(KEEP_SPENT_SECS)],
            )
            .map_err(StoreError::Query)?;
        self.conn
            .execute(
                "INSERT INTO email_confirmations (token_sha256, user_id, password_hash, expires_at) \
                 VALUES (?, ?, ?, CURRENT_TIMESTAMP(3) + INTERVAL ? SECOND)",
                &[
                    ParameterValue::Str(token_hash.to_owned()),
                    ParameterValue::Str(user_id.to_string()),
                    ParameterValue::Str(password_hash.to_owned()),
                    ParameterValue::Uint64(lifetime_secs),
                ],
            )
            .map_err(StoreError::Query)
    }

    /// Claims the token for this request, if it is current and unused.
    pub fn redeem(&self, token: &str) -> Result<Redeemed, StoreError> {
        let hash = ParameterValue::Str(token_hash(token));
        let nonce = ParameterValue::Str(uuid::Uuid::new_v4().hyphenated().to_string());
        self.conn
            .execute(
                "UPDATE email_confirmations \
                 SET used_at = CURRENT_TIMESTAMP(3), used_by = ? \
                 WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > CURRENT_TIMESTAMP(3)",
                &[nonce.clone(), hash.clone()],
            )
            .map_err(StoreError::Query)?;
        let rows = self
            .conn
            .query(
                "SELECT user_id, password_hash, used_by = ?, used_at IS NOT NULL \
                 FROM email_confirmations WHERE token_sha256 = ?",
                &[nonce, hash],
            )
            .map_err(StoreError::Query)?;
        let Some(row) = rows.rows.first() else {
            return Ok(Redeemed::Unknown);
        };
        let flag = |i: usize| row.get(i).and_then(as_i64).is_some_and(|v| v != 0);
        if flag(2) {
            let text = |i: usize| {
                row.get(i)
                    .ok_or_else(|| StoreError::BadRow(format!("column {i} missing")))
                    .and_then(|v| text_value(v).map_err(StoreError::BadRow))
            };
            let user_id = text(0)?.parse::<UserId>().map_err(StoreError::BadUserId)?;
            return Ok(Redeemed::Valid {
                user_id,
                password_hash: text(1)?,
            });
        }
        Ok(if flag(3) {
            Redeemed::Used
        } else {
            Redeemed::Expired
        })
    }

    /// Once an account is confirmed, its other links are worthless: they are marked used (and
    /// answer so), and removed with the other spent ones later.
    pub fn retire_unused(&self, user_id: UserId) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE email_confirmations SET used_at = CURRENT_TIMESTAMP(3) \
                 WHERE user_id = ? AND used_at IS NULL",
                &[ParameterValue::Str(user_id.to_string())],
            )
            .map_err(StoreError::Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_only_their_hash_is_kept() {
        let (a, hash_a) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_CHARS);
        assert!(is_well_formed(&a), "{a}");
        assert_eq!(hash_a, token_hash(&a));
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised_without_a_query() {
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
            &format!("{}'", "a".repeat(42)),
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }
}
