//! `fermyon:spin/redis@2.0.0`: one multiplexed connection per address, shared by all instances.
//!
//! The connection is redis-rs's `ConnectionManager` (a multiplexed connection that reconnects),
//! so a Redis restart costs the calls made while it is down, not every call after it.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::HostState;
use super::bindings::fermyon::spin2_0_0::redis::{
    Error, Host, HostConnection, RedisParameter, RedisResult,
};
use crate::outbound_hosts::OutboundTarget;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections by address. The key may hold a password; it is never logged.
#[derive(Default)]
pub struct RedisConnections {
    connections: Mutex<HashMap<String, ConnectionManager>>,
}

impl RedisConnections {
    async fn get_or_connect(&self, address: &str) -> Result<ConnectionManager, Error> {
        let mut connections = self.connections.lock().await;
        if let Some(c) = connections.get(address) {
            return Ok(c.clone());
        }
        let client = redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Error::Other(format!("cannot connect: {e}")))?;
        connections.insert(address.to_owned(), manager.clone());
        Ok(manager)
    }
}

pub struct RedisConnection {
    conn: ConnectionManager,
}

fn redis_error(e: RedisError) -> Error {
    let message = e.to_string();
    if e.kind() == redis::ErrorKind::UnexpectedReturnType
        || message.contains("WRONGTYPE")
        || message.contains("not an integer")
    {
        Error::TypeError
    } else {
        Error::Other(message)
    }
}

impl HostState {
    fn redis_conn(&self, c: &Resource<RedisConnection>) -> wasmtime::Result<ConnectionManager> {
        Ok(self.table.get(c)?.conn.clone())
    }
}

async fn run<T: redis::FromRedisValue>(
    mut conn: ConnectionManager,
    cmd: redis::Cmd,
) -> Result<T, Error> {
    cmd.query_async::<T>(&mut conn).await.map_err(redis_error)
}

impl Host for HostState {}

// Types only; spin-sdk's Redis trigger export refers to them.
impl super::bindings::fermyon::spin::redis_types::Host for HostState {}

impl HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        let Some(target) = OutboundTarget::parse(&address) else {
            return Ok(Err(Error::InvalidAddress));
        };
        if !self.component.allowed_hosts.allows(&target) {
            tracing::warn!(
                component = %self.component.id,
                request_id = %self.request_id,
                address = %target.authority(),
                "redis connection denied by allowed_outbound_hosts"
            );
            return Ok(Err(Error::InvalidAddress));
        }
        Ok(
            match self.runtime.services.redis.get_or_connect(&address).await {
                Ok(conn) => Ok(self.table.push(RedisConnection { conn })?),
                Err(e) => Err(e),
            },
        )
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<i64>(
            conn,
            redis::cmd("PUBLISH").arg(channel).arg(payload).clone(),
        )
        .await
        .map(|_| ()))
    }

    async fn get(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<Option<Vec<u8>>>(conn, redis::cmd("GET").arg(key).clone()).await)
    }

    async fn set(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<()>(conn, redis::cmd("SET").arg(key).arg(value).clone()).await)
    }

    async fn incr(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<i64>(conn, redis::cmd("INCR").arg(key).clone()).await)
    }

    async fn del(
        &mut self,
        c: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<u32>(conn, redis::cmd("DEL").arg(keys).clone()).await)
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<u32>(conn, redis::cmd("SADD").arg(key).arg(values).clone()).await)
    }

    async fn smembers(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<Vec<String>>(conn, redis::cmd("SMEMBERS").arg(key).clone()).await)
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let conn = self.redis_conn(&c)?;
        Ok(run::<u32>(conn, redis::cmd("SREM").arg(key).arg(values).clone()).await)
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let conn = self.redis_conn(&c)?;
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(i) => cmd.arg(i),
                RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        Ok(run::<Value>(conn, cmd).await.map(|v| {
            let mut out = Vec::new();
            flatten(v, &mut out);
            out
        }))
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

/// Spin returns a reply as a flat list: arrays are spread into their elements.
pub(crate) fn flatten(value: Value, out: &mut Vec<RedisResult>) {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(i) => out.push(RedisResult::Int64(i)),
        Value::BulkString(b) => out.push(RedisResult::Binary(b)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                flatten(item, out);
            }
        }
        Value::Map(pairs) => {
            for (k, v) in pairs {
                flatten(k, out);
                flatten(v, out);
            }
        }
        Value::Double(d) => out.push(RedisResult::Status(d.to_string())),
        Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(b))),
        Value::VerbatimString { text, .. } => out.push(RedisResult::Binary(text.into_bytes())),
        other => out.push(RedisResult::Status(format!("{other:?}"))),
    }
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
        );
        assert!(matches!(
            out.as_slice(),
            [RedisResult::Int64(1), RedisResult::Nil, RedisResult::Binary(b), RedisResult::Status(s)]
                if b == b"x" && s == "OK"
        ));
    }
}
