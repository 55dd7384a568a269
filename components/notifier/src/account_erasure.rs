//! Erasures from auth (contracts' `account_erasure`): an account was deleted, so every row of
//! this notifier's log that names its address goes (job emails in `emails_sent`, account emails
//! in `account_emails_sent`; both hold the address in `recipient`), then the ack auth waits for.
//!
//! Each notifier replica receives the message and runs the same deletes: the second finds
//! nothing, harmlessly. No ack means auth answers 503 and the deletion is tried again.

use spin_sdk::mysql::{self, ParameterValue};
use spin_sdk::redis::{self, RedisParameter};
use vid2mp3_contracts::account_erasure::{ACCOUNT_ERASURE_VERSION, AccountErasure, erased_ack_key};

use crate::event::is_plausible_address;

/// Long enough for auth to read it (it polls for seconds); short enough to leave nothing.
const ACK_TTL_SECS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("not an erasure message: {0}")]
    Unreadable(String),
    #[error("erasure version {0} is not one this notifier reads")]
    Version(u32),
    #[error("the recipient is not a usable address")]
    BadRecipient,
    #[error("the notifier database failed")]
    Database(#[source] mysql::MysqlError),
    #[error("Redis (the erasure's ack) failed")]
    Ack(#[source] redis::Error),
}

pub fn parse(bytes: &[u8]) -> Result<AccountErasure, ErasureError> {
    let message: AccountErasure = serde_json::from_slice(bytes).map_err(|e| {
        // serde's message can quote the input, and the input holds an address.
        ErasureError::Unreadable(format!("line {}, column {}", e.line(), e.column()))
    })?;
    if message.version != ACCOUNT_ERASURE_VERSION {
        return Err(ErasureError::Version(message.version));
    }
    if !is_plausible_address(&message.recipient) {
        return Err(ErasureError::BadRecipient);
    }
    Ok(message)
}

/// The statements that remove the address's rows, in order.
pub const ERASE_STATEMENTS: [&str; 2] = [
    "DELETE FROM emails_sent WHERE recipient = ?",
    "DELETE FROM account_emails_sent WHERE recipient = ?",
];

/// Removes the rows and writes the ack; the log line (never the address).
pub fn handle(
    bytes: &[u8],
    db_url: &str,
    redis_url: &str,
    key_prefix: &str,
) -> Result<String, ErasureError> {
    let message = parse(bytes)?;
    let conn = mysql::Connection::open(db_url).map_err(ErasureError::Database)?;
    for statement in ERASE_STATEMENTS {
        conn.execute(statement, &[ParameterValue::Str(message.recipient.clone())])
            .map_err(ErasureError::Database)?;
    }
    let redis = redis::Connection::open(redis_url).map_err(ErasureError::Ack)?;
    redis
        .execute(
            "SET",
            &[
                RedisParameter::Binary(
                    erased_ack_key(key_prefix, &message.erase_account).into_bytes(),
                ),
                RedisParameter::Binary(b"erased".to_vec()),
                RedisParameter::Binary(b"EX".to_vec()),
                RedisParameter::Int64(ACK_TTL_SECS),
            ],
        )
        .map_err(ErasureError::Ack)?;
    Ok(format!(
        "notifier: erasure={} rows of the address removed",
        message.erase_account
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_erasures_are_refused_without_quoting_the_address() {
        let err =
            parse(br#"{"erase_account": "nope", "recipient": "ada@example.com"}"#).unwrap_err();
        assert!(matches!(err, ErasureError::Unreadable(_)));
        assert!(!err.to_string().contains("ada@"));
        let wrong_version = br#"{"version": 9, "erase_account": "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11", "recipient": "ada@example.com"}"#;
        assert!(matches!(
            parse(wrong_version),
            Err(ErasureError::Version(9))
        ));
        let no_address = br#"{"version": 1, "erase_account": "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11", "recipient": "nobody"}"#;
        assert!(matches!(parse(no_address), Err(ErasureError::BadRecipient)));
    }
}
