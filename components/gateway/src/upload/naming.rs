//! Names and media types of uploaded files.

/// What is kept of a client's file name: its last path component, without control characters,
/// at most 255 characters; `fallback` when nothing is left.
pub fn clean_file_name(raw: &str, fallback: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect::<String>()
        .trim()
        .to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        fallback.to_owned()
    } else {
        cleaned
    }
}

/// Content types a raw upload may declare. `application/octet-stream` is accepted because many
/// clients send nothing more precise; the bytes are sniffed either way.
pub fn is_media_content_type(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence.starts_with("video/")
        || essence.starts_with("audio/")
        || matches!(
            essence.as_str(),
            "application/octet-stream"
                | "application/mp4"
                | "application/ogg"
                | "application/x-matroska"
        )
}

/// `type/subtype`, lower-cased, without parameters.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The mp3's download name: the original name with its extension replaced.
pub fn mp3_name(original: &str) -> String {
    let stem = match original.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => original,
    };
    format!("{stem}.mp3")
}

/// `Content-Disposition` for a download: an ASCII fallback plus the exact UTF-8 name (RFC 6266).
pub fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact =
        percent_encoding::utf8_percent_encode(file_name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(
            clean_file_name("C:\\Users\\ada\\talk.mkv", "upload"),
            "talk.mkv"
        );
        assert_eq!(clean_file_name("../../etc/passwd", "upload"), "passwd");
        assert_eq!(clean_file_name("a\u{0}b\r\n.mp4", "upload"), "ab.mp4");
        assert_eq!(clean_file_name("", "upload"), "upload");
        assert_eq!(clean_file_name("..", "upload"), "upload");
        assert_eq!(clean_file_name(&"x".repeat(300), "u").chars().count(), 255);
    }

    #[test]
    fn media_types() {
        assert!(is_media_content_type("video/mp4"));
        assert!(is_media_content_type("Audio/Ogg; codecs=opus"));
        assert!(is_media_content_type("application/octet-stream"));
        assert!(!is_media_content_type("application/json"));
        assert!(!is_media_content_type("text/plain"));
        assert!(!is_media_content_type("image/png"));
        assert!(!is_media_content_type(""));
    }

    #[test]
    fn download_names() {
        assert_eq!(mp3_name("talk.final.mkv"), "talk.final.mp3");
        assert_eq!(mp3_name("noext"), "noext.mp3");
        assert_eq!(mp3_name(".hidden"), ".hidden.mp3");
        assert_eq!(
            content_disposition("Été \"live\".mp3"),
            "attachment; filename=\"_t_ _live_.mp3\"; filename*=UTF-8''%C3%89t%C3%A9%20%22live%22%2Emp3"
        );
    }
}
