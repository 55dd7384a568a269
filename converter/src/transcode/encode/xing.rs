//! The Xing/LAME "Info" frame that leads the mp3: frame and byte counts, a seek table, and the
//! encoder delay and padding that let players cut the stream to the source's exact length.
//!
//! It is written by us rather than by LAME because the stream is encoded by several LAME
//! instances at once, none of which sees every frame.

use super::frame::{FrameHeader, MpegVersion};

/// Everything the tag reports about a finished stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Number of audio frames, not counting the tag frame.
    pub frames: u32,
    /// Bytes of audio frames, not counting the tag frame.
    pub audio_bytes: u64,
    /// CRC-16 of all audio frames.
    pub audio_crc: u16,
    /// Samples per channel the encoder prepended (LAME: 576).
    pub encoder_delay: u32,
    /// Samples per channel appended after the source's last sample to fill the last frame.
    pub padding: u32,
    /// Xing seek table: for each percent of duration, the byte position scaled to 0..=255.
    pub toc: [u8; 100],
}

/// What the tag says about the encoding, fixed before the first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagLayout {
    pub sample_rate: u32,
    pub channels: u8,
    /// `None` for VBR.
    pub cbr_kbps: Option<u32>,
    pub lowpass_hz: u32,
    /// LAME's "quality" figure: 100 − 10 × VBR level − algorithm quality.
    pub quality: u32,
    /// VBR: the minimum bitrate; CBR: the bitrate.
    pub bitrate_field_kbps: u32,
    pub ath_type: u32,
}

const XING_FIELDS_LEN: usize = 4 + 4 + 4 + 4 + 100 + 4;
const LAME_EXTENSION_LEN: usize = 36;

impl TagLayout {
    fn header(&self) -> Result<FrameHeader, String> {
        let version = MpegVersion::for_sample_rate(self.sample_rate)
            .ok_or_else(|| format!("{} Hz is not an MP3 sample rate", self.sample_rate))?;
        // The same bitrates LAME uses for its own tag frame, big enough for all fields.
        let vbr_kbps = match version {
            MpegVersion::V1 => 128,
            MpegVersion::V2 => 64,
            MpegVersion::V25 => 32,
        };
        let mono = self.channels == 1;
        let needed =
            4 + version.side_info_len(self.channels) + XING_FIELDS_LEN + LAME_EXTENSION_LEN;
        let candidate = |kbps: u32| FrameHeader {
            version,
            bitrate_kbps: kbps,
            sample_rate: self.sample_rate,
            padded: false,
            mono,
        };
        // A CBR stream's tag frame has the stream's bitrate so CBR-only players see no change.
        if let Some(kbps) = self.cbr_kbps {
            let h = candidate(kbps);
            if h.encode().is_some() && h.frame_len() >= needed {
                return Ok(h);
            }
        }
        Ok(candidate(vbr_kbps))
    }

    /// Length of the tag frame; the sink reserves this many bytes up front.
    pub fn frame_len(&self) -> Result<usize, String> {
        Ok(self.header()?.frame_len())
    }

