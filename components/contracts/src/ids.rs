//! Typed ids, so a job id is never passed where a user id belongs. Each parses strictly: text
//! from a URL or a message that is not an id of the right kind is rejected with [`IdError`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("'{0}' is not a job id (expected a UUID like 0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11)")]
    Job(String),
    #[error("'{0}' is not a user id (expected a UUID)")]
    User(String),
    #[error("'{0}' is not a file id (expected 24 hexadecimal digits)")]
    File(String),
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id; UUIDv7, so ids sort by creation time.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Always the lower-case hyphenated form: the one stored in MySQL's CHAR(36).
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // Only the canonical hyphenated form: one id, one spelling, one row.
                if s.len() != 36 {
                    return Err(IdError::$variant(s.to_owned()));
                }
                uuid::Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| IdError::$variant(s.to_owned()))
            }
        }
    };
}

uuid_id!(
    /// A conversion job: one uploaded video and, when it succeeds, its mp3.
    JobId,
    Job
);
uuid_id!(
    /// An account in auth's database.
    UserId,
    User
);

/// A stored file (video or mp3) in GridFS: a MongoDB ObjectId as 24 lower-case hex digits. The
/// course's clients know an mp3 by this id (`fid`), so it is part of the public API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileId(String);

impl FileId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FileId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(FileId(s.to_ascii_lowercase()))
        } else {
            Err(IdError::File(s.to_owned()))
        }
    }
}

impl TryFrom<String> for FileId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<FileId> for String {
    fn from(value: FileId) -> Self {
        value.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_round_trip_through_text() {
        let id = JobId::new();
        assert_eq!(id.to_string().parse::<JobId>(), Ok(id));
    }

    #[test]
    fn things_that_are_not_ids_are_rejected() {
        for bad in [
            "",
            "42",
            "not-a-uuid",
            "' OR 1=1 --",
            "0191e3f06c1e7c4e9a512b7f0c0a9d11",
            "{0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11}",
            "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d1g",
        ] {
            assert_eq!(
                bad.parse::<JobId>(),
                Err(IdError::Job(bad.to_owned())),
                "{bad:?}"
            );
        }
        for bad in [
            "",
            "65f0c0ffee",
            "65f0c0ffee65f0c0ffee65fz",
            "../../etc/passwd",
        ] {
            assert!(bad.parse::<FileId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_sort_by_creation() {
        let first = JobId::new();
        let second = JobId::new();
        assert!(first < second);
    }

    #[test]
    fn file_ids_are_normalised_to_lower_case() {
        let id: FileId = "65F0C0FFEE65F0C0FFEE65F0".parse().unwrap();
        assert_eq!(id.as_str(), "65f0c0ffee65f0c0ffee65f0");
        let from_json: FileId = serde_json::from_str("\"65f0c0ffee65f0c0ffee65f0\"").unwrap();
        assert_eq!(from_json, id);
        assert!(serde_json::from_str::<FileId>("\"nope\"").is_err());
    }
}
