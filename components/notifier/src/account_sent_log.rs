//! `account_emails_sent`: the notifier's log of account emails, one row per message.
//!
//! Simpler than `sent_log` (job emails) because nothing redelivers an account email: the relay
//! does not carry them, pub/sub keeps nothing. What can happen is that several notifier replicas
//! each receive the same message at once, so each claims it (insert a row with a token of its
//! own, read back the token) and only the one whose token is there sends. No claim is ever taken
//! over: a claim left `sending` by a crash is an email lost, like one the mail API refused, and
//! the person asks for another link.

use spin_sdk::mysql::{Connection, DbValue, ParameterValue};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountLogError {
    #[error("cannot open the notifier database: {0}")]
    Connect(String),
    #[error("the notifier database failed to {action}: {reason}")]
    Query {
        action: &'static str,
        reason: String,
    },
    #[error("the claim for this account email vanished while being taken")]
    Vanished,
}

/// How a sending attempt ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Sent,
    /// Refused for good by the provider.
    Rejected,
    /// The mail API could not take it now; nothing will try again.
    Failed,
}

impl Ending {
    pub(crate) fn state(self) -> &'static str {
        match self {
            Ending::Sent => "sent",
            Ending::Rejected => "rejected",
            Ending::Failed => "failed",
        }
    }
}

pub trait AccountSentLog {
    /// `true` when this attempt (its `token`) holds the message's claim and sends it.
    fn claim(
        &self,
        message_id: uuid::Uuid,
        kind: &str,
        recipient: &str,
        token: uuid::Uuid,
    ) -> Result<bool, AccountLogError>;

    fn finish(
        &self,
        message_id: uuid::Uuid,
        token: uuid::Uuid,
        ending: Ending,
        provider_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), AccountLogError>;
}

/// Through Spin's MySQL interface, connected on first use.
pub struct MySqlAccountLog {
    url: String,
    connection: std::cell::OnceCell<Connection>,
}

impl MySqlAccountLog {
    pub fn new(url: &str) -> Self {
        MySqlAccountLog {
            url: url.to_owned(),
            connection: std::cell::OnceCell::new(),
        }
    }

    fn connection(&self) -> Result<&Connection, AccountLogError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection);
        }
        let connection =
            Connection::open(&self.url).map_err(|e| AccountLogError::Connect(format!("{e:?}")))?;
        Ok(self.connection.get_or_init(|| connection))
    }
}

fn id(value: uuid::Uuid) -> ParameterValue {
    ParameterValue::Str(value.hyphenated().to_string())
}

impl AccountSentLog for MySqlAccountLog {
    fn claim(
        &self,
        message_id: uuid::Uuid,
        kind: &str,
        recipient: &str,
        token: uuid::Uuid,
    ) -> Result<bool, AccountLogError> {
        let conn = self.connection()?;
        // On a duplicate key this changes nothing; the token read back says whose claim it is.
        conn.execute(
            "INSERT INTO account_emails_sent (message_id, kind, recipient, state, claim_token) \
             VALUES (?, ?, ?, 'sending', ?) ON DUPLICATE KEY UPDATE message_id = message_id",
            &[
                id(message_id),
                ParameterValue::Str(kind.to_owned()),
                ParameterValue::Str(recipient.to_owned()),
                id(token),
            ],
        )
        .map_err(|e| AccountLogError::Query {
            action: "claim an account email",
            reason: format!("{e:?}"),
        })?;
        let rows = conn
            .query(
                "SELECT claim_token FROM account_emails_sent WHERE message_id = ?",
                &[id(message_id)],
            )
            .map_err(|e| AccountLogError::Query {
                action: "read an account email's claim",
                reason: format!("{e:?}"),
            })?;
        let holder = match rows.rows.first().and_then(|row| row.first()) {
            Some(DbValue::Str(s)) => s.clone(),
            Some(DbValue::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => return Err(AccountLogError::Vanished),
        };
        Ok(holder == token.hyphenated().to_string())
    }

    fn finish(
        &self,
        message_id: uuid::Uuid,
        token: uuid::Uuid,
        ending: Ending,
        provider_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), AccountLogError> {
        let text = |v: Option<&str>, max: usize| {
            v.map_or(ParameterValue::DbNull, |s| {
                ParameterValue::Str(s.chars().take(max).collect())
            })
        };
        self.connection()?
            .execute(
                "UPDATE account_emails_sent \
                 SET state = ?, provider_id = ?, detail = ?, \
                     sent_at = IF(? = 'sent', CURRENT_TIMESTAMP(3), NULL) \
                 WHERE message_id = ? AND claim_token = ?",
                &[
                    ParameterValue::Str(ending.state().to_owned()),
                    text(provider_id, 255),
                    text(detail, 512),
                    ParameterValue::Str(ending.state().to_owned()),
                    id(message_id),
                    id(token),
                ],
            )
            .map_err(|e| AccountLogError::Query {
                action: "record how an account email ended",
                reason: format!("{e:?}"),
            })
    }
}
