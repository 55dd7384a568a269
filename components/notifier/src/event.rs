//! Reading a [`JobEvent`] off the Redis channel, and telling a malformed one apart.
//!
//! Whatever arrives is checked fully before anything is claimed: an event that can never be
//! emailed (not JSON, a version we do not know, a done event without its mp3, no usable
//! recipient) must be acknowledged as poison, not failed, or the relay would redeliver it forever.

use vid2mp3_contracts::messages::MESSAGE_VERSION;
use vid2mp3_contracts::{JobEvent, JobId, JobOutcome};

/// Longest address `emails_sent.recipient` holds, and the longest RFC 5321 allows.
const MAX_ADDRESS_CHARS: usize = 254;

/// Why an event cannot be handled. Never worth retrying: the same bytes fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReason {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("version {0}, but this notifier reads version {MESSAGE_VERSION}")]
    UnsupportedVersion(String),
    #[error("not a job event: {0}")]
    Fields(String),
    #[error("a done event without an mp3_fid")]
    DoneWithoutMp3,
    #[error("the recipient (username) is not an email address")]
    BadRecipient,
}

/// A malformed event, with whatever ids could be read from it for the log and the poison ack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed job event: {reason}")]
pub struct MalformedEvent {
    pub message_id: Option<uuid::Uuid>,
    pub job_id: Option<JobId>,
    pub reason: MalformedReason,
}

