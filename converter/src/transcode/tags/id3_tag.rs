//! The ID3v2 tag's bytes, written with the `id3` crate.
//!
//! v2.4 by default; v2.3 for players that read nothing newer (`VID2MP3_ID3_VERSION`): its text is
//! UTF-16 instead of UTF-8 and its date is the year only (TYER; v2.3 has no full recording date).

use std::time::Duration;

use id3::frame::{Chapter, Comment, Picture, PictureType, TableOfContents};
use id3::{Encoder, Frame, Tag, TagLike, Timestamp, Version};

use super::chapters::{Mp3Chapter, plan};
use super::cover::Cover;
use super::{MAX_TAG_BYTES, MAX_TEXT_CHARS, SourceMetadata, TagSummary, clean_text};
use super::{TagOptions, title_from_file_name};

/// Which ID3v2 revision to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Id3Version {
    #[default]
    V24,
    V23,
}

impl std::fmt::Display for Id3Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Id3Version::V24 => "2.4",
            Id3Version::V23 => "2.3",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("the ID3 tag cannot be written: {0}")]
    Encode(#[from] id3::Error),
    #[error("the ID3 tag would be {0} bytes, over the limit of {MAX_TAG_BYTES}")]
    TooLarge(usize),
}

/// Everything but the cover, decided; the cover is added last because its room is what the
/// rest leaves under [`MAX_TAG_BYTES`].
#[derive(Debug, Clone)]
pub struct TagPlan {
    version: Id3Version,
    title: Option<String>,
    artist: Option<String>,
    album: Option<String>,
    date: Option<String>,
    comment: Option<String>,
    chapters: Vec<Mp3Chapter>,
    source_chapters: usize,
}

/// What an APIC frame adds around the picture bytes (header, encoding, MIME type, type,
/// description), with room to spare.
const PICTURE_FRAME_OVERHEAD: usize = 64;

impl TagPlan {
    pub fn new(source: &SourceMetadata, duration: Option<Duration>, opts: &TagOptions) -> TagPlan {
        let text = |t: &Option<String>| t.as_deref().and_then(|t| clean_text(t, MAX_TEXT_CHARS));
        TagPlan {
            version: opts.version,
            title: text(&source.title)
                .or_else(|| opts.file_name.as_deref().and_then(title_from_file_name)),
            artist: text(&source.artist),
            album: text(&source.album),
            date: text(&source.date),
            comment: text(&source.comment),
            chapters: plan(&source.chapters, duration),
            source_chapters: source.chapters.len(),
        }
    }

    /// The most bytes a cover may have so the whole tag stays under [`MAX_TAG_BYTES`].
    pub fn cover_budget(&self) -> Result<usize, TagError> {
        let without = self.encode(None)?.0.len();
        Ok(MAX_TAG_BYTES.saturating_sub(without + PICTURE_FRAME_OVERHEAD))
    }

