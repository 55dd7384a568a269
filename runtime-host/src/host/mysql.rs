//! `fermyon:spin/mysql@2.0.0` on mysql_async: one pool per address, shared by all instances.
//!
//! A `connection` resource is one session, as on Spin: `open` borrows a connection from the pool
//! and every statement on the resource runs on it, so a transaction spans statements and prepared
//! statements are reused. Dropping the resource (or the instance) gives it back, and the pool
//! resets it, so nothing of one request's session reaches the next.
//!
//! Column types map as in Spin (signedness from the column flags, BINARY/VARBINARY/BLOB vs text
//! from the binary flag); a column type Spin cannot represent is `other`, and reading a non-null
//! value from it fails with `value-conversion-failed`, so components behave the same on both.
//!
//! A query's rows are read from the server one at a time and counted as Spin counts them (the
//! row set's size plus each value's); past `max_result_bytes` (Spin's 128 MiB by default) the
//! query fails with Spin's `other("query result exceeds limit of N bytes")` and the rows read so
//! far are dropped. So the host never holds more than the limit plus one row (a row is one
//! protocol packet, bounded by the server's `max_allowed_packet`), and the component gets an
//! error it can handle instead of trapping in `cabi_realloc` on a result it cannot hold. The
//! rest of the result is drained by mysql_async before the session's next statement.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Pool, PoolConstraints, PoolOpts, Value};
use wasmtime::component::Resource;

