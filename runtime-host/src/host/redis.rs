//! `fermyon:spin/redis@2.0.0`: one multiplexed connection per address, shared by all instances.
//!
//! Every reply is held to the result limit (`max_result_bytes`, Spin's 128 MiB by default) as it
//! arrives ([`ReplyLimit`]): a larger one reaches the component as Spin's
//! `other("query result exceeds limit of N bytes")` and the host never buffers more than the
//! limit. `get` and `execute` also apply Spin's own measure of a result (its in-memory size), so
//! the same results pass and fail as on Spin. A connection that breaks (a Redis restart) is
//! replaced on the next call, so a restart costs the calls made while it is down, not every
//! call after it. Errors carry Spin's variants: a refused or unparseable address is
//! `invalid-address`, anything else `other` with the reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, RedisError, Value};
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::HostState;
use super::bindings::fermyon::spin2_0_0::redis::{
    Error, Host, HostConnection, RedisParameter, RedisResult,
};
use super::mysql::result_limit_message;
use super::redis_reply_limit::{LIMIT_ERROR_CODE, ReplyLimit};
use crate::metrics::{OutboundKind, Outcome};
use crate::outbound_hosts::{OutboundTarget, log_refusal};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections by address. The key may hold a password; it is never logged.
#[derive(Default)]
pub struct RedisConnections {
    connections: Mutex<HashMap<String, Shared>>,
    next_id: AtomicU64,
}

/// One address's connection; `id` tells a broken one from its replacement.
#[derive(Clone)]
struct Shared {
    id: u64,
    conn: MultiplexedConnection,
}

impl RedisConnections {
    async fn get_or_connect(&self, address: &str, max_bytes: usize) -> Result<Shared, Error> {
        let mut connections = self.connections.lock().await;
        if let Some(c) = connections.get(address) {
            return Ok(c.clone());
        }
        let client = redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect(&client, max_bytes))
            .await
            .map_err(|_| Error::Other(format!("no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| Error::Other(format!("cannot connect: {e}")))?;
        let shared = Shared {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            conn,
        };
        connections.insert(address.to_owned(), shared.clone());
        Ok(shared)
    }

    /// Drops `address`'s connection if it is still the broken one, so the next call reconnects.
    async fn forget(&self, address: &str, id: u64) {
        let mut connections = self.connections.lock().await;
        if connections.get(address).is_some_and(|c| c.id == id) {
            connections.remove(address);
        }
    }
}

/// A multiplexed connection whose replies pass through [`ReplyLimit`].
async fn connect(
    client: &redis::Client,
    max_bytes: usize,
) -> redis::RedisResult<MultiplexedConnection> {
    let info = client.get_connection_info();
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
    let settings = info.redis_settings();
    let conn = match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            let limited = ReplyLimit::new(stream, max_bytes);
            let (conn, driver) =
                MultiplexedConnection::new_with_config(settings, limited, config).await?;
            tokio::spawn(driver);
            conn
        }
        ConnectionAddr::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path).await?;
            let limited = ReplyLimit::new(stream, max_bytes);
            let (conn, driver) =
                MultiplexedConnection::new_with_config(settings, limited, config).await?;
            tokio::spawn(driver);
            conn
        }
        other => {
            return Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "runtime-host connects to redis:// and redis+unix:// addresses only",
                format!("{other}"),
            )));
        }
    };
    Ok(conn)
}

pub struct RedisConnection {
    address: String,
    shared: Shared,
}

fn redis_error(e: RedisError, max_bytes: usize) -> Error {
    if e.code() == Some(LIMIT_ERROR_CODE) {
        Error::Other(result_limit_message(max_bytes))
    } else {
        Error::Other(e.to_string())
    }
}

impl HostState {
    /// Runs `cmd` on `c`'s connection; a broken connection is replaced for the next call.
    async fn run<T: redis::FromRedisValue>(
        &mut self,
        c: &Resource<RedisConnection>,
        cmd: redis::Cmd,
    ) -> wasmtime::Result<Result<T, RedisError>> {
        let connection = self.table.get(c)?;
        let (address, shared) = (connection.address.clone(), connection.shared.clone());
        let mut conn = shared.conn.clone();
        let result = cmd.query_async::<T>(&mut conn).await;
        self.count_outbound(OutboundKind::Redis, Outcome::of(&result));
        if let Err(e) = &result
            && e.is_unrecoverable_error()
        {
            self.services.redis.forget(&address, shared.id).await;
        }
        Ok(result)
    }

    fn max_result_bytes(&self) -> usize {
        self.services.max_result_bytes
    }
}

impl Host for HostState {}

// Types only; spin-sdk's Redis trigger export refers to them.
impl super::bindings::fermyon::spin::redis_types::Host for HostState {}

