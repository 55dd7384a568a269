//! One event from the relay, start to finish: parse → claim → send → mark → ack.
//!
//! The rule the relay relies on: the ack is written exactly when the event needs no further
//! delivery (sent now or before, refused for good, or unreadable). Everything else leaves it
//! unacknowledged, so the relay delivers it again later. Written against traits so that every
//! path is unit-tested natively; the component wires in MySQL, Redis and the mail API.

use serde_json::json;
use vid2mp3_contracts::JobId;

use crate::delivery_ack::{AckValue, DeliveryAcks};
use crate::email;
use crate::event::{self, MalformedEvent};
use crate::mail_api::Mailer;
use crate::sent_log::{Claim, ClaimRequest, EmailKey, SentLog, Settled};

/// What the handler needs, once the event has been read.
pub struct Env<L, M, A> {
    pub sent_log: L,
    pub mailer: M,
    pub acks: A,
    pub public_base_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Emailed now.
    Sent,
    /// Emailed before; acknowledged again.
    Duplicate,
    /// The provider refused the email for good (now or before).
    Rejected,
    /// Unreadable; acknowledged so it is never retried.
    Poison,
    /// Unreadable and without a message id: nothing to acknowledge.
    Dropped,
    /// The mail API could not take it; left for redelivery.
    MailApiDown,
    /// Another delivery of the same event holds the claim; left for redelivery.
    InFlight,
    /// The notifier's database failed; left for redelivery.
    StoreError,
    /// The notifier's settings are wrong; left for redelivery once they are fixed.
    Misconfigured,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
            Outcome::Poison => "poison",
            Outcome::Dropped => "dropped",
            Outcome::MailApiDown => "mail-api-down",
            Outcome::InFlight => "in-flight",
            Outcome::StoreError => "store-error",
            Outcome::Misconfigured => "misconfigured",
        }
    }
}

/// How one event ended: the log line, and whether the trigger reports a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub message_id: Option<uuid::Uuid>,
    pub job_id: Option<JobId>,
    pub kind: Option<&'static str>,
    pub attempt: Option<u32>,
    pub outcome: Outcome,
    pub acked: bool,
    pub took_over_stale: bool,
    pub provider_id: Option<String>,
    /// What went wrong, safe to log (no secrets, no raw input).
    pub error: Option<String>,
}

impl Report {
    fn new(message_id: Option<uuid::Uuid>, job_id: Option<JobId>, outcome: Outcome) -> Self {
        Report {
            message_id,
            job_id,
            kind: None,
            attempt: None,
            outcome,
            acked: false,
            took_over_stale: false,
            provider_id: None,
            error: None,
        }
    }

    /// Whether the event is left for redelivery: an id to ack and no ack written.
    pub fn needs_redelivery(&self) -> bool {
        self.message_id.is_some() && !self.acked
    }

    /// One JSON line for the log.
    pub fn log_line(&self) -> String {
        json!({
            "component": "notifier",
            "msg": "job event",
            "message_id": self.message_id.map(|id| id.to_string()),
            "job_id": self.job_id.map(|id| id.to_string()),
            "kind": self.kind,
            "attempt": self.attempt,
            "outcome": self.outcome.as_str(),
            "acked": self.acked,
            "took_over_stale_claim": self.took_over_stale,
            "provider_id": self.provider_id,
            "error": self.error,
        })
        .to_string()
    }
}

/// Handles one message. `env` is built only once the event has been read, so a bad setting is
/// reported with the event's ids.
pub fn handle<L, M, A>(
    bytes: &[u8],
    env: impl FnOnce() -> Result<Env<L, M, A>, String>,
    new_token: impl FnOnce() -> uuid::Uuid,
) -> Report
where
    L: SentLog,
    M: Mailer,
    A: DeliveryAcks,
{
    let parsed = event::parse(bytes);
    let (message_id, job_id) = match &parsed {
        Ok(e) => (Some(e.message_id), Some(e.job_id)),
        Err(m) => (m.message_id, m.job_id),
    };
    let env = match env() {
        Ok(env) => env,
        Err(e) => {
            let mut report = Report::new(message_id, job_id, Outcome::Misconfigured);
            report.error = Some(e);
            return report;
        }
    };
    match parsed {
        Ok(event) => handle_event(&event, &env, new_token()),
        Err(malformed) => handle_malformed(&malformed, &env.acks),
    }
}

