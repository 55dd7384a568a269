//! auth's HTTP API (contracts' `auth_api`): sign up, log in, the public keys.
//!
//! Every answer is JSON; every error is `{"error": {"code", "message"}}` whose message says what
//! to do. Nothing a client sees names a table, a query or a key.

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::http::{Method, Request, Response};
use vid2mp3_contracts::auth_api::{
    Credentials, HEADER_CLIENT_ADDR, JWKS_PATH, SESSIONS_PATH, Session, USERS_PATH,
};
use vid2mp3_contracts::{ErrorBody, ErrorCode};

use crate::accounts::Accounts;
use crate::config::AuthConfig;
use crate::email::Email;
use crate::password::{check_policy, hash_password, verify_password};
use crate::throttle::Throttle;

/// Bodies are a small JSON object; anything bigger is not a sign-up.
const MAX_BODY_BYTES: usize = 16 * 1024;

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

    /// A failure of a backing service: logged in full, told to the client without details.
    fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
        eprintln!("auth: {what} failed: {e}");
        ApiError::new(
            ErrorCode::Unavailable,
            "accounts are unavailable for a moment; try again shortly",
        )
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
        (Method::Post, SESSIONS_PATH) => config().and_then(|c| log_in(req, &c)),
        (Method::Get, JWKS_PATH) => config().map(|c| json(200, &c.signer.jwks())),
        (_, USERS_PATH | SESSIONS_PATH | JWKS_PATH) => Err(ApiError::new(
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

fn sign_up(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let credentials = read_credentials(req)?;
    let email = Email::parse(&credentials.email)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    check_policy(&credentials.password, email.as_str())
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    let hash = hash_password(&credentials.password, config.hash_cost).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("could not store the password: {e}"),
        )
    })?;
    let accounts = Accounts::open(&config.db_url).map_err(|e| ApiError::unavailable("MySQL", e))?;
    match accounts
        .create(&email, &hash)
        .map_err(|e| ApiError::unavailable("MySQL", e))?
    {
        Some(account) => {
            eprintln!("auth: signed up user={}", account.id);
            Ok(json(201, &account))
        }
        None => Err(ApiError::new(
            ErrorCode::Conflict,
            "an account with this email already exists; log in instead",
        )),
    }
}

fn log_in(req: &Request, config: &AuthConfig) -> Result<Response, ApiError> {
    let credentials = read_credentials(req)?;
    // A malformed email gets the same answer as a wrong password: the login form has one error.
    let email = Email::parse(&credentials.email).ok();
    let typed = email.as_ref().map_or_else(
        || credentials.email.trim().to_lowercase(),
        |e| e.as_str().to_owned(),
    );
    let client = req
        .header(HEADER_CLIENT_ADDR)
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_owned();
    let throttle = Throttle::open(&config.redis_url, &config.redis_key_prefix, config.throttle)
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    if let Some(wait) = throttle
        .retry_after(&typed, &client)
        .map_err(|e| ApiError::unavailable("Redis", e))?
    {
        return Err(ApiError {
            retry_after_secs: Some(wait),
            ..ApiError::new(
                ErrorCode::TooManyRequests,
                format!("too many failed logins; try again in {wait} seconds"),
            )
        });
    }
    let stored = match &email {
        Some(email) => Accounts::open(&config.db_url)
            .and_then(|a| a.find(email))
            .map_err(|e| ApiError::unavailable("MySQL", e))?,
        None => None,
    };
    // Same argon2 work whether or not the account exists (see password::verify_password).
    let ok = verify_password(
        &credentials.password,
        stored.as_ref().map(|s| s.password_hash.as_str()),
        config.hash_cost,
    );
    let Some(stored) = stored.filter(|_| ok) else {
        throttle
            .record_failure(&typed, &client)
            .map_err(|e| ApiError::unavailable("Redis", e))?;
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the email or password is wrong",
        ));
    };
    throttle
        .clear_account(&typed)
        .map_err(|e| ApiError::unavailable("Redis", e))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let token = config
        .signer
        .issue(
            stored.account.id,
            &stored.account.email,
            now,
            config.token_lifetime_secs,
            uuid::Uuid::now_v7(),
        )
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
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

pub fn read_credentials(req: &Request) -> Result<Credentials, ApiError> {
    let body = req.body();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body must be a JSON object under {MAX_BODY_BYTES} bytes"),
        ));
    }
    let credentials: Credentials = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("the body must be JSON {{\"email\": ..., \"password\": ...}}: {e}"),
        )
    })?;
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
