//! The fast path: symphonia, in process, for a whitelist of containers and codecs it decodes
//! exactly.
//!
//! symphonia does not apply MP4 edit lists (AAC priming and the true track length), so they are
//! read separately ([`super::mp4_edits`]) and applied here. Anything off the whitelist, any
//! decode error, and any shortfall against the length the container states is reported as a
//! [`GaveUp`] so the caller can hand the file to ffmpeg instead.

use std::sync::OnceLock;

use symphonia::core::codecs::audio::well_known::profiles::CODEC_PROFILE_AAC_LC;
use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AAC, CODEC_ID_ALAC, CODEC_ID_FLAC, CODEC_ID_MP3, CODEC_ID_OPUS, CODEC_ID_VORBIS,
};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia_adapter_libopus::OpusDecoder;
use tracing::debug;

use super::input::MediaInput;
use super::mkv_padding::trailing_discard_ns;
use super::mp4_edits::{EditInfo, read_audio_edit};
use super::pcm::PcmFormat;
use super::sniff::Container;
use super::tags::{SourceMetadata, from_symphonia, mkv_title, mp4_chapters};

/// Why the fast path declined or stopped; the file goes to ffmpeg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GaveUp(pub String);

fn gave_up(why: impl Into<String>) -> GaveUp {
    GaveUp(why.into())
}

fn codecs() -> &'static CodecRegistry {
    static REGISTRY: OnceLock<CodecRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder::<OpusDecoder>();
        registry
    })
}

/// Codecs the fast path takes in each container.
fn whitelisted(
    container: Container,
    params: &AudioCodecParameters,
) -> Result<&'static str, GaveUp> {
    let codec = params.codec;
    let name = match container {
        Container::IsoMp4 if codec == CODEC_ID_AAC => {
            check_aac_lc(params)?;
            "aac"
        }
        Container::IsoMp4 if codec == CODEC_ID_MP3 => "mp3",
        Container::IsoMp4 if codec == CODEC_ID_ALAC => "alac",
        Container::Matroska | Container::Ogg if codec == CODEC_ID_OPUS => "opus",
        Container::Matroska | Container::Ogg if codec == CODEC_ID_VORBIS => "vorbis",
        Container::Matroska | Container::Ogg | Container::Flac if codec == CODEC_ID_FLAC => "flac",
        Container::MpegAudio if codec == CODEC_ID_MP3 => "mp3",
        Container::Wav => {
            let info = codecs()
                .get_audio_decoder(codec)
                .map(|d| d.codec.info.short_name)
                .unwrap_or("");
            if !info.starts_with("pcm") {
                return Err(gave_up(format!("WAV codec {info:?} is not PCM")));
            }
            "pcm"
        }
        _ => {
            return Err(gave_up(format!(
                "codec {codec:?} in {container:?} is not whitelisted"
            )));
        }
    };
    if let Some(ch) = &params.channels
        && ch.count() > 2
    {
        // ffmpeg downmixes with the standard matrices for each layout.
        return Err(gave_up(format!("{} channels", ch.count())));
    }
    Ok(name)
}

/// AAC-LC only: HE-AAC (SBR/PS) would decode at half rate without its high band.
fn check_aac_lc(params: &AudioCodecParameters) -> Result<(), GaveUp> {
    let object_type = params
        .extra_data
        .as_deref()
        .and_then(|asc| asc.first())
        .map(|b| b >> 3);
    match object_type {
        Some(2) => {}
        Some(other) => return Err(gave_up(format!("AAC object type {other} is not LC"))),
        None if params.profile == Some(CODEC_PROFILE_AAC_LC) => {}
        None => return Err(gave_up("AAC profile unknown")),
    }
    // HE-AAC may hide behind an LC signature (implicit SBR), and then the core runs at ≤ 24 kHz.
    match params.sample_rate {
        Some(rate) if rate > 24000 => Ok(()),
        other => Err(gave_up(format!(
            "AAC-LC at {other:?} Hz may carry implicit SBR"
        ))),
    }
}

