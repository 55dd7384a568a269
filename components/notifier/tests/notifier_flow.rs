//! The notifier as it ships: the real spin.toml under runtime-host, with the built `.wasm`,
//! against MariaDB, Redis and Mailpit (`scripts/services start`; build the component first:
//! `cargo build --target wasm32-wasip2 --profile component -p vid2mp3-notifier`).
//!
//! Each test has its own database, Redis channel and Mailpit address. Events are published the
//! way the converter's relay does, and every effect is waited for by polling with a deadline.
//! The end-to-end flow with the converter is tested in `tests/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mysql_async::prelude::Queryable;
use redis::AsyncCommands;
use tokio::net::{TcpListener, TcpStream};
use vid2mp3_contracts::account_email::{
    ACCOUNT_EMAIL_VERSION, ACCOUNT_EMAILS_CHANNEL, AccountEmail, AccountEmailKind,
};
use vid2mp3_contracts::messages::{JOB_EVENTS_CHANNEL, MESSAGE_VERSION, delivery_ack_key};
use vid2mp3_contracts::{ErrorCode, FileId, JobEvent, JobId, JobOutcome, UserId};
use vid2mp3_migrations::Service;
use vid2mp3_test_support::{
    Mailbox, MySqlDatabase, RedisNamespace, RedisUsers, SpinApp, SpinAppBuilder,
};

const DEADLINE: Duration = Duration::from_secs(30);
const PUBLIC_BASE_URL: &str = "https://vid2mp3.example";

/// One notifier under test, with the resources only it uses.
struct Notifier {
    app: Option<SpinApp>,
    db: MySqlDatabase,
    mailbox: Mailbox,
    redis: RedisNamespace,
    channel: String,
    /// The test's own account-emails channel (auth's messages; here the test publishes them).
    account_channel: String,
    conn: redis::aio::MultiplexedConnection,
    /// The notifier logs in as the test's notifier user, confined to the namespace and channel.
    users: RedisUsers,
}

impl Notifier {
    /// Mail goes straight to Mailpit.
    async fn start() -> anyhow::Result<Notifier> {
        let mailbox = Mailbox::create().await?;
        let url = mailbox.mailpit_url().to_owned();
        Notifier::start_with(mailbox, &url).await
    }

    async fn start_with(mailbox: Mailbox, mail_api_url: &str) -> anyhow::Result<Notifier> {
        // The component's log lines, shown for a failing test (`RUST_LOG=component=info`).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let db = MySqlDatabase::migrated(Service::Notifier).await?;
        let redis = RedisNamespace::create().await?;
        let channel = redis.key("job-events");
        let account_channel = redis.key("account-emails");
        let users = redis
            .service_users(&[
                (JOB_EVENTS_CHANNEL, channel.as_str()),
                (ACCOUNT_EMAILS_CHANNEL, account_channel.as_str()),
            ])
            .await?;
        let conn = redis.connection().await?;
        let mut notifier = Notifier {
            app: None,
            db,
            mailbox,
            redis,
            channel,
            account_channel,
            conn,
            users,
        };
        notifier.app = Some(notifier.app_builder(mail_api_url)?.start().await?);
        notifier.wait_until_subscribed(1).await?;
        Ok(notifier)
    }

    fn app_builder(&self, mail_api_url: &str) -> anyhow::Result<SpinAppBuilder> {
        // Only the notifier's own settings: the other components' secrets stay empty, as in the
        // notifier's own SpinApp (deploy/), and the app must start without them.
        let builder = SpinAppBuilder::from_workspace_manifest()?
            .rename_redis_channel(JOB_EVENTS_CHANNEL, &self.channel)
            .rename_redis_channel(ACCOUNT_EMAILS_CHANNEL, &self.account_channel)
            .variable("notifier_db_url", self.db.service_url())
            .variable("mysql_host", self.db.server_host()?)
            .variable("redis_host", self.redis.server_host()?)
            .variable("notifier_redis_url", self.users.url("notifier"))
            .variable("redis_key_prefix", self.redis.prefix())
            .variable("mail_api", "mailpit")
            .variable("mail_api_url", mail_api_url)
            .variable("public_base_url", PUBLIC_BASE_URL);
        Ok(builder)
    }

