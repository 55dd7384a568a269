//! A safe handle on one LAME encoder instance.

use std::ffi::c_int;
use std::ptr::NonNull;

use mp3lame_sys as sys;

use crate::transcode::profile::RateControl;

/// Settings shared by every encoder instance of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LameSettings {
    pub sample_rate: u32,
    pub channels: u8,
    pub rate_control: RateControl,
}

/// Values LAME chose during initialisation that the Xing/LAME tag reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LameChoices {
    pub encoder_delay: u32,
    pub lowpass_hz: u32,
    pub vbr_q: u32,
    pub algorithm_quality: u32,
    pub min_bitrate_kbps: u32,
    pub ath_type: u32,
}

pub struct Lame {
    gfp: NonNull<sys::lame_global_flags>,
    channels: u8,
    out: Vec<u8>,
}

// The encoder state is owned by this handle alone and LAME keeps no thread-local state.
unsafe impl Send for Lame {}

/// Samples handed to LAME per call; keeps the output buffer small.
const CALL_FRAMES: usize = 1152 * 16;

impl Lame {
    pub fn new(settings: LameSettings) -> Result<Self, String> {
        if !(1..=2).contains(&settings.channels) {
            return Err(format!(
                "{} channels (LAME takes 1 or 2)",
                settings.channels
            ));
        }
        // SAFETY: lame_init has no preconditions; a null result is handled.
        let gfp = NonNull::new(unsafe { sys::lame_init() })
            .ok_or_else(|| "lame_init failed".to_owned())?;
        let lame = Lame {
            gfp,
            channels: settings.channels,
            out: Vec::new(),
        };
        let p = lame.gfp.as_ptr();
        let rate = c_int::try_from(settings.sample_rate).map_err(|e| e.to_string())?;
        // SAFETY: `p` is a live encoder from lame_init; setters only store values.
        let status = unsafe {
            let mut status = 0;
            status |= sys::lame_set_in_samplerate(p, rate);
            // Left alone, LAME may pick a lower output rate; the product keeps the source's.
            status |= sys::lame_set_out_samplerate(p, rate);
            status |= sys::lame_set_num_channels(p, c_int::from(settings.channels));
            if settings.channels == 1 {
                status |= sys::lame_set_mode(p, sys::MPEG_mode::MONO);
            }
            // Segments are spliced frame by frame, so no frame may borrow bits from the previous one.
            status |= sys::lame_set_disable_reservoir(p, 1);
            // The one tag for the whole stream is written by the caller.
            status |= sys::lame_set_bWriteVbrTag(p, 0);
            match settings.rate_control {
                RateControl::Vbr {
                    v_level,
                    algorithm_quality,
                } => {
                    status |= sys::lame_set_VBR(p, sys::vbr_mode::vbr_mtrh);
                    status |= sys::lame_set_VBR_quality(p, f32::from(v_level));
                    status |= sys::lame_set_quality(p, c_int::from(algorithm_quality));
                }
                RateControl::Cbr { kbps } => {
                    status |= sys::lame_set_VBR(p, sys::vbr_mode::vbr_off);
                    status |= sys::lame_set_brate(p, c_int::from(kbps));
                }
            }
            status
        };
        if status != 0 {
            return Err(format!("LAME rejected the settings {settings:?}"));
        }
        // SAFETY: as above.
        let init = unsafe { sys::lame_init_params(p) };
        if init < 0 {
            return Err(format!(
                "LAME cannot encode {settings:?} (lame_init_params returned {init})"
            ));
        }
        Ok(lame)
    }

    pub fn choices(&self) -> LameChoices {
        let p = self.gfp.as_ptr();
        let non_negative = |v: c_int| u32::try_from(v).unwrap_or(0);
        // SAFETY: getters read fields of a live, initialised encoder.
        unsafe {
            LameChoices {
                encoder_delay: non_negative(sys::lame_get_encoder_delay(p)),
                lowpass_hz: non_negative(sys::lame_get_lowpassfreq(p)),
                vbr_q: non_negative(sys::lame_get_VBR_q(p)),
                algorithm_quality: non_negative(sys::lame_get_quality(p)),
                min_bitrate_kbps: non_negative(sys::lame_get_VBR_min_bitrate_kbps(p)),
                ath_type: non_negative(sys::lame_get_ATHtype(p)),
            }
        }
    }

    /// Encodes interleaved samples (`channels` per frame, nominal range ±1) and appends whatever
    /// mp3 bytes LAME releases to `mp3`.
    pub fn encode(&mut self, pcm: &[f32], mp3: &mut Vec<u8>) -> Result<(), String> {
        let ch = usize::from(self.channels);
        for chunk in pcm.chunks(CALL_FRAMES * ch) {
            let frames = chunk.len() / ch;
            // LAME's documented worst case: 1.25 × samples + 7200 bytes.
            let cap = frames + frames / 4 + 7200;
            self.out.resize(cap, 0);
            let (left, right, n) = if ch == 1 {
                (chunk.as_ptr(), chunk.as_ptr(), frames)
            } else {
                (chunk.as_ptr(), std::ptr::null(), frames)
            };
            let n = c_int::try_from(n).map_err(|e| e.to_string())?;
            let cap_c = c_int::try_from(cap).map_err(|e| e.to_string())?;
            // SAFETY: `chunk` holds `frames * ch` floats, `out` holds `cap` bytes; LAME reads
            // `n` samples per channel and writes at most `cap` bytes.
            let written = unsafe {
                if ch == 1 {
                    sys::lame_encode_buffer_ieee_float(
                        self.gfp.as_ptr(),
                        left,
                        right,
                        n,
                        self.out.as_mut_ptr(),
                        cap_c,
                    )
                } else {
                    sys::lame_encode_buffer_interleaved_ieee_float(
                        self.gfp.as_ptr(),
                        left,
                        n,
                        self.out.as_mut_ptr(),
                        cap_c,
                    )
                }
            };
            let written =
                usize::try_from(written).map_err(|_| format!("LAME encode failed ({written})"))?;
            mp3.extend_from_slice(&self.out[..written]);
        }
        Ok(())
    }

    /// Pads the last frame, emits everything still buffered and ends the stream.
    pub fn flush(&mut self, mp3: &mut Vec<u8>) -> Result<(), String> {
        let cap = 7200 + 2 * 2880;
        self.out.resize(cap, 0);
        let cap_c = c_int::try_from(cap).map_err(|e| e.to_string())?;
        // SAFETY: `out` holds `cap` bytes.
        let written =
            unsafe { sys::lame_encode_flush(self.gfp.as_ptr(), self.out.as_mut_ptr(), cap_c) };
        let written =
            usize::try_from(written).map_err(|_| format!("LAME flush failed ({written})"))?;
        mp3.extend_from_slice(&self.out[..written]);
        Ok(())
    }
}

impl Drop for Lame {
    fn drop(&mut self) {
        // SAFETY: the pointer came from lame_init and is closed exactly once.
        unsafe {
            sys::lame_close(self.gfp.as_ptr());
        }
    }
}