/// Padding declared at the end of the first Matroska audio track. Any failure just means no trim.
fn trailing_padding(input: &mut MediaInput) -> Option<u64> {
    let probe_source = input.media_source().ok()?;
    let mss = MediaSourceStream::new(Box::new(probe_source), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mkv");
    let reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .ok()?;
    let track = u64::from(reader.default_track(TrackType::Audio)?.id);
    drop(reader);
    match trailing_discard_ns(input.reader(), track) {
        Ok(Some(ns)) if ns > 0 => u64::try_from(ns).ok(),
        Ok(_) => None,
        Err(e) => {
            debug!(error = %e, "cannot walk the Matroska blocks; no end trim");
            None
        }
    }
}

/// The largest leading ID3v2 tag the fast path reads (into memory).
const MAX_LEADING_ID3_BYTES: u64 = 8 << 20;

/// The size of an ID3v2 tag at the start of the input (header included), or 0.
fn leading_id3_len(r: &mut dyn super::input::ReadSeek) -> std::io::Result<u64> {
    use std::io::SeekFrom;
    r.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 10];
    let mut filled = 0;
    while filled < head.len() {
        match r.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    r.seek(SeekFrom::Start(0))?;
    if filled < head.len() || &head[..3] != b"ID3" {
        return Ok(0);
    }
    // A synchsafe integer: 7 bits per byte.
    let size = head[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7F));
    Ok(10 + size)
}

/// A running fast-path decode.
pub struct NativeDecode<'a> {
    reader: Box<dyn FormatReader + 'a>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    format: PcmFormat,
    codec: &'static str,
    /// Samples still to drop at the start (MP4 edit list).
    skip: u64,
    /// The container's stated length after trimming, when it states one.
    expected: Option<u64>,
    emitted: u64,
    /// The first decoded buffer, decoded while opening to learn the format.
    first: Option<Vec<f32>>,
    /// Samples at the very end that are padding (Matroska `DiscardPadding`); they are held back
    /// until the end is reached, then dropped.
    trim_end: usize,
    held: Vec<f32>,
    metadata: SourceMetadata,
}