    /// The tag's bytes with `cover` (if it still fits; otherwise without it).
    pub fn encode(&self, cover: Option<&Cover>) -> Result<(Vec<u8>, TagSummary), TagError> {
        let mut tag = Tag::new();
        if let Some(title) = &self.title {
            tag.set_title(title);
        }
        if let Some(artist) = &self.artist {
            tag.set_artist(artist);
        }
        if let Some(album) = &self.album {
            tag.set_album(album);
        }
        if let Some(date) = &self.date {
            match self.version {
                Id3Version::V24 => {
                    if let Some(ts) = timestamp(date) {
                        tag.set_date_recorded(ts);
                    }
                }
                Id3Version::V23 => {
                    if let Some(ts) = timestamp(date) {
                        tag.set_year(ts.year);
                    }
                }
            }
        }
        if let Some(comment) = &self.comment {
            tag.add_frame(Comment {
                lang: "und".to_owned(),
                description: String::new(),
                text: comment.clone(),
            });
        }
        if !self.chapters.is_empty() {
            let ids: Vec<String> = (0..self.chapters.len())
                .map(|i| format!("chp{i}"))
                .collect();
            for (chapter, id) in self.chapters.iter().zip(&ids) {
                tag.add_frame(Chapter {
                    element_id: id.clone(),
                    start_time: chapter.start_ms,
                    end_time: chapter.end_ms,
                    // No byte offsets: players use the times.
                    start_offset: u32::MAX,
                    end_offset: u32::MAX,
                    frames: vec![Frame::text("TIT2", chapter.title.clone())],
                });
            }
            tag.add_frame(TableOfContents {
                element_id: "toc".to_owned(),
                top_level: true,
                ordered: true,
                elements: ids,
                frames: Vec::new(),
            });
        }
        let mut summary = TagSummary {
            bytes: 0,
            title: self.title.clone(),
            chapters: self.chapters.len(),
            source_chapters: self.source_chapters,
            cover: None,
            cover_bytes: 0,
        };
        let version = match self.version {
            Id3Version::V24 => Version::Id3v24,
            Id3Version::V23 => Version::Id3v23,
        };
        let encode = |tag: &Tag| -> Result<Vec<u8>, TagError> {
            let mut bytes = Vec::new();
            Encoder::new().version(version).encode(tag, &mut bytes)?;
            Ok(bytes)
        };
        let without_cover = encode(&tag)?;
        if without_cover.len() > MAX_TAG_BYTES {
            // Cannot happen within the text and chapter bounds; checked so the sink's bound holds.
            return Err(TagError::TooLarge(without_cover.len()));
        }
        let mut bytes = without_cover;
        if let Some(cover) = cover {
            tag.add_frame(Picture {
                mime_type: cover.mime.to_owned(),
                picture_type: PictureType::CoverFront,
                description: String::new(),
                data: cover.data.clone(),
            });
            let with_cover = encode(&tag)?;
            if with_cover.len() <= MAX_TAG_BYTES {
                bytes = with_cover;
                summary.cover = Some(cover.source);
                summary.cover_bytes = cover.data.len();
            } else {
                tracing::warn!(
                    cover_bytes = cover.data.len(),
                    "the cover does not fit the tag; left out"
                );
            }
        }
        summary.bytes = bytes.len();
        Ok((bytes, summary))
    }
}

