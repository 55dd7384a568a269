//! The ID3v2 tag at the head of the mp3: title, artist, album, date and comment carried over
//! from the source, a front cover, and the source's chapters as CHAP/CTOC frames.
//!
//! Each decoder path reads the source's metadata from what it already sees, one source of truth
//! per path: the fast path from symphonia (plus the MP4 chapter boxes and the Matroska segment
//! title, which symphonia 0.6 does not surface: [`mp4_chapters`], [`mkv_title`]); the ffmpeg path
//! from ffprobe's JSON (`from_ffprobe`). Both fill a [`SourceMetadata`]; [`TagPlan`] turns it
//! into the tag.
//!
//! The tag is written before the first audio byte, so its size is fixed before encoding starts
//! and everything in it is bounded: text fields and chapter titles in characters, chapters in
//! number ([`MAX_CHAPTERS`], the most one CTOC frame can list), the cover in bytes. The whole tag
//! stays under [`MAX_TAG_BYTES`], which with the Xing frame after it fits the first GridFS chunk
//! the mp3 sink holds back.

pub mod chapters;
pub mod cover;
pub mod from_ffprobe;
pub mod from_symphonia;
pub mod id3_tag;
pub mod mkv_title;
pub mod mp4_chapters;

use std::fmt;
use std::str::FromStr;

pub use self::chapters::Mp3Chapter;
pub use self::cover::{Cover, CoverSource};
pub use self::id3_tag::{Id3Version, TagError, TagPlan};

/// The tag, the Xing frame and the first audio frames share the first GridFS chunk (255 KiB),
/// which the sink keeps in memory until the Xing frame is final.
pub const MAX_TAG_BYTES: usize = 240 * 1024;
/// A text field (title, artist, album, date, comment) keeps at most this many characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// A chapter title keeps at most this many characters.
pub const MAX_CHAPTER_TITLE_CHARS: usize = 100;
/// One CTOC frame lists at most 255 entries (its count is one byte), and players expect one
/// flat table of contents; a source with more chapters is thinned evenly to this many.
pub const MAX_CHAPTERS: usize = 255;
/// Chapters read from a source at most: the rest are ignored, so a crafted file with millions
/// cannot hold memory or time.
pub const MAX_SOURCE_CHAPTERS: usize = 10_000;

/// What the source says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMetadata {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub date: Option<String>,
    pub comment: Option<String>,
    /// In the source's order, at most [`MAX_SOURCE_CHAPTERS`].
    pub chapters: Vec<SourceChapter>,
    pub picture: Option<SourcePicture>,
    /// The source has a real video stream (not only an attached picture) to take a frame from.
    pub video: bool,
}

impl SourceMetadata {
    /// Keeps the first value of each field: `other` only fills what is still missing.
    pub fn fill_from(&mut self, other: SourceMetadata) {
        fn fill(mine: &mut Option<String>, theirs: Option<String>) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
        fill(&mut self.title, other.title);
        fill(&mut self.artist, other.artist);
        fill(&mut self.album, other.album);
        fill(&mut self.date, other.date);
        fill(&mut self.comment, other.comment);
        if self.chapters.is_empty() {
            self.chapters = other.chapters;
        }
        if self.picture.is_none() {
            self.picture = other.picture;
        }
        self.video |= other.video;
    }

    /// Whether a cover will be taken from a video frame (which needs the source as a file).
    pub fn wants_frame_cover(&self, opts: &TagOptions) -> bool {
        opts.frame_cover && self.picture.is_none() && self.video
    }
}

/// One chapter as the source states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChapter {
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    pub title: Option<String>,
}

/// An attached picture (MP4 `covr`, a Matroska image attachment, an APIC in an mp3 source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePicture {
    /// Bytes the demuxer read (fast path).
    Bytes(Vec<u8>),
    /// A stream of the source that ffmpeg extracts (ffmpeg path), by its index.
    Stream(usize),
}

