//! Attempt counters in Redis: log-ins per account and per client address, sign-ups per client
//! address, account emails per recipient. Each counter lives for a fixed window from its first
//! attempt.
//!
//! An attempt is counted **before** the work it guards (the argon2 check), in one atomic step
//! over all its counters (a Lua script: Redis runs it without interleaving any other command).
//! The script counts only when every counter is under its limit, so however many requests arrive
//! at once, exactly `limit` of them get through per window; the rest are answered 429 without any
//! password work. Reading the count, checking the password and writing the count afterwards (the
//! old way) let 60 parallel guesses through 49 times with a limit of 10.
//!
//! A correct log-in takes its attempt back ([`Throttle::take_back`]): the counters count
//! failures (and attempts still in flight), so someone who types their password right is never
//! locked out by their own success, and a success does not reopen the account to another round
//! of guesses either (it clears nothing but its own attempt).
//!
//! The account counter is keyed by the email typed, whether or not it has an account, so a 429
//! says nothing about which addresses exist. The price: someone can lock an account's logins for
//! a window by failing on purpose; the window is short.
//!
//! The client counter is keyed by the address the gateway determined (`contracts::client_addr`);
//! IPv6 clients are counted per /64, the block one subscriber usually gets, so stepping through a
//! subscriber's own addresses does not reset the count.

use std::net::IpAddr;

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    #[error("Redis (attempt counters) failed")]
    Redis(#[from] spin_sdk::redis::Error),
    /// Not an error value but a reply of the wrong shape; the reply is what there is to show.
    #[error("Redis (attempt counters) answered the counting script with {0}")]
    Reply(String),
}

/// Counts one attempt on each `KEYS[i]` (limit `ARGV[2i-1]`, window `ARGV[2i]` seconds) if every
/// counter is under its limit, and answers `{1, 0}`; otherwise counts nothing and answers
/// `{0, seconds until the longest-waiting full counter resets}`. A counter found without an
/// expiry (its writer died between INCR and EXPIRE) gets one here.
const COUNT_SCRIPT: &str = r"
local wait = 0
local full = false
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local count = tonumber(redis.call('GET', key) or '0') or 0
  if count >= limit then
    full = true
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if full then return {0, wait} end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, tonumber(ARGV[2 * i])) end
end
return {1, 0}
";

/// Takes one attempt back from each key; a counter that reaches zero is removed.
const TAKE_BACK_SCRIPT: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
return 0
";

/// The longest email or address text that goes into a key: a malformed email never matches an
/// account, so cutting it changes nothing but the key's size.
const MAX_KEY_TEXT: usize = 320;

/// One counter and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    pub limit: u64,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Counted,
    /// Nothing was counted; try again after this many seconds (at least 1).
    Throttled {
        retry_after_secs: u64,
    },
}

pub struct Throttle<'a> {
    conn: Connection,
    prefix: &'a str,
}

