//! tus's `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone means an
//! empty value). Bounded: the header is at most [`MAX_METADATA_BYTES`] and each value must be
//! valid base64 of UTF-8.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Longer than any file name, media type, profile, loudness and callback URL together.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub filename: Option<String>,
    pub filetype: Option<String>,
    pub profile: Option<String>,
    pub loudness: Option<String>,
    pub callback_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")]
    TooLong,
    #[error("Upload-Metadata: the value of '{0}' is not base64 of UTF-8 text")]
    BadValue(String),
    #[error("Upload-Metadata: '{0}' is not a key followed by one base64 value")]
    BadPair(String),
    #[error("Upload-Metadata: '{0}' appears twice")]
    Repeated(String),
}

/// Parses the header; unknown keys are accepted and ignored (tus clients add their own).
pub fn parse(header: &str) -> Result<Metadata, MetadataError> {
    if header.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLong);
    }
    let mut metadata = Metadata::default();
    let mut seen: Vec<&str> = Vec::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.split(' ').filter(|p| !p.is_empty());
        let key = parts.next().unwrap_or_default();
        let value = parts.next();
        if parts.next().is_some() || key.is_empty() {
            return Err(MetadataError::BadPair(pair.chars().take(64).collect()));
        }
        if seen.contains(&key) {
            return Err(MetadataError::Repeated(key.chars().take(64).collect()));
        }
        seen.push(key);
        let text = match value {
            None => String::new(),
            Some(encoded) => STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| MetadataError::BadValue(key.chars().take(64).collect()))?,
        };
        let slot = match key {
            "filename" | "name" => &mut metadata.filename,
            "filetype" | "type" => &mut metadata.filetype,
            "profile" => &mut metadata.profile,
            "loudness" => &mut metadata.loudness,
            "callback_url" => &mut metadata.callback_url,
            _ => continue,
        };
        if slot.is_some() {
            return Err(MetadataError::Repeated(key.to_owned()));
        }
        *slot = Some(text);
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn the_keys_we_use_are_read_and_others_ignored() {
        let header = format!(
            "filename {},filetype {}, profile {},loudness {},callback_url {},relativePath {},is_confidential",
            b64("lecture 1 – intro.mp4"),
            b64("video/mp4"),
            b64("fast"),
            b64("-16"),
            b64("https://example.com/hook"),
            b64("x/y"),
        );
        let m = parse(&header).unwrap();
        assert_eq!(m.filename.as_deref(), Some("lecture 1 – intro.mp4"));
        assert_eq!(m.filetype.as_deref(), Some("video/mp4"));
        assert_eq!(m.profile.as_deref(), Some("fast"));
        assert_eq!(m.loudness.as_deref(), Some("-16"));
        assert_eq!(m.callback_url.as_deref(), Some("https://example.com/hook"));
        assert_eq!(parse("").unwrap(), Metadata::default());
    }

    #[test]
    fn bad_headers_are_refused_saying_why() {
        assert_eq!(
            parse("filename not-base64!").unwrap_err(),
            MetadataError::BadValue("filename".into())
        );
        assert_eq!(
            parse(&format!("filename {} {}", b64("a"), b64("b"))).unwrap_err(),
            MetadataError::BadPair(format!("filename {} {}", b64("a"), b64("b")))
        );
        assert_eq!(
            parse(&format!("filename {},filename {}", b64("a"), b64("b"))).unwrap_err(),
            MetadataError::Repeated("filename".into())
        );
        assert_eq!(
            parse(&format!("filename {},name {}", b64("a"), b64("b"))).unwrap_err(),
            MetadataError::Repeated("name".into())
        );
        let long = format!("filename {}", b64(&"x".repeat(MAX_METADATA_BYTES)));
        assert_eq!(parse(&long).unwrap_err(), MetadataError::TooLong);
        // Invalid UTF-8 inside valid base64.
        assert_eq!(
            parse(&format!("filename {}", STANDARD.encode([0xff, 0xfe]))).unwrap_err(),
            MetadataError::BadValue("filename".into())
        );
    }
}
