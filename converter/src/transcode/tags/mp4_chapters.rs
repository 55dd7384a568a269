//! MP4 chapters, which symphonia 0.6 does not read: a QuickTime chapter track (a text track the
//! audio track names in `tref/chap`; what Apple's tools and ffmpeg write) or else a Nero `chpl`
//! box in `moov/udta` (which ffmpeg writes too, but only for the first 255 chapters).
//!
//! Read with the box walker of [`crate::transcode::mp4_edits`], bounded by the box sizes and by
//! [`MAX_SOURCE_CHAPTERS`]: a crafted count cannot make it allocate or read more. (`mp4ameta`
//! reads both forms too, but sizes its tables by the counts a file claims.)

use std::io::{self, Read, Seek, SeekFrom};

use super::{MAX_CHAPTER_TITLE_CHARS, MAX_SOURCE_CHAPTERS, SourceChapter};
use crate::transcode::mp4_edits::{BoxHeader, be_u32, be_u64, children, mdhd_timescale, read_body};

/// The bytes of a chapter sample read at most: its length field and a title.
const MAX_SAMPLE_BYTES: usize = 2 + 4 * MAX_CHAPTER_TITLE_CHARS;

struct Track {
    id: u32,
    chapter_refs: Vec<u32>,
    timescale: Option<u32>,
    stbl: Option<BoxHeader>,
}

fn child(boxes: &[BoxHeader], kind: &[u8; 4]) -> Option<BoxHeader> {
    boxes.iter().find(|b| &b.kind == kind).copied()
}

fn track<R: Read + Seek + ?Sized>(r: &mut R, trak: BoxHeader) -> io::Result<Track> {
    let boxes = children(r, trak)?;
    let id = match child(&boxes, b"tkhd") {
        Some(tkhd) => {
            let body = read_body(r, tkhd, 24)?;
            // Version 1 has 64-bit creation and modification times before the id.
            let at = if body.first() == Some(&1) { 20 } else { 12 };
            be_u32(&body, at).unwrap_or(0)
        }
        None => 0,
    };
    let mut chapter_refs = Vec::new();
    if let Some(tref) = child(&boxes, b"tref") {
        for reference in children(r, tref)?
            .into_iter()
            .filter(|b| &b.kind == b"chap")
        {
            let body = read_body(r, reference, 4 * 64)?;
            chapter_refs.extend(body.chunks_exact(4).filter_map(|c| be_u32(c, 0)));
        }
    }
    let (mut timescale, mut stbl) = (None, None);
    if let Some(mdia) = child(&boxes, b"mdia") {
        let mdia = children(r, mdia)?;
        if let Some(mdhd) = child(&mdia, b"mdhd") {
            timescale = mdhd_timescale(&read_body(r, mdhd, 32)?);
        }
        if let Some(minf) = child(&mdia, b"minf") {
            stbl = child(&children(r, minf)?, b"stbl");
        }
    }
    Ok(Track {
        id,
        chapter_refs,
        timescale,
        stbl,
    })
}

/// The chapters of an MP4 file: its chapter track's, else its `chpl` box's, else none.
pub fn read_chapters<R: Read + Seek + ?Sized>(
    r: &mut R,
    len: Option<u64>,
) -> io::Result<Vec<SourceChapter>> {
    let limit = match len {
        Some(l) => l,
        None => r.seek(SeekFrom::End(0))?,
    };
    let root = BoxHeader {
        kind: *b"root",
        body: 0,
        end: limit,
    };
    let Some(moov) = child(&children(r, root)?, b"moov") else {
        return Ok(Vec::new());
    };
    let moov_boxes = children(r, moov)?;
    let mut tracks = Vec::new();
    for trak in moov_boxes.iter().filter(|b| &b.kind == b"trak") {
        tracks.push(track(r, *trak)?);
    }
    let referenced: Vec<u32> = tracks.iter().flat_map(|t| t.chapter_refs.clone()).collect();
    if let Some(chapter_track) = tracks
        .iter()
        .find(|t| t.id != 0 && referenced.contains(&t.id))
    {
        let chapters = read_track(r, chapter_track)?;
        if !chapters.is_empty() {
            return Ok(chapters);
        }
    }
    if let Some(udta) = child(&moov_boxes, b"udta")
        && let Some(chpl) = child(&children(r, udta)?, b"chpl")
    {
        // 1 + 3 + 4 + 1 header bytes, then 255 entries of 8 + 1 + 255 bytes at most.
        return Ok(parse_chpl(&read_body(r, chpl, 9 + 255 * 264)?));
    }
    Ok(Vec::new())
}

/// A table box's entries after its version, flags and entry count, at most `max` of them.
fn table<R: Read + Seek + ?Sized>(
    r: &mut R,
    b: BoxHeader,
    entry_len: usize,
    max: usize,
) -> io::Result<Vec<Vec<u8>>> {
    let head = read_body(r, b, 8)?;
    let count = be_u32(&head, 4).map_or(0, |c| c as usize).min(max);
    let body = read_body(r, b, 8 + count * entry_len)?;
    Ok(body
        .get(8..)
        .unwrap_or_default()
        .chunks_exact(entry_len)
        .map(<[u8]>::to_vec)
        .collect())
}

