//! Deleting an account (contracts' `auth_api`: `POST /accounts/deletion-check`, then, once the
//! gateway has removed the account's jobs and files, `POST /accounts/deletion`).
//!
//! Both steps check the password, throttled exactly like a log-in (the same counters: per
//! account and per client address), so a stolen token cannot be used to guess the password
//! through this route nor to delete an account without it. The last step removes, in order: the
//! notifier's rows for the address (over Redis, waiting for the notifier's ack), the
//! confirmation links, the user, and the attempt counters that name the address. The user row
//! goes last, so a step that fails leaves an account whose password still opens the deletion
//! again.

use std::time::{Duration, Instant};

use spin_sdk::http::{Request, Response};
use spin_sdk::mysql::ParameterValue;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use vid2mp3_contracts::account_erasure::{ACCOUNT_ERASURE_VERSION, AccountErasure, erased_ack_key};
use vid2mp3_contracts::auth_api::AccountDeletion;
use vid2mp3_contracts::{ErrorCode, UserId};

use crate::accounts::{Accounts, StoreError, StoredAccount};
use crate::api::{ApiError, client_of, count_login, open_accounts, open_throttle, read_json};
use crate::config::AuthConfig;
use crate::password::{MAX_PASSWORD_CHARS, verify_password};

/// How long the last step waits for the notifier to confirm it removed its rows.
const NOTIFIER_ACK_WAIT: Duration = Duration::from_secs(5);
const NOTIFIER_ACK_POLL: Duration = Duration::from_millis(50);

/// `POST /accounts/deletion-check`: `204` when the password is the account's.
pub fn check(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let stored = checked_account(req, config)?;
    eprintln!("auth: deletion check passed user={}", stored.account.id);
    Ok(no_content())
}

/// `POST /accounts/deletion`: the password again, then everything auth (and the notifier) holds
/// of the account.
pub fn delete(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let stored = checked_account(req, config)?;
    let user = stored.account.id;
    erase_notifier_rows(config, &stored.account.email)?;
    let accounts = open_accounts(config)?;
    remove_user(&accounts, user).map_err(|e| ApiError::unavailable("MySQL", e))?;
    // Counters keyed by the address: they would outlive the account by a window otherwise.
    open_throttle(config)?
        .forget_address(&stored.account.email)
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    eprintln!("auth: deleted user={user}");
    Ok(no_content())
}

fn no_content() -> Response {
    Response::builder().status(204).body(Vec::new()).build()
}

/// The account of the request's `user_id`, when the request's password is its own; counted
/// against the log-in throttle first.
fn checked_account(req: &Request, config: &AuthConfig) -> Result<StoredAccount, ApiError> {
    let body: AccountDeletion = read_json(req, "{\"user_id\": \"...\", \"password\": \"...\"}")?;
    if body.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(wrong_password());
    }
    let accounts = open_accounts(config)?;
    let stored = accounts
        .find_by_id(body.user_id)
        .map_err(|e| ApiError::unavailable("MySQL", e))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "this account does not exist (any more); log in again",
            )
        })?;
    let throttle = open_throttle(config)?;
    let keys = count_login(config, &throttle, &stored.account.email, &client_of(req))?;
    if !verify_password(
        &body.password,
        Some(&stored.password_hash),
        config.hash_cost,
    ) {
        // The attempt stays counted: it was a failure.
        eprintln!(
            "auth: deletion refused user={}: wrong password",
            stored.account.id
        );
        return Err(wrong_password());
    }
    throttle
        .take_back(&keys)
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    Ok(stored)
}

fn wrong_password() -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        "the password is wrong; nothing was deleted. Send the password you log in with",
    )
}

/// Asks the notifier to remove its rows for `email` and waits for its ack; `503` when it does
/// not come (nobody listens, or it failed): nothing of the user is removed then.
fn erase_notifier_rows(config: &AuthConfig, email: &str) -> Result<(), ApiError> {
    let message = AccountErasure {
        version: ACCOUNT_ERASURE_VERSION,
        erase_account: uuid::Uuid::now_v7(),
        recipient: email.to_owned(),
    };
    let payload = serde_json::to_vec(&message)
        .map_err(|e| ApiError::internal("could not encode the erasure message", e))?;
    let conn = Connection::open(config.redis_url.expose())
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    let reply = conn
        .execute(
            "PUBLISH",
            &[
                RedisParameter::Binary(config.account_emails_channel.as_bytes().to_vec()),
                RedisParameter::Binary(payload),
            ],
        )
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    let receivers = match reply.first() {
        Some(RedisResult::Int64(n)) => *n,
        _ => 0,
    };
    if receivers == 0 {
        return Err(ApiError::unavailable_because(
            "the notifier",
            format!("no notifier listens on {}", config.account_emails_channel),
        ));
    }
    let key = erased_ack_key(&config.redis_key_prefix, &message.erase_account);
    let started = Instant::now();
    loop {
        let got = conn
            .execute("GET", &[RedisParameter::Binary(key.clone().into_bytes())])
            .map_err(|e| ApiError::unavailable("Redis", e))?;
        if matches!(
            got.first(),
            Some(RedisResult::Binary(_) | RedisResult::Status(_))
        ) {
            return Ok(());
        }
        if started.elapsed() > NOTIFIER_ACK_WAIT {
            return Err(ApiError::unavailable_because(
                "the notifier",
                format!(
                    "no ack for erasure {} within {NOTIFIER_ACK_WAIT:?}",
                    message.erase_account
                ),
            ));
        }
        std::thread::sleep(NOTIFIER_ACK_POLL);
    }
}

/// The confirmation links, then the user.
fn remove_user(accounts: &Accounts, user: UserId) -> Result<(), StoreError> {
    let id = || vec![ParameterValue::Str(user.to_string())];
    let conn = accounts.connection();
    conn.execute("DELETE FROM email_confirmations WHERE user_id = ?", &id())
        .map_err(StoreError::Query)?;
    conn.execute("DELETE FROM users WHERE id = ?", &id())
        .map_err(StoreError::Query)
}
