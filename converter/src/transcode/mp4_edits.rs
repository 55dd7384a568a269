//! The MP4 edit list of the first audio track, read straight from the box tree.
//!
//! symphonia ignores edit lists, but they are how MP4 says "the first 1024 samples are AAC
//! priming and the track is exactly N samples long". Only the small boxes on the way to `elst`
//! are read; everything else (including `mdat`) is seeked over.

use std::io::{self, Read, Seek, SeekFrom};

/// The part of the audio track's media timeline that is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioEdit {
    /// Media time (in `media_timescale` units) where presentation starts.
    pub media_start: u64,
    pub media_timescale: u32,
    /// Presented length in `movie_timescale` units; `None` when the file does not say
    /// (fragmented MP4 writes 0).
    pub duration: Option<u64>,
    pub movie_timescale: u32,
}

impl AudioEdit {
    /// Samples to drop at the start, at `rate`.
    pub fn skip_samples(&self, rate: u32) -> u64 {
        scale(
            self.media_start,
            u64::from(rate),
            u64::from(self.media_timescale),
        )
    }

    /// Samples presented, at `rate`.
    pub fn length_samples(&self, rate: u32) -> Option<u64> {
        self.duration
            .map(|d| scale(d, u64::from(rate), u64::from(self.movie_timescale)))
    }
}

fn scale(value: u64, num: u64, den: u64) -> u64 {
    if den == 0 {
        return 0;
    }
    let wide = u128::from(value) * u128::from(num) + u128::from(den) / 2;
    u64::try_from(wide / u128::from(den)).unwrap_or(u64::MAX)
}

/// What the box tree says about the audio track's edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditInfo {
    /// No edit list: the whole media timeline is presented.
    None,
    /// One presented span.
    Simple(AudioEdit),
    /// Empty edits, several spans or a rate change: not something to reproduce by trimming.
    Complex,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxHeader {
    pub(crate) kind: [u8; 4],
    /// Offset of the payload.
    pub(crate) body: u64,
    /// Offset just past the box.
    pub(crate) end: u64,
}

pub(crate) fn read_box<R: Read + Seek + ?Sized>(
    r: &mut R,
    at: u64,
    limit: u64,
) -> io::Result<Option<BoxHeader>> {
    if at + 8 > limit {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(at))?;
    let mut h = [0u8; 8];
    if let Err(e) = r.read_exact(&mut h) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, header_len) = match size32 {
        0 => (limit - at, 8),
        1 => {
            let mut large = [0u8; 8];
            r.read_exact(&mut large)?;
            (u64::from_be_bytes(large), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "box smaller than its header",
        ));
    }
    Ok(Some(BoxHeader {
        kind,
        body: at + header_len,
        end: (at + size).min(limit),
    }))
}

pub(crate) fn children<R: Read + Seek + ?Sized>(
    r: &mut R,
    parent: BoxHeader,
) -> io::Result<Vec<BoxHeader>> {
    let mut out = Vec::new();
    let mut at = parent.body;
    while let Some(b) = read_box(r, at, parent.end)? {
        out.push(b);
        if b.end <= at {
            break;
        }
        at = b.end;
    }
    Ok(out)
}

