use spin_sdk::wit::wasi::http0_2_0::types::ErrorCode;

/// What went wrong moving bytes over WASI HTTP.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The peer went away before the body ended.
    #[error("the connection ended before the body did")]
    Aborted,
    /// The host refused or failed the request; the text says how, never a header's value.
    #[error("{0}")]
    Request(String),
    /// The answer's body was longer than the caller allows.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// A host's error code in words a person can act on (the common ones; the rest as WASI names them).
pub(crate) fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => {
            "refused by the component's allowed_outbound_hosts (is the URL's host listed in spin.toml?)"
                .into()
        }
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "connection timed out".into(),
        ErrorCode::ConnectionReadTimeout => "no answer in time".into(),
        ErrorCode::DnsError(_) => "the host name did not resolve".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_failures_read_as_words() {
        assert!(describe(&ErrorCode::HttpRequestDenied).contains("allowed_outbound_hosts"));
        assert_eq!(
            describe(&ErrorCode::ConnectionRefused),
            "connection refused"
        );
        assert_eq!(
            describe(&ErrorCode::ConnectionReadTimeout),
            "no answer in time"
        );
        assert!(describe(&ErrorCode::InternalError(Some("x".into()))).contains("InternalError"));
    }

    #[test]
    fn too_large_names_the_limit() {
        assert_eq!(
            IoError::TooLarge { limit: 10 }.to_string(),
            "the answer is larger than 10 bytes"
        );
    }
}