fn handle_malformed(malformed: &MalformedEvent, acks: &impl DeliveryAcks) -> Report {
    let Some(message_id) = malformed.message_id else {
        let mut report = Report::new(None, malformed.job_id, Outcome::Dropped);
        report.error = Some(malformed.to_string());
        return report;
    };
    let mut report = Report::new(Some(message_id), malformed.job_id, Outcome::Poison);
    match acks.ack(&message_id, AckValue::Poison) {
        Ok(()) => {
            report.acked = true;
            report.error = Some(malformed.to_string());
        }
        Err(e) => report.error = Some(format!("{malformed}; {e}")),
    }
    report
}

fn handle_event<L, M, A>(
    event: &vid2mp3_contracts::JobEvent,
    env: &Env<L, M, A>,
    token: uuid::Uuid,
) -> Report
where
    L: SentLog,
    M: Mailer,
    A: DeliveryAcks,
{
    let mut report = Report::new(Some(event.message_id), Some(event.job_id), Outcome::Sent);
    report.kind = Some(event.kind());
    report.attempt = Some(event.attempt);

    // Rendered before claiming: an event that cannot become an email must not hold a claim.
    let email = match email::render(event, &env.public_base_url) {
        Ok(email) => email,
        Err(e) => {
            report.outcome = Outcome::Poison;
            return ack(report, &env.acks, AckValue::Poison, Some(e.to_string()));
        }
    };
    let key = EmailKey {
        job_id: event.job_id,
        kind: event.kind(),
    };
    let claim = env.sent_log.claim(&ClaimRequest {
        key,
        event_id: event.message_id,
        recipient: &event.username,
        token,
    });
    match claim {
        Err(e) => {
            report.outcome = Outcome::StoreError;
            report.error = Some(e.to_string());
            report
        }
        Ok(Claim::Settled(Settled::Sent)) => {
            report.outcome = Outcome::Duplicate;
            ack(report, &env.acks, AckValue::Duplicate, None)
        }
        Ok(Claim::Settled(Settled::Rejected)) => {
            report.outcome = Outcome::Rejected;
            ack(report, &env.acks, AckValue::Rejected, None)
        }
        Ok(Claim::InFlight) => {
            // Not acked: the other attempt may yet fail and release its claim, and then this
            // event must still be sent. Its next delivery finds the row settled, or stale.
            report.outcome = Outcome::InFlight;
            report.error = Some("another delivery of this event is sending it".into());
            report
        }
        Ok(Claim::Ours { took_over_stale }) => {
            report.took_over_stale = took_over_stale;
            send(report, env, key, token, &email)
        }
    }
}

fn send<L, M, A>(
    mut report: Report,
    env: &Env<L, M, A>,
    key: EmailKey<'_>,
    token: uuid::Uuid,
    email: &email::Email,
) -> Report
where
    L: SentLog,
    M: Mailer,
    A: DeliveryAcks,
{
    match env.mailer.send(email) {
        Ok(accepted) => {
            report.outcome = Outcome::Sent;
            report.provider_id = accepted.provider_id.clone();
            // The email is out: whatever happens to the bookkeeping now, the event is handled
            // and is acked. A failed mark leaves a 'sending' row that turns stale; only another
            // event for the same job and kind (not a redelivery of this one, which is acked)
            // could then send a second email.
            let note = env
                .sent_log
                .mark_sent(key, token, accepted.provider_id.as_deref())
                .err()
                .map(|e| format!("sent, but not recorded: {e}"));
            ack(report, &env.acks, AckValue::Sent, note)
        }
        Err(e) if e.is_permanent() => {
            report.outcome = Outcome::Rejected;
            let mut note = e.to_string();
            if let Err(mark) = env.sent_log.mark_rejected(key, token, &e.to_string()) {
                note = format!("{note}; not recorded: {mark}");
            }
            ack(report, &env.acks, AckValue::Rejected, Some(note))
        }
        Err(e) => {
            report.outcome = Outcome::MailApiDown;
            let mut note = e.to_string();
            // Released so that the redelivery sends; if even that fails, the claim turns stale
            // and the redelivery after that takes it over.
            if let Err(release) = env.sent_log.release(key, token) {
                note = format!("{note}; claim not released: {release}");
            }
            report.error = Some(note);
            report
        }
    }
}

