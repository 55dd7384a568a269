//! The fast path's view of a source: symphonia's metadata revisions (MP4 `ilst`, Matroska tags,
//! Vorbis comments, ID3 in an mp3), its visuals and Matroska attachments, its chapters, and
//! whether it has a video track.

use symphonia::core::codecs::CodecParameters;
use symphonia::core::formats::{Attachment, FileAttachment, FormatReader};
use symphonia::core::meta::{
    ChapterGroup, ChapterGroupItem, MetadataRevision, StandardTag, StandardVisualKey, Tag, Visual,
};

use super::{MAX_SOURCE_CHAPTERS, SourceChapter, SourceMetadata, SourcePicture};

/// Reads what the opened `reader` knows. The log's revisions are taken in order and the first
/// value of each field wins (an mp3's ID3v2 before its ID3v1).
pub fn read(reader: &mut dyn FormatReader) -> SourceMetadata {
    let mut found = SourceMetadata {
        video: reader
            .tracks()
            .iter()
            .any(|t| matches!(t.codec_params, Some(CodecParameters::Video(_)))),
        ..SourceMetadata::default()
    };
    if let Some(group) = reader.chapters() {
        collect_chapters(group, &mut found.chapters);
    }
    let images: Vec<&FileAttachment> = reader
        .attachments()
        .iter()
        .filter_map(|a| match a {
            Attachment::File(f)
                if f.media_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("image/")) =>
            {
                Some(f)
            }
            _ => None,
        })
        .collect();
    // Matroska's convention names the front cover cover.jpg or cover.png; any image beats none.
    let chosen = images
        .iter()
        .find(|f| f.name.to_ascii_lowercase().starts_with("cover"))
        .or(images.first());
    if let Some(file) = chosen {
        found.picture = Some(SourcePicture::Bytes(file.data.to_vec()));
    }
    let mut log = reader.metadata();
    let mut revisions = Vec::new();
    while let Some(revision) = log.pop() {
        revisions.push(revision);
    }
    if let Some(last) = log.current() {
        revisions.push(last.clone());
    }
    for revision in &revisions {
        found.fill_from(from_revision(revision));
    }
    found
}

fn from_revision(revision: &MetadataRevision) -> SourceMetadata {
    let tags: Vec<&Tag> = revision
        .media
        .tags
        .iter()
        .chain(revision.per_track.iter().flat_map(|t| &t.metadata.tags))
        .collect();
    let first = |pick: &dyn Fn(&StandardTag) -> Option<String>| {
        tags.iter().find_map(|t| t.std.as_ref().and_then(pick))
    };
    let visuals: Vec<&Visual> = revision
        .media
        .visuals
        .iter()
        .chain(revision.per_track.iter().flat_map(|t| &t.metadata.visuals))
        .collect();
    let picture = visuals
        .iter()
        .find(|v| v.usage == Some(StandardVisualKey::FrontCover))
        .or(visuals.first())
        .map(|v| SourcePicture::Bytes(v.data.to_vec()));
    SourceMetadata {
        title: first(&|t| match t {
            StandardTag::TrackTitle(s) | StandardTag::MovieTitle(s) => Some(s.to_string()),
            _ => None,
        }),
        artist: first(&|t| match t {
            StandardTag::Artist(s) => Some(s.to_string()),
            _ => None,
        })
        .or_else(|| {
            first(&|t| match t {
                StandardTag::AlbumArtist(s) => Some(s.to_string()),
                _ => None,
            })
        }),
        album: first(&|t| match t {
            StandardTag::Album(s) => Some(s.to_string()),
            _ => None,
        }),
        date: first(&|t| match t {
            StandardTag::RecordingDate(s)
            | StandardTag::ReleaseDate(s)
            | StandardTag::OriginalReleaseDate(s) => Some(s.to_string()),
            StandardTag::RecordingYear(y) | StandardTag::ReleaseYear(y) => Some(y.to_string()),
            _ => None,
        }),
        comment: first(&|t| match t {
            StandardTag::Comment(s) | StandardTag::Description(s) => Some(s.to_string()),
            _ => None,
        }),
        chapters: Vec::new(),
        picture,
        video: false,
    }
}

/// The chapters of the first edition (Matroska nests chapters in editions), flattened in order,
/// at most [`MAX_SOURCE_CHAPTERS`].
fn collect_chapters(group: &ChapterGroup, out: &mut Vec<SourceChapter>) {
    // A group of groups is a list of editions: the first is the default one.
    if group
        .items
        .iter()
        .all(|i| matches!(i, ChapterGroupItem::Group(_)))
    {
        if let Some(ChapterGroupItem::Group(first)) = group.items.first() {
            collect_chapters(first, out);
        }
        return;
    }
    for item in &group.items {
        if out.len() >= MAX_SOURCE_CHAPTERS {
            return;
        }
        match item {
            ChapterGroupItem::Chapter(c) => {
                let ms = |t: symphonia::core::units::Time| {
                    u64::try_from(t.as_millis().max(0)).unwrap_or(u64::MAX)
                };
                out.push(SourceChapter {
                    start_ms: ms(c.start_time),
                    end_ms: c.end_time.map(ms),
                    title: c.tags.iter().find_map(|t| match &t.std {
                        Some(StandardTag::ChapterTitle(s)) => Some(s.to_string()),
                        _ => None,
                    }),
                });
            }
            // Sub-chapters inside a chapter: their own entries, in order.
            ChapterGroupItem::Group(g) => collect_chapters(g, out),
        }
    }
}
