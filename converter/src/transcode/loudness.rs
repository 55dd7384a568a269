//! Loudness levelling to a target integrated loudness (EBU R128 / ITU-R BS.1770), measured with
//! the `ebur128` crate.
//!
//! Two passes over the decoded audio: the first measures the integrated loudness and the true
//! peak, the second applies one constant gain while encoding. A constant gain keeps the
//! recording's own dynamics and cannot pump or distort; the price is that it is capped: so the
//! true peak stays under [`TRUE_PEAK_CEILING_DBTP`] (with [`ENCODER_MARGIN_DB`] for the peaks the
//! mp3 encoder adds), and at [`MAX_GAIN_DB`] so a near-silent recording is not raised into
//! its noise floor. A source whose peaks are far above its loudness (peak-to-loudness ratio over
//! about 13 dB at −16 LUFS) therefore ends below the target rather than limited. Silence
//! (nothing above the measurement's −70 LUFS gate) gets no gain at all.
//!
//! The meter keeps a histogram instead of every 400 ms block, so its memory does not grow with
//! the recording's length.

use ebur128::{EbuR128, Mode};
use vid2mp3_contracts::LoudnessTarget;

use super::pcm::PcmFormat;

/// The highest true peak a levelled mp3 may have.
pub const TRUE_PEAK_CEILING_DBTP: f64 = -1.0;
/// LAME's output peaks above its input's true peak (filtering, quantisation); the gain aims this
/// much under the ceiling. Measured on the tests' sources: up to 0.3 dB.
pub const ENCODER_MARGIN_DB: f64 = 0.5;
/// No recording is raised by more than this.
pub const MAX_GAIN_DB: f64 = 30.0;

/// What the first pass measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// LUFS; `-inf` for silence (nothing above the absolute gate).
    pub integrated_lufs: f64,
    /// dBTP, the highest over the channels; `-inf` for digital silence.
    pub true_peak_dbtp: f64,
}

/// Why the gain is not simply target − measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GainLimit {
    TruePeak,
    MaxGain,
    Silence,
}

/// The gain chosen for a measured recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levelling {
    pub target: LoudnessTarget,
    pub measured: Measurement,
    pub gain_db: f64,
    pub limited_by: Option<GainLimit>,
}

impl Levelling {
    pub fn new(measured: Measurement, target: LoudnessTarget) -> Levelling {
        if !measured.integrated_lufs.is_finite() {
            return Levelling {
                target,
                measured,
                gain_db: 0.0,
                limited_by: Some(GainLimit::Silence),
            };
        }
        let wanted = f64::from(target.lufs()) - measured.integrated_lufs;
        let peak_room = TRUE_PEAK_CEILING_DBTP - ENCODER_MARGIN_DB - measured.true_peak_dbtp;
        let (gain_db, limited_by) = if wanted > peak_room && peak_room < MAX_GAIN_DB {
            (peak_room, Some(GainLimit::TruePeak))
        } else if wanted > MAX_GAIN_DB {
            (MAX_GAIN_DB, Some(GainLimit::MaxGain))
        } else {
            (wanted, None)
        };
        Levelling {
            target,
            measured,
            gain_db,
            limited_by,
        }
    }

    /// The factor every sample is multiplied by.
    pub fn factor(&self) -> f32 {
        10f64.powf(self.gain_db / 20.0) as f32
    }
}

/// The meter refused a step; `ebur128`'s error (plain `Copy` data) is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("the loudness meter could not {step}")]
pub struct MeterError {
    step: &'static str,
    #[source]
    source: ebur128::Error,
}

fn meter_error(step: &'static str) -> impl Fn(ebur128::Error) -> MeterError {
    move |source| MeterError { step, source }
}

/// The first pass: BS.1770 integrated loudness and true peak of interleaved PCM.
pub struct LoudnessMeter {
    meter: EbuR128,
    channels: u32,
}

impl LoudnessMeter {
    pub fn new(format: PcmFormat) -> Result<LoudnessMeter, MeterError> {
        let channels = u32::from(format.channels);
        let meter = EbuR128::new(
            channels,
            format.sample_rate,
            Mode::I | Mode::TRUE_PEAK | Mode::HISTOGRAM,
        )
        .map_err(meter_error("start for this format"))?;
        Ok(LoudnessMeter { meter, channels })
    }

    /// Adds interleaved samples (whole frames).
    pub fn add(&mut self, samples: &[f32]) -> Result<(), MeterError> {
        self.meter
            .add_frames_f32(samples)
            .map_err(meter_error("take the samples"))
    }

