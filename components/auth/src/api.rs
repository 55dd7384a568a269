//! auth's HTTP API (contracts' `auth_api`): sign up, confirm an address, send the link again,
//! log in, the public keys.
//!
//! Every answer is JSON; every error is `{"error": {"code", "message"}}` whose message says what
//! to do. Nothing a client sees names a table, a query or a key, nor whether an address has an
//! account: sign-up and "send the link again" answer the same words whatever the address's
//! state, after the same argon2 work.

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::http::{Method, Request, Response};
use vid2mp3_contracts::account_email::AccountEmailKind;
use vid2mp3_contracts::auth_api::{
    CONFIRMATION_EMAIL_PATH, CONFIRMATION_PATH, CheckInbox, Confirmation, Credentials,
    DELETION_CHECK_PATH, DELETION_PATH, HEADER_CLIENT_ADDR, JWKS_PATH, SESSIONS_PATH, Session,
    USERS_PATH,
};
use vid2mp3_contracts::{ErrorBody, ErrorCode, UserId, error_chain};

use crate::account_mail;
use crate::accounts::{Accounts, Confirmed, StoredAccount};
use crate::config::AuthConfig;
use crate::confirmations::{self, Confirmations, Redeemed};
use crate::deletion;
use crate::email::Email;
use crate::password::{check_policy, hash_password, verify_password};
use crate::throttle::{Counter, Throttle, Verdict};

/// Bodies are a small JSON object; anything bigger is not a sign-up.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Where a person asks for another confirmation link, in words any client can follow.
const ASK_AGAIN: &str = "ask for a new link with your email and password (\"Send the link again\" \
     on the web page, `vid2mp3 resend-confirmation`, or POST /api/v1/users/confirmation-email)";

/// An answer that is not a success: status, code and the words for the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// A failure of a backing service: logged in full (with its sources), told to the client
    /// without details.
    pub(crate) fn unavailable(what: &str, e: impl std::error::Error) -> ApiError {
        Self::unavailable_because(what, error_chain(&e))
    }

    /// As [`ApiError::unavailable`], for a failure that is a finding rather than an error value.
    pub(crate) fn unavailable_because(what: &str, reason: impl std::fmt::Display) -> ApiError {
        eprintln!("auth: {what} failed: {reason}");
        ApiError::new(
            ErrorCode::Unavailable,
            "accounts are unavailable for a moment; try again shortly",
        )
    }

    /// A failure on auth's own side: logged in full (with its sources); the client is told only
    /// what failed, since the cause names internals.
    pub(crate) fn internal(what: &str, e: impl std::error::Error) -> ApiError {
        eprintln!("auth: {what}: {}", error_chain(&e));
        ApiError::new(ErrorCode::Internal, format!("{what}; try again later"))
    }

    /// 429 with `Retry-After`.
    fn throttled(wait: u64, what: &str) -> ApiError {
        ApiError {
            retry_after_secs: Some(wait),
            ..ApiError::new(
                ErrorCode::TooManyRequests,
                format!("{what}; try again in {wait} seconds"),
            )
        }
    }

    pub fn into_response(self) -> Response {
        let mut builder = Response::builder();
        builder
            .status(self.code.http_status())
            .header("content-type", "application/json");
        if let Some(secs) = self.retry_after_secs {
            builder.header("retry-after", secs.to_string());
        }
        builder
            .body(json_text(&ErrorBody::new(self.code, self.message)))
            .build()
    }
}

/// Routes one request; `config` is loaded only for routes that need it.
pub fn handle(req: &Request, config: impl FnOnce() -> Result<AuthConfig, ApiError>) -> Response {
    let result = match (req.method(), req.path()) {
        (Method::Post, USERS_PATH) => config().and_then(|c| sign_up(req, &c)),
        (Method::Post, CONFIRMATION_PATH) => config().and_then(|c| confirm(req, &c)),
        (Method::Post, CONFIRMATION_EMAIL_PATH) => config().and_then(|c| send_link_again(req, &c)),
        (Method::Post, SESSIONS_PATH) => config().and_then(|c| log_in(req, &c)),
        (Method::Get, JWKS_PATH) => config().map(|c| json(200, &c.signer.jwks())),
        (Method::Post, DELETION_CHECK_PATH) => config().and_then(|c| deletion::check(req, &c)),
        (Method::Post, DELETION_PATH) => config().and_then(|c| deletion::delete(req, &c)),
        (
            _,
            USERS_PATH
            | CONFIRMATION_PATH
            | CONFIRMATION_EMAIL_PATH
            | SESSIONS_PATH
            | JWKS_PATH
            | DELETION_CHECK_PATH
            | DELETION_PATH,
        ) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{} is not allowed on {}", req.method(), req.path()),
        )),
        (_, path) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("auth has no route {path}"),
        )),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// The address the gateway worked out for the client (one bucket for callers that set none:
