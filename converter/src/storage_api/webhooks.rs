//! A job's own callback (the upload's `x-vid2mp3-callback-url`), and an account's webhook: `GET`, `PUT` and `DELETE /internal/v1/accounts/{owner_id}/webhook`.
//! The URL is checked here, with the same rules and allow-list the sender applies when it
//! connects; a new secret is made on every `PUT` and shown only in its answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{self, Path};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::{info, warn};
use vid2mp3_contracts::JobId;
use vid2mp3_contracts::storage_api::HEADER_CALLBACK_URL;
use vid2mp3_contracts::webhook::{AccountWebhook, SetWebhook, check_url};
use vid2mp3_contracts::{ErrorCode, UserId};

use super::State;
use super::error::{ApiError, json_response};
use crate::webhook::sign::new_secret;
use crate::webhook::store::{JobWebhook, StoredWebhook};

type ApiResult = Result<Response, ApiError>;

fn parse_owner(text: &str) -> Result<UserId, ApiError> {
    text.parse().map_err(|e: vid2mp3_contracts::IdError| {
        ApiError::new(ErrorCode::BadRequest, e.to_string())
    })
}

pub(super) async fn get_webhook(
    extract::State(state): extract::State<Arc<State>>,
    Path(owner): Path<String>,
) -> ApiResult {
    let owner = parse_owner(&owner)?;
    let webhook = state
        .webhooks
        .get(&owner)
        .await
        .map_err(ApiError::unavailable)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "this account has no webhook"))?;
    Ok(json_response(
        StatusCode::OK,
        &AccountWebhook {
            url: webhook.url,
            secret: None,
            created_at: Some(webhook.created_at),
        },
    ))
}

pub(super) async fn put_webhook(
    extract::State(state): extract::State<Arc<State>>,
    Path(owner): Path<String>,
    body: Bytes,
) -> ApiResult {
    let owner = parse_owner(&owner)?;
    let request: SetWebhook = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("expected {{\"url\": \"https://...\"}}: {e}"),
        )
    })?;
    let url = check_url(&request.url, &state.config.webhooks.allowed_hosts)
        .map_err(|problem| ApiError::new(ErrorCode::BadRequest, problem.to_string()))?;
    let secret = new_secret().map_err(ApiError::unavailable)?;
    let created_at = now();
    let stored = StoredWebhook {
        owner_id: owner.to_string(),
        url: url.to_string(),
        secret: secret.clone(),
        created_at: created_at.clone(),
    };
    state
        .webhooks
        .put(&stored)
        .await
        .map_err(ApiError::unavailable)?;
    // The URL may carry a receiver's own token in its query; only the host is logged.
    info!(owner = %owner, host = url.host_str().unwrap_or_default(), "webhook set");
    Ok(json_response(
        StatusCode::OK,
        &AccountWebhook {
            url: stored.url,
            secret: Some(secret),
            created_at: Some(created_at),
        },
    ))
}

pub(super) async fn delete_webhook(
    extract::State(state): extract::State<Arc<State>>,
    Path(owner): Path<String>,
) -> ApiResult {
    let owner = parse_owner(&owner)?;
    let removed = state
        .webhooks
        .delete(&owner)
        .await
        .map_err(ApiError::unavailable)?;
    info!(owner = %owner, removed, "webhook removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The upload's callback URL, checked and stored with a new secret before anything of the
/// upload is, so a refused URL keeps nothing and the sender always finds the callback of a
/// queued job. The secret, for the upload's answer.
pub(super) async fn job_callback(
    state: &State,
    job: &JobId,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER_CALLBACK_URL) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            "the callback URL must be ASCII; percent-encode anything else",
        )
    })?;
    let url = check_url(text, &state.config.webhooks.allowed_hosts)
        .map_err(|problem| ApiError::new(ErrorCode::BadRequest, problem.to_string()))?;
    let secret = new_secret().map_err(ApiError::unavailable)?;
    let record = JobWebhook {
        job_id: job.to_string(),
        url: url.to_string(),
        secret: secret.clone(),
        created_at: now(),
    };
    state
        .webhooks
        .put_job(&record)
        .await
        .map_err(ApiError::unavailable)?;
    info!(job_id = %job, host = url.host_str().unwrap_or_default(), "job callback set");
    Ok(Some(secret))
}

/// Removes the callback of an upload that was not stored.
pub(super) async fn forget_job_callback(state: &State, job: &JobId) {
    if let Err(error) = state.webhooks.delete_job(job).await {
        // Harmless: no job will ever have this id.
        warn!(job_id = %job, %error, "cannot remove the callback of an upload that was not stored");
    }
}
