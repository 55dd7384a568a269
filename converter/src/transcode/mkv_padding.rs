//! The Matroska `DiscardPadding` of a track's last block: how many decoded samples at the very
//! end are encoder padding (Opus pads its last 20 ms frame; ffmpeg records the excess here).
//!
//! symphonia parses the element but does not apply it, so the block index is walked here:
//! element headers only, block payloads are seeked over.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

pub(crate) const ID_SEGMENT: u32 = 0x1853_8067;
pub(crate) const ID_CLUSTER: u32 = 0x1F43_B675;
const ID_SIMPLE_BLOCK: u32 = 0xA3;
const ID_BLOCK_GROUP: u32 = 0xA0;
const ID_BLOCK: u32 = 0xA1;
const ID_DISCARD_PADDING: u32 = 0x75A2;

pub(crate) struct Element {
    pub(crate) id: u32,
    /// Payload offset.
    pub(crate) body: u64,
    /// `None` for "unknown size" (live streams).
    pub(crate) size: Option<u64>,
}

fn read_vint<R: Read>(r: &mut R, keep_marker: bool) -> io::Result<(u64, usize)> {
    let mut first = [0u8; 1];
    r.read_exact(&mut first)?;
    let len = first[0].leading_zeros() as usize + 1;
    if len > 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid EBML length",
        ));
    }
    let mask = if len >= 8 { 0 } else { 0xFFu8 >> len };
    let mut value = u64::from(if keep_marker {
        first[0]
    } else {
        first[0] & mask
    });
    let mut rest = [0u8; 8];
    r.read_exact(&mut rest[..len - 1])?;
    for &b in &rest[..len - 1] {
        value = (value << 8) | u64::from(b);
    }
    Ok((value, len))
}

pub(crate) fn read_element<R: Read + Seek>(r: &mut R, at: u64) -> io::Result<Element> {
    let (id, id_len) = read_vint(r, true)?;
    let (size, size_len) = read_vint(r, false)?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    Ok(Element {
        id: u32::try_from(id).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "EBML id"))?,
        body: at + (id_len + size_len) as u64,
        size: (!unknown).then_some(size),
    })
}

/// Nanoseconds of padding at the end of track `track_number`, if its last block declares any.
/// `Ok(None)` when the file does not say or cannot be walked (live streams).
pub fn trailing_discard_ns<R: Read + Seek + ?Sized>(
    reader: &mut R,
    track_number: u64,
) -> io::Result<Option<i64>> {
    let end = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::with_capacity(16 * 1024, reader);
    let mut pos = 0u64;
    // Top level: the EBML header, then the Segment.
    let segment = loop {
        if pos >= end {
            return Ok(None);
        }
        let e = read_element(&mut r, pos)?;
        if e.id == ID_SEGMENT {
            break e;
        }
        let Some(size) = e.size else { return Ok(None) };
        pos = e.body.saturating_add(size);
        r.seek(SeekFrom::Start(pos))?;
    };
    let segment_end = segment
        .size
        .map_or(end, |s| segment.body.saturating_add(s).min(end));
    let mut last: Option<Option<i64>> = None;
    pos = segment.body;
    while pos < segment_end {
        let e = read_element(&mut r, pos)?;
        let Some(size) = e.size else { return Ok(None) };
        let e_end = e.body.saturating_add(size);
        if e.id == ID_CLUSTER {
            walk_cluster(&mut r, e.body, e_end.min(end), track_number, &mut last)?;
        }
        pos = e_end;
        r.seek(SeekFrom::Start(pos))?;
    }
    Ok(last.flatten())
}

fn walk_cluster<R: Read + Seek>(
    r: &mut R,
    start: u64,
    end: u64,
    track_number: u64,
    last: &mut Option<Option<i64>>,
) -> io::Result<()> {
    let mut pos = start;
    r.seek(SeekFrom::Start(pos))?;
    while pos < end {
        let e = read_element(r, pos)?;
        let Some(size) = e.size else { return Ok(()) };
        let e_end = e.body.saturating_add(size);
        match e.id {
            ID_SIMPLE_BLOCK if read_vint(r, false)?.0 == track_number => *last = Some(None),
            ID_BLOCK_GROUP => {
                let mut ours = false;
                let mut discard = None;
                let mut p = e.body;
                while p < e_end {
                    let c = read_element(r, p)?;
                    let Some(c_size) = c.size else { break };
                    match c.id {
                        ID_BLOCK => ours = read_vint(r, false)?.0 == track_number,
                        ID_DISCARD_PADDING if c_size <= 8 => {
                            let mut buf = [0u8; 8];
                            r.read_exact(&mut buf[..c_size as usize])?;
                            let raw = buf[..c_size as usize]
                                .iter()
                                .fold(0i64, |acc, &b| (acc << 8) | i64::from(b));
                            // Sign-extend the big-endian integer of `c_size` bytes.
                            let shift = 64 - 8 * c_size as u32;
                            discard = Some(if shift < 64 {
                                (raw << shift) >> shift
                            } else {
                                0
                            });
                        }
                        _ => {}
                    }
                    p = c.body.saturating_add(c_size);
                    r.seek(SeekFrom::Start(p))?;
                }
                if ours {
                    *last = Some(discard);
                }
            }
            _ => {}
        }
        pos = e_end;
        r.seek(SeekFrom::Start(pos))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        // 8-byte size vint: 0x01 marker then 7 bytes.
        v.push(0x01);
        v.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
        v.extend_from_slice(body);
        v
    }

    fn block_group(track: u8, discard: Option<i32>) -> Vec<u8> {
        let mut body = element(&[0xA1], &[0x80 | track, 0, 0, 0, 1, 2, 3]);
        if let Some(d) = discard {
            body.extend(element(&[0x75, 0xA2], &d.to_be_bytes()));
        }
        element(&[0xA0], &body)
    }

    fn file(clusters: &[Vec<u8>]) -> Vec<u8> {
        let mut seg = Vec::new();
        for c in clusters {
            seg.extend(element(&[0x1F, 0x43, 0xB6, 0x75], c));
        }
        [
            element(&[0x1A, 0x45, 0xDF, 0xA3], b"hdr"),
            element(&[0x18, 0x53, 0x80, 0x67], &seg),
        ]
        .concat()
    }

    #[test]
    fn finds_the_padding_of_the_tracks_last_block() {
        let simple = |track: u8| element(&[0xA3], &[0x80 | track, 0, 0, 0, 9]);
        let f = file(&[
            [simple(1), simple(2)].concat(),
            [simple(2), block_group(2, Some(13_500_000)), simple(1)].concat(),
        ]);
        assert_eq!(
            trailing_discard_ns(&mut Cursor::new(&f), 2).ok(),
            Some(Some(13_500_000))
        );
        assert_eq!(
            trailing_discard_ns(&mut Cursor::new(&f), 1).ok(),
            Some(None)
        );
        // Padding on an earlier block does not count once another block follows it.
        let f = file(&[[block_group(1, Some(5)), simple(1)].concat()]);
        assert_eq!(
            trailing_discard_ns(&mut Cursor::new(&f), 1).ok(),
            Some(None)
        );
        // Negative padding is sign-extended.
        let f = file(&[block_group(1, Some(-7))]);
        assert_eq!(
            trailing_discard_ns(&mut Cursor::new(&f), 1).ok(),
            Some(Some(-7))
        );
    }
}