/// only the gateway can reach auth).
pub(crate) fn client_of(req: &Request) -> String {
    req.header(HEADER_CLIENT_ADDR)
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_owned()
}

pub(crate) fn open_throttle(config: &AuthConfig) -> Result<Throttle<'_>, ApiError> {
    Throttle::open(config.redis_url.expose(), &config.redis_key_prefix)
        .map_err(|e| ApiError::unavailable("Redis", e))
}

pub(crate) fn open_accounts(config: &AuthConfig) -> Result<Accounts, ApiError> {
    Accounts::open(config.db_url.expose()).map_err(|e| ApiError::unavailable("MySQL", e))
}

fn count(throttle: &Throttle<'_>, counters: &[Counter]) -> Result<Verdict, ApiError> {
    throttle
        .count(counters)
        .map_err(|e| ApiError::unavailable("Redis", e))
}

/// "5 minutes", "24 hours": how long a link works, in the words of an answer.
fn lifetime_words(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 3600 && secs.is_multiple_of(3600) {
        plural(secs / 3600, "hour")
    } else {
        plural(secs.div_ceil(60), "minute")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a sign-up found for its address.
enum SignUpTarget {
    /// A new account, or one still unconfirmed: send it a link.
    Unconfirmed(UserId),
    /// A confirmed account: nothing changes; its owner is told someone tried.
    Registered(UserId),
}

/// `POST /users`. The answer is 202 [`CheckInbox`] whether the address is new, unconfirmed or
/// confirmed, after one argon2 hash in every case. A new address gets an unconfirmed account
/// and a link; an unconfirmed one gets the new password (what a log-in is checked against to
/// say "confirm first") and a link bound to it; a confirmed one keeps its password and gets a
/// fixed-text "you already have an account" email, so its owner knows what to do (and that
/// someone tried), while nobody else learns anything. Emails per recipient are capped per
/// window (`account_emails_per_address`), so no address can be flooded through this route.
fn sign_up(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let credentials = read_credentials(req)?;
    let email = Email::parse(&credentials.email)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    check_policy(&credentials.password, email.as_str())
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    let client = client_of(req);
    let throttle = open_throttle(config)?;
    let limits = config.throttle;
    // Counted before the argon2 work: a flood costs at most the limit in hashing.
    if let Verdict::Throttled { retry_after_secs } = count(
        &throttle,
        &[Counter {
            key: throttle.signup_client(&client),
            limit: limits.signups_per_client,
            window_secs: limits.signup_window_secs,
        }],
    )? {
        return Err(ApiError::throttled(
            retry_after_secs,
            "too many sign-ups from your address",
        ));
    }
    let hash = hash_password(&credentials.password, config.hash_cost)
        .map_err(|e| ApiError::internal("could not store the password", e))?;
    let accounts = open_accounts(config)?;
    let target =
        settle_sign_up(&accounts, &email, &hash).map_err(|e| ApiError::unavailable("MySQL", e))?;
    match target {
        SignUpTarget::Unconfirmed(user) => {
            send_link(config, &throttle, &accounts, &email, user, &hash, "sign-up")?;
        }
        SignUpTarget::Registered(user) => {
            let sent = send_account_email(config, &throttle, &email, user, "sign-up", || {
                Ok(AccountEmailKind::AlreadyRegistered)
            })?;
            eprintln!("auth: sign-up for confirmed user={user}: {sent}");
        }
    }
    Ok(json(
        202,
        &CheckInbox {
            email: email.as_str().to_owned(),
            message: format!(
                "check your inbox at {email}: we sent a link to confirm the address (it works for \
                 {}); open it, then log in. If the address already has an account, the email \
                 says so instead. Nothing after a few minutes? Look in your spam folder, then {ASK_AGAIN}.",
                lifetime_words(config.confirmation_lifetime_secs)
            ),
        },
    ))
}

fn settle_sign_up(
    accounts: &Accounts,
    email: &Email,
    hash: &str,
) -> Result<SignUpTarget, crate::accounts::StoreError> {
    let existing = match accounts.find(email)? {
        Some(existing) => existing,
        None => match accounts.create(email, hash)? {
            Some(account) => return Ok(SignUpTarget::Unconfirmed(account.id)),
            // Another sign-up for the address won the race: treat it as existing.
            None => match accounts.find(email)? {
                Some(existing) => existing,
                None => {
                    return Err(crate::accounts::StoreError::Vanished);
                }
            },
        },
    };
    if existing.confirmed {
        return Ok(SignUpTarget::Registered(existing.account.id));
    }
    accounts.set_unconfirmed_password(existing.account.id, hash)?;
    Ok(SignUpTarget::Unconfirmed(existing.account.id))
}

/// A new confirmation token bound to `password_hash`, mailed to the address (if it has not had
/// its account emails for this window).
fn send_link(
    config: &AuthConfig,
    throttle: &Throttle<'_>,
    accounts: &Accounts,
    email: &Email,
    user: UserId,
    password_hash: &str,
    why: &str,
) -> Result<(), ApiError> {
    let sent = send_account_email(config, throttle, email, user, why, || {
        let (token, token_hash) = confirmations::new_token()
            .map_err(|e| ApiError::internal("could not make a confirmation token", e))?;
        Confirmations::new(accounts.connection())
            .insert(
                &token_hash,
                user,
                password_hash,
                config.confirmation_lifetime_secs,
            )
            .map_err(|e| ApiError::unavailable("MySQL", e))?;
        Ok(AccountEmailKind::Confirm {
            token,
            expires_at: now_secs().saturating_add(config.confirmation_lifetime_secs),
        })
    })?;
    eprintln!("auth: {why} user={user}: {sent}");
    Ok(())
}

/// Counts the email against its recipient's cap, then builds and publishes it. The outcome in
/// words for the request's log line (never the address or the token).
fn send_account_email(
    config: &AuthConfig,
    throttle: &Throttle<'_>,
    email: &Email,
    user: UserId,
    why: &str,
    make: impl FnOnce() -> Result<AccountEmailKind, ApiError>,
) -> Result<String, ApiError> {
    let limits = config.throttle;
    if let Verdict::Throttled { .. } = count(
        throttle,
        &[Counter {
            key: throttle.emails_to(email.as_str()),
            limit: limits.emails_per_address,
            window_secs: limits.email_window_secs,
        }],
    )? {
        return Ok("no email: the address had its account emails for this window".into());
    }
    let kind = make()?;
    let what = kind.as_str();
    let (message_id, receivers) = account_mail::publish(
        config.redis_url.expose(),
        &config.account_emails_channel,
        email.as_str(),
        kind,
    )
    .map_err(|e| ApiError::unavailable("Redis", e))?;
    if receivers == 0 {
        // Pub/sub keeps nothing: this email is lost; the person can ask for another link.
        eprintln!(
            "auth: {why} user={user}: no notifier listens on {}; the {what} email message={message_id} is lost",
            config.account_emails_channel
        );
    }
    Ok(format!(
        "{what} email message={message_id} to {receivers} notifier(s)"
    ))
}

/// `POST /users/confirmation`: redeems the token of a confirmation link.
fn confirm(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let body: Confirmation = read_json(req, "{\"token\": \"...\"}")?;
    let token = body.token.trim();
    if !confirmations::is_well_formed(token) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "that is not a confirmation token: open the link from the email again, or copy all of it",
        ));
    }
    let accounts = open_accounts(config)?;
    let redeemed = Confirmations::new(accounts.connection())
        .redeem(token)
        .map_err(|e| ApiError::unavailable("MySQL", e))?;
    let (user, password_hash) = match redeemed {
        Redeemed::Valid {
            user_id,
            password_hash,
        } => (user_id, password_hash),
        Redeemed::Used => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "this confirmation link was used already (or the address was confirmed with \
                 another one); log in",
            ));
        }
        Redeemed::Expired => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("this confirmation link has expired; {ASK_AGAIN}"),
            ));
        }
        Redeemed::Unknown => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("this confirmation link is not valid (mistyped, or very old); {ASK_AGAIN}"),
            ));
        }
    };
    let confirmed = accounts
        .confirm(user, &password_hash)
        .map_err(|e| ApiError::unavailable("MySQL", e))?;
    match confirmed {
        Confirmed::Now(account) => {
            Confirmations::new(accounts.connection())
                .retire_unused(user)
                .map_err(|e| ApiError::unavailable("MySQL", e))?;
            eprintln!("auth: confirmed user={user}");
            Ok(json(200, &account))
        }
        Confirmed::Earlier => Err(ApiError::new(
            ErrorCode::Conflict,
            "this address was confirmed through another link already; log in with the \
             password chosen together with that one",
        )),
        Confirmed::Missing => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("this confirmation link is not valid any more; {ASK_AGAIN}"),
        )),
    }
}