fn read_track<R: Read + Seek + ?Sized>(r: &mut R, t: &Track) -> io::Result<Vec<SourceChapter>> {
    let (Some(stbl), Some(timescale)) = (t.stbl, t.timescale.filter(|&ts| ts > 0)) else {
        return Ok(Vec::new());
    };
    let boxes = children(r, stbl)?;
    let max = MAX_SOURCE_CHAPTERS;
    // Sample times: runs of (count, delta).
    let mut starts = Vec::new();
    let mut time = 0u64;
    if let Some(stts) = child(&boxes, b"stts") {
        for entry in table(r, stts, 8, max)? {
            let (count, delta) = (
                be_u32(&entry, 0).unwrap_or(0),
                be_u32(&entry, 4).unwrap_or(0),
            );
            for _ in 0..count {
                if starts.len() == max {
                    break;
                }
                starts.push(time);
                time = time.saturating_add(u64::from(delta));
            }
        }
    }
    // Sample sizes: one for all, or a table.
    let sizes: Vec<u32> = match child(&boxes, b"stsz") {
        Some(stsz) => {
            let head = read_body(r, stsz, 12)?;
            match be_u32(&head, 4) {
                Some(0) => {
                    let body = read_body(r, stsz, 12 + 4 * max)?;
                    body.get(12..)
                        .unwrap_or_default()
                        .chunks_exact(4)
                        .filter_map(|c| be_u32(c, 0))
                        .collect()
                }
                Some(size) => vec![size; starts.len()],
                None => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    // Chunk offsets, and how many samples each chunk holds.
    let offsets: Vec<u64> = if let Some(stco) = child(&boxes, b"stco") {
        table(r, stco, 4, max)?
            .iter()
            .filter_map(|e| be_u32(e, 0).map(u64::from))
            .collect()
    } else if let Some(co64) = child(&boxes, b"co64") {
        table(r, co64, 8, max)?
            .iter()
            .filter_map(|e| be_u64(e, 0))
            .collect()
    } else {
        Vec::new()
    };
    let runs: Vec<(u32, u32)> = match child(&boxes, b"stsc") {
        Some(stsc) => table(r, stsc, 12, max)?
            .iter()
            .filter_map(|e| Some((be_u32(e, 0)?, be_u32(e, 4)?)))
            .collect(),
        None => Vec::new(),
    };
    let mut sample_offsets = Vec::new();
    let mut sample = 0usize;
    'chunks: for (chunk, &offset) in offsets.iter().enumerate() {
        let chunk_number = u32::try_from(chunk + 1).unwrap_or(u32::MAX);
        let per_chunk = runs
            .iter()
            .take_while(|(first, _)| *first <= chunk_number)
            .last()
            .map_or(1, |&(_, n)| n);
        let mut at = offset;
        for _ in 0..per_chunk {
            let Some(&size) = sizes.get(sample) else {
                break 'chunks;
            };
            sample_offsets.push((at, size));
            at = at.saturating_add(u64::from(size));
            sample += 1;
        }
    }
    let mut chapters = Vec::new();
    for (i, &(offset, size)) in sample_offsets.iter().enumerate() {
        let Some(&start) = starts.get(i) else { break };
        let to_ms = |t: u64| {
            u64::try_from(u128::from(t) * 1000 / u128::from(timescale)).unwrap_or(u64::MAX)
        };
        let len = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(MAX_SAMPLE_BYTES);
        let mut buf = vec![0u8; len];
        r.seek(SeekFrom::Start(offset))?;
        let title = match r.read_exact(&mut buf) {
            Ok(()) => sample_text(&buf),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(e),
        };
        chapters.push(SourceChapter {
            start_ms: to_ms(start),
            end_ms: starts.get(i + 1).map(|&next| to_ms(next)),
            title,
        });
    }
    Ok(chapters)
}

/// A QuickTime text sample: a 16-bit length, then UTF-8 (or UTF-16 after a byte-order mark).
fn sample_text(sample: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes([*sample.first()?, *sample.get(1)?]));
    let text = sample.get(2..)?;
    let text = &text[..len.min(text.len())];
    if let Some(utf16) = text.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return Some(String::from_utf16_lossy(&units));
    }
    Some(String::from_utf8_lossy(text).into_owned())
}

