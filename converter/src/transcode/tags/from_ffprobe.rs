//! The ffmpeg path's view of a source: ffprobe's JSON (`-show_format -show_streams
//! -show_chapters`), read once for the audio format, the metadata, the chapters and the pictures.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{MAX_SOURCE_CHAPTERS, SourceChapter, SourceMetadata, SourcePicture};

#[derive(Debug, Deserialize)]
pub struct ProbeJson {
    #[serde(default)]
    pub streams: Vec<ProbeStream>,
    #[serde(default)]
    pub chapters: Vec<ProbeChapter>,
    #[serde(default)]
    pub format: Option<ProbeFormat>,
}

#[derive(Debug, Deserialize)]
pub struct ProbeStream {
    pub index: usize,
    #[serde(default)]
    pub codec_type: Option<String>,
    #[serde(default)]
    pub sample_rate: Option<String>,
    #[serde(default)]
    pub channels: Option<u32>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub disposition: BTreeMap<String, i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ProbeStream {
    fn is(&self, kind: &str) -> bool {
        self.codec_type.as_deref() == Some(kind)
    }

    fn attached_picture(&self) -> bool {
        self.disposition
            .get("attached_pic")
            .is_some_and(|&v| v != 0)
    }
}

#[derive(Debug, Deserialize)]
pub struct ProbeChapter {
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct ProbeFormat {
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Seconds as ffprobe prints them; anything a `Duration` cannot hold counts as not stated.
pub fn seconds(text: &str) -> Option<Duration> {
    let secs = text.trim().parse::<f64>().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// A tag by name, whatever its case (Matroska's are upper case, MP4's lower).
fn tag<'a>(tags: &'a BTreeMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    })
}

impl ProbeJson {
    /// The first audio stream: what `-map 0:a:0` decodes.
    pub fn first_audio(&self) -> Option<&ProbeStream> {
        self.streams.iter().find(|s| s.is("audio"))
    }

    pub fn metadata(&self) -> SourceMetadata {
        let empty = BTreeMap::new();
        let format_tags = self.format.as_ref().map_or(&empty, |f| &f.tags);
        // An mp3 or Ogg source keeps its tags on the audio stream, not the container.
        let audio_tags = self.first_audio().map_or(&empty, |s| &s.tags);
        let field = |names: &[&str]| {
            tag(format_tags, names)
                .or_else(|| tag(audio_tags, names))
                .map(str::to_owned)
        };
        let chapters = self
            .chapters
            .iter()
            .take(MAX_SOURCE_CHAPTERS)
            .filter_map(|c| {
                let start = c.start_time.as_deref().and_then(seconds)?;
                Some(SourceChapter {
                    start_ms: u64::try_from(start.as_millis()).unwrap_or(u64::MAX),
                    end_ms: c
                        .end_time
                        .as_deref()
                        .and_then(seconds)
                        .map(|e| u64::try_from(e.as_millis()).unwrap_or(u64::MAX)),
                    title: tag(&c.tags, &["title"]).map(str::to_owned),
                })
            })
            .collect();
        let pictures: Vec<&ProbeStream> = self
            .streams
            .iter()
            .filter(|s| s.is("video") && s.attached_picture())
            .collect();
        // A front cover if one says so (MKV names it cover.*, ID3 says "Cover (front)").
        let front = pictures.iter().find(|s| {
            tag(&s.tags, &["filename", "comment"])
                .is_some_and(|v| v.to_ascii_lowercase().contains("cover"))
        });
        SourceMetadata {
            title: field(&["title"]),
            artist: field(&["artist", "album_artist", "author"]),
            album: field(&["album"]),
            date: field(&["date", "creation_date", "year"]),
            comment: field(&["comment", "description"]),
            chapters,
            picture: front
                .or(pictures.first())
                .map(|s| SourcePicture::Stream(s.index)),
            video: self
                .streams
                .iter()
                .any(|s| s.is("video") && !s.attached_picture()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MKV: &str = r#"{
        "streams": [
            {"index": 0, "codec_type": "video", "disposition": {"attached_pic": 0}},
            {"index": 1, "codec_type": "audio", "sample_rate": "48000", "channels": 2,
             "disposition": {"attached_pic": 0}, "tags": {"DURATION": "00:00:03.008000000"}},
            {"index": 2, "codec_type": "video", "disposition": {"attached_pic": 1},
             "tags": {"filename": "other.png"}},
            {"index": 3, "codec_type": "video", "disposition": {"attached_pic": 1},
             "tags": {"filename": "cover.jpg", "mimetype": "image/jpeg"}}
        ],
        "chapters": [
            {"id": 1, "start_time": "0.000000", "end_time": "1.000000", "tags": {"title": "Intro"}},
            {"id": 2, "start_time": "1.500000", "end_time": "3.000000", "tags": {}}
        ],
        "format": {"duration": "3.008000", "tags": {"title": "My Lecture", "ARTIST": "Ada",
                   "ALBUM": "Engines", "DATE": "2024", "COMMENT": "live"}}
    }"#;

    #[test]
    fn tags_chapters_and_the_front_cover_come_from_one_probe() {
        let probe: ProbeJson = serde_json::from_str(MKV).unwrap();
        let m = probe.metadata();
        assert_eq!(m.title.as_deref(), Some("My Lecture"));
        assert_eq!(m.artist.as_deref(), Some("Ada"));
        assert_eq!(m.album.as_deref(), Some("Engines"));
        assert_eq!(m.date.as_deref(), Some("2024"));
        assert_eq!(m.comment.as_deref(), Some("live"));
        assert_eq!(m.picture, Some(SourcePicture::Stream(3)));
        assert!(m.video);
        assert_eq!(
            m.chapters,
            vec![
                SourceChapter {
                    start_ms: 0,
                    end_ms: Some(1000),
                    title: Some("Intro".into())
                },
                SourceChapter {
                    start_ms: 1500,
                    end_ms: Some(3000),
                    title: None
                },
            ]
        );
        assert_eq!(probe.first_audio().map(|s| s.index), Some(1));
    }

    #[test]
    fn an_mp3_source_keeps_its_tags_on_the_stream_and_has_no_video() {
        let probe: ProbeJson = serde_json::from_str(
            r#"{"streams": [
                {"index": 0, "codec_type": "audio", "sample_rate": "44100", "channels": 2,
                 "tags": {"title": "Song", "artist": "Band"}},
                {"index": 1, "codec_type": "video", "disposition": {"attached_pic": 1},
                 "tags": {"comment": "Cover (front)"}}],
               "format": {"tags": {}}}"#,
        )
        .unwrap();
        let m = probe.metadata();
        assert_eq!(
            (m.title.as_deref(), m.artist.as_deref()),
            (Some("Song"), Some("Band"))
        );
        assert_eq!(m.picture, Some(SourcePicture::Stream(1)));
        assert!(!m.video);
    }

    #[test]
    fn chapters_beyond_the_read_limit_and_without_a_start_are_ignored() {
        let chapters: Vec<String> = (0..MAX_SOURCE_CHAPTERS + 50)
            .map(|i| format!(r#"{{"start_time": "{i}.0", "end_time": "N/A"}}"#))
            .chain([r#"{"start_time": "N/A"}"#.to_owned()])
            .collect();
        let text = format!(r#"{{"chapters": [{}]}}"#, chapters.join(","));
        let m = serde_json::from_str::<ProbeJson>(&text).unwrap().metadata();
        assert_eq!(m.chapters.len(), MAX_SOURCE_CHAPTERS);
        assert_eq!(m.chapters[1].end_ms, None);
    }
}
