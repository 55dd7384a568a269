//! The API's error answer: a status, a stable code for programs and a message for people.

use vid2mp3_contracts::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(String, String)>,
    /// Overrides the code's usual status (a code's status is right for almost every case).
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            headers: Vec::new(),
            status: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.code.http_status())
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> ApiError {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// What a job that is not the caller's and a job that does not exist both answer: the
    /// same words, so ids cannot be probed.
    pub fn job_not_found() -> ApiError {
        ApiError::new(ErrorCode::NotFound, "no such job among yours")
    }

    /// A backing service failed: the full reason goes to the log, the client gets no internals.
    pub fn unavailable(what: &str, reason: impl std::fmt::Display) -> ApiError {
        eprintln!("gateway: {what} failed: {reason}");
        ApiError::new(
            ErrorCode::Unavailable,
            format!("{what} is unavailable for a moment; try again shortly"),
        )
    }

    pub fn internal(what: &str, reason: impl std::fmt::Display) -> ApiError {
        eprintln!("gateway: internal error in {what}: {reason}");
        ApiError::new(
            ErrorCode::Internal,
            "something went wrong on our side; try again, and tell us if it keeps happening",
        )
    }
}

impl From<crate::token_check::TokenError> for ApiError {
    fn from(e: crate::token_check::TokenError) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, e.to_string())
            .with_header("www-authenticate", "Bearer realm=\"vid2mp3\"")
    }
}
