//! tus 1.0.0's fixed parts: the version every request must name, what this server supports,
//! and the header forms (numbers, `Upload-Expires`'s HTTP date).

use vid2mp3_contracts::ErrorCode;

use crate::errors::ApiError;
use crate::http_io::RequestHead;

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,termination,expiration";
/// A piece's media type (tus core).
pub const PIECE_CONTENT_TYPE: &str = "application/offset+octet-stream";

/// Every tus request but `OPTIONS` names the protocol version.
pub fn check_version(head: &RequestHead) -> Result<(), ApiError> {
    match head.header("tus-resumable").map(str::trim) {
        Some(VERSION) => Ok(()),
        other => {
            let mut e = ApiError::new(
                ErrorCode::PreconditionFailed,
                format!(
                    "this server speaks tus {VERSION}; send Tus-Resumable: {VERSION} (got {})",
                    other.map_or("none".to_owned(), |v| format!(
                        "'{}'",
                        v.chars().take(32).collect::<String>()
                    ))
                ),
            )
            .with_header("tus-version", VERSION);
            e.status = Some(412);
            Err(e)
        }
    }
}

/// A header that must be a whole number of bytes.
pub fn number(head: &RequestHead, name: &str) -> Result<Option<u64>, ApiError> {
    match head.header(name).map(str::trim) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name} is too large"))),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} must be a whole number of bytes"
        ))),
    }
}

/// `Upload-Expires`: an HTTP date (RFC 9110's IMF-fixdate).
pub fn http_date(unix_ms: i64) -> String {
    let format = time::format_description::parse_borrowed::<2>(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT",
    );
    let at = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000));
    format
        .ok()
        .zip(at.ok())
        .and_then(|(format, at)| at.format(&format).ok())
        .unwrap_or_else(|| "Thu, 01 Jan 1970 00:00:00 GMT".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_an_http_date() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(1_796_515_200_123),
            "Sun, 06 Dec 2026 00:00:00 GMT"
        );
    }
}