    /// A message published before the trigger subscribes is lost (pub/sub keeps nothing).
    async fn wait_until_subscribed(&self, subscribers: u64) -> anyhow::Result<()> {
        eventually("the notifier to subscribe", || async {
            let (_, count): (String, u64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&self.channel)
                .query_async(&mut self.conn.clone())
                .await?;
            Ok((count >= subscribers).then_some(()))
        })
        .await
    }

    fn event(&self, job_id: JobId, outcome: JobOutcome, original_name: &str) -> JobEvent {
        let done = matches!(outcome, JobOutcome::Done { .. });
        JobEvent {
            version: MESSAGE_VERSION,
            message_id: uuid::Uuid::now_v7(),
            job_id,
            video_fid: "65f0c0ffee65f0c0ffee65f0".parse::<FileId>().expect("fid"),
            mp3_fid: done.then(|| "65f0c0ffee65f0c0ffee65f1".parse().expect("fid")),
            username: self.mailbox.address().to_owned(),
            owner_id: UserId::new(),
            original_name: original_name.to_owned(),
            attempt: 1,
            outcome,
        }
    }

    async fn publish(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let receivers: u64 = self.conn.clone().publish(&self.channel, bytes).await?;
        anyhow::ensure!(receivers > 0, "nobody subscribes to {}", self.channel);
        Ok(())
    }

    async fn publish_event(&mut self, event: &JobEvent) -> anyhow::Result<()> {
        self.publish(&serde_json::to_vec(event)?).await
    }

    async fn ack(&self, message_id: &uuid::Uuid) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .clone()
            .get(delivery_ack_key(self.redis.prefix(), message_id))
            .await?)
    }

    async fn wait_for_ack(&self, message_id: &uuid::Uuid) -> anyhow::Result<String> {
        eventually(&format!("the delivery ack of {message_id}"), || async {
            self.ack(message_id).await
        })
        .await
    }

    async fn clear_ack(&self, message_id: &uuid::Uuid) -> anyhow::Result<()> {
        let _: u64 = self
            .conn
            .clone()
            .del(delivery_ack_key(self.redis.prefix(), message_id))
            .await?;
        Ok(())
    }

    async fn ack_ttl(&self, message_id: &uuid::Uuid) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .clone()
            .ttl(delivery_ack_key(self.redis.prefix(), message_id))
            .await?)
    }

    /// `(kind, state)` of this job's rows in emails_sent.
    async fn rows(&self, job_id: JobId) -> anyhow::Result<Vec<(String, String)>> {
        let pool = self.db.pool()?;
        let mut conn = pool.get_conn().await?;
        let rows: Vec<(String, String)> = conn
            .exec(
                "SELECT kind, state FROM emails_sent WHERE job_id = ? ORDER BY kind",
                (job_id.to_string(),),
            )
            .await?;
        drop(conn);
        pool.disconnect().await?;
        Ok(rows)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
        // The acks are under the namespace, which removes them.
        Ok(())
    }
}

