//! Is this the start of a media file? Decided from the first bytes, before anything is stored.
//!
//! Wider than the converter's fast path on purpose: everything its ffmpeg fallback can read
//! passes. What fails here is what no decoder would take (images, documents, archives, text),
//! so those uploads get a 415 at once instead of a failure email later.

/// How many leading bytes [`container`] wants to see (fewer only when the body is shorter).
pub const SNIFF_BYTES: usize = 512;

/// The container the first bytes announce, or `None` when they are not media.
pub fn container(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(4, b"ftyp")
        || at(4, b"moov")
        || at(4, b"mdat")
        || at(4, b"wide")
        || at(4, b"free")
        || at(4, b"skip")
    {
        return Some("mp4/mov");
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("matroska/webm");
    }
    if at(0, b"RIFF") && (at(8, b"AVI ") || at(8, b"WAVE")) {
        return Some("riff (avi/wav)");
    }
    if at(0, b"FLV") {
        return Some("flv");
    }
    if at(0, b"OggS") {
        return Some("ogg");
    }
    if at(0, b"fLaC") {
        return Some("flac");
    }
    if at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        return Some("asf (wmv/wma)");
    }
    if at(0, &[0x00, 0x00, 0x01, 0xBA]) || at(0, &[0x00, 0x00, 0x01, 0xB3]) {
        return Some("mpeg-ps");
    }
    if head.first() == Some(&0x47) && (head.len() < 189 || head.get(188) == Some(&0x47)) {
        return Some("mpeg-ts");
    }
    if at(0, b".RMF") {
        return Some("realmedia");
    }
    if at(0, b"ID3") {
        return Some("mp3 (id3)");
    }
    if at(0, b"#!AMR") {
        return Some("amr");
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Some("aiff");
    }
    if at(0, b"caff") {
        return Some("caf");
    }
    match head {
        // AC-3 / E-AC-3 sync word.
        [0x0B, 0x77, ..] => Some("ac-3"),
        // An MPEG audio frame (MP3/MP2) or ADTS AAC: 11 sync bits, then a valid layer/version.
        [0xFF, b, ..] if b & 0xE0 == 0xE0 && b & 0x18 != 0x08 => Some("mpeg audio / adts"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_media(head: &[u8]) -> bool {
        container(head).is_some()
    }

    #[test]
    fn media_containers_pass() {
        let mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41";
        assert_eq!(container(mp4), Some("mp4/mov"));
        assert!(is_media(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]));
        assert!(is_media(b"RIFF\x24\0\0\0AVI LIST"));
        assert!(is_media(b"RIFF\x24\0\0\0WAVEfmt "));
        assert!(is_media(b"OggS\0\x02"));
        assert!(is_media(b"ID3\x04\0\0"));
        assert!(is_media(&[0xFF, 0xFB, 0x90, 0x64]));
        assert!(is_media(&[0xFF, 0xF1, 0x50, 0x80])); // ADTS
        assert!(is_media(b"FLV\x01\x05"));
        let mut ts = vec![0u8; 376];
        ts[0] = 0x47;
        ts[188] = 0x47;
        assert!(is_media(&ts));
    }

    #[test]
    fn non_media_is_refused() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(!is_media(png));
        assert!(!is_media(b"%PDF-1.7\n"));
        assert!(!is_media(b"PK\x03\x04zip"));
        assert!(!is_media(b"hello, this is a text file\n"));
        assert!(!is_media(b"<html>"));
        assert!(!is_media(b""));
        assert!(!is_media(b"RIFF\x24\0\0\0WEBPVP8 ")); // a WebP image is RIFF too
        // Playlists and scripts that would make ffmpeg open other files by name.
        assert!(!is_media(b"#EXTM3U\n#EXTINF:1,\n/var/lib/secret.ts\n"));
        assert!(!is_media(b"ffconcat version 1.0\nfile secret.wav\n"));
        let mut not_ts = vec![0u8; 376];
        not_ts[0] = 0x47; // 'G', as in "GIF89a" — but no second sync byte
        not_ts[1..6].copy_from_slice(b"IF89a");
        assert!(!is_media(&not_ts));
    }
}
