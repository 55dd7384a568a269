//! What can go wrong in the client, in terms a script and a person can act on. Every variant
//! maps to one exit code (see `exit_code`), so the mapping lives in one place.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with an error: its `{"error": {"code", "message"}}`, or what we could
    /// make of a body that was not that.
    #[error("{}", api_error_text(*.status, .code, .message))]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// No connection, a timeout, or the answer broke off.
    #[error(
        "cannot talk to {server}: {reason}\n  is the server running and is the URL right? (--server or VID2MP3_SERVER)"
    )]
    Unreachable { server: String, reason: String },
    /// No stored token for this server, or it has expired.
    #[error(
        "{reason} for {server}; run `vid2mp3 login --server {server}` (or `vid2mp3 signup` first)"
    )]
    NotLoggedIn { server: String, reason: String },
    /// The job ended `failed` (only reported when the command waited for it).
    #[error("job {job} failed: {message} ({code})")]
    ConversionFailed {
        job: String,
        code: String,
        message: String,
    },
    /// The job exists but has no mp3 (yet).
    #[error("job {job} has no mp3 yet (status: {status}); wait for it with `vid2mp3 status {job}`")]
    NoMp3Yet { job: String, status: String },
    /// Bad arguments or local input that no request would fix.
    #[error("{0}")]
    Usage(String),
    /// The server answered in a way the protocol does not allow (a header missing or garbled).
    #[error("{0}; is --server a vid2mp3 server of this version?")]
    UnexpectedAnswer(String),
    /// A resumable upload stopped making progress; the server keeps what it received.
    #[error(
        "the upload of {name} stopped at {percent}% ({reason}); run the same command again to resume it"
    )]
    UploadInterrupted {
        name: String,
        percent: u64,
        reason: String,
    },
    /// The download arrived, but not as many bytes as the server announced.
    #[error(
        "the download of {path} is incomplete ({got} of {expected} bytes); run the same command again to resume"
    )]
    Incomplete {
        path: String,
        got: u64,
        expected: u64,
    },
}

fn api_error_text(status: u16, code: &str, message: &str) -> String {
    let hint = match status {
        403 if code == "email_not_confirmed" => {
            "\n  open the link in your confirmation email (or run: vid2mp3 confirm 'LINK'); \
             no email? vid2mp3 resend-confirmation"
        }
        401 => "\n  log in again: vid2mp3 login",
        404 => "\n  list your jobs with: vid2mp3 jobs",
        429 => "\n  wait a moment and try again",
        s if s >= 500 => "\n  the service has a problem; try again shortly",
        _ => "",
    };
    format!("{message} (HTTP {status}, {code}){hint}")
}

/// A short, single-line description of a transport error, with its causes: reqwest's own
/// `Display` says only "error sending request", which tells nobody what to fix.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
