//! Calls to auth through Spin service chaining (`http://auth.spin.internal`, in-process).

use spin_sdk::wit::wasi::http0_2_0::types as wt;
use vid2mp3_contracts::auth_api::{
    Account, AccountDeletion, CONFIRMATION_EMAIL_PATH, CONFIRMATION_PATH, CheckInbox, Confirmation,
    Credentials, DELETION_CHECK_PATH, DELETION_PATH, HEADER_CLIENT_ADDR, SESSIONS_PATH, Session,
    USERS_PATH,
};
use vid2mp3_contracts::{ErrorBody, ErrorCode};

use crate::errors::ApiError;
use crate::http_io::{BodyLimit, Target, fetch};

const AUTH_AUTHORITY: &str = "auth.spin.internal";
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub fn sign_up(credentials: &Credentials, client_addr: &str) -> Result<CheckInbox, ApiError> {
    call(USERS_PATH, credentials, client_addr)
}

pub fn confirm(confirmation: &Confirmation, client_addr: &str) -> Result<Account, ApiError> {
    call(CONFIRMATION_PATH, confirmation, client_addr)
}

pub fn send_link_again(
    credentials: &Credentials,
    client_addr: &str,
) -> Result<CheckInbox, ApiError> {
    call(CONFIRMATION_EMAIL_PATH, credentials, client_addr)
}

/// Whether `deletion`'s password is its account's (`Ok`: yes; 403 no; 429 throttled).
pub fn check_deletion(deletion: &AccountDeletion, client_addr: &str) -> Result<(), ApiError> {
    call_empty(DELETION_CHECK_PATH, deletion, client_addr)
}

/// The last step of a deletion: auth checks the password again, has the notifier forget the
/// address, and removes the user.
pub fn delete_account(deletion: &AccountDeletion, client_addr: &str) -> Result<(), ApiError> {
    call_empty(DELETION_PATH, deletion, client_addr)
}

/// A call whose success has no body (`204`).
fn call_empty(path: &str, body: &impl serde::Serialize, client_addr: &str) -> Result<(), ApiError> {
    call::<serde::de::IgnoredAny>(path, body, client_addr).map(|_| ())
}

pub fn log_in(credentials: &Credentials, client_addr: &str) -> Result<Session, ApiError> {
    call(SESSIONS_PATH, credentials, client_addr)
}

fn call<T: serde::de::DeserializeOwned>(
    path: &str,
    body: &impl serde::Serialize,
    client_addr: &str,
) -> Result<T, ApiError> {
    let body = serde_json::to_vec(body).map_err(|e| ApiError::internal("auth request", e))?;
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (HEADER_CLIENT_ADDR.to_owned(), client_addr.to_owned()),
    ];
    let answer = fetch(
        &Target {
            method: wt::Method::Post,
            https: false,
            authority: AUTH_AUTHORITY,
            path_and_query: path,
        },
        &headers,
        &body,
        BodyLimit::Refuse(MAX_ANSWER_BYTES),
        None,
    )
    .map_err(|e| ApiError::unavailable("accounts", e))?;
    if (200..300).contains(&answer.status) {
        let body: &[u8] = if answer.body.is_empty() {
            b"null"
        } else {
            &answer.body
        };
        return serde_json::from_slice(body).map_err(|e| ApiError::internal("auth answer", e));
    }
    // auth's errors are already worded for the client; pass them on, except its internals.
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) if !matches!(body.error.code, ErrorCode::Internal) => {
            let mut e = ApiError::new(body.error.code, body.error.message);
            e.status = Some(answer.status);
            if let Some(wait) = answer.header("retry-after") {
                e = e.with_header("retry-after", wait);
            }
            Err(e)
        }
        _ => Err(ApiError::unavailable(
            "accounts",
            format!("auth answered {}", answer.status),
        )),
    }
}
