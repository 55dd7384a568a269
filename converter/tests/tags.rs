//! The mp3's ID3 tag, read back with two independent readers (ffprobe and the Python library
//! mutagen) from files made with ffmpeg in the test: titles and artists, chapters in MP4 and
//! Matroska, attached pictures, 500 chapters, sources without video, the ffmpeg path. Each also
//! checks that the gapless length is still exact with the tag in front of the Xing frame.
//!
//! Needs Debian's ffmpeg and the tools venv with mutagen (`scripts/services install`).

mod cli_runs;

use std::path::{Path, PathBuf};

use cli_runs::{convert, ffmpeg};
use serde_json::Value;
use vid2mp3_test_support::test_media::{ScratchDir, decoded_samples, ffprobe_json, id3_tag};

const AT_44K: u64 = 132_300;
const AT_48K: u64 = 144_000;

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// An ffmetadata file: container tags and `chapters` of `ms` milliseconds each.
fn metadata_file(dir: &ScratchDir, tags: &[(&str, &str)], chapters: usize, ms: u64) -> PathBuf {
    let mut text = String::from(";FFMETADATA1\n");
    for (k, v) in tags {
        text.push_str(&format!("{k}={v}\n"));
    }
    for i in 0..chapters as u64 {
        text.push_str(&format!(
            "[CHAPTER]\nTIMEBASE=1/1000\nSTART={}\nEND={}\ntitle=Part {} – ü\n",
            i * ms,
            (i + 1) * ms,
            i + 1
        ));
    }
    let path = dir.path(&format!("meta-{chapters}.txt"));
    std::fs::write(&path, text).expect("metadata file");
    path
}

const TAGS: [(&str, &str); 5] = [
    ("title", "Lecture 7: Engines"),
    ("artist", "Ada Lovelace"),
    ("album", "Analytical Course"),
    ("date", "1843-09-01"),
    ("comment", "Recorded in the hall"),
];

const VIDEO: &str = "testsrc=size=800x450:rate=25:d=3";
const TONE_44K: &str = "sine=f=440:r=44100:d=3";
const TONE_48K: &str = "sine=f=440:r=48000:d=3";

/// `source` made by ffmpeg: a test-pattern video, `tone` as its audio in `audio_codec`, and the
/// tags and chapters of `meta` (a [`metadata_file`]); `extra` goes in before the output name.
fn with_video_tags_and_chapters(
    source: &Path,
    tone: &str,
    meta: &Path,
    audio_codec: &str,
    extra: &[&str],
) {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        VIDEO,
        "-f",
        "lavfi",
        "-i",
        tone,
        "-i",
        p(meta),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map_metadata",
        "2",
        "-map_chapters",
        "2",
        "-c:v",
        "mpeg4",
        "-c:a",
        audio_codec,
    ];
    args.extend_from_slice(extra);
    args.push(p(source));
    ffmpeg(&args);
}

fn text<'a>(tag: &'a Value, frame: &str) -> Option<&'a str> {
    tag["text"][frame].as_str()
}

/// The tags every readback must agree on, by both readers.
fn assert_source_tags(mp3: &Path, tag: &Value) {
    assert_eq!(text(tag, "TIT2"), Some("Lecture 7: Engines"), "{tag}");
    assert_eq!(text(tag, "TPE1"), Some("Ada Lovelace"));
    assert_eq!(text(tag, "TALB"), Some("Analytical Course"));
    assert_eq!(tag["comments"][0]["text"], "Recorded in the hall");
    let probe = ffprobe_json(mp3);
    let ftags = &probe["format"]["tags"];
    assert_eq!(ftags["title"], "Lecture 7: Engines", "{probe}");
    assert_eq!(ftags["artist"], "Ada Lovelace");
    assert_eq!(ftags["album"], "Analytical Course");
}