impl<'a> Throttle<'a> {
    pub fn open(redis_url: &str, prefix: &'a str) -> Result<Throttle<'a>, ThrottleError> {
        let conn = Connection::open(redis_url)?;
        Ok(Throttle { conn, prefix })
    }

    /// Log-in attempts (and requests for another confirmation link) for the email typed.
    pub fn login_account(&self, typed_email: &str) -> String {
        format!(
            "{}auth:attempts:login:account:{}",
            self.prefix,
            bounded(typed_email)
        )
    }

    /// Log-in attempts from a client address.
    pub fn login_client(&self, client: &str) -> String {
        format!(
            "{}auth:attempts:login:client:{}",
            self.prefix,
            client_bucket(client)
        )
    }

    /// Sign-ups from a client address.
    pub fn signup_client(&self, client: &str) -> String {
        format!(
            "{}auth:attempts:signup:client:{}",
            self.prefix,
            client_bucket(client)
        )
    }

    /// Account emails sent to an address.
    pub fn emails_to(&self, email: &str) -> String {
        format!("{}auth:emails:to:{}", self.prefix, bounded(email))
    }

    /// Removes the counters that name `email` (its log-in attempts and account emails), when
    /// its account is deleted.
    pub fn forget_address(&self, email: &str) -> Result<(), ThrottleError> {
        self.conn
            .execute(
                "DEL",
                &[
                    RedisParameter::Binary(self.login_account(email).into_bytes()),
                    RedisParameter::Binary(self.emails_to(email).into_bytes()),
                ],
            )
            .map(|_| ())
            .map_err(ThrottleError::from)
    }

    /// Counts one attempt on every counter, atomically, if all are under their limits.
    pub fn count(&self, counters: &[Counter]) -> Result<Verdict, ThrottleError> {
        let mut args = vec![
            RedisParameter::Binary(COUNT_SCRIPT.as_bytes().to_vec()),
            RedisParameter::Int64(counters.len() as i64),
        ];
        args.extend(
            counters
                .iter()
                .map(|c| RedisParameter::Binary(c.key.as_bytes().to_vec())),
        );
        for c in counters {
            args.push(RedisParameter::Int64(saturating_i64(c.limit)));
            args.push(RedisParameter::Int64(saturating_i64(c.window_secs.max(1))));
        }
        let reply = self.eval(args)?;
        verdict(&reply).ok_or_else(|| ThrottleError::Reply(format!("{reply:?}")))
    }

    /// Takes back one attempt from each key (a log-in that turned out right).
    pub fn take_back(&self, keys: &[String]) -> Result<(), ThrottleError> {
        let mut args = vec![
            RedisParameter::Binary(TAKE_BACK_SCRIPT.as_bytes().to_vec()),
            RedisParameter::Int64(keys.len() as i64),
        ];
        args.extend(
            keys.iter()
                .map(|k| RedisParameter::Binary(k.as_bytes().to_vec())),
        );
        self.eval(args).map(drop)
    }

    fn eval(&self, args: Vec<RedisParameter>) -> Result<Vec<RedisResult>, ThrottleError> {
        Ok(self.conn.execute("EVAL", &args)?)
    }
}

/// The script's `{allowed, wait}`; Spin flattens the array into its elements.
fn verdict(reply: &[RedisResult]) -> Option<Verdict> {
    match reply {
        [RedisResult::Int64(1), RedisResult::Int64(_)] => Some(Verdict::Counted),
        [RedisResult::Int64(0), RedisResult::Int64(wait)] => Some(Verdict::Throttled {
            retry_after_secs: u64::try_from(*wait).unwrap_or(0).max(1),
        }),
        _ => None,
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_KEY_TEXT).collect()
}

/// What a client address is counted under: an IPv4 address as it is, an IPv6 address by its
/// /64, anything else (only auth's own callers set the header) as bounded text.
pub fn client_bucket(client: &str) -> String {
    match client.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Err(_) => client.chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_as_verdicts() {
        assert_eq!(
            verdict(&[RedisResult::Int64(1), RedisResult::Int64(0)]),
            Some(Verdict::Counted)
        );
        assert_eq!(
            verdict(&[RedisResult::Int64(0), RedisResult::Int64(42)]),
            Some(Verdict::Throttled {
                retry_after_secs: 42
            })
        );
        // A counter about to expire still says "wait a second", never "wait 0".
        assert_eq!(
            verdict(&[RedisResult::Int64(0), RedisResult::Int64(0)]),
            Some(Verdict::Throttled {
                retry_after_secs: 1
            })
        );
        assert_eq!(verdict(&[RedisResult::Nil]), None);
        assert_eq!(verdict(&[]), None);
    }

    #[test]
    fn clients_are_counted_per_address_or_per_ipv6_64() {
        assert_eq!(client_bucket("198.51.100.7"), "198.51.100.7");
        assert_eq!(client_bucket("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(
            client_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_bucket("2001:db8:1:2::9"),
            client_bucket("2001:db8:1:2:ffff::1")
        );
        assert_ne!(
            client_bucket("2001:db8:1:2::9"),
            client_bucket("2001:db8:1:3::9")
        );
        assert_eq!(client_bucket(&"x".repeat(500)).len(), 64);
    }
}