impl HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        let target = OutboundTarget::parse_address(&address, "redis");
        match (self.component.allowed_hosts.check(target.as_ref()), &target) {
            (Ok(true), _) => {}
            (Err(reason), _) => {
                self.count_outbound(OutboundKind::Redis, Outcome::Denied);
                return Ok(Err(Error::Other(reason)));
            }
            (Ok(false), target) => {
                self.count_outbound(OutboundKind::Redis, Outcome::Denied);
                if let Some(target) = target {
                    log_refusal(&self.component.id, &self.request_id, &target.authority());
                }
                return Ok(Err(Error::InvalidAddress));
            }
        }
        let max_bytes = self.max_result_bytes();
        let connected = self
            .services
            .redis
            .get_or_connect(&address, max_bytes)
            .await;
        Ok(match self.counted(OutboundKind::Redis, connected) {
            Ok(shared) => Ok(self.table.push(RedisConnection { address, shared })?),
            Err(e) => Err(e),
        })
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let cmd = redis::cmd("PUBLISH").arg(channel).arg(payload).clone();
        let max = self.max_result_bytes();
        Ok(self
            .run::<i64>(&c, cmd)
            .await?
            .map(drop)
            .map_err(|e| redis_error(e, max)))
    }

    async fn get(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let max = self.max_result_bytes();
        let value = match self
            .run::<Option<Vec<u8>>>(&c, redis::cmd("GET").arg(key).clone())
            .await?
        {
            Ok(value) => value,
            Err(e) => return Ok(Err(redis_error(e, max))),
        };
        // Spin's measure of a GET result.
        let size = std::mem::size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len);
        Ok(if size > max {
            Err(Error::Other(result_limit_message(max)))
        } else {
            Ok(value)
        })
    }

    async fn set(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let max = self.max_result_bytes();
        let cmd = redis::cmd("SET").arg(key).arg(value).clone();
        Ok(self
            .run::<()>(&c, cmd)
            .await?
            .map_err(|e| redis_error(e, max)))
    }

    async fn incr(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let max = self.max_result_bytes();
        let cmd = redis::cmd("INCR").arg(key).clone();
        Ok(self
            .run::<i64>(&c, cmd)
            .await?
            .map_err(|e| redis_error(e, max)))
    }

    async fn del(
        &mut self,
        c: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let max = self.max_result_bytes();
        let cmd = redis::cmd("DEL").arg(keys).clone();
        Ok(self
            .run::<u32>(&c, cmd)
            .await?
            .map_err(|e| redis_error(e, max)))
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let max = self.max_result_bytes();
        let cmd = redis::cmd("SADD").arg(key).arg(values).clone();
        // Only here does Spin tell a reply of the wrong type apart.
        Ok(self.run::<u32>(&c, cmd).await?.map_err(|e| {
            if e.kind() == redis::ErrorKind::UnexpectedReturnType {
                Error::TypeError
            } else {
                redis_error(e, max)
            }
        }))
    }

    async fn smembers(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let max = self.max_result_bytes();
        let cmd = redis::cmd("SMEMBERS").arg(key).clone();
        Ok(self
            .run::<Vec<String>>(&c, cmd)
            .await?
            .map_err(|e| redis_error(e, max)))
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let max = self.max_result_bytes();
        let cmd = redis::cmd("SREM").arg(key).arg(values).clone();
        Ok(self
            .run::<u32>(&c, cmd)
            .await?
            .map_err(|e| redis_error(e, max)))
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let max = self.max_result_bytes();
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(i) => cmd.arg(i),
                RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        let value = match self.run::<Value>(&c, cmd).await? {
            Ok(value) => value,
            Err(e) => return Ok(Err(redis_error(e, max))),
        };
        let mut results = Vec::new();
        if let Err(reason) = flatten(value, &mut results) {
            return Ok(Err(Error::Other(reason)));
        }
        // Spin's measure of an execute result.
        let size = results
            .iter()
            .fold(std::mem::size_of::<Vec<RedisResult>>(), |n, r| {
                n.saturating_add(result_size(r))
            });
        Ok(if size > max {
            Err(Error::Other(result_limit_message(max)))
        } else {
            Ok(results)
        })
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

fn result_size(r: &RedisResult) -> usize {
    std::mem::size_of::<RedisResult>()
        + match r {
            RedisResult::Binary(b) => b.len(),
            RedisResult::Status(s) => s.len(),
            RedisResult::Nil | RedisResult::Int64(_) => 0,
        }
}

/// Spin returns a reply as a flat list: arrays and sets are spread into their elements. The
/// RESP3 types Spin cannot represent are an error with Spin's text.
pub(crate) fn flatten(value: Value, out: &mut Vec<RedisResult>) -> Result<(), String> {
    let unsupported = |what: &str| {
        Err(format!(
            "Could not convert Redis response - TypeError: {what}"
        ))
    };
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(i) => out.push(RedisResult::Int64(i)),
        Value::BulkString(b) => out.push(RedisResult::Binary(b)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(item, out)?;
            }
        }
        Value::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
        // The digits, as Spin sends a big number.
        Value::BigNumber(digits) => out.push(RedisResult::Binary(digits)),
        Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(b))),
        Value::Map(_) => return unsupported("Redis Map type is not supported"),
        Value::Attribute { .. } => return unsupported("Redis Attribute type is not supported"),
        Value::VerbatimString { .. } => {
            return unsupported("Redis string with format attribute is not supported");
        }
        Value::Push { .. } => return unsupported("Redis Pub/Sub types are not supported"),
        Value::ServerError(e) => return Err(format!("Server error: {e}")),
        other => return unsupported(&format!("{other:?} is not supported")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_flatten_like_spin() {
        let mut out = Vec::new();
        flatten(
            Value::Array(vec![
                Value::Int(1),
                Value::Nil,
                Value::BulkString(b"x".to_vec()),
                Value::Okay,
            ]),
            &mut out,
        )
        .expect("spin represents these");
        assert!(matches!(
            out.as_slice(),
            [RedisResult::Int64(1), RedisResult::Nil, RedisResult::Binary(b), RedisResult::Status(s)]
                if b == b"x" && s == "OK"
        ));
    }
}