/// The cover as ffprobe sees it: (codec, width, height).
fn cover_stream(mp3: &Path) -> Option<(String, u64, u64)> {
    let probe = ffprobe_json(mp3);
    probe["streams"].as_array()?.iter().find_map(|s| {
        (s["disposition"]["attached_pic"] == 1).then(|| {
            (
                s["codec_name"].as_str().unwrap_or("").to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
    })
}

#[test]
fn an_mp4_gives_its_tags_chapters_and_a_frame_as_the_cover() {
    let dir = ScratchDir::new();
    let source = dir.path("lecture.mp4");
    let meta = metadata_file(&dir, &TAGS, 3, 1000);
    with_video_tags_and_chapters(&source, TONE_44K, &meta, "aac", &[]);
    let mp3 = dir.path("lecture.mp3");
    let report = convert(&source, &mp3, &[]);
    assert!(report.contains("via native"), "{report}");
    assert!(report.contains("cover from a video frame"), "{report}");

    let tag = id3_tag(&mp3);
    assert_eq!(tag["version"], serde_json::json!([2, 4, 0]));
    assert_source_tags(&mp3, &tag);
    assert_eq!(text(&tag, "TDRC"), Some("1843-09-01"));
    let chapters = tag["chapters"].as_array().unwrap();
    let got: Vec<(u64, u64, &str)> = chapters
        .iter()
        .map(|c| {
            (
                c["start"].as_u64().unwrap(),
                c["end"].as_u64().unwrap(),
                c["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 1000, "Part 1 – ü"),
            (1000, 2000, "Part 2 – ü"),
            (2000, 3000, "Part 3 – ü")
        ]
    );
    let toc = &tag["tocs"][0];
    assert_eq!(
        (toc["top_level"].as_bool(), toc["ordered"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(toc["children"].as_array().map(Vec::len), Some(3));
    // ffprobe reads the CHAP frames as the mp3's chapters.
    let probe = ffprobe_json(&mp3);
    assert_eq!(
        probe["chapters"].as_array().map(Vec::len),
        Some(3),
        "{probe}"
    );
    assert_eq!(probe["chapters"][1]["tags"]["title"], "Part 2 – ü");
    // The front cover: a JPEG frame of the 800×450 video, scaled to 600 px wide.
    assert_eq!(tag["pictures"][0]["mime"], "image/jpeg");
    assert_eq!(tag["pictures"][0]["type"], 3, "front cover");
    assert_eq!(cover_stream(&mp3), Some(("mjpeg".to_owned(), 600, 338)));
    // The tag sits in front of the Xing frame and the gapless length is still exact.
    assert_eq!(decoded_samples(&mp3), AT_44K);
}

#[test]
fn a_matroska_file_keeps_its_attached_cover_byte_for_byte_and_its_chapters() {
    let dir = ScratchDir::new();
    let cover = dir.path("cover.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=300x300:d=1",
        "-frames:v",
        "1",
        p(&cover),
    ]);
    let source = dir.path("talk.mkv");
    let meta = metadata_file(&dir, &TAGS, 4, 700);
    with_video_tags_and_chapters(
        &source,
        TONE_48K,
        &meta,
        "libopus",
        &[
            "-attach",
            p(&cover),
            "-metadata:s:t:0",
            "mimetype=image/png",
            "-metadata:s:t:0",
            "filename=cover.png",
        ],
    );
    let mp3 = dir.path("talk.mp3");
    // symphonia 0.6 refuses Matroska chapters without an EditionUID (ffmpeg writes none), so
    // this file takes the ffmpeg path, tags and all.
    let report = convert(&source, &mp3, &[]);
    assert!(report.contains("missing edition uid"), "{report}");
    let tag = id3_tag(&mp3);
    assert_source_tags(&mp3, &tag);
    assert_eq!(tag["chapters"].as_array().map(Vec::len), Some(4));
    assert_eq!(tag["chapters"][3]["start"], 2100);
    assert_eq!(tag["chapters"][3]["end"], 2800);
    let picture = &tag["pictures"][0];
    assert_eq!(picture["mime"], "image/png");
    let png = std::fs::read(&cover).unwrap();
    assert_eq!(picture["bytes"], png.len(), "kept as it was");
    assert_eq!(cover_stream(&mp3).map(|c| c.0), Some("png".to_owned()));
    // ffmpeg decodes Opus in Matroska exactly too.
    assert_eq!(decoded_samples(&mp3), AT_48K);
}

#[test]
fn an_attached_picture_too_large_for_the_tag_is_scaled_to_a_jpeg() {
    let dir = ScratchDir::new();
    // Noise does not compress: a 1600×1600 PNG of it is several MB.
    let big = dir.path("big.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "nullsrc=s=1600x1600,geq=random(1)*255:128:128",
        "-frames:v",
        "1",
        p(&big),
    ]);
    assert!(std::fs::metadata(&big).unwrap().len() > 1 << 20);
    let source = dir.path("song.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        TONE_44K,
        "-i",
        p(&big),
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "aac",
        "-c:v",
        "png",
        "-disposition:v:0",
        "attached_pic",
        "-metadata",
        "title=Big Cover",
        p(&source),
    ]);
    let mp3 = dir.path("song.mp3");
    let report = convert(&source, &mp3, &[]);
    assert!(
        report.contains("cover from the attached picture"),
        "{report}"
    );
    let tag = id3_tag(&mp3);
    assert_eq!(text(&tag, "TIT2"), Some("Big Cover"));
    assert_eq!(tag["pictures"][0]["mime"], "image/jpeg");
    assert!(tag["pictures"][0]["bytes"].as_u64().unwrap() <= 128 * 1024);
    assert_eq!(cover_stream(&mp3), Some(("mjpeg".to_owned(), 600, 600)));
    assert_eq!(decoded_samples(&mp3), AT_44K);
}

#[test]
fn five_hundred_chapters_become_255_spread_over_the_whole_recording() {
    let dir = ScratchDir::new();
    let meta = metadata_file(&dir, &[("title", "Marathon")], 500, 20);
    for (name, codec) in [("many.mkv", "libopus"), ("many.mp4", "aac")] {
        let source = dir.path(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:r=48000:d=10",
            "-i",
            p(&meta),
            "-map",
            "0:a",
            "-map_metadata",
            "1",
            "-map_chapters",
            "1",
            "-c:a",
            codec,
            p(&source),
        ]);
        let mp3 = dir.path(&format!("{name}.mp3"));
        let report = convert(&source, &mp3, &[]);
        assert!(report.contains("255 chapters (of 500)"), "{name}: {report}");
        let tag = id3_tag(&mp3);
        let chapters = tag["chapters"].as_array().unwrap();
        assert_eq!(chapters.len(), 255, "{name}");
        assert_eq!(
            tag["tocs"][0]["children"].as_array().map(Vec::len),
            Some(255)
        );
        assert_eq!(chapters[0]["start"], 0);
        let last = chapters.last().unwrap();
        assert!(last["start"].as_u64().unwrap() >= 9_900, "{name}: {last}");
        assert_eq!(last["end"], 10_000, "{name}: the last runs to the end");
        for pair in chapters.windows(2) {
            assert_eq!(pair[0]["end"], pair[1]["start"], "{name}: no gaps");
        }
        assert_eq!(
            ffprobe_json(&mp3)["chapters"].as_array().map(Vec::len),
            Some(255)
        );
        assert_eq!(decoded_samples(&mp3), 480_000, "{name}");
    }
}

#[test]
fn sources_without_video_or_tags_get_their_file_name_and_no_cover() {
    let dir = ScratchDir::new();
    let source = dir.path("field recording 12.flac");
    ffmpeg(&["-f", "lavfi", "-i", TONE_44K, "-c:a", "flac", p(&source)]);
    let mp3 = dir.path("out.mp3");
    let report = convert(&source, &mp3, &[]);
    assert!(report.contains("no cover"), "{report}");
    let tag = id3_tag(&mp3);
    assert_eq!(text(&tag, "TIT2"), Some("field recording 12"));
    assert_eq!(tag["pictures"].as_array().map(Vec::len), Some(0));
    assert_eq!(tag["chapters"].as_array().map(Vec::len), Some(0));
    assert_eq!(cover_stream(&mp3), None);
    assert_eq!(decoded_samples(&mp3), AT_44K);
}

#[test]
fn the_ffmpeg_path_reads_tags_chapters_and_a_frame_from_ffprobe() {
    let dir = ScratchDir::new();
    let source = dir.path("broadcast.mkv");
    let meta = metadata_file(&dir, &TAGS, 3, 1000);
    with_video_tags_and_chapters(&source, TONE_48K, &meta, "ac3", &[]);
    let mp3 = dir.path("broadcast.mp3");
    let report = convert(&source, &mp3, &[]);
    assert!(report.contains("via ffmpeg"), "{report}");
    let tag = id3_tag(&mp3);
    assert_source_tags(&mp3, &tag);
    assert_eq!(tag["chapters"].as_array().map(Vec::len), Some(3));
    assert_eq!(tag["chapters"][2]["title"], "Part 3 – ü");
    assert_eq!(cover_stream(&mp3), Some(("mjpeg".to_owned(), 600, 338)));
    // AC-3 in Matroska states no padding: what ffmpeg itself decodes (corpus test).
    assert_eq!(decoded_samples(&mp3), AT_48K + 384);
}

#[test]
fn id3v23_is_written_when_asked_for() {
    let dir = ScratchDir::new();
    let source = dir.path("old player.mp4");
    let meta = metadata_file(&dir, &TAGS, 2, 1500);
    with_video_tags_and_chapters(&source, TONE_44K, &meta, "aac", &[]);
    let mp3 = dir.path("old.mp3");
    convert(&source, &mp3, &["--id3-version", "2.3", "--no-frame-cover"]);
    let tag = id3_tag(&mp3);
    assert_eq!(tag["version"], serde_json::json!([2, 3, 0]));
    assert_source_tags(&mp3, &tag);
    assert_eq!(text(&tag, "TYER"), Some("1843"));
    assert_eq!(tag["chapters"].as_array().map(Vec::len), Some(2));
    assert_eq!(tag["chapters"][1]["title"], "Part 2 – ü");
    assert_eq!(
        tag["pictures"].as_array().map(Vec::len),
        Some(0),
        "--no-frame-cover"
    );
    assert_eq!(decoded_samples(&mp3), AT_44K);
}