    /// The tag frame for `summary`.
    pub fn build(&self, summary: &StreamSummary) -> Result<Vec<u8>, String> {
        let header = self.header()?;
        let mut frame = vec![0u8; header.frame_len()];
        let header_bytes = header
            .encode()
            .ok_or_else(|| "cannot encode the tag frame header".to_owned())?;
        frame[..4].copy_from_slice(&header_bytes);
        let mut at = 4 + header.version.side_info_len(self.channels);
        fn put_at(frame: &mut [u8], at: &mut usize, bytes: &[u8]) {
            frame[*at..*at + bytes.len()].copy_from_slice(bytes);
            *at += bytes.len();
        }

        let total_bytes = u32::try_from(summary.audio_bytes + frame.len() as u64)
            .map_err(|_| "the mp3 is larger than 4 GiB".to_owned())?;
        let magic: &[u8; 4] = if self.cbr_kbps.is_some() {
            b"Info"
        } else {
            b"Xing"
        };
        put_at(&mut frame, &mut at, magic);
        put_at(&mut frame, &mut at, &0x0000_000Fu32.to_be_bytes()); // frames, bytes, TOC, quality present
        put_at(&mut frame, &mut at, &summary.frames.to_be_bytes());
        put_at(&mut frame, &mut at, &total_bytes.to_be_bytes());
        put_at(&mut frame, &mut at, &summary.toc);
        put_at(&mut frame, &mut at, &self.quality.to_be_bytes());

        if summary.encoder_delay > 0xFFF || summary.padding > 0xFFF {
            return Err(format!(
                "delay {} or padding {} does not fit the LAME tag",
                summary.encoder_delay, summary.padding
            ));
        }
        let vbr_method: u8 = if self.cbr_kbps.is_some() { 1 } else { 4 };
        let lowpass = u8::try_from((self.lowpass_hz + 50) / 100).unwrap_or(u8::MAX);
        let ath = u8::try_from(self.ath_type & 0x0F).unwrap_or(0);
        let bitrate = u8::try_from(self.bitrate_field_kbps).unwrap_or(u8::MAX);
        let delay_padding = (summary.encoder_delay << 12) | summary.padding;
        let stereo_mode: u8 = if self.channels == 1 { 0 } else { 3 };
        let source_rate: u8 = match self.sample_rate {
            0..=32000 => 0,
            44100 => 1,
            48000 => 2,
            _ => 3,
        };
        let noise_shaping = 1u8;
        let misc = noise_shaping | (stereo_mode << 2) | (source_rate << 6);

        put_at(&mut frame, &mut at, b"LAME3.100");
        put_at(&mut frame, &mut at, &[vbr_method, lowpass]);
        put_at(&mut frame, &mut at, &[0; 4]); // peak amplitude: not measured
        put_at(&mut frame, &mut at, &[0; 4]); // radio and audiophile replay gain: not measured
        put_at(&mut frame, &mut at, &[ath, bitrate]);
        put_at(&mut frame, &mut at, &delay_padding.to_be_bytes()[1..]);
        put_at(&mut frame, &mut at, &[misc, 0]); // misc, mp3 gain
        put_at(&mut frame, &mut at, &[0; 2]); // surround and preset
        put_at(&mut frame, &mut at, &total_bytes.to_be_bytes());
        put_at(&mut frame, &mut at, &summary.audio_crc.to_be_bytes());
        let tag_crc = crc16(0, &frame[..at]);
        put_at(&mut frame, &mut at, &tag_crc.to_be_bytes());
        Ok(frame)
    }
}

/// Builds the Xing seek table from audio frame lengths, with positions counted from the start of
/// the file (the tag frame included), as players read it.
pub fn seek_table(frame_lens: &[u16], tag_len: usize) -> [u8; 100] {
    let mut toc = [0u8; 100];
    let audio_bytes: u64 = frame_lens.iter().map(|&l| u64::from(l)).sum();
    let total = audio_bytes + tag_len as u64;
    if frame_lens.is_empty() || total == 0 {
        return toc;
    }
    let mut offsets = Vec::with_capacity(frame_lens.len());
    let mut pos = tag_len as u64;
    for &len in frame_lens {
        offsets.push(pos);
        pos += u64::from(len);
    }
    for (i, slot) in toc.iter_mut().enumerate() {
        let frame = i * frame_lens.len() / 100;
        let position = offsets[frame.min(offsets.len() - 1)];
        *slot = u8::try_from(position * 256 / total).unwrap_or(u8::MAX);
    }
    toc
}