/// Parses and checks one message from the channel.
pub fn parse(bytes: &[u8]) -> Result<JobEvent, MalformedEvent> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| MalformedEvent {
        message_id: None,
        job_id: None,
        reason: MalformedReason::NotJson(e.to_string()),
    })?;
    // Read the ids on their own first, so that a bad field elsewhere still leaves something to
    // acknowledge and to log. Only well-formed ids are kept: the log never repeats raw input.
    let message_id = value
        .get("message_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| uuid::Uuid::try_parse(s).ok());
    let job_id = value
        .get("job_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse::<JobId>().ok());
    let malformed = |reason| MalformedEvent {
        message_id,
        job_id,
        reason,
    };
    match value.get("version") {
        Some(v) if v.as_u64() == Some(u64::from(MESSAGE_VERSION)) => {}
        // A newer converter during a rolling upgrade would be a real loss here; the relay's
        // dead-letter queue keeps the AMQP message, and the log says which version came.
        Some(v) => {
            return Err(malformed(MalformedReason::UnsupportedVersion(
                v.to_string(),
            )));
        }
        None => return Err(malformed(MalformedReason::Fields("no version".into()))),
    }
    let event: JobEvent = serde_json::from_value(value)
        .map_err(|e| malformed(MalformedReason::Fields(e.to_string())))?;
    if matches!(event.outcome, JobOutcome::Done { .. }) && event.mp3_fid.is_none() {
        return Err(malformed(MalformedReason::DoneWithoutMp3));
    }
    if !is_plausible_address(&event.username) {
        return Err(malformed(MalformedReason::BadRecipient));
    }
    Ok(event)
}

/// Whether `address` can be handed to a mail API as a recipient. Not a full RFC 5322 check (auth
/// validated the address at sign-up); it keeps out what a provider would refuse for good, which
/// would otherwise make the event fail on every delivery, and anything that could break a header.
pub fn is_plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && address.chars().count() <= MAX_ADDRESS_CHARS
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
        && !local.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vid2mp3_contracts::ErrorCode;

    const MESSAGE_ID: &str = "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11";
    const JOB_ID: &str = "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d12";

    fn done() -> serde_json::Value {
        json!({
            "version": 1,
            "message_id": MESSAGE_ID,
            "job_id": JOB_ID,
            "video_fid": "65f0c0ffee65f0c0ffee65f0",
            "mp3_fid": "65f0c0ffee65f0c0ffee65f1",
            "username": "ada@example.com",
            "owner_id": "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d13",
            "original_name": "talk.mkv",
            "attempt": 1,
            "status": "done",
            "mp3_size_bytes": 960000,
            "duration_ms": 60000
        })
    }

    fn parse_value(value: &serde_json::Value) -> Result<JobEvent, MalformedEvent> {
        parse(value.to_string().as_bytes())
    }

    #[test]
    fn a_done_event_parses() {
        let event = parse_value(&done()).unwrap();
        assert_eq!(event.kind(), "done");
        assert_eq!(event.message_id.to_string(), MESSAGE_ID);
        assert_eq!(event.mp3_fid.unwrap().as_str(), "65f0c0ffee65f0c0ffee65f1");
    }

    #[test]
    fn a_failed_event_parses() {
        let mut value = done();
        let object = value.as_object_mut().unwrap();
        object.insert("status".into(), json!("failed"));
        object.insert("mp3_fid".into(), json!(null));
        object.insert("code".into(), json!("no_audio"));
        object.insert("message".into(), json!("the video has no sound"));
        let event = parse_value(&value).unwrap();
        assert_eq!(
            event.outcome,
            JobOutcome::Failed {
                code: ErrorCode::NoAudio,
                message: "the video has no sound".into()
            }
        );
    }

    #[test]
    fn bytes_that_are_not_json_have_no_id() {
        for bytes in [&b""[..], b"hello", b"\xff\xfe", b"{\"message_id\":"] {
            let e = parse(bytes).unwrap_err();
            assert_eq!(e.message_id, None, "{bytes:?}");
            assert!(matches!(e.reason, MalformedReason::NotJson(_)), "{e}");
        }
    }

    #[test]
    fn a_bad_event_keeps_its_ids_for_the_poison_ack() {
        let mut value = done();
        value
            .as_object_mut()
            .unwrap()
            .insert("status".into(), json!("exploded"));
        let e = parse_value(&value).unwrap_err();
        assert_eq!(
            e.message_id.map(|u| u.to_string()).as_deref(),
            Some(MESSAGE_ID)
        );
        assert_eq!(e.job_id.map(|j| j.to_string()).as_deref(), Some(JOB_ID));
        assert!(matches!(e.reason, MalformedReason::Fields(_)), "{e}");
    }

    #[test]
    fn each_kind_of_malformed_event_is_recognised() {
        let edit = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
            let mut value = done();
            f(value.as_object_mut().unwrap());
            parse_value(&value).unwrap_err().reason
        };
        assert!(matches!(
            edit(&|o| {
                o.insert("version".into(), json!(2));
            }),
            MalformedReason::UnsupportedVersion(v) if v == "2"
        ));
        assert!(matches!(
            edit(&|o| {
                o.remove("version");
            }),
            MalformedReason::Fields(_)
        ));
        assert_eq!(
            edit(&|o| {
                o.insert("mp3_fid".into(), json!(null));
            }),
            MalformedReason::DoneWithoutMp3
        );
        assert!(matches!(
            edit(&|o| {
                o.insert("mp3_fid".into(), json!("../../etc/passwd"));
            }),
            MalformedReason::Fields(_)
        ));
        assert!(matches!(
            edit(&|o| {
                o.remove("job_id");
            }),
            MalformedReason::Fields(_)
        ));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example.com\r\nBcc: x@y.z",
            "a b@c.d",
        ] {
            assert_eq!(
                edit(&|o| {
                    o.insert("username".into(), json!(bad));
                }),
                MalformedReason::BadRecipient,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_id_that_is_not_a_uuid_is_not_kept() {
        let value = json!({"message_id": "'; DROP TABLE emails_sent; --", "version": 1});
        let e = parse_value(&value).unwrap_err();
        assert_eq!(e.message_id, None);
    }

    #[test]
    fn plausible_addresses() {
        for good in [
            "ada@example.com",
            "t-1234@vid2mp3.test",
            "a.b+c@sub.example.org",
        ] {
            assert!(is_plausible_address(good), "{good}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(!is_plausible_address(&long));
    }
}