/// Polls `probe` until it yields a value, or fails after [`DEADLINE`] naming what it waited for.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "waited {DEADLINE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An account email (what auth publishes) delivered twice, as two notifier replicas would each
/// get it: one email with the link; a malformed one is dropped and sends nothing.
#[tokio::test]
async fn an_account_email_is_sent_once_however_often_it_arrives() -> anyhow::Result<()> {
    let notifier = Notifier::start().await?;
    let token = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
    let message = AccountEmail {
        version: ACCOUNT_EMAIL_VERSION,
        message_id: uuid::Uuid::now_v7(),
        to: notifier.mailbox.address().to_owned(),
        kind: AccountEmailKind::Confirm {
            token: token.to_owned(),
            expires_at: 4_000_000_000,
        },
    };
    let bytes = serde_json::to_vec(&message)?;
    let mut broken = serde_json::to_value(&message)?;
    broken["message_id"] = serde_json::json!(uuid::Uuid::now_v7());
    broken["token"] = serde_json::json!("<not a token>");
    for payload in [bytes.clone(), bytes, serde_json::to_vec(&broken)?] {
        let receivers: u64 = notifier
            .conn
            .clone()
            .publish(&notifier.account_channel, payload)
            .await?;
        anyhow::ensure!(receivers > 0, "nobody subscribes to the account channel");
    }
    let mail = notifier.mailbox.wait_for(1, DEADLINE).await?;
    assert_eq!(mail[0].subject, "Confirm your email address for vid2mp3");
    assert!(
        mail[0]
            .text
            .contains(&format!("{PUBLIC_BASE_URL}/confirm#token={token}")),
        "{}",
        mail[0].text
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(notifier.mailbox.messages().await?.len(), 1);
    let pool = notifier.db.pool()?;
    let mut conn = pool.get_conn().await?;
    let rows: Vec<(String, String, String)> = conn
        .query("SELECT message_id, kind, state FROM account_emails_sent")
        .await?;
    drop(conn);
    pool.disconnect().await?;
    assert_eq!(
        rows,
        vec![(
            message.message_id.to_string(),
            "confirm".to_owned(),
            "sent".to_owned()
        )]
    );
    notifier.stop().await
}

fn done() -> JobOutcome {
    JobOutcome::Done {
        mp3_size_bytes: 960_000,
        duration_ms: 60_000,
    }
}

#[tokio::test]
async fn a_done_event_sends_one_email_with_the_links_and_acks() -> anyhow::Result<()> {
    let mut notifier = Notifier::start().await?;
    let job_id = JobId::new();
    let name = "<b>Talk</b> & \"Q&A\".mkv";
    let event = notifier.event(job_id, done(), name);
    notifier.publish_event(&event).await?;

    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "sent");
    let ttl = notifier.ack_ttl(&event.message_id).await?;
    assert!((1..=86_400).contains(&ttl), "the ack expires: ttl {ttl}");
    // The email is sent before the ack is written, so it is there now.
    let messages = notifier.mailbox.messages().await?;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let mail = &messages[0];
    assert_eq!(mail.to, vec![notifier.mailbox.address().to_owned()]);
    assert_eq!(mail.from, "noreply@vid2mp3.localhost");
    assert!(mail.subject.contains("is ready"), "{}", mail.subject);
    assert!(mail.subject.contains(name), "{}", mail.subject);
    let course_link = format!("{PUBLIC_BASE_URL}/download?fid=65f0c0ffee65f0c0ffee65f1");
    let api_link = format!("{PUBLIC_BASE_URL}/api/v1/jobs/{job_id}/mp3");
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("65f0c0ffee65f0c0ffee65f1"), "{part}");
        assert!(part.contains(&course_link), "{part}");
        assert!(part.contains(&api_link), "{part}");
    }
    assert!(mail.text.contains(name), "{}", mail.text);
    assert!(
        mail.html
            .contains("&lt;b&gt;Talk&lt;/b&gt; &amp; &quot;Q&amp;A&quot;.mkv"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<b>Talk"), "{}", mail.html);
    assert_eq!(
        notifier.rows(job_id).await?,
        vec![("done".to_owned(), "sent".to_owned())]
    );
    notifier.stop().await
}

#[tokio::test]
async fn a_duplicate_delivery_sends_nothing_more_and_is_acked_again() -> anyhow::Result<()> {
    let mut notifier = Notifier::start().await?;
    let job_id = JobId::new();
    let event = notifier.event(job_id, done(), "talk.mkv");
    notifier.publish_event(&event).await?;
    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "sent");
    // The relay did not see the ack in time and delivers the same message again.
    notifier.clear_ack(&event.message_id).await?;
    notifier.publish_event(&event).await?;
    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "duplicate");
    assert_eq!(notifier.mailbox.messages().await?.len(), 1);

    // Several copies of another job's event at once (the runtime handles them concurrently):
    // one claims and sends; the others find it sent, or in flight and wait for redelivery.
    let burst_job = JobId::new();
    let burst = notifier.event(burst_job, done(), "burst.mkv");
    for _ in 0..4 {
        notifier.publish_event(&burst).await?;
    }
    notifier.wait_for_ack(&burst.message_id).await?;
    // The converter publishing the same outcome twice (a new message id) is one email too.
    let mut again = notifier.event(burst_job, done(), "burst.mkv");
    again.attempt = 2;
    notifier.publish_event(&again).await?;
    assert_eq!(notifier.wait_for_ack(&again.message_id).await?, "duplicate");

    assert_eq!(notifier.mailbox.messages().await?.len(), 2);
    for job in [job_id, burst_job] {
        assert_eq!(
            notifier.rows(job).await?,
            vec![("done".to_owned(), "sent".to_owned())]
        );
    }
    notifier.stop().await
}

