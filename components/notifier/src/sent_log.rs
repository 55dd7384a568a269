//! `emails_sent`: the notifier's own log of emails, at most one per (job, kind).
//!
//! Sending is claim → send → mark, each step one atomic statement (Spin's MySQL interface gives
//! no transaction across calls: each call may run on another pooled connection):
//!
//! 1. **claim**: insert a `sending` row carrying a token unique to this attempt. The primary key
//!    (job_id, kind) lets only one row exist; when it already does, its state decides:
//!    `sent`/`rejected` → nothing to send (a duplicate delivery); `sending` with another token →
//!    another delivery of the event is sending right now (the runtime handles messages
//!    concurrently, and the relay republishes when the ack is slow) → leave it to that one.
//! 2. **send** through the mail API.
//! 3. **mark** `sent` (or `rejected`) — or, when the mail API failed, **release**: delete our
//!    claim so the redelivery sends.
//!
//! A claim whose attempt died between 1 and 3 (a crash, a killed instance) would block the job
//! forever, so a `sending` claim older than [`STALE_CLAIM_SECS`] may be taken over. The trade-off:
//! an attempt that crashed *after* the provider accepted the email but *before* marking it leads
//! to a second email. Exactly-once delivery through an API without idempotency keys is not
//! possible; we choose a rare duplicate over a lost "your mp3 is ready". An attempt can never
//! still be running when its claim turns stale — the mail call is bounded by the HTTP timeouts
//! in `mail_api` (well under a minute) and runtime-host bounds each message (60 s by default) —
//! so a takeover never races a live sender.

use spin_sdk::mysql::{Connection, DbValue, ParameterValue};
use vid2mp3_contracts::JobId;

/// After this long a `sending` claim is taken to be from an attempt that died.
pub const STALE_CLAIM_SECS: u32 = 300;

/// Which email: one per job and outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailKey<'a> {
    pub job_id: JobId,
    /// `"done"` or `"failed"` (contracts' `JobEvent::kind`).
    pub kind: &'a str,
}

/// An attempt's claim: its token is what makes "our" row ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest<'a> {
    pub key: EmailKey<'a>,
    pub event_id: uuid::Uuid,
    pub recipient: &'a str,
    pub token: uuid::Uuid,
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This attempt sends.
    Ours { took_over_stale: bool },
    /// Done already: nothing to send.
    Settled(Settled),
    /// Another attempt holds a fresh claim and may be sending now.
    InFlight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Sent,
    /// The provider refused the email for good; sending it again cannot help.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentLogError {
    #[error("cannot open the notifier database: {0}")]
    Connect(String),
    #[error("the notifier database failed to {action}: {reason}")]
    Query {
        action: &'static str,
        reason: String,
    },
    #[error("emails_sent has a row in an unknown state {0:?}")]
    UnknownState(String),
    #[error("the claim for this email vanished while being taken")]
    Vanished,
}

pub trait SentLog {
    fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, SentLogError>;
    fn mark_sent(
        &self,
        key: EmailKey<'_>,
        token: uuid::Uuid,
        provider_id: Option<&str>,
    ) -> Result<(), SentLogError>;
    fn mark_rejected(
        &self,
        key: EmailKey<'_>,
        token: uuid::Uuid,
        detail: &str,
    ) -> Result<(), SentLogError>;
    fn release(&self, key: EmailKey<'_>, token: uuid::Uuid) -> Result<(), SentLogError>;
}

/// One row's claim state, as read back after trying to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    pub state: String,
    pub token: Option<String>,
    pub stale: bool,
}

/// What to do about the row found after the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Claim(Claim),
    TakeOver,
}

/// Pure: the state machine over a row, so it is testable without a database.
pub fn decide(row: &ClaimRow, token: uuid::Uuid) -> Result<Decision, SentLogError> {
    let ours = row.token.as_deref() == Some(token.hyphenated().to_string().as_str());
    match row.state.as_str() {
        "sent" => Ok(Decision::Claim(Claim::Settled(Settled::Sent))),
        "rejected" => Ok(Decision::Claim(Claim::Settled(Settled::Rejected))),
        "sending" if ours => Ok(Decision::Claim(Claim::Ours {
            took_over_stale: false,
        })),
        "sending" if row.stale => Ok(Decision::TakeOver),
        "sending" => Ok(Decision::Claim(Claim::InFlight)),
        other => Err(SentLogError::UnknownState(other.to_owned())),
    }
}

/// `emails_sent` through Spin's MySQL interface, connected on first use (a poison event needs
/// no database).
pub struct MySqlSentLog {
    url: String,
    connection: std::cell::OnceCell<Connection>,
}

