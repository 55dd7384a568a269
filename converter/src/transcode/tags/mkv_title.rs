//! The Matroska segment title (`Segment/Info/Title`), where ffmpeg and most muxers put a file's
//! title; symphonia 0.6 parses it but does not report it. Only the elements before the first
//! cluster are looked at.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::MAX_TEXT_CHARS;
use crate::transcode::mkv_padding::{ID_CLUSTER, ID_SEGMENT, read_element};

const ID_INFO: u32 = 0x1549_A966;
const ID_TITLE: u32 = 0x7BA9;
/// Top-level elements looked at before giving up (SeekHead, Info, Tracks... come first).
const MAX_ELEMENTS: usize = 64;

/// The segment's title, if the file states one before its first cluster.
pub fn segment_title<R: Read + Seek + ?Sized>(reader: &mut R) -> io::Result<Option<String>> {
    let end = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::with_capacity(4096, reader);
    let mut pos = 0u64;
    let mut segment = None;
    for _ in 0..MAX_ELEMENTS {
        if pos >= end {
            return Ok(None);
        }
        let e = read_element(&mut r, pos)?;
        if e.id == ID_SEGMENT {
            segment = Some(e);
            break;
        }
        let Some(size) = e.size else { return Ok(None) };
        pos = e.body.saturating_add(size);
        r.seek(SeekFrom::Start(pos))?;
    }
    let Some(segment) = segment else {
        return Ok(None);
    };
    let segment_end = segment
        .size
        .map_or(end, |s| segment.body.saturating_add(s).min(end));
    pos = segment.body;
    r.seek(SeekFrom::Start(pos))?;
    for _ in 0..MAX_ELEMENTS {
        if pos >= segment_end {
            break;
        }
        let e = read_element(&mut r, pos)?;
        if e.id == ID_CLUSTER {
            break;
        }
        let Some(size) = e.size else { break };
        let e_end = e.body.saturating_add(size).min(segment_end);
        if e.id == ID_INFO {
            let mut at = e.body;
            while at < e_end {
                let c = read_element(&mut r, at)?;
                let Some(c_size) = c.size else { break };
                if c.id == ID_TITLE {
                    let len = usize::try_from(c_size)
                        .unwrap_or(usize::MAX)
                        .min(4 * MAX_TEXT_CHARS);
                    let mut text = vec![0u8; len];
                    r.read_exact(&mut text)?;
                    let text = String::from_utf8_lossy(&text);
                    return Ok(Some(text.trim_end_matches('\0').to_owned()));
                }
                at = c.body.saturating_add(c_size);
                r.seek(SeekFrom::Start(at))?;
            }
            return Ok(None);
        }
        pos = e_end;
        r.seek(SeekFrom::Start(pos))?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 0x7F);
        let mut v = id.to_vec();
        v.push(0x80 | body.len() as u8);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn finds_the_title_in_the_segment_info() {
        let info = element(
            &[0x15, 0x49, 0xA9, 0x66],
            &[
                element(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
                element(&[0x7B, 0xA9], "My Lecture".as_bytes()),
            ]
            .concat(),
        );
        let segment = element(&[0x18, 0x53, 0x80, 0x67], &info);
        let file = [element(&[0x1A, 0x45, 0xDF, 0xA3], b"webm"), segment].concat();
        assert_eq!(
            segment_title(&mut Cursor::new(&file)).unwrap().as_deref(),
            Some("My Lecture")
        );
        let no_title = [
            element(&[0x1A, 0x45, 0xDF, 0xA3], b"webm"),
            element(
                &[0x18, 0x53, 0x80, 0x67],
                &element(&[0x15, 0x49, 0xA9, 0x66], &[]),
            ),
        ]
        .concat();
        assert_eq!(segment_title(&mut Cursor::new(&no_title)).unwrap(), None);
    }
}