const CRC16_TABLE: [u16; 256] = {
    // CRC-16/ARC (reflected polynomial 0x8005), the CRC the LAME tag uses.
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Continues a CRC-16/ARC over `bytes`.
pub fn crc16(mut crc: u16, bytes: &[u8]) -> u16 {
    for &b in bytes {
        crc = (crc >> 8) ^ CRC16_TABLE[usize::from((crc ^ u16::from(b)) & 0xFF)];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(rate: u32, channels: u8, cbr: Option<u32>) -> TagLayout {
        TagLayout {
            sample_rate: rate,
            channels,
            cbr_kbps: cbr,
            lowpass_hz: 19_500,
            quality: 75,
            bitrate_field_kbps: 32,
            ath_type: 4,
        }
    }

    #[test]
    fn crc16_matches_the_arc_check_value() {
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
        assert_eq!(crc16(crc16(0, b"1234"), b"56789"), 0xBB3D);
    }

    #[test]
    fn tag_fields_sit_where_decoders_read_them() {
        let l = layout(44100, 2, None);
        let toc: [u8; 100] = std::array::from_fn(|i| (i * 2) as u8);
        let summary = StreamSummary {
            frames: 1234,
            audio_bytes: 400_000,
            audio_crc: 0xBEEF,
            encoder_delay: 576,
            padding: 1000,
            toc,
        };
        let f = l.build(&summary).expect("tag");
        assert_eq!(f.len(), 417, "128 kbit/s at 44.1 kHz");
        let h = FrameHeader::parse(&f).expect("a valid frame header");
        assert_eq!((h.sample_rate, h.mono), (44100, false));
        let x = 4 + 32;
        assert_eq!(&f[x..x + 4], b"Xing");
        assert_eq!(&f[x + 4..x + 8], &[0, 0, 0, 0x0F]);
        assert_eq!(
            u32::from_be_bytes([f[x + 8], f[x + 9], f[x + 10], f[x + 11]]),
            1234
        );
        assert_eq!(
            u32::from_be_bytes([f[x + 12], f[x + 13], f[x + 14], f[x + 15]]),
            400_417
        );
        assert_eq!(&f[x + 16..x + 116], &toc);
        assert_eq!(&f[x + 116..x + 120], &75u32.to_be_bytes());
        let lame = x + 120;
        assert_eq!(&f[lame..lame + 9], b"LAME3.100");
        assert_eq!(f[lame + 9], 4, "VBR method: mtrh");
        assert_eq!(f[lame + 10], 195, "lowpass in 100 Hz");
        // Delay and padding: 12 bits each, 21 bytes into the LAME extension.
        let dp = &f[lame + 21..lame + 24];
        let delay = (u32::from(dp[0]) << 4) | (u32::from(dp[1]) >> 4);
        let padding = ((u32::from(dp[1]) & 0x0F) << 8) | u32::from(dp[2]);
        assert_eq!((delay, padding), (576, 1000));
        assert_eq!(&f[lame + 28..lame + 32], &400_417u32.to_be_bytes());
        assert_eq!(&f[lame + 32..lame + 34], &[0xBE, 0xEF]);
        let crc = u16::from_be_bytes([f[lame + 34], f[lame + 35]]);
        assert_eq!(
            crc,
            crc16(0, &f[..190]),
            "tag CRC covers the first 190 bytes"
        );
    }

    #[test]
    fn cbr_streams_get_an_info_tag_at_their_bitrate_and_mono_a_short_side_info() {
        let f = layout(48000, 1, Some(192)).build(&StreamSummary {
            frames: 1,
            audio_bytes: 576,
            audio_crc: 0,
            encoder_delay: 576,
            padding: 0,
            toc: [0; 100],
        });
        let f = f.expect("tag");
        let h = FrameHeader::parse(&f).expect("header");
        assert_eq!(h.bitrate_kbps, 192);
        assert!(h.mono);
        assert_eq!(&f[4 + 17..4 + 21], b"Info");
        assert_eq!(f[4 + 17 + 120 + 9], 1, "VBR method: CBR");
    }

    #[test]
    fn rejects_what_does_not_fit() {
        let summary = StreamSummary {
            frames: 1,
            audio_bytes: 0,
            audio_crc: 0,
            encoder_delay: 576,
            padding: 5000,
            toc: [0; 100],
        };
        assert!(layout(44100, 2, None).build(&summary).is_err());
        assert!(layout(96000, 2, None).frame_len().is_err());
    }

    #[test]
    fn seek_table_is_monotonic_and_scaled_to_the_file() {
        let lens = vec![400u16; 1000];
        let toc = seek_table(&lens, 400);
        assert_eq!(toc[0], 0); // the first audio frame starts right after the tag: 400 / 400400
        assert_eq!(toc[50], ((400 + 500 * 400) * 256 / 400_400) as u8);
        assert!(toc.windows(2).all(|w| w[0] <= w[1]));
    }
}