/// Counts a log-in attempt (per typed email and per client address) atomically before any
/// password work; `Err` 429 when either is at its limit. The keys, for taking the attempt back.
pub(crate) fn count_login(
    config: &AuthConfig,
    throttle: &Throttle<'_>,
    typed: &str,
    client: &str,
) -> Result<[String; 2], ApiError> {
    let limits = config.throttle;
    let keys = [throttle.login_account(typed), throttle.login_client(client)];
    let verdict = count(
        throttle,
        &[
            Counter {
                key: keys[0].clone(),
                limit: limits.per_account,
                window_secs: limits.window_secs,
            },
            Counter {
                key: keys[1].clone(),
                limit: limits.per_client,
                window_secs: limits.window_secs,
            },
        ],
    )?;
    match verdict {
        Verdict::Counted => Ok(keys),
        Verdict::Throttled { retry_after_secs } => Err(ApiError::throttled(
            retry_after_secs,
            "too many failed logins",
        )),
    }
}

/// Checks a password the same way whether or not the account exists (see
/// `password::verify_password`): the account, when the password is its own.
fn check_password(
    config: &AuthConfig,
    credentials: &Credentials,
    email: Option<&Email>,
) -> Result<Option<StoredAccount>, ApiError> {
    let stored = match email {
        Some(email) => open_accounts(config)?
            .find(email)
            .map_err(|e| ApiError::unavailable("MySQL", e))?,
        None => None,
    };
    let ok = verify_password(
        &credentials.password,
        stored.as_ref().map(|s| s.password_hash.as_str()),
        config.hash_cost,
    );
    Ok(stored.filter(|_| ok))
}