    pub fn finish(&self) -> Result<Measurement, MeterError> {
        let integrated_lufs = self
            .meter
            .loudness_global()
            .map_err(meter_error("compute the integrated loudness"))?;
        let mut peak = 0f64;
        for ch in 0..self.channels {
            let p = self
                .meter
                .true_peak(ch)
                .map_err(meter_error("compute the true peak"))?;
            peak = peak.max(p);
        }
        Ok(Measurement {
            integrated_lufs,
            true_peak_dbtp: 20.0 * peak.log10(),
        })
    }
}

/// Applies the gain in place.
pub fn apply(samples: &mut [f32], factor: f32) {
    for s in samples {
        *s *= factor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_error_keeps_the_meters_own_error_as_its_source() {
        let Err(e) = LoudnessMeter::new(PcmFormat {
            sample_rate: 48_000,
            channels: 0,
        }) else {
            panic!("a meter for no channels started");
        };
        assert_eq!(
            e.to_string(),
            "the loudness meter could not start for this format"
        );
        let source = std::error::Error::source(&e).expect("the ebur128 error is kept");
        assert_eq!(
            source.downcast_ref::<ebur128::Error>(),
            Some(&ebur128::Error::NoMem)
        );
    }

    fn tone(amplitude: f32, seconds: f32) -> Vec<f32> {
        let rate = 48_000.0;
        (0..(rate * seconds) as usize)
            .flat_map(|i| {
                let v = amplitude * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate).sin();
                [v, v]
            })
            .collect()
    }

    fn measure(samples: &[f32]) -> Measurement {
        let mut meter = LoudnessMeter::new(PcmFormat {
            sample_rate: 48_000,
            channels: 2,
        })
        .unwrap();
        meter.add(samples).unwrap();
        meter.finish().unwrap()
    }

    #[test]
    fn a_full_scale_stereo_sine_measures_as_the_standard_says() {
        // BS.1770: a 0 dBFS 1 kHz sine in both channels of a stereo pair reads about +0.3 LUFS
        // (−3.0 per channel, summed); its true peak is 0 dBTP.
        let m = measure(&tone(1.0, 5.0));
        assert!((m.integrated_lufs - 0.3).abs() < 0.3, "{m:?}");
        assert!(m.true_peak_dbtp.abs() < 0.2, "{m:?}");
    }

    #[test]
    fn the_gain_reaches_the_target_unless_peaks_or_the_cap_stop_it() {
        let speech = LoudnessTarget::SPEECH;
        let quiet = Levelling::new(
            Measurement {
                integrated_lufs: -40.0,
                true_peak_dbtp: -30.0,
            },
            speech,
        );
        assert_eq!((quiet.gain_db, quiet.limited_by), (24.0, None));
        let loud = Levelling::new(
            Measurement {
                integrated_lufs: -6.0,
                true_peak_dbtp: 0.0,
            },
            speech,
        );
        assert_eq!((loud.gain_db, loud.limited_by), (-10.0, None));
        let spiky = Levelling::new(
            Measurement {
                integrated_lufs: -30.0,
                true_peak_dbtp: -5.0,
            },
            speech,
        );
        assert_eq!(spiky.limited_by, Some(GainLimit::TruePeak));
        assert!((spiky.gain_db - 3.5).abs() < 1e-9);
        let whisper = Levelling::new(
            Measurement {
                integrated_lufs: -65.0,
                true_peak_dbtp: -50.0,
            },
            speech,
        );
        assert_eq!(
            (whisper.gain_db, whisper.limited_by),
            (MAX_GAIN_DB, Some(GainLimit::MaxGain))
        );
    }

    #[test]
    fn silence_gets_no_gain() {
        let m = measure(&vec![0.0; 48_000 * 2 * 3]);
        assert_eq!(m.integrated_lufs, f64::NEG_INFINITY);
        let l = Levelling::new(m, LoudnessTarget::SPEECH);
        assert_eq!((l.gain_db, l.factor()), (0.0, 1.0));
        assert_eq!(l.limited_by, Some(GainLimit::Silence));
    }

    #[test]
    fn applying_the_gain_lands_on_the_target() {
        let source = tone(0.01, 5.0);
        let l = Levelling::new(measure(&source), LoudnessTarget::SPEECH);
        let mut levelled = source.clone();
        apply(&mut levelled, l.factor());
        let after = measure(&levelled);
        assert!((after.integrated_lufs + 16.0).abs() < 0.1, "{after:?}");
        assert!(after.true_peak_dbtp <= TRUE_PEAK_CEILING_DBTP, "{after:?}");
    }
}
