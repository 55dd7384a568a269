//! The messages on the queues, and where they travel.
//!
//! The course this system comes from put `{"video_fid", "mp3_fid", "username"}` on its `video` and
//! `mp3` queues. Ours keep those fields (a consumer written for the course still finds what it
//! reads) and add what correctness needs: a version, a message id (for idempotence), the job id,
//! the attempt number and, on events, the outcome with a failure reason. Videos wait in
//! `video.fair`, a priority queue (fair scheduling between accounts), since an existing queue's
//! arguments cannot be changed; [`LEGACY_VIDEO_QUEUE`] is the course's `video`.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, FileId, JobId, LoudnessTarget, QualityProfile, UserId};

/// The durable queue of videos waiting to be converted: a priority queue, so that an account
/// with a short backlog goes ahead of one with a long backlog (the converter sets each message's
/// priority from its owner's backlog when it is stored).
pub const VIDEO_QUEUE: &str = "video.fair";
/// Where videos waited before `video.fair` (first-come, first-served). A converter drains what an
/// older one left there into [`VIDEO_QUEUE`]; nothing publishes to it any more.
pub const LEGACY_VIDEO_QUEUE: &str = "video";
/// The durable queue of finished jobs (done or failed) waiting to be told to their owner.
pub const MP3_QUEUE: &str = "mp3";
/// The fanout exchange job events are published to: it puts each event on [`MP3_QUEUE`] (for the
/// relay) and on [`WEBHOOK_QUEUE`] (for the webhook sender), so each consumer gets every event.
pub const JOB_EVENTS_EXCHANGE: &str = "vid2mp3.job-events";
/// The durable queue of job events waiting to be sent to their owner's webhook.
pub const WEBHOOK_QUEUE: &str = "webhooks";
/// The Redis channel the converter's relay publishes job events on, for the notifier.
pub const JOB_EVENTS_CHANNEL: &str = "vid2mp3.job-events";
/// The version of the message formats below.
pub const MESSAGE_VERSION: u32 = 1;

/// The Redis key the notifier sets once it has handled an event; the relay acks the AMQP
/// message only after it appears. `prefix` is the install's Redis key prefix
/// ([`crate::progress::DEFAULT_REDIS_KEY_PREFIX`] unless configured): Redis ACLs give each
/// service its keys by prefix, so every key a service touches starts with it.
pub fn delivery_ack_key(prefix: &str, message_id: &uuid::Uuid) -> String {
    format!("{prefix}delivered:{message_id}")
}

/// "Convert this video": published by the converter's storage API once the video is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoJob {
    pub version: u32,
    /// Unique per publish; a redelivery keeps it.
    pub message_id: uuid::Uuid,
    pub job_id: JobId,
    pub video_fid: FileId,
    /// Always null on this queue; kept because the course's message has it.
    pub mp3_fid: Option<FileId>,
    /// The uploader's email address (the course's name for it).
    pub username: String,
    pub owner_id: UserId,
    pub original_name: String,
    #[serde(default)]
    pub profile: QualityProfile,
    /// Level the audio to this integrated loudness; absent (the default) leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness_lufs: Option<LoudnessTarget>,
    /// 1 for the first try; incremented by each retry.
    pub attempt: u32,
}

/// "This job ended": published by the converter on the `mp3` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    pub version: u32,
    pub message_id: uuid::Uuid,
    pub job_id: JobId,
    pub video_fid: FileId,
    /// The mp3's id when the job is done (the `fid` the course's download takes); null on failure.
    pub mp3_fid: Option<FileId>,
    pub username: String,
    pub owner_id: UserId,
    pub original_name: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: JobOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobOutcome {
    Done {
        mp3_size_bytes: u64,
        duration_ms: u64,
    },
    Failed {
        code: ErrorCode,
        /// For the person who uploaded: what went wrong and what to try.
        message: String,
    },
}

impl JobEvent {
    /// `"done"` or `"failed"`: with the job id, what makes an email unique.
    pub fn kind(&self) -> &'static str {
        match self.outcome {
            JobOutcome::Done { .. } => "done",
            JobOutcome::Failed { .. } => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fid(s: &str) -> FileId {
        s.parse().unwrap()
    }

    fn job() -> VideoJob {
        VideoJob {
            version: MESSAGE_VERSION,
            message_id: uuid::Uuid::now_v7(),
            job_id: JobId::new(),
            video_fid: fid("65f0c0ffee65f0c0ffee65f0"),
            mp3_fid: None,
            username: "ada@example.com".into(),
            owner_id: UserId::new(),
            original_name: "talk.mkv".into(),
            profile: QualityProfile::Standard,
            loudness_lufs: None,
            attempt: 1,
        }
    }

    /// What the course's consumer reads must be where it looks.
    #[test]
    fn video_job_keeps_the_course_fields() {
        let value = serde_json::to_value(job()).unwrap();
        assert_eq!(value["video_fid"], "65f0c0ffee65f0c0ffee65f0");
        assert!(value["mp3_fid"].is_null());
        assert_eq!(value["username"], "ada@example.com");
    }

    #[test]
    fn events_round_trip_with_their_outcome() {
        let j = job();
        for outcome in [
            JobOutcome::Done {
                mp3_size_bytes: 960_000,
                duration_ms: 60_000,
            },
            JobOutcome::Failed {
                code: ErrorCode::NoAudio,
                message: "the video has no sound".into(),
            },
        ] {
            let event = JobEvent {
                version: MESSAGE_VERSION,
                message_id: uuid::Uuid::now_v7(),
                job_id: j.job_id,
                video_fid: j.video_fid.clone(),
                mp3_fid: matches!(outcome, JobOutcome::Done { .. })
                    .then(|| fid("65f0c0ffee65f0c0ffee65f1")),
                username: j.username.clone(),
                owner_id: j.owner_id,
                original_name: j.original_name.clone(),
                attempt: 1,
                outcome,
            };
            let text = serde_json::to_string(&event).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["status"], event.kind());
            assert_eq!(serde_json::from_str::<JobEvent>(&text).unwrap(), event);
        }
    }

    #[test]
    fn a_message_missing_a_field_is_rejected() {
        let mut value = serde_json::to_value(job()).unwrap();
        value.as_object_mut().unwrap().remove("job_id");
        assert!(serde_json::from_value::<VideoJob>(value).is_err());
    }

    #[test]
    fn a_profile_left_out_means_standard() {
        let mut value = serde_json::to_value(job()).unwrap();
        value.as_object_mut().unwrap().remove("profile");
        assert_eq!(
            serde_json::from_value::<VideoJob>(value).unwrap().profile,
            QualityProfile::Standard
        );
    }

    #[test]
    fn loudness_is_optional_and_a_number_when_set() {
        let plain = serde_json::to_value(job()).unwrap();
        assert!(
            plain.get("loudness_lufs").is_none(),
            "absent when off: {plain}"
        );
        let levelled = VideoJob {
            loudness_lufs: Some(LoudnessTarget::SPEECH),
            ..job()
        };
        let value = serde_json::to_value(&levelled).unwrap();
        assert_eq!(value["loudness_lufs"], -16);
        assert_eq!(serde_json::from_value::<VideoJob>(value).unwrap(), levelled);
    }
}
