//! PCM between decoder and encoder: the format each side speaks, and resampling where the
//! source's rate is not one MP3 can carry.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Sample rates an MP3 stream can have.
pub const MP3_SAMPLE_RATES: [u32; 9] =
    [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// Decoded audio as it comes from a decoder: interleaved `f32`, 1 or 2 channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcmFormat {
    pub sample_rate: u32,
    pub channels: u8,
}

/// The MP3 rate for a source rate: the same where MP3 allows it, otherwise the nearest MP3 rate
/// at or above it (capped at 48 kHz), preferring the 44.1 kHz family for its multiples.
pub fn mp3_rate_for(source: u32) -> u32 {
    if MP3_SAMPLE_RATES.contains(&source) {
        return source;
    }
    if source > 48000 {
        return if source.is_multiple_of(11025) {
            44100
        } else {
            48000
        };
    }
    MP3_SAMPLE_RATES
        .into_iter()
        .find(|&r| r >= source)
        .unwrap_or(48000)
}

/// Streaming sample-rate conversion with rubato's FFT resampler (a fixed-ratio, band-limited
/// converter), trimmed so `n` input samples give exactly `ceil(n × out / in)` output samples
/// aligned with the input.
/// Why the rate conversion stopped; the resampler's own errors are kept as sources.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample {from} Hz to {to} Hz")]
    Setup {
        from: u32,
        to: u32,
        #[source]
        source: rubato::ResamplerConstructionError,
    },
    #[error("the resampler's buffers do not fit the samples")]
    Buffer(#[source] audioadapter_buffers::SizeError),
    #[error("the resampler refused a block of samples")]
    Process(#[source] rubato::ResampleError),
    #[error("the resampler does not drain")]
    NoDrain,
}

pub struct RateConverter {
    resampler: Fft<f32>,
    channels: usize,
    in_rate: u64,
    out_rate: u64,
    pending: Vec<f32>,
    out: Vec<f32>,
    /// Output samples still to drop: the resampler's delay.
    delay_left: usize,
    consumed: u64,
    produced: u64,
}

impl RateConverter {
    pub fn new(from: u32, to: u32, channels: u8) -> Result<Self, ResampleError> {
        let resampler = Fft::<f32>::new(
            from as usize,
            to as usize,
            1024,
            usize::from(channels),
            FixedSync::Input,
        )
        .map_err(|source| ResampleError::Setup { from, to, source })?;
        let delay_left = resampler.output_delay();
        Ok(RateConverter {
            resampler,
            channels: usize::from(channels),
            in_rate: u64::from(from),
            out_rate: u64::from(to),
            pending: Vec::new(),
            out: Vec::new(),
            delay_left,
            consumed: 0,
            produced: 0,
        })
    }

    /// Takes interleaved input and appends whatever output is ready to `dst`.
    pub fn push(&mut self, input: &[f32], dst: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.pending.extend_from_slice(input);
        self.consumed += (input.len() / self.channels) as u64;
        loop {
            let need = self.resampler.input_frames_next();
            if self.pending.len() < need * self.channels {
                return Ok(());
            }
            self.run(need, None, dst)?;
        }
    }

    /// Drains the resampler at the end of the stream.
    pub fn finish(&mut self, dst: &mut Vec<f32>) -> Result<(), ResampleError> {
        let target = (self.consumed * self.out_rate).div_ceil(self.in_rate);
        let mut guard = 0;
        while self.produced < target {
            let need = self.resampler.input_frames_next();
            let have = self.pending.len() / self.channels;
            let valid = have.min(need);
            self.pending.resize(need * self.channels, 0.0);
            self.run(need, Some(valid), dst)?;
            guard += 1;
            if guard > 64 {
                return Err(ResampleError::NoDrain);
            }
        }
        let excess = usize::try_from(self.produced - target).unwrap_or(0);
        dst.truncate(dst.len().saturating_sub(excess * self.channels));
        self.produced = target;
        Ok(())
    }

    fn run(
        &mut self,
        frames: usize,
        partial: Option<usize>,
        dst: &mut Vec<f32>,
    ) -> Result<(), ResampleError> {
        let out_frames = self.resampler.output_frames_max();
        self.out.resize(out_frames * self.channels, 0.0);
        let input = InterleavedSlice::new(
            &self.pending[..frames * self.channels],
            self.channels,
            frames,
        )
        .map_err(ResampleError::Buffer)?;
        let mut output = InterleavedSlice::new_mut(&mut self.out[..], self.channels, out_frames)
            .map_err(ResampleError::Buffer)?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: partial,
            active_channels_mask: None,
        };
        let (used, made) = self
            .resampler
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(ResampleError::Process)?;
        self.pending
            .drain(..(used * self.channels).min(self.pending.len()));
        let drop = self.delay_left.min(made);
        self.delay_left -= drop;
        dst.extend_from_slice(&self.out[drop * self.channels..made * self.channels]);
        self.produced += (made - drop) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resampler_that_cannot_start_keeps_its_error_as_the_source() {
        let Err(e) = RateConverter::new(0, 44_100, 2) else {
            panic!("a resampler from 0 Hz started");
        };
        assert_eq!(e.to_string(), "cannot resample 0 Hz to 44100 Hz");
        let source = std::error::Error::source(&e).expect("rubato's error is kept");
        assert!(
            source.is::<rubato::ResamplerConstructionError>(),
            "{source:?}"
        );
    }

    #[test]
    fn keeps_mp3_rates_and_maps_the_others() {
        for r in MP3_SAMPLE_RATES {
            assert_eq!(mp3_rate_for(r), r);
        }
        assert_eq!(mp3_rate_for(96000), 48000);
        assert_eq!(mp3_rate_for(88200), 44100);
        assert_eq!(mp3_rate_for(192000), 48000);
        assert_eq!(mp3_rate_for(64000), 48000);
        assert_eq!(mp3_rate_for(37800), 44100);
        assert_eq!(mp3_rate_for(7350), 8000);
    }

    fn sine(rate: u32, freq: f32, n: usize, channels: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let v = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5;
                std::iter::repeat_n(v, channels)
            })
            .collect()
    }

    #[test]
    fn resamples_to_the_exact_length_and_keeps_the_waveform() {
        let (from, to, n) = (96000u32, 48000u32, 96000 + 123);
        let input = sine(from, 1000.0, n, 2);
        let mut conv = RateConverter::new(from, to, 2).expect("resampler");
        let mut out = Vec::new();
        for chunk in input.chunks(2 * 999) {
            conv.push(chunk, &mut out).expect("push");
        }
        conv.finish(&mut out).expect("finish");
        let expected = (n as u64 * 48000).div_ceil(96000) as usize;
        assert_eq!(out.len(), expected * 2);
        // Aligned in time: away from the edges the output is the same sine sampled at 48 kHz.
        let reference = sine(to, 1000.0, expected, 2);
        let worst = out[2000..out.len() - 2000]
            .iter()
            .zip(&reference[2000..reference.len() - 2000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "largest deviation {worst}");
    }
}