#[tokio::test]
async fn a_failed_event_tells_the_user_in_plain_words() -> anyhow::Result<()> {
    let mut notifier = Notifier::start().await?;
    let job_id = JobId::new();
    let event = notifier.event(
        job_id,
        JobOutcome::Failed {
            code: ErrorCode::NoAudio,
            message: "no audio stream found".into(),
        },
        "holiday.mp4",
    );
    notifier.publish_event(&event).await?;
    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "sent");
    let messages = notifier.mailbox.messages().await?;
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert!(
        mail.subject.contains("could not convert"),
        "{}",
        mail.subject
    );
    assert!(mail.subject.contains("holiday.mp4"), "{}", mail.subject);
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("has no sound track"), "{part}");
        assert!(
            part.contains("Upload a version of the video that has sound"),
            "{part}"
        );
        assert!(!part.contains("no_audio"), "codes are for programs: {part}");
        assert!(part.contains(&job_id.to_string()), "{part}");
    }
    assert_eq!(
        notifier.rows(job_id).await?,
        vec![("failed".to_owned(), "sent".to_owned())]
    );
    notifier.stop().await
}

#[tokio::test]
async fn done_and_failed_for_one_job_are_two_emails() -> anyhow::Result<()> {
    let mut notifier = Notifier::start().await?;
    let job_id = JobId::new();
    let failed = notifier.event(
        job_id,
        JobOutcome::Failed {
            code: ErrorCode::RetriesExhausted,
            message: String::new(),
        },
        "talk.mkv",
    );
    let done = notifier.event(job_id, done(), "talk.mkv");
    notifier.publish_event(&failed).await?;
    notifier.publish_event(&done).await?;
    assert_eq!(notifier.wait_for_ack(&failed.message_id).await?, "sent");
    assert_eq!(notifier.wait_for_ack(&done.message_id).await?, "sent");
    let mut subjects: Vec<String> = notifier
        .mailbox
        .messages()
        .await?
        .into_iter()
        .map(|m| m.subject)
        .collect();
    subjects.sort();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects[0].contains("is ready") || subjects[1].contains("is ready"));
    assert!(subjects.iter().any(|s| s.contains("could not convert")));
    assert_eq!(
        notifier.rows(job_id).await?,
        vec![
            ("done".to_owned(), "sent".to_owned()),
            ("failed".to_owned(), "sent".to_owned())
        ]
    );
    notifier.stop().await
}

#[tokio::test]
async fn a_malformed_event_is_acked_as_poison_and_emails_no_one() -> anyhow::Result<()> {
    let mut notifier = Notifier::start().await?;
    // No id at all: logged and dropped (nothing to ack); it must not disturb what follows.
    notifier.publish(b"\x00 definitely not json").await?;

    let job_id = JobId::new();
    let event = notifier.event(job_id, done(), "talk.mkv");
    let mut value = serde_json::to_value(&event)?;
    value["status"] = "exploded".into();
    notifier.publish(value.to_string().as_bytes()).await?;
    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "poison");

    // A done event without its mp3 id cannot become an email either.
    let mut no_fid = notifier.event(JobId::new(), done(), "talk.mkv");
    no_fid.mp3_fid = None;
    notifier.publish_event(&no_fid).await?;
    assert_eq!(notifier.wait_for_ack(&no_fid.message_id).await?, "poison");

    assert!(notifier.mailbox.messages().await?.is_empty());
    assert!(notifier.rows(job_id).await?.is_empty());
    notifier.stop().await
}

#[tokio::test]
async fn a_claim_left_by_a_crashed_attempt_is_taken_over_once_stale() -> anyhow::Result<()> {
    let mut notifier = Notifier::start().await?;
    let job_id = JobId::new();
    let event = notifier.event(job_id, done(), "talk.mkv");
    // What an attempt that died between claiming and marking leaves behind, ten minutes ago.
    let pool = notifier.db.pool()?;
    let mut conn = pool.get_conn().await?;
    conn.exec_drop(
        "INSERT INTO emails_sent (job_id, kind, event_id, recipient, state, claim_token, claimed_at) \
         VALUES (?, 'done', ?, ?, 'sending', ?, CURRENT_TIMESTAMP(3) - INTERVAL 10 MINUTE)",
        (
            job_id.to_string(),
            event.message_id.to_string(),
            notifier.mailbox.address(),
            uuid::Uuid::new_v4().to_string(),
        ),
    )
    .await?;

    notifier.publish_event(&event).await?;
    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "sent");
    assert_eq!(notifier.mailbox.messages().await?.len(), 1);
    let (state, attempts): (String, u32) = conn
        .exec_first(
            "SELECT state, send_attempts FROM emails_sent WHERE job_id = ? AND kind = 'done'",
            (job_id.to_string(),),
        )
        .await?
        .context("the row")?;
    assert_eq!((state.as_str(), attempts), ("sent", 2));
    drop(conn);
    pool.disconnect().await?;
    notifier.stop().await
}

