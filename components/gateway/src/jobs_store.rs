//! The gateway's `jobs` table: who owns which job. Nothing about processing lives here.

use spin_sdk::mysql::{Connection, DbValue, Decode, MysqlError, ParameterValue, Row};
use vid2mp3_contracts::{JobId, Secret, UserId};

use crate::errors::ApiError;

/// One job as the gateway knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedJob {
    pub id: JobId,
    pub original_name: String,
    pub content_type: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
}

pub struct JobsStore {
    conn: Connection,
}

/// Where a page of "my jobs" starts: after this (created_ms, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageStart {
    pub created_ms: i64,
    pub id: JobId,
}

const COLUMNS: &str =
    "id, original_name, content_type, CAST(UNIX_TIMESTAMP(created_at) * 1000 AS SIGNED)";

impl JobsStore {
    pub fn open(db_url: &Secret) -> Result<JobsStore, ApiError> {
        Connection::open(db_url.expose())
            .map(|conn| JobsStore { conn })
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))
    }

    /// Records a job whose upload is starting; it stays invisible until [`JobsStore::mark_stored`].
    pub fn insert_pending(
        &self,
        job: &JobId,
        owner: &UserId,
        original_name: &str,
        content_type: &str,
    ) -> Result<(), ApiError> {
        self.conn
            .execute(
                "INSERT INTO jobs (id, owner_id, original_name, content_type) VALUES (?, ?, ?, ?)",
                &[
                    ParameterValue::Str(job.to_string()),
                    ParameterValue::Str(owner.to_string()),
                    ParameterValue::Str(original_name.to_owned()),
                    ParameterValue::Str(content_type.to_owned()),
                ],
            )
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))
    }

    pub fn mark_stored(&self, job: &JobId) -> Result<(), ApiError> {
        self.conn
            .execute(
                "UPDATE jobs SET stored_at = CURRENT_TIMESTAMP(3) WHERE id = ?",
                &[ParameterValue::Str(job.to_string())],
            )
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))
    }

    pub fn remove(&self, job: &JobId) -> Result<(), ApiError> {
        self.conn
            .execute(
                "DELETE FROM jobs WHERE id = ?",
                &[ParameterValue::Str(job.to_string())],
            )
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))
    }

    /// Every row of `owner`, stored or still pending (an account's deletion).
    pub fn remove_owner(&self, owner: &UserId) -> Result<(), ApiError> {
        self.conn
            .execute(
                "DELETE FROM jobs WHERE owner_id = ?",
                &[ParameterValue::Str(owner.to_string())],
            )
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))
    }

    /// The job if `owner` owns it and its upload completed; otherwise `None` (never "someone
    /// else's": the caller answers both the same way).
    pub fn find_owned(&self, job: &JobId, owner: &UserId) -> Result<Option<OwnedJob>, ApiError> {
        let rows = self
            .conn
            .query(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ? AND owner_id = ? AND stored_at IS NOT NULL"),
                &[
                    ParameterValue::Str(job.to_string()),
                    ParameterValue::Str(owner.to_string()),
                ],
            )
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))?;
        rows.rows.first().map(decode).transpose()
    }

    /// Newest first, `limit` of them, after `start` when given.
    pub fn list_owned(
        &self,
        owner: &UserId,
        start: Option<&PageStart>,
        limit: u32,
    ) -> Result<Vec<OwnedJob>, ApiError> {
        let mut params = vec![ParameterValue::Str(owner.to_string())];
        let mut sql =
            format!("SELECT {COLUMNS} FROM jobs WHERE owner_id = ? AND stored_at IS NOT NULL");
        if let Some(start) = start {
            // (created_at, id) < (start): the next older rows, stable under inserts.
            sql.push_str(
                " AND (created_at < FROM_UNIXTIME(? / 1000) OR (created_at = FROM_UNIXTIME(? / 1000) AND id < ?))",
            );
            params.push(ParameterValue::Int64(start.created_ms));
            params.push(ParameterValue::Int64(start.created_ms));
            params.push(ParameterValue::Str(start.id.to_string()));
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        params.push(ParameterValue::Uint32(limit));
        let rows = self
            .conn
            .query(&sql, &params)
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))?;
        rows.rows.iter().map(decode).collect()
    }

    /// Jobs whose upload began more than `older_than_secs` ago and was never recorded as stored,
    /// oldest first, at most `limit` of them.
    pub fn abandoned(&self, older_than_secs: u32, limit: u32) -> Result<Vec<JobId>, ApiError> {
        let rows = self
            .conn
            .query(
                "SELECT id FROM jobs WHERE stored_at IS NULL \
                 AND created_at < NOW(3) - INTERVAL ? SECOND ORDER BY created_at LIMIT ?",
                &[
                    ParameterValue::Uint32(older_than_secs),
                    ParameterValue::Uint32(limit),
                ],
            )
            .map_err(|e| ApiError::unavailable("the jobs database", describe(&e)))?;
        rows.rows
            .iter()
            .map(|row| {
                let bad = |e: String| ApiError::internal("reading a job row", e);
                let value = row.first().ok_or_else(|| bad("column 0 missing".into()))?;
                text_value(value)
                    .map_err(bad)?
                    .parse()
                    .map_err(|e: vid2mp3_contracts::IdError| bad(e.to_string()))
            })
            .collect()
    }

    pub fn ping(&self) -> Result<(), String> {
        self.conn
            .query("SELECT 1", &[])
            .map(|_| ())
            .map_err(|e| describe(&e))
    }
}

fn decode(row: &Row) -> Result<OwnedJob, ApiError> {
    let bad = |e: String| ApiError::internal("reading a job row", e);
    let text = |i: usize| -> Result<String, ApiError> {
        let value = row
            .get(i)
            .ok_or_else(|| bad(format!("column {i} missing")))?;
        text_value(value).map_err(bad)
    };
    let created = row.get(3).ok_or_else(|| bad("created_at missing".into()))?;
    Ok(OwnedJob {
        id: text(0)?
            .parse()
            .map_err(|e: vid2mp3_contracts::IdError| bad(e.to_string()))?,
        original_name: text(1)?,
        content_type: text(2)?,
        created_ms: i64::decode(created).map_err(|e| bad(e.to_string()))?,
    })
}

fn describe(e: &MysqlError) -> String {
    match e {
        MysqlError::ConnectionFailed(m)
        | MysqlError::BadParameter(m)
        | MysqlError::QueryFailed(m)
        | MysqlError::ValueConversionFailed(m)
        | MysqlError::Other(m) => m.clone(),
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