impl<'a> NativeDecode<'a> {
    /// Opens the container, checks the codec against the whitelist and decodes up to the first
    /// audio so the output format is known.
    pub fn open(input: &'a mut MediaInput, container: Container) -> Result<Self, GaveUp> {
        let ext = container
            .extension()
            .ok_or_else(|| gave_up(format!("{container:?} has no fast path")))?;
        let edit = if container == Container::IsoMp4 {
            let len = input.len();
            read_audio_edit(input.reader(), len)
                .map_err(|e| gave_up(format!("reading the MP4 boxes: {e}")))?
        } else {
            EditInfo::None
        };
        if edit == EditInfo::Complex {
            return Err(gave_up("the MP4 edit list is not a single span"));
        }
        let trailing_padding_ns = if container == Container::Matroska {
            trailing_padding(input)
        } else {
            None
        };
        // symphonia reads a leading ID3v2 tag whole, whatever it claims: a large one (a crafted
        // picture) is left to ffmpeg, which runs under its own memory limit.
        let id3_len = leading_id3_len(input.reader())
            .map_err(|e| gave_up(format!("reading the start: {e}")))?;
        if id3_len > MAX_LEADING_ID3_BYTES {
            return Err(gave_up(format!(
                "an ID3 tag of {id3_len} bytes (over {MAX_LEADING_ID3_BYTES})"
            )));
        }
        // What symphonia 0.6 does not report: MP4 chapters and the Matroska segment title.
        // Neither is worth failing the fast path for.
        let mut metadata = SourceMetadata::default();
        match container {
            Container::IsoMp4 => {
                let len = input.len();
                match mp4_chapters::read_chapters(input.reader(), len) {
                    Ok(chapters) => metadata.chapters = chapters,
                    Err(e) => debug!(error = %e, "cannot read the MP4 chapters"),
                }
            }
            Container::Matroska => match mkv_title::segment_title(input.reader()) {
                Ok(title) => metadata.title = title,
                Err(e) => debug!(error = %e, "cannot read the Matroska title"),
            },
            _ => {}
        }
        let source = input
            .media_source()
            .map_err(|e| gave_up(format!("rewinding the input: {e}")))?;
        let mss = MediaSourceStream::new(Box::new(source), Default::default());
        let mut hint = Hint::new();
        hint.with_extension(ext);
        let mut reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| gave_up(format!("probe: {e}")))?;
        metadata.fill_from(from_symphonia::read(&mut *reader));
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| gave_up("no audio track symphonia can read"))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| gave_up("the audio track has no codec parameters"))?
            .clone();
        let codec = whitelisted(container, &params)?;
        let track_id = track.id;
        // Fragmented MP4 states 0 frames in its (empty) moov: that is "unknown", not "silent".
        let mut num_frames = track.num_frames.filter(|&n| n > 0);
        if container == Container::Ogg && codec == "opus" {
            // The Ogg reader counts the Opus pre-skip in the track length, which the decoder
            // has already removed.
            num_frames = num_frames.map(|n| n.saturating_sub(u64::from(track.delay.unwrap_or(0))));
        }
        let decoder = codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| gave_up(format!("decoder: {e}")))?;

        let mut this = NativeDecode {
            reader,
            decoder,
            track_id,
            format: PcmFormat {
                sample_rate: 0,
                channels: 0,
            },
            codec,
            skip: 0,
            expected: None,
            emitted: 0,
            first: None,
            trim_end: 0,
            held: Vec::new(),
            metadata,
        };
        let first = this
            .decode_next()?
            .ok_or_else(|| gave_up("the audio track has no packets"))?;
        this.first = Some(first);
        let rate = this.format.sample_rate;
        if let Some(ns) = trailing_padding_ns {
            // Only the Matroska track that symphonia picked matters; ids are track numbers.
            this.trim_end =
                usize::try_from((u128::from(ns) * u128::from(rate) + 500_000_000) / 1_000_000_000)
                    .unwrap_or(0);
        }
        match edit {
            EditInfo::Simple(e) => {
                this.skip = e.skip_samples(rate);
                this.expected = e
                    .length_samples(rate)
                    .or_else(|| num_frames.map(|n| n.saturating_sub(this.skip)));
            }
            EditInfo::None | EditInfo::Complex => this.expected = num_frames,
        }
        debug!(
            codec,
            rate,
            channels = this.format.channels,
            skip = this.skip,
            expected = ?this.expected,
            "fast path opened"
        );
        Ok(this)
    }

    pub fn format(&self) -> PcmFormat {
        self.format
    }

    pub fn codec(&self) -> &'static str {
        self.codec
    }

    /// The source's tags, chapters, pictures and whether it has video, as this path reads them.
    pub fn source_metadata(&self) -> &SourceMetadata {
        &self.metadata
    }

    /// How long the container says the track is (after trimming), when it says.
    pub fn stated_duration(&self) -> Option<std::time::Duration> {
        self.expected
            .and_then(|samples| super::samples_to_duration(samples, self.format.sample_rate))
    }

    /// Decodes the next packet of our track into interleaved samples; `None` at the end.
    fn decode_next(&mut self) -> Result<Option<Vec<f32>>, GaveUp> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(SymphoniaError::ResetRequired) => {
                    return Err(gave_up("the stream changed its track layout"));
                }
                Err(e) => return Err(gave_up(format!("demuxing: {e}"))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = self
                .decoder
                .decode(&packet)
                .map_err(|e| gave_up(format!("decoding: {e}")))?;
            let spec = decoded.spec();
            let channels = spec.channels().count();
            let rate = spec.rate();
            let channels_u8 = u8::try_from(channels).unwrap_or(u8::MAX);
            if self.format.sample_rate == 0 {
                if !(1..=2).contains(&channels) {
                    return Err(gave_up(format!("{channels} decoded channels")));
                }
                self.format = PcmFormat {
                    sample_rate: rate,
                    channels: channels_u8,
                };
            } else if self.format.sample_rate != rate || self.format.channels != channels_u8 {
                return Err(gave_up("the audio format changes mid-stream"));
            }
            let mut out = Vec::new();
            decoded.copy_to_vec_interleaved(&mut out);
            if out.is_empty() {
                continue;
            }
            return Ok(Some(out));
        }
    }

    /// Appends the next samples to `out`; `Ok(false)` at the end of the track.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, GaveUp> {
        let ch = usize::from(self.format.channels);
        let mut buf = match self.first.take() {
            Some(b) => b,
            None => match self.decode_next()? {
                Some(b) => b,
                None => return self.end().map(|()| false),
            },
        };
        let mut frames = (buf.len() / ch) as u64;
        if self.skip > 0 {
            let drop = self.skip.min(frames);
            self.skip -= drop;
            buf.drain(..drop as usize * ch);
            frames -= drop;
        }
        if let Some(expected) = self.expected {
            // The container's length ends the track: what follows is encoder padding.
            let room = expected.saturating_sub(self.emitted);
            if frames > room {
                buf.truncate(room as usize * ch);
                frames = room;
            }
        }
        if self.trim_end > 0 {
            self.held.extend_from_slice(&buf);
            let release = (self.held.len() / ch).saturating_sub(self.trim_end);
            buf.clear();
            buf.extend(self.held.drain(..release * ch));
            frames = release as u64;
        }
        self.emitted += frames;
        out.extend_from_slice(&buf);
        Ok(true)
    }

    fn end(&self) -> Result<(), GaveUp> {
        if self.emitted == 0 {
            return Err(gave_up("no samples decoded"));
        }
        match self.expected {
            Some(expected) if self.emitted < expected => Err(gave_up(format!(
                "decoded {} of the {expected} samples the container states",
                self.emitted
            ))),
            _ => Ok(()),
        }
    }
}
