//! The `users` table in auth's own MySQL database.

use spin_sdk::mysql::{self, Connection, DbValue, ParameterValue};
use vid2mp3_contracts::UserId;
use vid2mp3_contracts::auth_api::Account;

use crate::email::Email;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("auth's database is unreachable: {0}")]
    Unreachable(String),
    #[error("auth's database answered with an error: {0}")]
    Query(String),
    #[error("auth's database holds a row it cannot read: {0}")]
    BadRow(String),
}

/// The stored account an email belongs to, with its password hash.
pub struct StoredAccount {
    pub account: Account,
    pub password_hash: String,
}

pub struct Accounts {
    conn: Connection,
}

impl Accounts {
    pub fn open(db_url: &str) -> Result<Accounts, StoreError> {
        Connection::open(db_url)
            .map(|conn| Accounts { conn })
            .map_err(|e| StoreError::Unreachable(describe(&e)))
    }

    pub fn find(&self, email: &Email) -> Result<Option<StoredAccount>, StoreError> {
        let rows = self
            .conn
            .query(
                "SELECT id, email, password_hash FROM users WHERE email = ?",
                &[ParameterValue::Str(email.as_str().to_owned())],
            )
            .map_err(|e| StoreError::Query(describe(&e)))?;
        let Some(row) = rows.rows.first() else {
            return Ok(None);
        };
        let text = |i: usize| -> Result<String, StoreError> {
            let value = row
                .get(i)
                .ok_or_else(|| StoreError::BadRow(format!("column {i} missing")))?;
            text_value(value).map_err(StoreError::BadRow)
        };
        let id = text(0)?
            .parse::<UserId>()
            .map_err(|e| StoreError::BadRow(e.to_string()))?;
        Ok(Some(StoredAccount {
            account: Account {
                id,
                email: text(1)?,
            },
            password_hash: text(2)?,
        }))
    }

    /// Creates the account; `Ok(None)` when the email already has one (also when another sign-up
    /// for it won a race with this one).
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
                None => Err(StoreError::Query(describe(&e))),
            },
        }
    }
}

fn describe(e: &mysql::MysqlError) -> String {
    match e {
        mysql::MysqlError::ConnectionFailed(m)
        | mysql::MysqlError::BadParameter(m)
        | mysql::MysqlError::QueryFailed(m)
        | mysql::MysqlError::ValueConversionFailed(m)
        | mysql::MysqlError::Other(m) => m.clone(),
    }
}

/// Text from a column. Spin reports a column with a binary collation (`utf8mb4_bin`, which
/// makes comparisons byte-wise) as binary, so both forms are text here.
fn text_value(value: &DbValue) -> Result<String, String> {
    match value {
        DbValue::Str(s) => Ok(s.clone()),
        DbValue::Binary(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| "a text column holds non-UTF-8 bytes".to_owned()),
        other => Err(format!("expected text, got {other:?}")),
    }
}
