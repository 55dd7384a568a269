//! What LAME is told for each quality profile a job can ask for. The profiles themselves (names,
//! parsing, serde) are part of the contracts every service shares; each setting here is backed
//! by a measurement in docs/architecture.md.

pub use vid2mp3_contracts::QualityProfile as Profile;

/// LAME's rate control for a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateControl {
    /// VBR (LAME's mtrh algorithm) at a `-V` level, with an algorithm quality.
    Vbr { v_level: u8, algorithm_quality: u8 },
    /// Constant bitrate in kbit/s, algorithm quality left at LAME's default.
    Cbr { kbps: u16 },
}

/// The encoder settings behind a profile.
pub fn rate_control(profile: Profile) -> RateControl {
    match profile {
        // VBR V2 at algorithm quality 5: the same PEAQ as LAME's default V2 at 0.78× its CPU.
        Profile::Standard => RateControl::Vbr {
            v_level: 2,
            algorithm_quality: 5,
        },
        // VBR V2 at quality 7: 0.43× the CPU of CBR 128k and rated better than it on every clip.
        Profile::Fast => RateControl::Vbr {
            v_level: 2,
            algorithm_quality: 7,
        },
        // CBR keeps LAME's default algorithm quality: at 128k a faster one is clearly worse on music.
        Profile::Cbr128 => RateControl::Cbr { kbps: 128 },
        Profile::Cbr192 => RateControl::Cbr { kbps: 192 },
    }
}
