//! The front cover: the source's attached picture if it has one, else a frame from about 10 %
//! into its video. A JPEG or PNG that fits the budget is kept byte for byte; anything else (a
//! larger picture, another format, every video frame) becomes a JPEG of at most
//! [`COVER_MAX_SIDE`] pixels made by ffmpeg, under the same limits as the decoder
//! ([`limited`]) and a shorter time limit. A cover that cannot be made is left out and logged:
//! it never fails the job.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use tracing::{debug, warn};

use super::{SourceMetadata, SourcePicture, TagOptions};
use crate::transcode::decode_ffmpeg::{
    Captured, FfmpegLimits, confined_input, file_url, limited, run_bounded,
};
use crate::transcode::error::TranscodeError;

/// A cover keeps at most this many bytes (less when chapters leave less room in the tag).
pub const MAX_COVER_BYTES: usize = 128 * 1024;
/// A cover made by ffmpeg fits in a square of this many pixels.
pub const COVER_MAX_SIDE: u32 = 600;
/// One cover run decodes one picture; anything slower is stuck.
const COVER_TIMEOUT: Duration = Duration::from_secs(60);
/// JPEG qualities tried in turn until the picture fits (ffmpeg's `-q:v`: 2 is best, 31 worst).
const JPEG_QUALITIES: [u8; 3] = [3, 8, 20];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverSource {
    /// The source's own picture (kept, or scaled to fit).
    Attached,
    /// A frame of the source's video.
    Frame,
}

impl fmt::Display for CoverSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoverSource::Attached => "from the attached picture",
            CoverSource::Frame => "from a video frame",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    pub mime: &'static str,
    pub data: Vec<u8>,
    pub source: CoverSource,
}

/// The picture's type from its first bytes: only JPEG and PNG go into a tag as they are (what
/// every player shows).
pub fn image_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// What ffmpeg may open a picture from a tag as (a file of the picture's bytes): image demuxers
/// only, so bytes of the uploader's choosing are never read as a playlist naming other files.
const PICTURE_DEMUXERS: &str = "jpeg_pipe,png_pipe,bmp_pipe,webp_pipe,tiff_pipe,gif,gif_pipe";

/// The cover for `source`, at most `budget` bytes. `media` is the source as a file (needed for
/// a frame and for a picture ffmpeg extracts), opened with one of `demuxers` only (the sniffed
/// container's, as the decoder does); `duration` where to take the frame from.
pub fn make(
    source: &SourceMetadata,
    media: Option<&Path>,
    demuxers: &str,
    duration: Option<Duration>,
    budget: usize,
    opts: &TagOptions,
    limits: &FfmpegLimits,
) -> Option<Cover> {
    let budget = budget.min(MAX_COVER_BYTES);
    let limits = FfmpegLimits {
        timeout: limits.timeout.min(COVER_TIMEOUT),
        ..limits.clone()
    };
    if let Some(picture) = &source.picture {
        match attached(picture, media, demuxers, budget, &limits) {
            Ok(Some(data)) => return Some(data),
            Ok(None) => warn!("the attached picture gave no cover"),
            Err(e) => warn!(error = %e, "the attached picture cannot be the cover"),
        }
    }
    if !(source.video && opts.frame_cover) {
        return None;
    }
    let Some(path) = media else {
        debug!("no file to take a cover frame from");
        return None;
    };
    // About 10 % in skips titles and fades; a file whose stated length is wrong gets its start.
    let tenth = duration.map(|d| d / 10).filter(|d| !d.is_zero());
    for at in [tenth, None] {
        match jpeg(path, demuxers, at, "0:V:0", budget, &limits) {
            Ok(Some(data)) => {
                return Some(Cover {
                    mime: "image/jpeg",
                    data,
                    source: CoverSource::Frame,
                });
            }
            Ok(None) if at.is_some() => debug!(?at, "no frame there; trying the first"),
            Ok(None) => warn!("the video gave no frame for a cover"),
            Err(e) => {
                warn!(error = %e, "no cover frame");
                return None;
            }
        }
    }
    None
}

fn attached(
    picture: &SourcePicture,
    media: Option<&Path>,
    demuxers: &str,
    budget: usize,
    limits: &FfmpegLimits,
) -> Result<Option<Cover>, TranscodeError> {
    let cover = |data: Vec<u8>, mime| Cover {
        mime,
        data,
        source: CoverSource::Attached,
    };
    let scaled = match picture {
        SourcePicture::Bytes(data) => {
            if data.len() <= budget
                && let Some(mime) = image_mime(data)
            {
                return Ok(Some(cover(data.clone(), mime)));
            }
            let mut file = tempfile::NamedTempFile::new().map_err(TranscodeError::Input)?;
            file.write_all(data)
                .and_then(|()| file.flush())
                .map_err(TranscodeError::Input)?;
            jpeg(file.path(), PICTURE_DEMUXERS, None, "0:v:0", budget, limits)?
        }
        SourcePicture::Stream(index) => {
            let Some(path) = media else {
                return Ok(None);
            };
            let map = format!("0:{index}");
            // As stored, when it is a JPEG or PNG that fits.
            let mut cmd = limited(&limits.ffmpeg, limits);
            cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
            confined_input(&mut cmd, demuxers);
            cmd.arg("-i")
                .arg(file_url(path))
                .args(["-map", &map, "-c", "copy", "-frames:v", "1"])
                .args(["-f", "image2pipe", "pipe:1"]);
            if let Captured::Output(data) = run_bounded(cmd, limits, budget)?
                && let Some(mime) = image_mime(&data)
            {
                return Ok(Some(cover(data, mime)));
            }
            jpeg(path, demuxers, None, &map, budget, limits)?
        }
    };
    Ok(scaled.map(|data| cover(data, "image/jpeg")))
}

/// One picture of stream `map` (at `seek`) as a JPEG within `budget` bytes, trying lower
/// qualities until it fits; `None` when there is no picture there or none fits.
fn jpeg(
    path: &Path,
    demuxers: &str,
    seek: Option<Duration>,
    map: &str,
    budget: usize,
    limits: &FfmpegLimits,
) -> Result<Option<Vec<u8>>, TranscodeError> {
    let side = COVER_MAX_SIDE;
    let scale =
        format!("scale=w='min({side},iw)':h='min({side},ih)':force_original_aspect_ratio=decrease");
    for quality in JPEG_QUALITIES {
        let mut cmd = limited(&limits.ffmpeg, limits);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if let Some(at) = seek {
            // Before -i: the demuxer seeks to the keyframe before it instead of decoding there.
            cmd.args(["-ss", &format!("{:.3}", at.as_secs_f64())]);
        }
        confined_input(&mut cmd, demuxers);
        cmd.arg("-i")
            .arg(file_url(path))
            .args([
                "-map",
                map,
                "-frames:v",
                "1",
                "-an",
                "-sn",
                "-dn",
                "-vf",
                &scale,
            ])
            .args(["-c:v", "mjpeg", "-q:v", &quality.to_string()])
            .args(["-f", "image2pipe", "pipe:1"]);
        match run_bounded(cmd, limits, budget)? {
            Captured::Output(data) if image_mime(&data) == Some("image/jpeg") => {
                return Ok(Some(data));
            }
            Captured::Output(_) => return Ok(None),
            Captured::TooLong => debug!(quality, budget, "the cover is too large; lower quality"),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jpeg_and_png_are_kept_as_they_are() {
        assert_eq!(image_mime(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_mime(b"GIF89a"), None);
        assert_eq!(image_mime(b""), None);
    }
}