use super::HostState;
use super::bindings::fermyon::spin2_0_0::mysql::{Host, HostConnection};
use super::bindings::fermyon::spin2_0_0::rdbms_types::{
    Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::metrics::{OutboundKind, Outcome};
use crate::outbound_hosts::{OutboundTarget, log_refusal, redact_password};

/// How long opening or borrowing a connection may take before the call fails with
/// `connection-failed`, so a dead database never hangs a request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pools by address. The key holds credentials; it is never logged.
#[derive(Default)]
pub struct MysqlPools {
    pools: Mutex<HashMap<String, Pool>>,
}

impl MysqlPools {
    fn get_or_create(&self, address: &str) -> Result<Pool, Error> {
        let mut pools = self
            .pools
            .lock()
            .map_err(|_| Error::Other("mysql pool registry is poisoned".into()))?;
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        let opts = mysql_async::Opts::from_url(address)
            .map_err(|e| Error::ConnectionFailed(format!("invalid mysql address: {e}")))?;
        let constraints = PoolConstraints::new(0, 32)
            .ok_or_else(|| Error::Other("invalid pool constraints".into()))?;
        let builder = mysql_async::OptsBuilder::from_opts(opts)
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        let pool = Pool::new(builder);
        pools.insert(address.to_owned(), pool.clone());
        Ok(pool)
    }

    /// Closes every pool; called at shutdown so the server sees clean disconnects.
    pub async fn close(&self) {
        let pools: Vec<Pool> = match self.pools.lock() {
            Ok(mut p) => p.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for pool in pools {
            if let Err(e) = pool.disconnect().await {
                tracing::debug!(error = %e, "mysql pool did not close cleanly");
            }
        }
    }
}

pub struct MysqlConnection {
    session: mysql_async::Conn,
}

/// Borrows a connection from `pool` within [`CONNECT_TIMEOUT`]; `authority` (`host:port`, no
/// credentials) names the server in the error.
async fn borrow(pool: &Pool, authority: &str) -> Result<mysql_async::Conn, Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, pool.get_conn()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Error::ConnectionFailed(format!("{authority}: {e}"))),
        Err(_) => Err(Error::ConnectionFailed(format!(
            "{authority}: no connection within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

impl Host for HostState {}

impl super::bindings::fermyon::spin2_0_0::rdbms_types::Host for HostState {}

impl HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<MysqlConnection>, Error>> {
        let target = OutboundTarget::parse_address(&address, "mysql");
        let target = match (self.component.allowed_hosts.check(target.as_ref()), target) {
            (Ok(true), Some(target)) => target,
            (Err(reason), _) => {
                self.count_outbound(OutboundKind::Mysql, Outcome::Denied);
                return Ok(Err(Error::Other(reason)));
            }
            (_, target) => {
                self.count_outbound(OutboundKind::Mysql, Outcome::Denied);
                if let Some(target) = &target {
                    log_refusal(&self.component.id, &self.request_id, &target.authority());
                }
                // Spin's text, but the password stays out of it: the component may show it.
                return Ok(Err(Error::ConnectionFailed(format!(
                    "address {} is not permitted",
                    redact_password(&address)
                ))));
            }
        };
        let pool = match self.services.mysql.get_or_create(&address) {
            Ok(p) => p,
            Err(e) => return Ok(self.counted(OutboundKind::Mysql, Err(e))),
        };
        // Spin's open fails when the server is unreachable; so does ours, within CONNECT_TIMEOUT.
        let session = match borrow(&pool, &target.authority()).await {
            Ok(session) => session,
            Err(e) => return Ok(self.counted(OutboundKind::Mysql, Err(e))),
        };
        self.count_outbound(OutboundKind::Mysql, Outcome::Ok);
        Ok(Ok(self.table.push(MysqlConnection { session })?))
    }

    async fn query(
        &mut self,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let max_bytes = self.services.max_result_bytes;
        let connection = self.table.get_mut(&connection)?;
        let result = run_query(&mut connection.session, &statement, params, max_bytes).await;
        Ok(self.counted(OutboundKind::Mysql, result))
    }

    async fn execute(
        &mut self,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let connection = self.table.get_mut(&connection)?;
        let result = connection
            .session
            .exec_drop(statement.as_str(), to_params(params))
            .await
            .map_err(|e| Error::QueryFailed(format!("{e:?}")));
        Ok(self.counted(OutboundKind::Mysql, result))
    }

    async fn drop(&mut self, connection: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

/// Runs a statement that returns rows, reading them one at a time so that a result over
/// `max_bytes` is refused before the host holds it. Errors carry Spin's variants and texts.
async fn run_query(
    conn: &mut mysql_async::Conn,
    statement: &str,
    params: Vec<ParameterValue>,
    max_bytes: usize,
) -> Result<RowSet, Error> {
    let mut result = conn
        .exec_iter(statement, to_params(params))
        .await
        .map_err(|e| Error::QueryFailed(format!("{e:?}")))?;
    let columns: Vec<Column> = result
        .columns()
        .map(|cols| cols.iter().map(convert_column).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut size = ResultSize::new(max_bytes);
    while let Some(row) = result
        .next()
        .await
        .map_err(|e| Error::Other(e.to_string()))?
    {
        let row = convert_row(row, &columns)?;
        size.add_row(&row)?;
        rows.push(row);
    }
    Ok(RowSet { columns, rows })
}

/// A row set's size as Spin measures it against its limit: the `row-set` record, then each value
/// as its in-memory size (a number is the size of a `db-value`, a string or binary that plus its
/// length). Using Spin's measure makes the same results pass and fail on both hosts.
pub(crate) struct ResultSize {
    bytes: usize,
    max_bytes: usize,
}

impl ResultSize {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            bytes: std::mem::size_of::<RowSet>(),
            max_bytes,
        }
    }

    pub(crate) fn add_row(&mut self, row: &[DbValue]) -> Result<(), Error> {
        self.bytes = row
            .iter()
            .fold(self.bytes, |n, v| n.saturating_add(value_size(v)));
        if self.bytes > self.max_bytes {
            return Err(Error::Other(result_limit_message(self.max_bytes)));
        }
        Ok(())
    }
}

/// Spin's text for a result over the limit, shared by MySQL and Redis.
pub(crate) fn result_limit_message(max_bytes: usize) -> String {
    format!("query result exceeds limit of {max_bytes} bytes")
}

fn value_size(value: &DbValue) -> usize {
    std::mem::size_of::<DbValue>()
        + match value {
            DbValue::Str(s) => s.len(),
            DbValue::Binary(b) => b.len(),
            _ => 0,
        }
}

fn to_params(params: Vec<ParameterValue>) -> Params {
    if params.is_empty() {
        return Params::Empty;
    }
    Params::Positional(params.into_iter().map(to_value).collect())
}

pub(crate) fn to_value(p: ParameterValue) -> Value {
    match p {
        ParameterValue::Boolean(v) => Value::from(v),
        ParameterValue::Int8(v) => Value::from(v),
        ParameterValue::Int16(v) => Value::from(v),
        ParameterValue::Int32(v) => Value::from(v),
        ParameterValue::Int64(v) => Value::from(v),
        ParameterValue::Uint8(v) => Value::from(v),
        ParameterValue::Uint16(v) => Value::from(v),
        ParameterValue::Uint32(v) => Value::from(v),
        ParameterValue::Uint64(v) => Value::from(v),
        ParameterValue::Floating32(v) => Value::from(v),
        ParameterValue::Floating64(v) => Value::from(v),
        ParameterValue::Str(v) => Value::from(v),
        ParameterValue::Binary(v) => Value::from(v),
        ParameterValue::DbNull => Value::NULL,
    }
}

fn convert_column(column: &mysql_async::Column) -> Column {
    Column {
        name: column.name_str().into_owned(),
        data_type: data_type(column.column_type(), column.flags()),
    }
}

pub(crate) fn data_type(column_type: ColumnType, flags: ColumnFlags) -> DbDataType {
    let signed = !flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = flags.contains(ColumnFlags::BINARY_FLAG);
    use ColumnType as T;
    match column_type {
        T::MYSQL_TYPE_DOUBLE => DbDataType::Floating64,
        T::MYSQL_TYPE_FLOAT => DbDataType::Floating32,
        T::MYSQL_TYPE_TINY if signed => DbDataType::Int8,
        T::MYSQL_TYPE_TINY => DbDataType::Uint8,
        T::MYSQL_TYPE_SHORT if signed => DbDataType::Int16,
        T::MYSQL_TYPE_SHORT => DbDataType::Uint16,
        T::MYSQL_TYPE_INT24 | T::MYSQL_TYPE_LONG if signed => DbDataType::Int32,
        T::MYSQL_TYPE_INT24 | T::MYSQL_TYPE_LONG => DbDataType::Uint32,
        T::MYSQL_TYPE_LONGLONG if signed => DbDataType::Int64,
        T::MYSQL_TYPE_LONGLONG => DbDataType::Uint64,
        T::MYSQL_TYPE_BLOB if !binary => DbDataType::Str, // TEXT
        T::MYSQL_TYPE_BLOB | T::MYSQL_TYPE_LONG_BLOB | T::MYSQL_TYPE_MEDIUM_BLOB => {
            DbDataType::Binary
        }
        T::MYSQL_TYPE_STRING | T::MYSQL_TYPE_VAR_STRING if binary => DbDataType::Binary,
        T::MYSQL_TYPE_STRING | T::MYSQL_TYPE_VAR_STRING => DbDataType::Str,
        _ => DbDataType::Other,
    }
}

fn convert_row(mut row: mysql_async::Row, columns: &[Column]) -> Result<Vec<DbValue>, Error> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in columns.iter().enumerate() {
        let value = match row.take::<Value, usize>(index) {
            None | Some(Value::NULL) => DbValue::DbNull,
            Some(value) => convert_value(value, column)?,
        };
        values.push(value);
    }
    Ok(values)
}

pub(crate) fn convert_value(value: Value, column: &Column) -> Result<DbValue, Error> {
    fn to<T: mysql_async::prelude::FromValue>(value: Value) -> Result<T, Error> {
        mysql_async::from_value_opt::<T>(value)
            .map_err(|e| Error::ValueConversionFailed(e.to_string()))
    }
    Ok(match column.data_type {
        DbDataType::Boolean => DbValue::Boolean(to(value)?),
        DbDataType::Int8 => DbValue::Int8(to(value)?),
        DbDataType::Int16 => DbValue::Int16(to(value)?),
        DbDataType::Int32 => DbValue::Int32(to(value)?),
        DbDataType::Int64 => DbValue::Int64(to(value)?),
        DbDataType::Uint8 => DbValue::Uint8(to(value)?),
        DbDataType::Uint16 => DbValue::Uint16(to(value)?),
        DbDataType::Uint32 => DbValue::Uint32(to(value)?),
        DbDataType::Uint64 => DbValue::Uint64(to(value)?),
        DbDataType::Floating32 => DbValue::Floating32(to(value)?),
        DbDataType::Floating64 => DbValue::Floating64(to(value)?),
        DbDataType::Str => DbValue::Str(to(value)?),
        DbDataType::Binary => DbValue::Binary(to(value)?),
        DbDataType::Other => {
            return Err(Error::ValueConversionFailed(format!(
                "Cannot convert value {value:?} in column {} data type {:?}",
                column.name, column.data_type
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_map_as_in_spin() {
        let none = ColumnFlags::empty();
        let unsigned = ColumnFlags::UNSIGNED_FLAG;
        let binary = ColumnFlags::BINARY_FLAG;
        use ColumnType as T;
        let cases = [
            (T::MYSQL_TYPE_TINY, none, DbDataType::Int8),
            (T::MYSQL_TYPE_TINY, unsigned, DbDataType::Uint8),
            (T::MYSQL_TYPE_SHORT, none, DbDataType::Int16),
            (T::MYSQL_TYPE_SHORT, unsigned, DbDataType::Uint16),
            (T::MYSQL_TYPE_INT24, none, DbDataType::Int32),
            (T::MYSQL_TYPE_LONG, unsigned, DbDataType::Uint32),
            (T::MYSQL_TYPE_LONGLONG, none, DbDataType::Int64),
            (T::MYSQL_TYPE_LONGLONG, unsigned, DbDataType::Uint64),
            (T::MYSQL_TYPE_FLOAT, none, DbDataType::Floating32),
            (T::MYSQL_TYPE_DOUBLE, none, DbDataType::Floating64),
            (T::MYSQL_TYPE_VAR_STRING, none, DbDataType::Str),
            (T::MYSQL_TYPE_VAR_STRING, binary, DbDataType::Binary),
            (T::MYSQL_TYPE_STRING, none, DbDataType::Str),
            (T::MYSQL_TYPE_STRING, binary, DbDataType::Binary),
            (T::MYSQL_TYPE_BLOB, none, DbDataType::Str),
            (T::MYSQL_TYPE_BLOB, binary, DbDataType::Binary),
            (T::MYSQL_TYPE_LONG_BLOB, binary, DbDataType::Binary),
            (T::MYSQL_TYPE_DATETIME, none, DbDataType::Other),
            (T::MYSQL_TYPE_NEWDECIMAL, none, DbDataType::Other),
        ];
        for (t, f, expected) in cases {
            assert_eq!(data_type(t, f), expected, "{t:?} {f:?}");
        }
    }

    #[test]
    fn values_convert_or_fail_with_the_interface_error() {
        let col = |data_type| Column {
            name: "c".into(),
            data_type,
        };
        assert!(matches!(
            convert_value(Value::Int(-5), &col(DbDataType::Int8)),
            Ok(DbValue::Int8(-5))
        ));
        assert!(matches!(
            convert_value(Value::Int(300), &col(DbDataType::Int8)),
            Err(Error::ValueConversionFailed(_))
        ));
        assert!(matches!(
            convert_value(Value::Bytes(b"hi".to_vec()), &col(DbDataType::Str)),
            Ok(DbValue::Str(s)) if s == "hi"
        ));
        assert!(matches!(
            convert_value(Value::Bytes(vec![0xff]), &col(DbDataType::Str)),
            Err(Error::ValueConversionFailed(_))
        ));
        assert!(matches!(
            convert_value(Value::Int(1), &col(DbDataType::Other)),
            Err(Error::ValueConversionFailed(_))
        ));
    }
}