fn ack(
    mut report: Report,
    acks: &impl DeliveryAcks,
    value: AckValue,
    note: Option<String>,
) -> Report {
    let Some(message_id) = report.message_id else {
        report.error = note;
        return report;
    };
    match acks.ack(&message_id, value) {
        Ok(()) => {
            report.acked = true;
            report.error = note;
        }
        Err(e) => {
            report.error = Some(match note {
                Some(note) => format!("{note}; {e}"),
                None => e.to_string(),
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::delivery_ack::AckError;
    use crate::email::Email;
    use crate::mail_api::{Accepted, MailApiError};
    use crate::sent_log::SentLogError;
    use vid2mp3_contracts::messages::MESSAGE_VERSION;
    use vid2mp3_contracts::{ErrorCode, FileId, JobEvent, JobOutcome, UserId};

    /// `emails_sent` in memory, with the same claim rules (without staleness).
    #[derive(Default)]
    struct FakeLog {
        rows: RefCell<HashMap<(String, String), (String, uuid::Uuid)>>,
        down: bool,
        fail_marks: bool,
    }

    impl SentLog for &FakeLog {
        fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, SentLogError> {
            if self.down {
                return Err(SentLogError::Connect("refused".into()));
            }
            let mut rows = self.rows.borrow_mut();
            let entry = rows
                .entry((r.key.job_id.to_string(), r.key.kind.to_owned()))
                .or_insert(("sending".into(), r.token));
            Ok(match (entry.0.as_str(), entry.1 == r.token) {
                ("sent", _) => Claim::Settled(Settled::Sent),
                ("rejected", _) => Claim::Settled(Settled::Rejected),
                (_, true) => Claim::Ours {
                    took_over_stale: false,
                },
                _ => Claim::InFlight,
            })
        }
        fn mark_sent(
            &self,
            key: EmailKey<'_>,
            token: uuid::Uuid,
            _: Option<&str>,
        ) -> Result<(), SentLogError> {
            self.set(key, token, "sent")
        }
        fn mark_rejected(
            &self,
            key: EmailKey<'_>,
            token: uuid::Uuid,
            _: &str,
        ) -> Result<(), SentLogError> {
            self.set(key, token, "rejected")
        }
        fn release(&self, key: EmailKey<'_>, token: uuid::Uuid) -> Result<(), SentLogError> {
            let mut rows = self.rows.borrow_mut();
            let k = (key.job_id.to_string(), key.kind.to_owned());
            if rows
                .get(&k)
                .is_some_and(|r| r.1 == token && r.0 == "sending")
            {
                rows.remove(&k);
            }
            Ok(())
        }
    }

    impl FakeLog {
        fn set(
            &self,
            key: EmailKey<'_>,
            token: uuid::Uuid,
            state: &str,
        ) -> Result<(), SentLogError> {
            if self.fail_marks {
                return Err(SentLogError::Query {
                    action: "mark",
                    reason: "gone".into(),
                });
            }
            let mut rows = self.rows.borrow_mut();
            if let Some(row) = rows.get_mut(&(key.job_id.to_string(), key.kind.to_owned()))
                && row.1 == token
            {
                row.0 = state.to_owned();
            }
            Ok(())
        }

        fn state(&self, job: JobId, kind: &str) -> Option<String> {
            self.rows
                .borrow()
                .get(&(job.to_string(), kind.to_owned()))
                .map(|r| r.0.clone())
        }
    }

    #[derive(Default)]
    struct FakeMailer {
        sent: RefCell<Vec<Email>>,
        answer: RefCell<Option<MailApiError>>,
    }

    impl Mailer for &FakeMailer {
        fn send(&self, email: &Email) -> Result<Accepted, MailApiError> {
            if let Some(e) = self.answer.borrow().clone() {
                return Err(e);
            }
            self.sent.borrow_mut().push(email.clone());
            Ok(Accepted {
                provider_id: Some(format!("p{}", self.sent.borrow().len())),
            })
        }
    }

    #[derive(Default)]
    struct FakeAcks {
        keys: RefCell<HashMap<uuid::Uuid, &'static str>>,
        down: bool,
    }

    impl DeliveryAcks for &FakeAcks {
        fn ack(&self, id: &uuid::Uuid, value: AckValue) -> Result<(), AckError> {
            if self.down {
                return Err(AckError::Connect("refused".into()));
            }
            self.keys.borrow_mut().insert(*id, value.as_str());
            Ok(())
        }
    }

    struct World {
        log: FakeLog,
        mailer: FakeMailer,
        acks: FakeAcks,
    }

    impl World {
        fn new() -> Self {
            World {
                log: FakeLog::default(),
                mailer: FakeMailer::default(),
                acks: FakeAcks::default(),
            }
        }

        fn deliver(&self, bytes: &[u8]) -> Report {
            handle(
                bytes,
                || {
                    Ok(Env {
                        sent_log: &self.log,
                        mailer: &self.mailer,
                        acks: &self.acks,
                        public_base_url: "http://127.0.0.1:3000".into(),
                    })
                },
                uuid::Uuid::new_v4,
            )
        }

        fn ack_of(&self, id: uuid::Uuid) -> Option<&'static str> {
            self.acks.keys.borrow().get(&id).copied()
        }
    }

    fn event(outcome: JobOutcome) -> JobEvent {
        let done = matches!(outcome, JobOutcome::Done { .. });
        JobEvent {
            version: MESSAGE_VERSION,
            message_id: uuid::Uuid::now_v7(),
            job_id: JobId::new(),
            video_fid: "65f0c0ffee65f0c0ffee65f0".parse::<FileId>().unwrap(),
            mp3_fid: done.then(|| "65f0c0ffee65f0c0ffee65f1".parse().unwrap()),
            username: "ada@example.com".into(),
            owner_id: UserId::new(),
            original_name: "talk.mkv".into(),
            attempt: 1,
            outcome,
        }
    }

    fn done() -> JobEvent {
        event(JobOutcome::Done {
            mp3_size_bytes: 1,
            duration_ms: 1,
        })
    }

    fn bytes(event: &JobEvent) -> Vec<u8> {
        serde_json::to_vec(event).unwrap()
    }

    #[test]
    fn a_done_event_is_sent_recorded_and_acked() {
        let world = World::new();
        let event = done();
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Sent, "{report:?}");
        assert!(report.acked && !report.needs_redelivery());
        assert_eq!(report.provider_id.as_deref(), Some("p1"));
        assert_eq!(world.mailer.sent.borrow().len(), 1);
        assert_eq!(
            world.log.state(event.job_id, "done").as_deref(),
            Some("sent")
        );
        assert_eq!(world.ack_of(event.message_id), Some("sent"));
    }

    #[test]
    fn a_redelivery_sends_nothing_and_acks_again() {
        let world = World::new();
        let event = done();
        world.deliver(&bytes(&event));
        world.acks.keys.borrow_mut().clear();
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Duplicate);
        assert!(report.acked);
        assert_eq!(world.mailer.sent.borrow().len(), 1);
        assert_eq!(world.ack_of(event.message_id), Some("duplicate"));
    }

    #[test]
    fn done_and_failed_are_two_emails() {
        let world = World::new();
        let first = done();
        let mut second = event(JobOutcome::Failed {
            code: ErrorCode::Internal,
            message: String::new(),
        });
        second.job_id = first.job_id;
        assert_eq!(world.deliver(&bytes(&first)).outcome, Outcome::Sent);
        assert_eq!(world.deliver(&bytes(&second)).outcome, Outcome::Sent);
        assert_eq!(world.mailer.sent.borrow().len(), 2);
    }

    #[test]
    fn a_mail_api_outage_releases_the_claim_and_leaves_the_event_unacked() {
        let world = World::new();
        let event = done();
        *world.mailer.answer.borrow_mut() = Some(MailApiError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        });
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::MailApiDown);
        assert!(report.needs_redelivery());
        assert!(report.error.unwrap().contains("connection refused"));
        assert_eq!(world.log.state(event.job_id, "done"), None);
        assert_eq!(world.ack_of(event.message_id), None);

        // Back up: the redelivery sends.
        *world.mailer.answer.borrow_mut() = None;
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Sent);
        assert_eq!(world.mailer.sent.borrow().len(), 1);
    }

    #[test]
    fn a_refused_email_is_recorded_and_acked_not_retried() {
        let world = World::new();
        let event = done();
        *world.mailer.answer.borrow_mut() = Some(MailApiError::Rejected {
            endpoint: "x".into(),
            status: 400,
            detail: "invalid recipient".into(),
        });
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Rejected);
        assert!(report.acked);
        assert_eq!(world.ack_of(event.message_id), Some("rejected"));
        assert_eq!(
            world.log.state(event.job_id, "done").as_deref(),
            Some("rejected")
        );
        // And stays refused without asking the provider again.
        *world.mailer.answer.borrow_mut() = None;
        assert_eq!(world.deliver(&bytes(&event)).outcome, Outcome::Rejected);
        assert!(world.mailer.sent.borrow().is_empty());
    }

    #[test]
    fn a_claim_held_by_another_delivery_is_left_for_redelivery() {
        let world = World::new();
        let event = done();
        world.log.rows.borrow_mut().insert(
            (event.job_id.to_string(), "done".into()),
            ("sending".into(), uuid::Uuid::new_v4()),
        );
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::InFlight);
        assert!(report.needs_redelivery());
        assert!(world.mailer.sent.borrow().is_empty());
    }

    #[test]
    fn malformed_events_are_acked_as_poison_when_they_have_an_id() {
        let world = World::new();
        let id = uuid::Uuid::now_v7();
        let report = world.deliver(format!(r#"{{"version":1,"message_id":"{id}"}}"#).as_bytes());
        assert_eq!(report.outcome, Outcome::Poison);
        assert!(report.acked);
        assert_eq!(world.ack_of(id), Some("poison"));

        let report = world.deliver(b"not json");
        assert_eq!(report.outcome, Outcome::Dropped);
        assert!(!report.needs_redelivery());
        assert!(world.mailer.sent.borrow().is_empty());
    }

    #[test]
    fn a_database_outage_sends_nothing_and_acks_nothing() {
        let mut world = World::new();
        world.log.down = true;
        let event = done();
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::StoreError);
        assert!(report.needs_redelivery());
        assert!(world.mailer.sent.borrow().is_empty());
    }

    #[test]
    fn a_sent_email_is_acked_even_if_it_could_not_be_recorded() {
        let mut world = World::new();
        world.log.fail_marks = true;
        let event = done();
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Sent);
        assert!(report.acked);
        assert!(report.error.unwrap().contains("not recorded"));
    }

    #[test]
    fn a_redis_outage_leaves_the_event_for_redelivery_which_then_acks() {
        let mut world = World::new();
        world.acks.down = true;
        let event = done();
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Sent);
        assert!(report.needs_redelivery());
        world.acks.down = false;
        let report = world.deliver(&bytes(&event));
        assert_eq!(report.outcome, Outcome::Duplicate);
        assert!(report.acked);
        assert_eq!(world.mailer.sent.borrow().len(), 1);
    }

    #[test]
    fn a_bad_setting_is_reported_with_the_event_ids() {
        let event = done();
        let report = handle::<&FakeLog, &FakeMailer, &FakeAcks>(
            &bytes(&event),
            || Err("the Spin variable `mail_api` is 'smtp'".into()),
            uuid::Uuid::new_v4,
        );
        assert_eq!(report.outcome, Outcome::Misconfigured);
        assert_eq!(report.message_id, Some(event.message_id));
        assert!(report.needs_redelivery());
    }

    #[test]
    fn the_log_line_is_one_json_object_with_the_ids_and_outcome() {
        let world = World::new();
        let event = done();
        let line = world.deliver(&bytes(&event)).log_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["message_id"], event.message_id.to_string());
        assert_eq!(value["job_id"], event.job_id.to_string());
        assert_eq!(value["kind"], "done");
        assert_eq!(value["outcome"], "sent");
    }
}
