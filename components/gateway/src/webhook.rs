//! The account's webhook (`GET`, `PUT`, `DELETE /api/v1/webhook`), kept by the converter, which
//! also sends the deliveries. The converter checks the URL (its rules are in
//! `vid2mp3_contracts::webhook`, with the operator's allow-list, which only the converter has),
//! so the gateway bounds the body and passes the converter's refusal on as it came.

use spin_sdk::wit::wasi::http0_2_0::types as wt;
use vid2mp3_contracts::webhook::{
    AccountWebhook, MAX_URL_LEN, SetWebhook, URL_PROBLEM_PREFIX, account_webhook_path,
};
use vid2mp3_contracts::{ErrorBody, ErrorCode, UserId};

use crate::errors::ApiError;
use crate::http_io::Fetched;
use crate::storage_client::StorageEndpoint;

fn no_webhook() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "this account has no webhook; set one with PUT /api/v1/webhook {\"url\": \"https://...\"}",
    )
}

pub fn get(storage: &StorageEndpoint, owner: &UserId) -> Result<AccountWebhook, ApiError> {
    let resp = storage.call(wt::Method::Get, &account_webhook_path(owner), None)?;
    match resp.status {
        200 => parse(&resp),
        404 => Err(no_webhook()),
        _ => Err(refusal_or_unavailable(&resp)),
    }
}

/// Sets the webhook; the answer carries the new secret, the only time it is shown.
pub fn put(
    storage: &StorageEndpoint,
    owner: &UserId,
    request: &SetWebhook,
) -> Result<AccountWebhook, ApiError> {
    check_length(&request.url)?;
    let body = serde_json::to_vec(request).map_err(|e| ApiError::internal("webhook", e))?;
    let resp = storage.call(wt::Method::Put, &account_webhook_path(owner), Some(body))?;
    match resp.status {
        200 => parse(&resp),
        _ => Err(refusal_or_unavailable(&resp)),
    }
}

pub fn delete(storage: &StorageEndpoint, owner: &UserId) -> Result<(), ApiError> {
    let resp = storage.call(wt::Method::Delete, &account_webhook_path(owner), None)?;
    match resp.status {
        200 | 204 | 404 => Ok(()),
        _ => Err(refusal_or_unavailable(&resp)),
    }
}

/// The checks made here, before the URL travels on (the converter checks the rest): its
/// length, and ASCII, since the upload carries it in a header.
pub fn check_length(url: &str) -> Result<(), ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::bad_request(format!(
            "the callback URL is longer than {MAX_URL_LEN} bytes; use a shorter one"
        )));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "the callback URL must be printable ASCII without spaces; percent-encode anything else",
        ));
    }
    Ok(())
}

/// The storage API's refusal of an upload's callback URL, passed on as it came (a 400 the user
/// can act on); `None` for any other answer.
pub fn callback_refusal(status: u16, body: &[u8]) -> Option<ApiError> {
    refusal(status, body).filter(|e| e.message.starts_with(URL_PROBLEM_PREFIX))
}

fn parse(resp: &Fetched) -> Result<AccountWebhook, ApiError> {
    serde_json::from_slice(&resp.body).map_err(|e| ApiError::internal("the storage answer", e))
}

/// A `400` names what is wrong with the URL, for the user to fix; anything else is ours.
fn refusal_or_unavailable(resp: &Fetched) -> ApiError {
    refusal(resp.status, &resp.body).unwrap_or_else(|| {
        ApiError::unavailable(
            "the webhook service",
            format!(
                "answered {}: {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        )
    })
}

fn refusal(status: u16, body: &[u8]) -> Option<ApiError> {
    let body = serde_json::from_slice::<ErrorBody>(body).ok()?;
    (status == 400 && body.error.code == ErrorCode::BadRequest)
        .then(|| ApiError::bad_request(body.error.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_url_is_passed_on_and_other_errors_are_not() {
        let body = serde_json::to_vec(&ErrorBody::new(
            ErrorCode::BadRequest,
            "the callback URL must use https:// (got http://)",
        ))
        .unwrap();
        let e = refusal(400, &body).expect("passed on");
        assert_eq!(
            (e.status(), e.message.as_str()),
            (400, "the callback URL must use https:// (got http://)")
        );
        let internal =
            serde_json::to_vec(&ErrorBody::new(ErrorCode::Unavailable, "Mongo")).unwrap();
        assert!(refusal(503, &internal).is_none());
        assert!(refusal(400, b"not json").is_none());
        // Only a refusal of the callback URL is passed on from an upload.
        assert!(callback_refusal(400, &body).is_some());
        let other = serde_json::to_vec(&ErrorBody::new(
            ErrorCode::BadRequest,
            "x-vid2mp3-owner-id is missing",
        ))
        .unwrap();
        assert!(callback_refusal(400, &other).is_none());
    }

    #[test]
    fn long_or_non_ascii_urls_stop_here() {
        assert!(check_length("https://h.example/x?a=%C3%A9").is_ok());
        assert!(check_length(&format!("https://h.example/{}", "a".repeat(MAX_URL_LEN))).is_err());
        assert!(check_length("https://h.example/é").is_err());
        assert!(check_length("https://h.example/a b").is_err());
    }
}
