//! Loudness levelling, chosen per job: the integrated loudness (EBU R128 / ITU-R BS.1770) the
//! mp3 is levelled to. How it is measured and applied lives in the converter; this is the value
//! clients send and messages carry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A target integrated loudness in whole LUFS, within [`LoudnessTarget::MIN`]..=[`LoudnessTarget::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct LoudnessTarget(i8);

impl LoudnessTarget {
    /// Quieter targets are below what speech over a phone speaker can be heard at.
    pub const MIN: i32 = -30;
    /// Louder targets leave no room under the true-peak ceiling for anything but a sine.
    pub const MAX: i32 = -10;
    /// Podcasts and spoken word (AES TD1004, Apple's and most podcast hosts' recommendation).
    pub const SPEECH: LoudnessTarget = LoudnessTarget(-16);
    /// Streaming music services.
    pub const MUSIC: LoudnessTarget = LoudnessTarget(-14);
    /// Broadcast (EBU R128).
    pub const BROADCAST: LoudnessTarget = LoudnessTarget(-23);
    /// The names a client may send instead of a number.
    pub const PRESETS: [(&'static str, LoudnessTarget); 3] = [
        ("speech", LoudnessTarget::SPEECH),
        ("music", LoudnessTarget::MUSIC),
        ("broadcast", LoudnessTarget::BROADCAST),
    ];

    pub fn new(lufs: i32) -> Result<LoudnessTarget, BadLoudness> {
        if (Self::MIN..=Self::MAX).contains(&lufs) {
            // In range, so it fits an i8.
            Ok(LoudnessTarget(lufs as i8))
        } else {
            Err(BadLoudness(lufs.to_string()))
        }
    }

    pub fn lufs(self) -> i32 {
        i32::from(self.0)
    }
}

impl fmt::Display for LoudnessTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} LUFS", self.0)
    }
}

impl TryFrom<i32> for LoudnessTarget {
    type Error = BadLoudness;

    fn try_from(lufs: i32) -> Result<Self, Self::Error> {
        LoudnessTarget::new(lufs)
    }
}

impl From<LoudnessTarget> for i32 {
    fn from(target: LoudnessTarget) -> i32 {
        target.lufs()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a loudness target; use speech (-16 LUFS), music (-14), broadcast (-23) or a whole number of LUFS from -30 to -10"
)]
pub struct BadLoudness(pub String);

impl FromStr for LoudnessTarget {
    type Err = BadLoudness;

    /// A preset name or a whole number of LUFS (`-16`; `-16LUFS` and `-16 LUFS` too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if let Some((_, target)) = Self::PRESETS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            return Ok(*target);
        }
        let number = text
            .strip_suffix("LUFS")
            .or_else(|| text.strip_suffix("lufs"))
            .unwrap_or(text)
            .trim();
        number
            .parse::<i32>()
            .ok()
            .and_then(|n| LoudnessTarget::new(n).ok())
            .ok_or_else(|| BadLoudness(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_numbers_parse() {
        assert_eq!("speech".parse(), Ok(LoudnessTarget::SPEECH));
        assert_eq!("Music".parse(), Ok(LoudnessTarget::MUSIC));
        assert_eq!("broadcast".parse(), Ok(LoudnessTarget::BROADCAST));
        assert_eq!("-18".parse::<LoudnessTarget>().map(|t| t.lufs()), Ok(-18));
        assert_eq!(
            "-20 LUFS".parse::<LoudnessTarget>().map(|t| t.lufs()),
            Ok(-20)
        );
        assert_eq!("-30".parse::<LoudnessTarget>().map(|t| t.lufs()), Ok(-30));
        assert_eq!("-10".parse::<LoudnessTarget>().map(|t| t.lufs()), Ok(-10));
    }

    #[test]
    fn out_of_range_or_nonsense_is_refused_with_the_choices() {
        for bad in ["-31", "-9", "0", "16", "-16.5", "loud", "", "-1e9"] {
            let err = bad.parse::<LoudnessTarget>().unwrap_err();
            assert!(
                err.to_string().contains("speech (-16 LUFS)"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn travels_as_a_number_and_is_checked_on_arrival() {
        assert_eq!(
            serde_json::to_string(&LoudnessTarget::SPEECH).unwrap(),
            "-16"
        );
        assert_eq!(
            serde_json::from_str::<LoudnessTarget>("-23").unwrap(),
            LoudnessTarget::BROADCAST
        );
        assert!(serde_json::from_str::<LoudnessTarget>("-5").is_err());
    }
}
