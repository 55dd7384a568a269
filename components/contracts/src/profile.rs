//! How an mp3 is encoded, chosen per job. What each profile means in LAME terms lives in the
//! converter; this is the name clients and messages use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityProfile {
    /// VBR V2: transparent for almost everyone; the default.
    #[default]
    Standard,
    /// VBR V2 at a cheaper encoder setting: better than CBR 128k for far less CPU.
    Fast,
    /// Constant 128 kbit/s, for players that need a constant bitrate.
    Cbr128,
    /// Constant 192 kbit/s.
    Cbr192,
}

impl QualityProfile {
    pub const ALL: [QualityProfile; 4] = [
        QualityProfile::Standard,
        QualityProfile::Fast,
        QualityProfile::Cbr128,
        QualityProfile::Cbr192,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QualityProfile::Standard => "standard",
            QualityProfile::Fast => "fast",
            QualityProfile::Cbr128 => "cbr128",
            QualityProfile::Cbr192 => "cbr192",
        }
    }
}

impl fmt::Display for QualityProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a quality profile; choose standard, fast, cbr128 or cbr192")]
pub struct UnknownProfile(pub String);

impl FromStr for QualityProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QualityProfile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for profile in QualityProfile::ALL {
            assert_eq!(profile.as_str().parse(), Ok(profile));
            assert_eq!(
                serde_json::to_string(&profile).unwrap(),
                format!("\"{profile}\"")
            );
        }
        assert!("best".parse::<QualityProfile>().is_err());
    }
}
