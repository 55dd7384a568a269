//! Asking the notifier to email an address about its account: one message on the account-emails
//! channel (contracts' `account_email`). auth never talks to the mail API itself.

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use vid2mp3_contracts::account_email::{ACCOUNT_EMAIL_VERSION, AccountEmail, AccountEmailKind};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the account email message cannot be encoded")]
    Encode(#[from] serde_json::Error),
    #[error("Redis (account emails) failed")]
    Redis(#[from] spin_sdk::redis::Error),
}

/// Publishes the email; the number of subscribers that got it (0: no notifier listening, so the
/// email is lost and the person has to ask for another link).
pub fn publish(
    redis_url: &str,
    channel: &str,
    to: &str,
    kind: AccountEmailKind,
) -> Result<(uuid::Uuid, i64), PublishError> {
    let message = AccountEmail {
        version: ACCOUNT_EMAIL_VERSION,
        message_id: uuid::Uuid::now_v7(),
        to: to.to_owned(),
        kind,
    };
    let payload = serde_json::to_vec(&message)?;
    let conn = Connection::open(redis_url)?;
    // PUBLISH through `execute`: spin-sdk's `publish` does not say how many received it.
    let reply = conn.execute(
        "PUBLISH",
        &[
            RedisParameter::Binary(channel.as_bytes().to_vec()),
            RedisParameter::Binary(payload),
        ],
    )?;
    let receivers = match reply.first() {
        Some(RedisResult::Int64(n)) => *n,
        _ => 0,
    };
    Ok((message.message_id, receivers))
}