/// The email as typed, normalized when it is an address at all (a malformed one gets the same
/// answer as a wrong password: the login form has one error).
fn typed_email(credentials: &Credentials) -> (Option<Email>, String) {
    let email = Email::parse(&credentials.email).ok();
    let typed = email.as_ref().map_or_else(
        || credentials.email.trim().to_lowercase(),
        |e| e.as_str().to_owned(),
    );
    (email, typed)
}

/// `POST /users/confirmation-email`: a new link for an unconfirmed account, when the password
/// is its password (so nobody can have a link bound to a password they do not know sent to
/// someone). Throttled like a log-in, since it checks a password; answered 202 whatever the
/// outcome.
fn send_link_again(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let credentials = read_credentials(req)?;
    let email = Email::parse(&credentials.email)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    let client = client_of(req);
    let throttle = open_throttle(config)?;
    let keys = count_login(config, &throttle, email.as_str(), &client)?;
    let outcome = match check_password(config, &credentials, Some(&email))? {
        Some(stored) => {
            throttle
                .take_back(&keys)
                .map_err(|e| ApiError::unavailable("Redis", e))?;
            if stored.confirmed {
                "already confirmed: nothing sent"
            } else {
                let accounts = open_accounts(config)?;
                send_link(
                    config,
                    &throttle,
                    &accounts,
                    &email,
                    stored.account.id,
                    &stored.password_hash,
                    "link again",
                )?;
                "link sent"
            }
        }
        None => "no account with that password: nothing sent",
    };
    eprintln!("auth: link again: {outcome}");
    Ok(json(
        202,
        &CheckInbox {
            email: email.as_str().to_owned(),
            message: format!(
                "if {email} has an account waiting for confirmation and that is its password, \
                 a new link is on its way (it works for {}); check your inbox. A confirmed \
                 address gets nothing: log in.",
                lifetime_words(config.confirmation_lifetime_secs)
            ),
        },
    ))
}

