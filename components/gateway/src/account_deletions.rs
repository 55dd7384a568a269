//! The gateway's `account_deletions` table: accounts being deleted or deleted, whose tokens
//! (verified locally, by signature) must be refused before they expire.
//!
//! One primary-key lookup per authenticated request, on the MySQL the route uses anyway. A
//! Redis marker would be as cheap but not durable: a Redis restart would bring a deleted
//! account's tokens back to life, with uploads for a user who no longer exists.

use spin_sdk::mysql::{Connection, MysqlError, ParameterValue};
use vid2mp3_contracts::{ErrorCode, Secret, UserId};

use crate::errors::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionState {
    /// The password was checked and the deletion began: only finishing it is accepted.
    Deleting,
    /// Every service forgot the account: its tokens open nothing.
    Deleted,
}

impl DeletionState {
    fn as_str(self) -> &'static str {
        match self {
            DeletionState::Deleting => "deleting",
            DeletionState::Deleted => "deleted",
        }
    }
}

pub struct AccountDeletions {
    conn: Connection,
}

fn failed(e: &MysqlError) -> ApiError {
    ApiError::unavailable("the accounts database", format!("{e:?}"))
}

impl AccountDeletions {
    pub fn open(db_url: &Secret) -> Result<AccountDeletions, ApiError> {
        Connection::open(db_url.expose())
            .map(|conn| AccountDeletions { conn })
            .map_err(|e| failed(&e))
    }

    pub fn state(&self, user: &UserId) -> Result<Option<DeletionState>, ApiError> {
        let rows = self
            .conn
            .query(
                "SELECT state = 'deleted' FROM account_deletions WHERE user_id = ?",
                &[ParameterValue::Str(user.to_string())],
            )
            .map_err(|e| failed(&e))?;
        let Some(row) = rows.rows.first() else {
            return Ok(None);
        };
        let deleted = row.first().is_some_and(|v| {
            matches!(
                v,
                spin_sdk::mysql::DbValue::Int8(1)
                    | spin_sdk::mysql::DbValue::Int16(1)
                    | spin_sdk::mysql::DbValue::Int32(1)
                    | spin_sdk::mysql::DbValue::Int64(1)
                    | spin_sdk::mysql::DbValue::Uint8(1)
                    | spin_sdk::mysql::DbValue::Uint64(1)
                    | spin_sdk::mysql::DbValue::Boolean(true)
            )
        });
        Ok(Some(if deleted {
            DeletionState::Deleted
        } else {
            DeletionState::Deleting
        }))
    }

    /// Records `state`; `Deleted` is never turned back into `Deleting`.
    pub fn set(&self, user: &UserId, state: DeletionState) -> Result<(), ApiError> {
        self.conn
            .execute(
                "INSERT INTO account_deletions (user_id, state) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE state = IF(state = 'deleted', state, VALUES(state))",
                &[
                    ParameterValue::Str(user.to_string()),
                    ParameterValue::Str(state.as_str().to_owned()),
                ],
            )
            .map_err(|e| failed(&e))
    }
}

/// The answer to a token of an account in `state` on any route but the deletion itself.
pub fn refused(state: DeletionState) -> ApiError {
    let message = match state {
        DeletionState::Deleting => {
            "this account is being deleted; finish with DELETE /api/v1/account (your password), \
             or it stays unusable"
        }
        DeletionState::Deleted => "this account has been deleted; its tokens are void",
    };
    ApiError::new(ErrorCode::Unauthorized, message)
        .with_header("www-authenticate", "Bearer realm=\"vid2mp3\"")
}