/// A TCP forwarder to Mailpit that can be switched off: then it accepts and hangs up at once,
/// as a crashed mail API would, and counts the attempts.
struct SwitchableProxy {
    url: String,
    up: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SwitchableProxy {
    async fn start(target: String) -> anyhow::Result<SwitchableProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let up = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (up, refused) = (up.clone(), refused.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        refused.fetch_add(1, Ordering::SeqCst);
                        drop(inbound);
                        continue;
                    }
                    let target = target.clone();
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }
        });
        Ok(SwitchableProxy {
            url,
            up,
            refused,
            task,
        })
    }
}

impl Drop for SwitchableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_mail_api_outage_leaves_the_event_unacked_until_a_redelivery_succeeds()
-> anyhow::Result<()> {
    let mailbox = Mailbox::create().await?;
    let mailpit = url_authority(mailbox.mailpit_url())?;
    let proxy = SwitchableProxy::start(mailpit).await?;
    let mut notifier = Notifier::start_with(mailbox, &proxy.url).await?;
    let job_id = JobId::new();
    let event = notifier.event(job_id, done(), "talk.mkv");
    notifier.publish_event(&event).await?;

    // The send was tried (the claim exists by then) and has failed once the claim is released.
    eventually("a refused send and a released claim", || async {
        let tried = proxy.refused.load(Ordering::SeqCst) > 0;
        Ok((tried && notifier.rows(job_id).await?.is_empty()).then_some(()))
    })
    .await?;
    assert_eq!(notifier.ack(&event.message_id).await?, None, "no ack");
    assert!(notifier.mailbox.messages().await?.is_empty());

    // Mailpit is back; the relay redelivers the same message.
    proxy.up.store(true, Ordering::SeqCst);
    notifier.publish_event(&event).await?;
    assert_eq!(notifier.wait_for_ack(&event.message_id).await?, "sent");
    assert_eq!(notifier.mailbox.messages().await?.len(), 1);
    assert_eq!(
        notifier.rows(job_id).await?,
        vec![("done".to_owned(), "sent".to_owned())]
    );
    notifier.stop().await
}

#[tokio::test]
async fn a_closed_mail_api_port_is_an_outage_too() -> anyhow::Result<()> {
    // A port that was just free: nothing listens on it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", listener.local_addr()?)
    };
    let mailbox = Mailbox::create().await?;
    let mut down = Notifier::start_with(mailbox, &closed).await?;
    let job_id = JobId::new();
    let event = down.event(job_id, done(), "talk.mkv");
    let bytes = serde_json::to_vec(&event)?;
    down.publish_event(&event).await?;
    // Nothing to observe but the absence of effects, so wait for the next delivery's result
    // instead: a second, identical notifier with a working mail API on the same channel and
    // database (the outage's notifier keeps failing meanwhile; it must not send either).
    let app = down
        .app_builder(down.mailbox.mailpit_url())?
        .start()
        .await?;
    down.wait_until_subscribed(2).await?;
    // Both get each delivery; when the failing one held the claim, the working one left it
    // alone and nobody acked, so, like the relay, deliver again until the ack appears.
    let ack = eventually("an ack from the working notifier", || async {
        down.publish(&bytes).await?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Some(ack) = down.ack(&event.message_id).await? {
                return Ok(Some(ack));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(None)
    })
    .await?;
    assert!(ack == "sent" || ack == "duplicate", "{ack}");
    assert_eq!(down.mailbox.messages().await?.len(), 1);
    assert_eq!(
        down.rows(job_id).await?,
        vec![("done".to_owned(), "sent".to_owned())]
    );
    app.stop().await;
    down.stop().await
}

fn url_authority(url: &str) -> anyhow::Result<String> {
    url.strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/').to_owned())
        .with_context(|| format!("{url} is not an http:// URL"))
}
