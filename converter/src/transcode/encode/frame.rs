//! MPEG audio layer III frame headers: enough to split an encoder's output into frames and to
//! write a tag frame that matches the stream.

/// The MPEG version, which fixes the frame length and the side-information size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpegVersion {
    V1,
    V2,
    V25,
}

impl MpegVersion {
    pub fn for_sample_rate(rate: u32) -> Option<Self> {
        match rate {
            32000 | 44100 | 48000 => Some(MpegVersion::V1),
            16000 | 22050 | 24000 => Some(MpegVersion::V2),
            8000 | 11025 | 12000 => Some(MpegVersion::V25),
            _ => None,
        }
    }

    /// PCM samples per channel in one frame.
    pub fn samples_per_frame(self) -> u32 {
        match self {
            MpegVersion::V1 => 1152,
            MpegVersion::V2 | MpegVersion::V25 => 576,
        }
    }

    pub fn side_info_len(self, channels: u8) -> usize {
        match (self, channels) {
            (MpegVersion::V1, 1) => 17,
            (MpegVersion::V1, _) => 32,
            (_, 1) => 9,
            _ => 17,
        }
    }

    fn bits(self) -> u8 {
        match self {
            MpegVersion::V1 => 0b11,
            MpegVersion::V2 => 0b10,
            MpegVersion::V25 => 0b00,
        }
    }

    fn bitrates_kbps(self) -> &'static [u16; 15] {
        match self {
            MpegVersion::V1 => &[
                0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
            ],
            MpegVersion::V2 | MpegVersion::V25 => {
                &[0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
            }
        }
    }

    fn sample_rates(self) -> [u32; 3] {
        match self {
            MpegVersion::V1 => [44100, 48000, 32000],
            MpegVersion::V2 => [22050, 24000, 16000],
            MpegVersion::V25 => [11025, 12000, 8000],
        }
    }

    /// Bytes in a frame without padding.
    pub fn frame_len(self, kbps: u32, sample_rate: u32) -> usize {
        let coefficient = match self {
            MpegVersion::V1 => 144_000,
            MpegVersion::V2 | MpegVersion::V25 => 72_000,
        };
        (coefficient * kbps / sample_rate) as usize
    }
}

/// A parsed layer III frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub version: MpegVersion,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub padded: bool,
    pub mono: bool,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..4)?;
        if b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
            return None;
        }
        let version = match (b[1] >> 3) & 0b11 {
            0b11 => MpegVersion::V1,
            0b10 => MpegVersion::V2,
            0b00 => MpegVersion::V25,
            _ => return None,
        };
        if (b[1] >> 1) & 0b11 != 0b01 {
            return None; // not layer III
        }
        let bitrate_index = usize::from(b[2] >> 4);
        let rate_index = usize::from((b[2] >> 2) & 0b11);
        let bitrate_kbps = u32::from(*version.bitrates_kbps().get(bitrate_index)?);
        if bitrate_kbps == 0 || rate_index == 3 {
            return None; // free format or reserved
        }
        Some(FrameHeader {
            version,
            bitrate_kbps,
            sample_rate: version.sample_rates()[rate_index],
            padded: b[2] & 0b10 != 0,
            mono: b[3] >> 6 == 0b11,
        })
    }

    pub fn frame_len(&self) -> usize {
        let slot = usize::from(self.padded);
        self.version.frame_len(self.bitrate_kbps, self.sample_rate) + slot
    }

    /// Encodes a header with no CRC, no padding, and (for stereo) joint stereo.
    pub fn encode(&self) -> Option<[u8; 4]> {
        let bitrate_index = self
            .version
            .bitrates_kbps()
            .iter()
            .position(|&k| u32::from(k) == self.bitrate_kbps && k != 0)?;
        let rate_index = self
            .version
            .sample_rates()
            .iter()
            .position(|&r| r == self.sample_rate)?;
        let mode = if self.mono { 0b11 } else { 0b01 };
        Some([
            0xFF,
            0xE0 | (self.version.bits() << 3) | (0b01 << 1) | 1,
            ((bitrate_index as u8) << 4) | ((rate_index as u8) << 2) | (u8::from(self.padded) << 1),
            mode << 6,
        ])
    }
}

/// Splits a run of back-to-back frames into their lengths. Fails on anything that is not a frame.
pub fn split_frames(mut bytes: &[u8]) -> Result<Vec<u16>, String> {
    let mut lengths = Vec::with_capacity(bytes.len() / 300 + 1);
    while !bytes.is_empty() {
        let header = FrameHeader::parse(bytes).ok_or_else(|| {
            format!(
                "no frame header where one was expected ({} bytes left)",
                bytes.len()
            )
        })?;
        let len = header.frame_len();
        if len > bytes.len() {
            return Err(format!(
                "a frame of {len} bytes is cut short at {}",
                bytes.len()
            ));
        }
        lengths.push(u16::try_from(len).map_err(|e| e.to_string())?);
        bytes = &bytes[len..];
    }
    Ok(lengths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_headers() {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding, joint stereo.
        let h = FrameHeader::parse(&[0xFF, 0xFB, 0x90, 0x44]).expect("valid header");
        assert_eq!(h.version, MpegVersion::V1);
        assert_eq!(h.bitrate_kbps, 128);
        assert_eq!(h.sample_rate, 44100);
        assert!(!h.padded);
        assert!(!h.mono);
        assert_eq!(h.frame_len(), 417);
        // MPEG-2, 64 kbit/s, 24 kHz, padded, mono.
        let h = FrameHeader::parse(&[0xFF, 0xF3, 0x86, 0xC0]).expect("valid header");
        assert_eq!(h.version, MpegVersion::V2);
        assert_eq!(h.bitrate_kbps, 64);
        assert_eq!(h.sample_rate, 24000);
        assert!(h.padded && h.mono);
        assert_eq!(h.frame_len(), 193);
        assert!(
            FrameHeader::parse(&[0xFF, 0xFD, 0x90, 0x44]).is_none(),
            "layer II"
        );
        assert!(
            FrameHeader::parse(&[0xFF, 0xFB, 0xF0, 0x44]).is_none(),
            "bad bitrate"
        );
    }

    #[test]
    fn encode_round_trips() {
        for rate in [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000] {
            let version = MpegVersion::for_sample_rate(rate).expect("mp3 rate");
            for mono in [false, true] {
                let h = FrameHeader {
                    version,
                    bitrate_kbps: 32,
                    sample_rate: rate,
                    padded: false,
                    mono,
                };
                let bytes = h.encode().expect("encodable");
                assert_eq!(FrameHeader::parse(&bytes), Some(h));
            }
        }
    }

    #[test]
    fn splits_back_to_back_frames_and_rejects_junk() {
        let mut stream = Vec::new();
        for padded in [false, true, false] {
            let h = FrameHeader {
                version: MpegVersion::V1,
                bitrate_kbps: 128,
                sample_rate: 44100,
                padded,
                mono: false,
            };
            let mut frame = vec![0u8; h.frame_len()];
            frame[..4].copy_from_slice(&h.encode().expect("encodable"));
            stream.extend_from_slice(&frame);
        }
        assert_eq!(split_frames(&stream), Ok(vec![417, 418, 417]));
        assert!(split_frames(&stream[..stream.len() - 1]).is_err());
        stream.push(0);
        assert!(split_frames(&stream).is_err());
    }
}