/// How the mp3 is tagged.
#[derive(Debug, Clone, Default)]
pub struct TagOptions {
    pub version: Id3Version,
    /// Take a cover from a video frame when the source has no picture. For a source that is not
    /// a local file (GridFS) this spools the video to a temporary file first.
    pub frame_cover: bool,
    /// The upload's file name: the title when the source has none (without its extension).
    pub file_name: Option<String>,
}

impl TagOptions {
    pub fn new(file_name: Option<String>) -> TagOptions {
        TagOptions {
            version: Id3Version::default(),
            frame_cover: true,
            file_name,
        }
    }
}

/// What went into the tag, for the report and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSummary {
    pub bytes: usize,
    pub title: Option<String>,
    pub chapters: usize,
    /// Chapters the source has (as read); more than `chapters` when thinned.
    pub source_chapters: usize,
    pub cover: Option<CoverSource>,
    pub cover_bytes: usize,
}

impl fmt::Display for TagSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ID3 {} bytes", self.bytes)?;
        if let Some(title) = &self.title {
            write!(f, ", title {title:?}")?;
        }
        if self.source_chapters > 0 {
            write!(f, ", {} chapters", self.chapters)?;
            if self.source_chapters != self.chapters {
                write!(f, " (of {})", self.source_chapters)?;
            }
        }
        match self.cover {
            Some(source) => write!(f, ", cover {source} ({} bytes)", self.cover_bytes),
            None => write!(f, ", no cover"),
        }
    }
}

/// Trims, drops control characters (a NUL separates values in ID3 text frames) and keeps at most
/// `max_chars` characters; `None` when nothing is left.
pub fn clean_text(text: &str, max_chars: usize) -> Option<String> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect();
    let cleaned = cleaned.trim_end();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// The file name without its directory and extension, as a title.
pub fn title_from_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => base,
    };
    clean_text(stem, MAX_TEXT_CHARS)
}

impl FromStr for Id3Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_start_matches(['v', 'V']) {
            "2.4" | "2.4.0" | "24" => Ok(Id3Version::V24),
            "2.3" | "2.3.0" | "23" => Ok(Id3Version::V23),
            other => Err(format!(
                "'{other}' is not an ID3 version we write; use 2.4 (the default) or 2.3"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_free_of_separators() {
        assert_eq!(
            clean_text("  Talk \0 one\n", 100).as_deref(),
            Some("Talk  one")
        );
        assert_eq!(clean_text(" \t ", 100), None);
        assert_eq!(clean_text("ümläut", 3).as_deref(), Some("üml"));
        assert_eq!(
            clean_text(&"x".repeat(10_000), MAX_TEXT_CHARS).map(|t| t.len()),
            Some(256)
        );
    }

    #[test]
    fn a_title_from_a_file_name_drops_the_extension_and_path() {
        assert_eq!(
            title_from_file_name("lecture 3.final.mp4").as_deref(),
            Some("lecture 3.final")
        );
        assert_eq!(
            title_from_file_name("/tmp/x/talk.mkv").as_deref(),
            Some("talk")
        );
        assert_eq!(title_from_file_name(".hidden").as_deref(), Some(".hidden"));
        assert_eq!(title_from_file_name("noext").as_deref(), Some("noext"));
        assert_eq!(title_from_file_name(""), None);
    }

    #[test]
    fn id3_versions_parse() {
        assert_eq!("2.4".parse(), Ok(Id3Version::V24));
        assert_eq!("v2.3".parse(), Ok(Id3Version::V23));
        assert!("2.2".parse::<Id3Version>().is_err());
    }

    #[test]
    fn the_first_source_of_a_field_wins() {
        let mut a = SourceMetadata {
            title: Some("from the container".into()),
            ..SourceMetadata::default()
        };
        a.fill_from(SourceMetadata {
            title: Some("from an embedded tag".into()),
            artist: Some("Ada".into()),
            video: true,
            ..SourceMetadata::default()
        });
        assert_eq!(a.title.as_deref(), Some("from the container"));
        assert_eq!(a.artist.as_deref(), Some("Ada"));
        assert!(a.video);
    }
}