pub(crate) fn read_body<R: Read + Seek + ?Sized>(
    r: &mut R,
    b: BoxHeader,
    max: usize,
) -> io::Result<Vec<u8>> {
    let len = usize::try_from(b.end - b.body)
        .unwrap_or(usize::MAX)
        .min(max);
    let mut buf = vec![0u8; len];
    r.seek(SeekFrom::Start(b.body))?;
    r.read_exact(&mut buf)?;
    Ok(buf)
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Media timescale from `mdhd`.
pub(crate) fn mdhd_timescale(body: &[u8]) -> Option<u32> {
    match body.first()? {
        1 => be_u32(body, 20),
        _ => be_u32(body, 12),
    }
}

/// Movie timescale from `mvhd` (same layout as `mdhd` up to the timescale).
fn mvhd_timescale(body: &[u8]) -> Option<u32> {
    mdhd_timescale(body)
}

/// (segment duration, media time, rate) entries of an `elst`.
fn elst_entries(body: &[u8]) -> Option<Vec<(u64, i64, u32)>> {
    let version = *body.first()?;
    let count = be_u32(body, 4)? as usize;
    let entry_len = if version == 1 { 20 } else { 12 };
    let mut out = Vec::with_capacity(count.min(16));
    for i in 0..count {
        let at = 8 + i * entry_len;
        let entry = if version == 1 {
            (
                be_u64(body, at)?,
                be_u64(body, at + 8)? as i64,
                be_u32(body, at + 16)?,
            )
        } else {
            (
                u64::from(be_u32(body, at)?),
                i64::from(be_u32(body, at + 4)? as i32),
                be_u32(body, at + 8)?,
            )
        };
        out.push(entry);
    }
    Some(out)
}

/// Reads the edit list of the first sound track. `len` is the file length if known.
pub fn read_audio_edit<R: Read + Seek + ?Sized>(
    r: &mut R,
    len: Option<u64>,
) -> io::Result<EditInfo> {
    let limit = match len {
        Some(l) => l,
        None => r.seek(SeekFrom::End(0))?,
    };
    let root = BoxHeader {
        kind: *b"root",
        body: 0,
        end: limit,
    };
    let Some(moov) = children(r, root)?.into_iter().find(|b| &b.kind == b"moov") else {
        return Ok(EditInfo::None);
    };
    let moov_children = children(r, moov)?;
    let movie_timescale = match moov_children.iter().find(|b| &b.kind == b"mvhd") {
        Some(b) => mvhd_timescale(&read_body(r, *b, 32)?),
        None => None,
    };
    for trak in moov_children.iter().filter(|b| &b.kind == b"trak") {
        let trak_children = children(r, *trak)?;
        let Some(mdia) = trak_children.iter().find(|b| &b.kind == b"mdia") else {
            continue;
        };
        let mdia_children = children(r, *mdia)?;
        let is_sound = match mdia_children.iter().find(|b| &b.kind == b"hdlr") {
            Some(h) => read_body(r, *h, 12)?.get(8..12) == Some(b"soun".as_slice()),
            None => false,
        };
        if !is_sound {
            continue;
        }
        let media_timescale = match mdia_children.iter().find(|b| &b.kind == b"mdhd") {
            Some(b) => mdhd_timescale(&read_body(r, *b, 32)?),
            None => None,
        };
        let Some(edts) = trak_children.iter().find(|b| &b.kind == b"edts") else {
            return Ok(EditInfo::None);
        };
        let Some(elst) = children(r, *edts)?.into_iter().find(|b| &b.kind == b"elst") else {
            return Ok(EditInfo::None);
        };
        let body = read_body(r, elst, 8 + 20 * 64)?;
        let (Some(entries), Some(media_timescale), Some(movie_timescale)) =
            (elst_entries(&body), media_timescale, movie_timescale)
        else {
            return Ok(EditInfo::Complex);
        };
        return Ok(match entries.as_slice() {
            [] => EditInfo::None,
            [(duration, media_time, rate)] if *media_time >= 0 && *rate == 0x0001_0000 => {
                EditInfo::Simple(AudioEdit {
                    media_start: *media_time as u64,
                    media_timescale,
                    duration: (*duration > 0).then_some(*duration),
                    movie_timescale,
                })
            }
            _ => EditInfo::Complex,
        });
    }
    Ok(EditInfo::None)
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

    fn timescale_box(kind: &[u8; 4], timescale: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        mp4_box(kind, &body)
    }

    fn movie(edits: &[(u32, i32)], handler: &[u8; 4]) -> Vec<u8> {
        let mut elst = vec![0, 0, 0, 0];
        elst.extend_from_slice(&(edits.len() as u32).to_be_bytes());
        for (duration, media_time) in edits {
            elst.extend_from_slice(&duration.to_be_bytes());
            elst.extend_from_slice(&media_time.to_be_bytes());
            elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0; 12]);
        let mdia = [timescale_box(b"mdhd", 44100), mp4_box(b"hdlr", &hdlr)].concat();
        let trak = [
            mp4_box(b"tkhd", &[0; 84]),
            mp4_box(b"edts", &mp4_box(b"elst", &elst)),
            mp4_box(b"mdia", &mdia),
        ]
        .concat();
        let moov = [timescale_box(b"mvhd", 1000), mp4_box(b"trak", &trak)].concat();
        [
            mp4_box(b"ftyp", b"isom\0\0\x02\0"),
            mp4_box(b"mdat", &[0xAB; 1000]),
            mp4_box(b"moov", &moov),
        ]
        .concat()
    }

    #[test]
    fn reads_aac_priming_and_length_from_a_moov_at_the_end() {
        let file = movie(&[(3000, 1024)], b"soun");
        let info = read_audio_edit(&mut Cursor::new(&file), None).expect("parse");
        let EditInfo::Simple(edit) = info else {
            panic!("expected one edit, got {info:?}");
        };
        assert_eq!(edit.skip_samples(44100), 1024);
        assert_eq!(edit.length_samples(44100), Some(132_300));
        // At another decode rate the same edit scales.
        assert_eq!(edit.skip_samples(88200), 2048);
    }

    #[test]
    fn ignores_video_tracks_and_flags_complex_edits() {
        let video_only = movie(&[(3000, 1024)], b"vide");
        assert_eq!(
            read_audio_edit(&mut Cursor::new(&video_only), None).expect("parse"),
            EditInfo::None
        );
        let empty_edit_first = movie(&[(500, -1), (3000, 1024)], b"soun");
        assert_eq!(
            read_audio_edit(&mut Cursor::new(&empty_edit_first), None).expect("parse"),
            EditInfo::Complex
        );
        let open_ended = movie(&[(0, 1024)], b"soun");
        let EditInfo::Simple(edit) =
            read_audio_edit(&mut Cursor::new(&open_ended), None).expect("parse")
        else {
            panic!("expected one edit");
        };
        assert_eq!(edit.length_samples(44100), None);
    }

    #[test]
    fn a_truncated_moov_yields_no_trim() {
        let file = movie(&[(3000, 1024)], b"soun");
        for cut in [0, 7, 30, file.len() - 40] {
            let r = read_audio_edit(&mut Cursor::new(&file[..cut]), None);
            assert!(!matches!(r, Ok(EditInfo::Simple(_))), "cut at {cut}: {r:?}");
        }
    }
}