fn log_in(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let credentials = read_credentials(req)?;
    let (email, typed) = typed_email(&credentials);
    let client = client_of(req);
    let throttle = open_throttle(config)?;
    let keys = count_login(config, &throttle, &typed, &client)?;
    let Some(stored) = check_password(config, &credentials, email.as_ref())? else {
        // The attempt stays counted: it was a failure.
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the email or password is wrong",
        ));
    };
    // Right password: the attempt is not a failure, so it is not kept against the limits.
    throttle
        .take_back(&keys)
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    if !stored.confirmed {
        eprintln!(
            "auth: log-in refused user={}: not confirmed",
            stored.account.id
        );
        return Err(ApiError::new(
            ErrorCode::EmailNotConfirmed,
            format!(
                "confirm your email address first: open the link we sent to {} (links work \
                 for {}), then log in; no email? {ASK_AGAIN}",
                stored.account.email,
                lifetime_words(config.confirmation_lifetime_secs)
            ),
        ));
    }
    let token = config
        .signer
        .issue(
            stored.account.id,
            &stored.account.email,
            now_secs(),
            config.token_lifetime_secs,
            uuid::Uuid::now_v7(),
        )
        .map_err(|e| ApiError::internal("could not sign the session token", e))?;
    eprintln!("auth: logged in user={}", stored.account.id);
    Ok(json(
        200,
        &Session {
            token,
            token_type: "Bearer".into(),
            expires_in: config.token_lifetime_secs,
            account: stored.account,
        },
    ))
}

/// A small JSON body of type `T`; `shape` says what it should look like.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    req: &Request,
    shape: &str,
) -> Result<T, ApiError> {
    let body = req.body();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body must be a JSON object under {MAX_BODY_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the body must be JSON {shape}: {e}"),
        )
    })
}

pub fn read_credentials(req: &Request) -> Result<Credentials, ApiError> {
    let credentials: Credentials = read_json(req, "{\"email\": ..., \"password\": ...}")?;
    if credentials.password.chars().count() > crate::password::MAX_PASSWORD_CHARS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "the password must have at most {} characters",
                crate::password::MAX_PASSWORD_CHARS
            ),
        ));
    }
    Ok(credentials)
}

fn json(status: u16, value: &impl serde::Serialize) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(json_text(value))
        .build()
}

fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| {
        r#"{"error":{"code":"internal","message":"could not write the answer"}}"#.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: &str) -> Request {
        Request::builder()
            .method(Method::Post)
            .uri(path)
            .body(body.to_owned())
            .build()
    }

    fn no_config() -> Result<AuthConfig, ApiError> {
        Err(ApiError::new(ErrorCode::Internal, "config not needed here"))
    }

    fn error_of(response: &Response) -> serde_json::Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    #[test]
    fn malformed_json_is_a_clear_400() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"email": "a@b.co"}"#,
            r#"{"email": 1, "password": 2}"#,
        ] {
            let e = read_credentials(&post("/users", body)).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{body}");
            assert!(e.message.contains("email"), "{}", e.message);
        }
    }

    #[test]
    fn overlong_bodies_and_passwords_are_refused_before_hashing() {
        let huge = format!(
            r#"{{"email":"a@b.co","password":"{}"}}"#,
            "x".repeat(20_000)
        );
        assert_eq!(
            read_credentials(&post("/users", &huge)).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        let long = format!(r#"{{"email":"a@b.co","password":"{}"}}"#, "x".repeat(129));
        let e = read_credentials(&post("/users", &long)).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("128"));
    }

    #[test]
    fn unknown_routes_and_methods_answer_without_config() {
        let r = handle(&post("/nope", ""), no_config);
        assert_eq!(*r.status(), 404);
        assert_eq!(error_of(&r)["error"]["code"], "not_found");
        let get = Request::builder().method(Method::Get).uri("/users").build();
        let r = handle(&get, no_config);
        assert_eq!(*r.status(), 400);
    }

    #[test]
    fn link_lifetimes_read_naturally() {
        assert_eq!(lifetime_words(86_400), "24 hours");
        assert_eq!(lifetime_words(3_600), "1 hour");
        assert_eq!(lifetime_words(5_400), "90 minutes");
        assert_eq!(lifetime_words(60), "1 minute");
        assert_eq!(lifetime_words(61), "2 minutes");
    }

    #[test]
    fn the_new_routes_refuse_other_methods_without_config() {
        for path in [CONFIRMATION_PATH, CONFIRMATION_EMAIL_PATH] {
            let get = Request::builder().method(Method::Get).uri(path).build();
            let r = handle(&get, no_config);
            assert_eq!(*r.status(), 400, "{path}");
        }
    }

    #[test]
    fn errors_carry_retry_after_when_throttled() {
        let r = ApiError {
            retry_after_secs: Some(42),
            ..ApiError::new(ErrorCode::TooManyRequests, "slow down")
        }
        .into_response();
        assert_eq!(*r.status(), 429);
        assert_eq!(r.header("retry-after").and_then(|v| v.as_str()), Some("42"));
    }
}
