//! Error codes every service uses in `{"error": {"code", "message"}}` and in failure events.
//! The code is for programs (stable, snake_case); the message is for people.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Requests.
    BadRequest,
    Unauthorized,
    Forbidden,
    /// Log-in with the right password for an account whose email address is not confirmed yet.
    EmailNotConfirmed,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    /// The request's `Tus-Resumable` version is missing or not one the server speaks.
    PreconditionFailed,
    /// Another request is writing the same resumable upload right now; try again shortly.
    Locked,
    /// One of an account's quotas (stored bytes, queued jobs, media minutes per day) would be
    /// exceeded; also why a conversion was refused once its length was known.
    QuotaExceeded,
    Internal,
    Unavailable,
    // Why a conversion failed (permanent: retrying cannot help).
    NotMedia,
    NoAudio,
    Undecodable,
    // Why a conversion failed after its retries ran out (transient causes that did not pass).
    RetriesExhausted,
    TimedOut,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::EmailNotConfirmed => "email_not_confirmed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::PreconditionFailed => "precondition_failed",
            ErrorCode::Locked => "locked",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotMedia => "not_media",
            ErrorCode::NoAudio => "no_audio",
            ErrorCode::Undecodable => "undecodable",
            ErrorCode::RetriesExhausted => "retries_exhausted",
            ErrorCode::TimedOut => "timed_out",
        }
    }

    /// The HTTP status an API answers with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::EmailNotConfirmed => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType | ErrorCode::NotMedia => 415,
            ErrorCode::NoAudio | ErrorCode::Undecodable => 422,
            ErrorCode::Locked => 423,
            // The stored-bytes quota answers 413 instead: waiting does not free it.
            ErrorCode::TooManyRequests | ErrorCode::QuotaExceeded => 429,
            ErrorCode::Internal | ErrorCode::RetriesExhausted => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::TimedOut => 504,
        }
    }
}

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: what went wrong and what to do.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_as_str_agree() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::EmailNotConfirmed,
            ErrorCode::PayloadTooLarge,
            ErrorCode::QuotaExceeded,
            ErrorCode::NoAudio,
            ErrorCode::RetriesExhausted,
            ErrorCode::PreconditionFailed,
            ErrorCode::Locked,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }
}
