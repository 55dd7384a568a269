//! Failed-login throttling in Redis, per account and per client address.
//!
//! Counters live for a fixed window from the first failure. Throttling by account stops a
//! guessing attack spread over many addresses; by address, one that sprays many accounts. The
//! account counter is keyed by the email typed, whether or not it has an account, so a 429 says
//! nothing about which addresses exist. The price: someone can lock an account's logins for a
//! window by failing on purpose; the window is short and a successful login is not needed to
//! clear it.

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

use crate::config::ThrottleLimits;

#[derive(Debug, thiserror::Error)]
#[error("Redis (login throttling) failed: {0}")]
pub struct ThrottleError(String);

pub struct Throttle<'a> {
    conn: Connection,
    prefix: &'a str,
    limits: ThrottleLimits,
}

impl<'a> Throttle<'a> {
    pub fn open(
        redis_url: &str,
        prefix: &'a str,
        limits: ThrottleLimits,
    ) -> Result<Throttle<'a>, ThrottleError> {
        let conn = Connection::open(redis_url).map_err(|e| ThrottleError(e.to_string()))?;
        Ok(Throttle {
            conn,
            prefix,
            limits,
        })
    }

    fn account_key(&self, email: &str) -> String {
        format!("{}auth:login-failures:account:{email}", self.prefix)
    }

    fn client_key(&self, client: &str) -> String {
        format!("{}auth:login-failures:client:{client}", self.prefix)
    }

    /// `Some(seconds)` to wait when either counter is at its limit.
    pub fn retry_after(&self, email: &str, client: &str) -> Result<Option<u64>, ThrottleError> {
        let mut wait = None;
        for (key, limit) in [
            (self.account_key(email), self.limits.per_account),
            (self.client_key(client), self.limits.per_client),
        ] {
            if self.count(&key)? >= limit {
                let ttl = self.ttl(&key)?.max(1);
                wait = Some(wait.map_or(ttl, |w: u64| w.max(ttl)));
            }
        }
        Ok(wait)
    }

    pub fn record_failure(&self, email: &str, client: &str) -> Result<(), ThrottleError> {
        for key in [self.account_key(email), self.client_key(client)] {
            let n = self
                .conn
                .incr(&key)
                .map_err(|e| ThrottleError(e.to_string()))?;
            if n == 1 {
                self.command(
                    "EXPIRE",
                    vec![
                        RedisParameter::Binary(key.into_bytes()),
                        RedisParameter::Int64(
                            i64::try_from(self.limits.window_secs).unwrap_or(i64::MAX),
                        ),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// A correct password ends the account's run of failures (not the address's: one right
    /// guess among many must not reset a spray).
    pub fn clear_account(&self, email: &str) -> Result<(), ThrottleError> {
        self.conn
            .del(&[self.account_key(email)])
            .map(|_| ())
            .map_err(|e| ThrottleError(e.to_string()))
    }

    fn count(&self, key: &str) -> Result<u64, ThrottleError> {
        let value = self
            .conn
            .get(key)
            .map_err(|e| ThrottleError(e.to_string()))?;
        Ok(value
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    fn ttl(&self, key: &str) -> Result<u64, ThrottleError> {
        let result = self.command("TTL", vec![RedisParameter::Binary(key.as_bytes().to_vec())])?;
        Ok(match result.first() {
            Some(RedisResult::Int64(n)) if *n > 0 => *n as u64,
            // No expiry (a counter written by something else) or already gone: a full window.
            _ => self.limits.window_secs,
        })
    }

    fn command(
        &self,
        name: &str,
        args: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, ThrottleError> {
        self.conn
            .execute(name, &args)
            .map_err(|e| ThrottleError(e.to_string()))
    }
}