/// A source date as an ID3 timestamp: an ISO 8601 date or time, or at least a leading year.
fn timestamp(date: &str) -> Option<Timestamp> {
    if let Ok(ts) = date.parse::<Timestamp>() {
        return Some(ts);
    }
    let year: String = date.chars().take_while(char::is_ascii_digit).collect();
    (year.len() == 4)
        .then(|| year.parse().ok())
        .flatten()
        .map(|year| Timestamp {
            year,
            month: None,
            day: None,
            hour: None,
            minute: None,
            second: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::tags::{CoverSource, MAX_CHAPTERS, SourceChapter};

    fn source() -> SourceMetadata {
        SourceMetadata {
            title: Some("A talk".into()),
            artist: Some("Ada".into()),
            album: Some("Engines".into()),
            date: Some("2024-05-01".into()),
            comment: Some("live".into()),
            chapters: vec![
                SourceChapter {
                    start_ms: 0,
                    end_ms: None,
                    title: Some("Intro".into()),
                },
                SourceChapter {
                    start_ms: 1500,
                    end_ms: None,
                    title: Some("Ümlaut".into()),
                },
            ],
            picture: None,
            video: false,
        }
    }

    fn read_back(bytes: &[u8]) -> Tag {
        Tag::read_from2(std::io::Cursor::new(bytes)).expect("the tag reads back")
    }

    #[test]
    fn every_field_reads_back_in_both_versions() {
        for version in [Id3Version::V24, Id3Version::V23] {
            let opts = TagOptions {
                version,
                ..TagOptions::default()
            };
            let plan = TagPlan::new(&source(), Some(Duration::from_secs(3)), &opts);
            let cover = Cover {
                mime: "image/jpeg",
                data: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3],
                source: CoverSource::Frame,
            };
            let (bytes, summary) = plan.encode(Some(&cover)).unwrap();
            assert_eq!(summary.bytes, bytes.len());
            assert_eq!(summary.cover, Some(CoverSource::Frame));
            let tag = read_back(&bytes);
            assert_eq!(
                tag.version(),
                if version == Id3Version::V24 {
                    Version::Id3v24
                } else {
                    Version::Id3v23
                }
            );
            assert_eq!(tag.title(), Some("A talk"));
            assert_eq!(tag.artist(), Some("Ada"));
            assert_eq!(tag.album(), Some("Engines"));
            assert_eq!(tag.comments().next().map(|c| c.text.as_str()), Some("live"));
            assert_eq!(tag.pictures().next().map(|p| p.data.len()), Some(7));
            let chapters: Vec<&Chapter> = tag.chapters().collect();
            assert_eq!(chapters.len(), 2);
            assert_eq!((chapters[1].start_time, chapters[1].end_time), (1500, 3000));
            assert_eq!(
                tag.tables_of_contents().next().map(|t| t.elements.len()),
                Some(2)
            );
            match version {
                Id3Version::V24 => assert_eq!(tag.date_recorded().map(|d| d.month), Some(Some(5))),
                Id3Version::V23 => assert_eq!(tag.year(), Some(2024)),
            }
        }
    }

    #[test]
    fn the_file_name_is_the_title_when_the_source_has_none() {
        let opts = TagOptions::new(Some("Lecture 3.mp4".into()));
        let plan = TagPlan::new(&SourceMetadata::default(), None, &opts);
        let (bytes, _) = plan.encode(None).unwrap();
        assert_eq!(read_back(&bytes).title(), Some("Lecture 3"));
    }

    #[test]
    fn the_largest_tag_the_bounds_allow_still_fits_with_a_cover_of_its_budget() {
        let long = "𝄞".repeat(5000);
        let source = SourceMetadata {
            title: Some(long.clone()),
            artist: Some(long.clone()),
            album: Some(long.clone()),
            date: Some(long.clone()),
            comment: Some(long.clone()),
            chapters: (0..1000)
                .map(|i| SourceChapter {
                    start_ms: i * 10,
                    end_ms: None,
                    title: Some(long.clone()),
                })
                .collect(),
            picture: None,
            video: true,
        };
        for version in [Id3Version::V24, Id3Version::V23] {
            let opts = TagOptions {
                version,
                ..TagOptions::default()
            };
            let plan = TagPlan::new(&source, None, &opts);
            let budget = plan.cover_budget().unwrap();
            assert!(budget >= 64 * 1024, "{version}: room for a cover: {budget}");
            let cover = Cover {
                mime: "image/jpeg",
                data: vec![7; budget],
                source: CoverSource::Attached,
            };
            let (bytes, summary) = plan.encode(Some(&cover)).unwrap();
            assert!(bytes.len() <= MAX_TAG_BYTES, "{version}: {}", bytes.len());
            assert_eq!(summary.chapters, MAX_CHAPTERS);
            assert_eq!(summary.cover, Some(CoverSource::Attached));
            assert_eq!(read_back(&bytes).chapters().count(), MAX_CHAPTERS);
        }
    }

    #[test]
    fn a_cover_over_the_budget_is_left_out_not_an_error() {
        let plan = TagPlan::new(&source(), None, &TagOptions::default());
        let cover = Cover {
            mime: "image/png",
            data: vec![0; MAX_TAG_BYTES],
            source: CoverSource::Attached,
        };
        let (bytes, summary) = plan.encode(Some(&cover)).unwrap();
        assert_eq!(summary.cover, None);
        assert!(bytes.len() < 4096);
    }

    #[test]
    fn dates_become_timestamps_or_at_least_years() {
        assert_eq!(
            timestamp("2024-05-01").map(|t| (t.year, t.month)),
            Some((2024, Some(5)))
        );
        assert_eq!(timestamp("2019").map(|t| t.year), Some(2019));
        assert_eq!(timestamp("2019 (live)").map(|t| t.year), Some(2019));
        assert_eq!(timestamp("yesterday"), None);
    }
}
