//! Container detection from the first bytes of an upload.
//!
//! The fast path only ever sees containers named here as whitelisted, so a symphonia reader is
//! never handed something it would mis-probe (it takes AVI for MP3, for instance). ffmpeg only
//! ever opens a file with the demuxers of the container named here ([`Container::demuxers`]);
//! what matches no container is refused before any decoder sees it. That keeps ffmpeg's
//! playlist and script demuxers (HLS, ffconcat, image sequences...), which open other files by
//! name, out of reach. Every container the gateway's sniff admits is named here.

/// How many leading bytes `sniff` looks at.
pub const SNIFF_LEN: usize = 512;

/// A container family recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO base media: MP4, M4A, MOV, 3GP, fragmented MP4.
    IsoMp4,
    /// Matroska and WebM.
    Matroska,
    Ogg,
    Wav,
    Flac,
    /// An MPEG audio elementary stream (usually MP3), possibly behind an ID3v2 tag.
    MpegAudio,
    Avi,
    Flv,
    MpegTs,
    MpegPs,
    /// ASF: WMA and WMV.
    Asf,
    /// AAC in ADTS framing.
    Adts,
    /// AIFF and AIFF-C.
    Aiff,
    /// Apple's Core Audio Format.
    Caf,
    /// AMR speech (the `#!AMR` storage format).
    Amr,
    RealMedia,
    /// AC-3 and E-AC-3 elementary streams.
    Ac3,
    /// An MPEG-1/2 video elementary stream (never has audio; ffmpeg says so).
    MpegVideo,
    /// A still image or document: never has audio, no decoder is asked.
    NotMedia(&'static str),
    /// Nothing at all.
    Empty,
    /// No container we read: refused like [`Container::NotMedia`], no decoder is asked.
    Unknown,
}

impl Container {
    /// Whether symphonia may try this container (the codec is checked again once it is known).
    pub fn has_fast_path(self) -> bool {
        matches!(
            self,
            Container::IsoMp4
                | Container::Matroska
                | Container::Ogg
                | Container::Wav
                | Container::Flac
                | Container::MpegAudio
        )
    }

    /// The ffmpeg demuxers that may open this container (`-format_whitelist`); `None` for what
    /// is not media. ffmpeg probes as usual and refuses a file whose probe picks any other.
    pub fn demuxers(self) -> Option<&'static str> {
        Some(match self {
            // The demuxers' own names are lists ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm");
            // ffmpeg matches any one element.
            Container::IsoMp4 => "mov",
            Container::Matroska => "matroska",
            Container::Ogg => "ogg",
            Container::Wav => "wav",
            Container::Flac => "flac",
            // An ID3v2 tag may front ADTS AAC or FLAC as well, and may be longer than the
            // sniffed head, so what follows it is not known here.
            Container::MpegAudio => "mp3,aac,flac",
            Container::Avi => "avi",
            Container::Flv => "flv,live_flv",
            Container::MpegTs => "mpegts",
            Container::MpegPs => "mpeg",
            Container::Asf => "asf,asf_o",
            Container::Adts => "aac",
            Container::Aiff => "aiff",
            Container::Caf => "caf",
            Container::Amr => "amr",
            Container::RealMedia => "rm",
            Container::Ac3 => "ac3,eac3",
            Container::MpegVideo => "mpegvideo",
            Container::NotMedia(_) | Container::Empty | Container::Unknown => return None,
        })
    }

    /// A file-name extension symphonia's probe takes as a hint.
    pub fn extension(self) -> Option<&'static str> {
        Some(match self {
            Container::IsoMp4 => "mp4",
            Container::Matroska => "mkv",
            Container::Ogg => "ogg",
            Container::Wav => "wav",
            Container::Flac => "flac",
            Container::MpegAudio => "mp3",
            _ => return None,
        })
    }
}

/// Names the container family of an upload from its first bytes (up to [`SNIFF_LEN`]).
pub fn sniff(head: &[u8]) -> Container {
    if head.is_empty() {
        return Container::Empty;
    }
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);

    if at(4, b"ftyp") || (is_iso_box(head) && !at(0, b"RIFF")) {
        return Container::IsoMp4;
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Container::Matroska;
    }
    if at(0, b"OggS") {
        return Container::Ogg;
    }
    if at(0, b"RIFF") || at(0, b"RF64") {
        if at(8, b"WAVE") {
            return Container::Wav;
        }
        if at(8, b"AVI ") {
            return Container::Avi;
        }
        return Container::Unknown;
    }
    if at(0, b"fLaC") {
        return Container::Flac;
    }
    if at(0, b"FLV") {
        return Container::Flv;
    }
    if at(
        0,
        &[
            0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62,
            0xCE, 0x6C,
        ],
    ) {
        return Container::Asf;
    }
    if at(0, &[0x00, 0x00, 0x01, 0xBA]) {
        return Container::MpegPs;
    }
    if at(0, &[0x00, 0x00, 0x01, 0xB3]) {
        return Container::MpegVideo;
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Container::Aiff;
    }
    if at(0, b"caff") {
        return Container::Caf;
    }
    if at(0, b"#!AMR") {
        return Container::Amr;
    }
    if at(0, b".RMF") {
        return Container::RealMedia;
    }
    if at(0, &[0x0B, 0x77]) {
        return Container::Ac3;
    }
    // One sync byte is weak evidence (text may start with 'G'); two packets 188 bytes apart are not.
    if head.len() > 188 && head[0] == 0x47 && head[188] == 0x47 {
        return Container::MpegTs;
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Container::NotMedia("a PNG image");
    }
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Container::NotMedia("a JPEG image");
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Container::NotMedia("a GIF image");
    }
    if at(0, b"%PDF-") {
        return Container::NotMedia("a PDF document");
    }
    if at(0, b"PK\x03\x04") {
        return Container::NotMedia("a ZIP archive");
    }
    if at(0, b"ID3") {
        return Container::MpegAudio;
    }
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 {
        let layer = (head[1] >> 1) & 0b11;
        let version = (head[1] >> 3) & 0b11;
        if layer == 0 && (version == 0b10 || version == 0b11) && head[1] & 0x10 != 0 {
            return Container::Adts;
        }
        if layer != 0 && version != 0b01 {
            return Container::MpegAudio;
        }
    }
    Container::Unknown
}

