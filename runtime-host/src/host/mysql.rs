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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{FromValueError, Params, Pool, PoolConstraints, PoolOpts, Value};
use wasmtime::component::Resource;

use super::HostState;
use super::bindings::fermyon::spin2_0_0::mysql::{Host, HostConnection};
use super::bindings::fermyon::spin2_0_0::rdbms_types::{
    Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::outbound_hosts::OutboundTarget;

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
        let Some(target) = OutboundTarget::parse(&address) else {
            return Ok(Err(Error::ConnectionFailed(
                "the address is not a URL".into(),
            )));
        };
        if !self.component.allowed_hosts.allows(&target) {
            tracing::warn!(
                component = %self.component.id,
                request_id = %self.request_id,
                address = %target.authority(),
                "mysql connection denied by allowed_outbound_hosts"
            );
            return Ok(Err(Error::ConnectionFailed(format!(
                "address {} is not permitted",
                target.authority()
            ))));
        }
        let pool = match self.runtime.services.mysql.get_or_create(&address) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        // Spin's open fails when the server is unreachable; so does ours, within CONNECT_TIMEOUT.
        let session = match borrow(&pool, &target.authority()).await {
            Ok(session) => session,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.table.push(MysqlConnection { session })?))
    }

    async fn query(
        &mut self,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let connection = self.table.get_mut(&connection)?;
        Ok(run_query(&mut connection.session, &statement, params).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let connection = self.table.get_mut(&connection)?;
        Ok(connection
            .session
            .exec_drop(statement.as_str(), to_params(params))
            .await
            .map_err(query_error))
    }

    async fn drop(&mut self, connection: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

async fn run_query(
    conn: &mut mysql_async::Conn,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<RowSet, Error> {
    let mut result = conn
        .exec_iter(statement, to_params(params))
        .await
        .map_err(query_error)?;
    let columns: Vec<Column> = result
        .columns()
        .map(|cols| cols.iter().map(convert_column).collect())
        .unwrap_or_default();
    let rows: Vec<mysql_async::Row> = result.collect().await.map_err(query_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(convert_row(row, &columns)?);
    }
    Ok(RowSet { columns, rows: out })
}

fn query_error(e: mysql_async::Error) -> Error {
    match e {
        mysql_async::Error::Io(e) => Error::ConnectionFailed(e.to_string()),
        mysql_async::Error::Server(e) => Error::QueryFailed(e.to_string()),
        mysql_async::Error::Driver(e) => Error::QueryFailed(e.to_string()),
        other => Error::Other(other.to_string()),
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
        mysql_async::from_value_opt::<T>(value).map_err(|FromValueError(v)| {
            Error::ValueConversionFailed(format!("cannot convert {v:?}"))
        })
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
                "column {:?} has a type Spin's mysql interface cannot represent",
                column.name
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
