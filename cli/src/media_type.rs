//! The Content-Type an upload is sent with, guessed from the file name.

/// A media type the gateway takes for a raw upload (it checks the same list). Anything else —
/// `text/plain` for a `.txt`, or no guess at all — is sent as `application/octet-stream`, so
/// the gateway judges the bytes themselves and answers with what they are not ("not a video or
/// audio file") instead of a complaint about the header.
pub fn for_upload(path: &std::path::Path) -> String {
    mime_guess::from_path(path)
        .iter_raw()
        .find(|t| is_accepted_media_type(t))
        .unwrap_or("application/octet-stream")
        .to_owned()
}

fn is_accepted_media_type(essence: &str) -> bool {
    essence.starts_with("video/")
        || essence.starts_with("audio/")
        || matches!(
            essence,
            "application/mp4" | "application/ogg" | "application/x-matroska"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn media_files_get_their_type() {
        assert_eq!(for_upload(Path::new("clip.mp4")), "video/mp4");
        assert_eq!(for_upload(Path::new("dir/Clip.MKV")), "video/x-matroska");
        assert_eq!(for_upload(Path::new("talk.webm")), "video/webm");
        assert!(for_upload(Path::new("song.m4a")).starts_with("audio/"));
        assert_eq!(
            for_upload(Path::new("a.wav")).split('/').next(),
            Some("audio")
        );
    }

    #[test]
    fn everything_else_is_octet_stream() {
        assert_eq!(
            for_upload(Path::new("notes.txt")),
            "application/octet-stream"
        );
        assert_eq!(
            for_upload(Path::new("no_extension")),
            "application/octet-stream"
        );
        assert_eq!(
            for_upload(Path::new("photo.png")),
            "application/octet-stream"
        );
    }
}