/// Nero's chapter list: times in 100 ns units, titles of up to 255 bytes.
fn parse_chpl(body: &[u8]) -> Vec<SourceChapter> {
    let Some(&version) = body.first() else {
        return Vec::new();
    };
    let mut at = if version == 1 { 8 } else { 4 };
    let Some(&count) = body.get(at) else {
        return Vec::new();
    };
    at += 1;
    let mut chapters = Vec::new();
    for _ in 0..count {
        let (Some(start), Some(&len)) = (be_u64(body, at), body.get(at + 8)) else {
            break;
        };
        let Some(title) = body.get(at + 9..at + 9 + usize::from(len)) else {
            break;
        };
        chapters.push(SourceChapter {
            start_ms: start / 10_000,
            end_ms: None,
            title: Some(String::from_utf8_lossy(title).into_owned()),
        });
        at += 9 + usize::from(len);
    }
    chapters
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn full_box(kind: &[u8; 4], entries: &[u32]) -> Vec<u8> {
        let mut body = vec![0u8; 4];
        for e in entries {
            body.extend_from_slice(&e.to_be_bytes());
        }
        mp4_box(kind, &body)
    }

    fn tkhd(id: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&[0; 68]);
        mp4_box(b"tkhd", &body)
    }

    fn mdhd(timescale: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        mp4_box(b"mdhd", &body)
    }

    /// An MP4 whose audio track (id 1) names a text track (id 2) holding `titles`, one per
    /// second, the samples in `mdat` at the start of the file.
    fn with_chapter_track(titles: &[&str], claimed_count: Option<u32>) -> Vec<u8> {
        let mut samples = Vec::new();
        let mut sizes = Vec::new();
        for t in titles {
            let mut s = (t.len() as u16).to_be_bytes().to_vec();
            s.extend_from_slice(t.as_bytes());
            sizes.push(s.len() as u32);
            samples.extend(s);
        }
        let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0");
        let mdat_offset = (ftyp.len() + 8) as u32;
        let mdat = mp4_box(b"mdat", &samples);
        let n = claimed_count.unwrap_or(titles.len() as u32);
        let mut stsz = vec![0, 0, 0, 0, 0, 0, 0, 0];
        stsz.extend_from_slice(&n.to_be_bytes());
        for s in &sizes {
            stsz.extend_from_slice(&s.to_be_bytes());
        }
        let stbl = [
            full_box(b"stts", &[1, n, 1000]),
            mp4_box(b"stsz", &stsz),
            full_box(b"stsc", &[1, 1, n, 1]),
            full_box(b"stco", &[1, mdat_offset]),
        ]
        .concat();
        let text_trak = [
            tkhd(2),
            mp4_box(
                b"mdia",
                &[mdhd(1000), mp4_box(b"minf", &mp4_box(b"stbl", &stbl))].concat(),
            ),
        ]
        .concat();
        // tref/chap holds bare track ids.
        let audio_trak = [
            tkhd(1),
            mp4_box(b"tref", &mp4_box(b"chap", &2u32.to_be_bytes())),
        ]
        .concat();
        let moov = [mp4_box(b"trak", &audio_trak), mp4_box(b"trak", &text_trak)].concat();
        [ftyp, mdat, mp4_box(b"moov", &moov)].concat()
    }

    #[test]
    fn a_chapter_track_gives_titles_and_times() {
        let file = with_chapter_track(&["Intro", "Middle", "Ende – ü"], None);
        let chapters = read_chapters(&mut Cursor::new(&file), None).unwrap();
        let got: Vec<(u64, Option<u64>, &str)> = chapters
            .iter()
            .map(|c| (c.start_ms, c.end_ms, c.title.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (0, Some(1000), "Intro"),
                (1000, Some(2000), "Middle"),
                (2000, None, "Ende – ü")
            ]
        );
    }

    #[test]
    fn a_count_the_file_does_not_hold_reads_only_what_is_there() {
        let file = with_chapter_track(&["a", "b"], Some(u32::MAX));
        let chapters = read_chapters(&mut Cursor::new(&file), None).unwrap();
        assert_eq!(chapters.len(), 2);
    }

    #[test]
    fn a_chpl_box_is_read_when_there_is_no_chapter_track() {
        let mut chpl = vec![1, 0, 0, 0, 0, 0, 0, 0, 2];
        for (start, title) in [(0u64, "One"), (15_000_000, "Two")] {
            chpl.extend_from_slice(&start.to_be_bytes());
            chpl.push(title.len() as u8);
            chpl.extend_from_slice(title.as_bytes());
        }
        let moov = mp4_box(b"udta", &mp4_box(b"chpl", &chpl));
        let file = [mp4_box(b"ftyp", b"isom\0\0\x02\0"), mp4_box(b"moov", &moov)].concat();
        let chapters = read_chapters(&mut Cursor::new(&file), None).unwrap();
        assert_eq!(chapters.len(), 2);
        assert_eq!(
            (chapters[1].start_ms, chapters[1].title.as_deref()),
            (1500, Some("Two"))
        );
    }

    #[test]
    fn damaged_or_missing_boxes_give_no_chapters_not_an_error() {
        let file = with_chapter_track(&["Intro", "Middle"], None);
        for cut in [0, 10, file.len() / 2, file.len() - 5] {
            let r = read_chapters(&mut Cursor::new(&file[..cut]), None);
            assert!(r.is_ok_and(|c| c.len() <= 2), "cut at {cut}");
        }
        assert_eq!(sample_text(&[0, 9, b'a']), Some("a".into()));
        assert_eq!(sample_text(&[0]), None);
    }
}