impl MySqlSentLog {
    pub fn new(url: &str) -> Self {
        MySqlSentLog {
            url: url.to_owned(),
            connection: std::cell::OnceCell::new(),
        }
    }

    fn connection(&self) -> Result<&Connection, SentLogError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection);
        }
        // The error text comes from the host and names the server, not the URL's password.
        let connection =
            Connection::open(&self.url).map_err(|e| SentLogError::Connect(format!("{e:?}")))?;
        Ok(self.connection.get_or_init(|| connection))
    }

    fn execute(
        &self,
        action: &'static str,
        statement: &str,
        params: &[ParameterValue],
    ) -> Result<(), SentLogError> {
        self.connection()?
            .execute(statement, params)
            .map_err(|e| SentLogError::Query {
                action,
                reason: format!("{e:?}"),
            })
    }

    fn read_claim(&self, key: EmailKey<'_>) -> Result<Option<ClaimRow>, SentLogError> {
        let rows = self
            .connection()?
            .query(
                "SELECT state, claim_token, \
                        claimed_at < CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND AS stale \
                 FROM emails_sent WHERE job_id = ? AND kind = ?",
                &[
                    ParameterValue::Uint32(STALE_CLAIM_SECS),
                    job_param(key.job_id),
                    ParameterValue::Str(key.kind.to_owned()),
                ],
            )
            .map_err(|e| SentLogError::Query {
                action: "read a claim",
                reason: format!("{e:?}"),
            })?;
        let Some(row) = rows.rows.first() else {
            return Ok(None);
        };
        let state = match row.first() {
            Some(DbValue::Str(s)) => s.clone(),
            other => return Err(SentLogError::UnknownState(format!("{other:?}"))),
        };
        let token = match row.get(1) {
            Some(DbValue::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let stale = row.get(2).and_then(as_i64).is_some_and(|v| v != 0);
        Ok(Some(ClaimRow {
            state,
            token,
            stale,
        }))
    }
}

impl SentLog for MySqlSentLog {
    fn claim(&self, request: &ClaimRequest<'_>) -> Result<Claim, SentLogError> {
        let key = request.key;
        let token = request.token.hyphenated().to_string();
        // On a duplicate key this changes nothing: what is there is read back below. (Not
        // INSERT IGNORE, which would also hide real errors such as a too-long value.)
        self.execute(
            "claim an email",
            "INSERT INTO emails_sent (job_id, kind, event_id, recipient, state, claim_token) \
             VALUES (?, ?, ?, ?, 'sending', ?) \
             ON DUPLICATE KEY UPDATE job_id = job_id",
            &[
                job_param(key.job_id),
                ParameterValue::Str(key.kind.to_owned()),
                ParameterValue::Str(request.event_id.hyphenated().to_string()),
                ParameterValue::Str(request.recipient.to_owned()),
                ParameterValue::Str(token.clone()),
            ],
        )?;
        let row = self.read_claim(key)?.ok_or(SentLogError::Vanished)?;
        match decide(&row, request.token)? {
            Decision::Claim(claim) => Ok(claim),
            Decision::TakeOver => {
                // Atomic under the row lock: of two attempts taking over at once, the second
                // finds the claim fresh again and changes nothing.
                self.execute(
                    "take over a stale claim",
                    "UPDATE emails_sent \
                     SET claim_token = ?, event_id = ?, recipient = ?, \
                         send_attempts = send_attempts + 1, claimed_at = CURRENT_TIMESTAMP(3) \
                     WHERE job_id = ? AND kind = ? AND state = 'sending' \
                       AND claimed_at < CURRENT_TIMESTAMP(3) - INTERVAL ? SECOND",
                    &[
                        ParameterValue::Str(token),
                        ParameterValue::Str(request.event_id.hyphenated().to_string()),
                        ParameterValue::Str(request.recipient.to_owned()),
                        job_param(key.job_id),
                        ParameterValue::Str(key.kind.to_owned()),
                        ParameterValue::Uint32(STALE_CLAIM_SECS),
                    ],
                )?;
                let row = self.read_claim(key)?.ok_or(SentLogError::Vanished)?;
                match decide(&row, request.token)? {
                    Decision::Claim(Claim::Ours { .. }) => Ok(Claim::Ours {
                        took_over_stale: true,
                    }),
                    Decision::Claim(other) => Ok(other),
                    // Someone else took it over first and has since gone stale too: unlikely
                    // enough to leave to the next delivery.
                    Decision::TakeOver => Ok(Claim::InFlight),
                }
            }
        }
    }

    fn mark_sent(
        &self,
        key: EmailKey<'_>,
        token: uuid::Uuid,
        provider_id: Option<&str>,
    ) -> Result<(), SentLogError> {
        self.execute(
            "mark an email sent",
            "UPDATE emails_sent \
             SET state = 'sent', provider_id = ?, sent_at = CURRENT_TIMESTAMP(3) \
             WHERE job_id = ? AND kind = ? AND claim_token = ?",
            &[
                provider_id.map_or(ParameterValue::DbNull, |id| {
                    ParameterValue::Str(id.to_owned())
                }),
                job_param(key.job_id),
                ParameterValue::Str(key.kind.to_owned()),
                ParameterValue::Str(token.hyphenated().to_string()),
            ],
        )
    }

    fn mark_rejected(
        &self,
        key: EmailKey<'_>,
        token: uuid::Uuid,
        detail: &str,
    ) -> Result<(), SentLogError> {
        self.execute(
            "mark an email rejected",
            "UPDATE emails_sent SET state = 'rejected', detail = ? \
             WHERE job_id = ? AND kind = ? AND claim_token = ?",
            &[
                ParameterValue::Str(detail.chars().take(512).collect()),
                job_param(key.job_id),
                ParameterValue::Str(key.kind.to_owned()),
                ParameterValue::Str(token.hyphenated().to_string()),
            ],
        )
    }

    fn release(&self, key: EmailKey<'_>, token: uuid::Uuid) -> Result<(), SentLogError> {
        // Only our own claim, and only while it is still a claim.
        self.execute(
            "release a claim",
            "DELETE FROM emails_sent \
             WHERE job_id = ? AND kind = ? AND state = 'sending' AND claim_token = ?",
            &[
                job_param(key.job_id),
                ParameterValue::Str(key.kind.to_owned()),
                ParameterValue::Str(token.hyphenated().to_string()),
            ],
        )
    }
}

fn job_param(job_id: JobId) -> ParameterValue {
    ParameterValue::Str(job_id.to_string())
}

/// A comparison's result is an integer whose width the server chooses.
fn as_i64(value: &DbValue) -> Option<i64> {
    match value {
        DbValue::Boolean(b) => Some(i64::from(*b)),
        DbValue::Int8(v) => Some(i64::from(*v)),
        DbValue::Int16(v) => Some(i64::from(*v)),
        DbValue::Int32(v) => Some(i64::from(*v)),
        DbValue::Int64(v) => Some(*v),
        DbValue::Uint8(v) => Some(i64::from(*v)),
        DbValue::Uint16(v) => Some(i64::from(*v)),
        DbValue::Uint32(v) => Some(i64::from(*v)),
        DbValue::Uint64(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, token: Option<uuid::Uuid>, stale: bool) -> ClaimRow {
        ClaimRow {
            state: state.into(),
            token: token.map(|t| t.hyphenated().to_string()),
            stale,
        }
    }

    #[test]
    fn the_claim_state_machine() {
        let mine = uuid::Uuid::new_v4();
        let theirs = uuid::Uuid::new_v4();
        let cases = [
            (
                row("sending", Some(mine), false),
                Decision::Claim(Claim::Ours {
                    took_over_stale: false,
                }),
            ),
            (
                row("sending", Some(theirs), false),
                Decision::Claim(Claim::InFlight),
            ),
            (row("sending", Some(theirs), true), Decision::TakeOver),
            (row("sending", None, true), Decision::TakeOver),
            (
                row("sent", Some(theirs), true),
                Decision::Claim(Claim::Settled(Settled::Sent)),
            ),
            // Sent stays sent even if this attempt's token is the one on it.
            (
                row("sent", Some(mine), false),
                Decision::Claim(Claim::Settled(Settled::Sent)),
            ),
            (
                row("rejected", Some(theirs), false),
                Decision::Claim(Claim::Settled(Settled::Rejected)),
            ),
        ];
        for (row, expected) in cases {
            assert_eq!(decide(&row, mine).unwrap(), expected, "{row:?}");
        }
        assert!(matches!(
            decide(&row("lost", None, false), mine),
            Err(SentLogError::UnknownState(s)) if s == "lost"
        ));
    }

    #[test]
    fn integers_of_any_width_read_as_booleans() {
        assert_eq!(as_i64(&DbValue::Int32(1)), Some(1));
        assert_eq!(as_i64(&DbValue::Int64(0)), Some(0));
        assert_eq!(as_i64(&DbValue::Uint64(u64::MAX)), None);
        assert_eq!(as_i64(&DbValue::DbNull), None);
    }
}
