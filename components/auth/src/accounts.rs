//! The `users` table in auth's own MySQL database.

use spin_sdk::mysql::{self, Connection, DbValue, ParameterValue};
use vid2mp3_contracts::UserId;
use vid2mp3_contracts::auth_api::Account;

use crate::email::Email;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("auth's database is unreachable")]
    Unreachable(#[source] mysql::MysqlError),
    #[error("auth's database answered with an error")]
    Query(#[source] mysql::MysqlError),
    #[error("auth's database holds a row it cannot read: {0}")]
    BadRow(String),
    #[error("auth's database holds a row whose user id cannot be read")]
    BadUserId(#[source] vid2mp3_contracts::IdError),
    /// A sign-up lost a race for its address, yet the winner's row is gone too.
    #[error("the account was neither created nor found; try again")]
    Vanished,
}

/// The stored account an email belongs to, with its password hash.
pub struct StoredAccount {
    pub account: Account,
    /// For an unconfirmed account, the one chosen at its latest sign-up (what a log-in is
    /// checked against to say "confirm first"); confirming sets the one of the link used.
    pub password_hash: String,
    /// Whether the owner opened a confirmation link (accounts from before confirmation count).
    pub confirmed: bool,
}

/// What confirming an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now, with the password of the link used.
    Now(Account),
    /// Another link confirmed it first; its password holds.
    Earlier,
    /// The account is gone.
    Missing,
}

pub struct Accounts {
    conn: Connection,
}

impl Accounts {
    pub fn open(db_url: &str) -> Result<Accounts, StoreError> {
        Connection::open(db_url)
            .map(|conn| Accounts { conn })
            .map_err(StoreError::Unreachable)
    }

    /// The connection, for the other tables of auth's database.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn find(&self, email: &Email) -> Result<Option<StoredAccount>, StoreError> {
        self.find_where("email = ?", email.as_str().to_owned())
    }

    pub fn find_by_id(&self, id: UserId) -> Result<Option<StoredAccount>, StoreError> {
        self.find_where("id = ?", id.to_string())
    }

    fn find_where(
        &self,
        condition: &str,
        value: String,
    ) -> Result<Option<StoredAccount>, StoreError> {
        let rows = self
            .conn
            .query(
                &format!(
                    "SELECT id, email, password_hash, email_confirmed_at IS NOT NULL \
                     FROM users WHERE {condition}"
                ),
                &[ParameterValue::Str(value)],
            )
            .map_err(StoreError::Query)?;
        let Some(row) = rows.rows.first() else {
            return Ok(None);
        };
        let text = |i: usize| -> Result<String, StoreError> {
            let value = row
                .get(i)
                .ok_or_else(|| StoreError::BadRow(format!("column {i} missing")))?;
            text_value(value).map_err(StoreError::BadRow)
        };
        let id = text(0)?.parse::<UserId>().map_err(StoreError::BadUserId)?;
        Ok(Some(StoredAccount {
            account: Account {
                id,
                email: text(1)?,
            },
            password_hash: text(2)?,
            confirmed: row.get(3).and_then(as_i64).is_some_and(|v| v != 0),
        }))
    }

    /// Creates the account, unconfirmed; `Ok(None)` when the email already has one (also when
    /// another sign-up for it won a race with this one).
    pub fn create(
        &self,
        email: &Email,
        password_hash: &str,
    ) -> Result<Option<Account>, StoreError> {
        if self.find(email)?.is_some() {
            return Ok(None);
        }
        let id = UserId::new();
        let inserted = self.conn.execute(
            "INSERT INTO users (id, email, password_hash) VALUES (?, ?, ?)",
            &[
                ParameterValue::Str(id.to_string()),
                ParameterValue::Str(email.as_str().to_owned()),
                ParameterValue::Str(password_hash.to_owned()),
            ],
        );
        match inserted {
            Ok(()) => Ok(Some(Account {
                id,
                email: email.as_str().to_owned(),
            })),
            // The unique key on email is the arbiter of races; any other failure is real.
            Err(e) => match self.find(email)? {
                Some(_) => Ok(None),
                None => Err(StoreError::Query(e)),
            },
        }
    }

    /// Replaces the password of an account that is still unconfirmed (a second sign-up for it);
    /// a confirmed account is left alone.
    pub fn set_unconfirmed_password(
        &self,
        id: UserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE users SET password_hash = ? WHERE id = ? AND email_confirmed_at IS NULL",
                &[
                    ParameterValue::Str(password_hash.to_owned()),
                    ParameterValue::Str(id.to_string()),
                ],
            )
            .map_err(StoreError::Query)
    }

    /// Confirms the account with the password chosen together with the link used. One
    /// statement decides a race between two links: the first sets `email_confirmed_at`, the
    /// second finds it set and changes nothing; reading back says which one this was.
    pub fn confirm(&self, id: UserId, password_hash: &str) -> Result<Confirmed, StoreError> {
        let id_param = ParameterValue::Str(id.to_string());
        let hash_param = ParameterValue::Str(password_hash.to_owned());
        self.conn
            .execute(
                "UPDATE users SET password_hash = ?, email_confirmed_at = CURRENT_TIMESTAMP(3) \
                 WHERE id = ? AND email_confirmed_at IS NULL",
                &[hash_param.clone(), id_param.clone()],
            )
            .map_err(StoreError::Query)?;
        let rows = self
            .conn
            .query(
                "SELECT email, password_hash = ? FROM users WHERE id = ?",
                &[hash_param, id_param],
            )
            .map_err(StoreError::Query)?;
        let Some(row) = rows.rows.first() else {
            return Ok(Confirmed::Missing);
        };
        let email = row
            .first()
            .ok_or_else(|| StoreError::BadRow("column 0 missing".into()))
            .and_then(|v| text_value(v).map_err(StoreError::BadRow))?;
        Ok(if row.get(1).and_then(as_i64).is_some_and(|v| v != 0) {
            Confirmed::Now(Account { id, email })
        } else {
            Confirmed::Earlier
        })
    }
}

/// A comparison's result is an integer whose width the server chooses.
pub(crate) fn as_i64(value: &DbValue) -> Option<i64> {
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

/// Text from a column. Spin reports a column with a binary collation (`utf8mb4_bin`, which
/// makes comparisons byte-wise) as binary, so both forms are text here.
pub(crate) fn text_value(value: &DbValue) -> Result<String, String> {
    match value {
        DbValue::Str(s) => Ok(s.clone()),
        DbValue::Binary(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| "a text column holds non-UTF-8 bytes".to_owned()),
        other => Err(format!("expected text, got {other:?}")),
    }
}