/// QuickTime files may start with a box other than `ftyp` (`wide`, `mdat`, `moov`, `free`).
fn is_iso_box(head: &[u8]) -> bool {
    const LEADING_BOXES: [&[u8; 4]; 6] = [b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"];
    let Some(kind) = head.get(4..8) else {
        return false;
    };
    LEADING_BOXES.iter().any(|b| kind == b.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(prefix: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.resize(SNIFF_LEN, 0);
        v
    }

    #[test]
    fn recognises_whitelisted_containers() {
        assert_eq!(
            sniff(&padded(b"\0\0\0\x20ftypisom\0\0\x02\0")),
            Container::IsoMp4
        );
        assert_eq!(sniff(&padded(b"\0\0\0\x08wide\0\0")), Container::IsoMp4);
        assert_eq!(
            sniff(&padded(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F])),
            Container::Matroska
        );
        assert_eq!(sniff(&padded(b"OggS\0\x02")), Container::Ogg);
        assert_eq!(sniff(&padded(b"RIFF\x24\0\0\0WAVEfmt ")), Container::Wav);
        assert_eq!(sniff(&padded(b"fLaC\0\0\0\x22")), Container::Flac);
        assert_eq!(sniff(&padded(b"ID3\x04\0")), Container::MpegAudio);
        assert_eq!(
            sniff(&padded(&[0xFF, 0xFB, 0x90, 0x64])),
            Container::MpegAudio
        );
        for c in [
            Container::IsoMp4,
            Container::Matroska,
            Container::Ogg,
            Container::Wav,
            Container::Flac,
            Container::MpegAudio,
        ] {
            assert!(c.has_fast_path(), "{c:?}");
        }
    }

    #[test]
    fn keeps_fallback_containers_off_the_fast_path() {
        let avi = sniff(&padded(b"RIFF\x24\0\0\0AVI LIST"));
        assert_eq!(avi, Container::Avi);
        assert!(!avi.has_fast_path());
        assert_eq!(sniff(&padded(b"FLV\x01\x05")), Container::Flv);
        assert_eq!(sniff(&padded(&[0xFF, 0xF1, 0x50, 0x80])), Container::Adts);
        assert_eq!(sniff(&padded(&[0, 0, 1, 0xBA, 0x44])), Container::MpegPs);
        let asf = [
            0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62,
            0xCE, 0x6C,
        ];
        assert_eq!(sniff(&padded(&asf)), Container::Asf);
        let mut ts = vec![0u8; 400];
        ts[0] = 0x47;
        ts[1] = 0x40;
        ts[188] = 0x47;
        assert_eq!(sniff(&ts), Container::MpegTs);
        for c in [
            Container::Avi,
            Container::Flv,
            Container::Adts,
            Container::Asf,
        ] {
            assert!(!c.has_fast_path(), "{c:?}");
        }
    }

    #[test]
    fn recognises_what_is_not_media() {
        assert_eq!(sniff(b""), Container::Empty);
        assert!(matches!(
            sniff(&padded(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR")),
            Container::NotMedia(_)
        ));
        assert!(matches!(
            sniff(&padded(b"%PDF-1.7")),
            Container::NotMedia(_)
        ));
        assert_eq!(sniff(b"hello, this is text\n"), Container::Unknown);
        for c in [
            Container::NotMedia("x"),
            Container::Empty,
            Container::Unknown,
        ] {
            assert_eq!(c.demuxers(), None, "{c:?}");
        }
    }

    /// Playlists and scripts that make ffmpeg open other files by name are no container of ours.
    #[test]
    fn playlists_and_scripts_are_not_media() {
        for text in [
            &b"#EXTM3U\n#EXTINF:1,\n/etc/passwd\n"[..],
            b"ffconcat version 1.0\nfile secret.wav\n",
            b"[playlist]\nFile1=/tmp/x.wav\n",
            b"<?xml version=\"1.0\"?><MPD",
            b"v=0\no=- 0 0 IN IP4 127.0.0.1\n",
        ] {
            assert_eq!(
                sniff(text),
                Container::Unknown,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn containers_the_gateway_admits_have_their_own_demuxer() {
        let cases: [(&[u8], Container, &str); 7] = [
            (b"FORM\0\0\0\x20AIFFCOMM", Container::Aiff, "aiff"),
            (b"FORM\0\0\0\x20AIFCFVER", Container::Aiff, "aiff"),
            (b"caff\0\x01\0\0desc", Container::Caf, "caf"),
            (b"#!AMR\n\x3c", Container::Amr, "amr"),
            (b".RMF\0\0\0\x12", Container::RealMedia, "rm"),
            (&[0x0B, 0x77, 0x3D, 0x8F], Container::Ac3, "ac3,eac3"),
            (&[0, 0, 1, 0xB3, 0x0A], Container::MpegVideo, "mpegvideo"),
        ];
        for (head, container, demuxers) in cases {
            assert_eq!(sniff(&padded(head)), container);
            assert_eq!(container.demuxers(), Some(demuxers));
            assert!(!container.has_fast_path());
        }
        assert_eq!(sniff(&padded(b"FLV\x02\x05")), Container::Flv);
    }
}
