//! The storage API's error answers: `{"error": {"code", "message"}}` with the code's status.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::warn;
use vid2mp3_contracts::storage_api::HEADER_UPLOAD_OFFSET;
use vid2mp3_contracts::{ErrorBody, ErrorCode};

use crate::gridfs::GridFsError;
use crate::job_state::JobStateError;
use crate::quota::QuotaError;

/// An error answer: `{"error": {"code", "message"}}` with the code's status (or the one set).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// Overrides the code's usual status (a stored-bytes quota refusal is a 413).
    status: Option<StatusCode>,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    retry_after: Option<Duration>,
    /// Where a resumable upload is, sent with a refused piece (`409`).
    upload_offset: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status: None,
            retry_after: None,
            upload_offset: None,
        }
    }

    /// Tells the client where the resumable upload is.
    pub(super) fn with_upload_offset(mut self, offset: u64) -> ApiError {
        self.upload_offset = Some(offset);
        self
    }

    /// `413`: the video is larger than `max` bytes.
    pub(super) fn too_large(max: u64) -> ApiError {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the video is larger than the limit of {max} bytes"),
        )
    }

    pub(super) fn unavailable(what: impl std::fmt::Display) -> ApiError {
        warn!(error = %what, "a backing service failed");
        ApiError::new(
            ErrorCode::Unavailable,
            "storage is unavailable right now; try again shortly",
        )
    }
}

impl From<JobStateError> for ApiError {
    fn from(error: JobStateError) -> ApiError {
        match error {
            JobStateError::Damaged { .. } => {
                warn!(%error, "damaged job record");
                ApiError::new(ErrorCode::Internal, "the job's record is damaged")
            }
            other => ApiError::unavailable(other),
        }
    }
}

impl From<QuotaError> for ApiError {
    fn from(error: QuotaError) -> ApiError {
        match error {
            QuotaError::Exceeded(exceeded) => ApiError {
                code: ErrorCode::QuotaExceeded,
                status: StatusCode::from_u16(exceeded.http_status()).ok(),
                retry_after: exceeded.retry_after,
                message: exceeded.message,
                upload_offset: None,
            },
            QuotaError::Mongo(error) => ApiError::unavailable(error),
        }
    }
}

impl From<GridFsError> for ApiError {
    fn from(error: GridFsError) -> ApiError {
        match error {
            GridFsError::Mongo(_) | GridFsError::Interrupted(_) => ApiError::unavailable(error),
            other => {
                warn!(error = %other, "GridFS file damaged");
                ApiError::new(ErrorCode::Internal, "the stored file is damaged")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let mut response = json_response(status, &ErrorBody::new(self.code, self.message));
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(offset) = self.upload_offset {
            response
                .headers_mut()
                .insert(HEADER_UPLOAD_OFFSET, HeaderValue::from(offset));
        }
        response
    }
}

pub(super) fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
