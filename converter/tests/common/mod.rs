//! What the service tests share: a converter service on the test's own vhost, Redis prefix and
//! Mongo database, the corpus, and small helpers to read queues and wait for conditions.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mongodb::bson::{Document, doc};
use vid2mp3_contracts::messages::JOB_EVENTS_CHANNEL;
use vid2mp3_contracts::storage_api::{
    HEADER_ORIGINAL_NAME, HEADER_OWNER_EMAIL, HEADER_OWNER_ID, JobState, JobStatus, job_path,
    video_path,
};
use vid2mp3_contracts::{JobEvent, JobId, UserId};
use vid2mp3_converter::config::Config;
use vid2mp3_converter::service::{self, RunningService};
use vid2mp3_test_support::{
    MongoDatabase, PrivateServer, RabbitVhost, RedisNamespace, RedisUsers, ServiceUrls,
};

/// The storage API's bearer token in these tests: as long and varied as a generated one, since
/// the converter refuses a short or placeholder token.
pub const TOKEN: &str = "converter-tests-token-Qm4xT8vZ2pL6rN0c";

/// The corpus (tests/corpus/make-corpus.sh), made once per test binary.
pub fn corpus(name: &str) -> PathBuf {
    static CORPUS: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/make-corpus.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .output()
            .expect("running make-corpus.sh");
        assert!(
            out.status.success(),
            "make-corpus.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    });
    dir.path().join(name)
}

/// A WAV of `secs` seconds (long enough to catch a job while it converts).
pub fn long_wav(dir: &Path, secs: u32) -> PathBuf {
    let path = dir.join(format!("long_{secs}s.wav"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "aevalsrc=exprs='0.4*sin(2*PI*440*t)+0.1*random(0)|0.4*sin(2*PI*660*t)':s=44100:d={secs}"
        ))
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    path
}

/// An AVI of `secs` seconds with MP3 audio and no video: AVI has no fast path, so it goes
/// through ffprobe and the ffmpeg decoder.
pub fn long_avi(dir: &Path, secs: u32) -> PathBuf {
    let path = dir.join(format!("long_{secs}s.avi"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=44100:d={secs}"
        ))
        .args(["-c:a", "libmp3lame", "-b:a", "64k", "-f", "avi"])
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    path
}

/// An MP3 of about `secs` seconds (a multiple of 10), made by repeating a 10-s MP3: frames
/// without a Xing header or tags concatenate into one valid stream, and the first frame of each
/// copy needs no bit reservoir. Long to convert (the encoder's work follows the samples), small
/// to store (64 kbit/s): a job that stays in flight while a test takes a server away.
pub fn long_mp3(dir: &Path, secs: u32) -> PathBuf {
    let piece = dir.join("piece_10s.mp3");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("aevalsrc=exprs='0.4*sin(2*PI*440*t)|0.4*sin(2*PI*660*t)':s=44100:d=10")
        .args(["-c:a", "libmp3lame", "-b:a", "64k", "-write_xing", "0"])
        .args(["-id3v2_version", "0", "-f", "mp3"])
        .arg(&piece)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let frames = std::fs::read(&piece).expect("the 10-s piece");
    let path = dir.join(format!("long_{secs}s.mp3"));
    std::fs::write(&path, frames.repeat(secs.div_ceil(10) as usize)).expect("the long mp3");
    path
}

/// The test's own resources: on the shared services, or on servers the test runs itself.
pub struct Env {
    /// The test's vhost on the shared broker; `None` when the test brings its own broker.
    vhost: Option<RabbitVhost>,
    amqp_url: String,
    /// The converter logs in as the test's converter user (the production rules, confined to
    /// the test's prefix and channel); `redis` is the admin, for the test's own checks.
    redis_users: RedisUsers,
    pub redis: RedisNamespace,
    pub mongo: MongoDatabase,
    pub events_channel: String,
}

impl Env {
    /// A vhost, a Redis prefix and a Mongo database on the shared services.
    pub async fn new() -> Env {
        Env::on(None, None).await
    }

    /// Like [`Env::new`], but on the test's own broker (`amqp`, the default vhost is the
    /// test's) and MongoDB (`mongo`, a database on it) where given: see `PrivateServer`.
    /// Declare the servers before the `Env`, so they outlive the clean-up.
    pub async fn on(amqp: Option<&PrivateServer>, mongo: Option<&PrivateServer>) -> Env {
        init_logs();
        let redis = RedisNamespace::create().await.expect("Redis");
        let events_channel = redis.key("job-events");
        let redis_users = redis
            .service_users(&[(JOB_EVENTS_CHANNEL, events_channel.as_str())])
            .await
            .expect("the test's Redis users");
        let (vhost, amqp_url) = match amqp {
            Some(server) => (None, server.url()),
            None => {
                let vhost = RabbitVhost::create().await.expect("RabbitMQ");
                let url = vhost.amqp_url().to_owned();
                (Some(vhost), url)
            }
        };
        let mongo = match mongo {
            Some(server) => MongoDatabase::create_on(&server.url()).await,
            None => MongoDatabase::create().await,
        };
        Env {
            vhost,
            amqp_url,
            mongo: mongo.expect("MongoDB"),
            redis_users,
            redis,
            events_channel,
        }
    }

    /// The test's vhost on the shared broker.
    pub fn vhost(&self) -> &RabbitVhost {
        self.vhost
            .as_ref()
            .expect("this test runs its own broker, not a vhost on the shared one")
    }

    /// The service's environment variables for this test.
    pub fn vars(&self, roles: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            ("VID2MP3_ROLES", roles.to_owned()),
            ("VID2MP3_MONGO_URL", self.mongo.url().to_owned()),
            ("VID2MP3_MONGO_DB", self.mongo.name().to_owned()),
            ("VID2MP3_AMQP_URL", self.amqp_url.clone()),
            (
                "VID2MP3_REDIS_URL",
                self.redis_users.url("converter").to_owned(),
            ),
            ("VID2MP3_REDIS_KEY_PREFIX", self.redis.prefix().to_owned()),
            ("VID2MP3_STORAGE_LISTEN", "127.0.0.1:0".to_owned()),
            ("VID2MP3_STORAGE_TOKEN", TOKEN.to_owned()),
            ("VID2MP3_JOB_EVENTS_CHANNEL", self.events_channel.clone()),
            ("VID2MP3_RETRY_DELAYS_MS", "100,200".to_owned()),
            ("VID2MP3_SHUTDOWN_GRACE_SECS", "5".to_owned()),
            ("VID2MP3_ENCODE_WORKERS", "2".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        vars
    }

    pub fn config(&self, roles: &str, extra: &[(&str, &str)]) -> Config {
        let vars = self.vars(roles, extra);
        Config::from_lookup(|name| vars.get(name).cloned()).expect("config")
    }

    pub async fn start(&self, roles: &str, extra: &[(&str, &str)]) -> Service {
        let running = service::start(self.config(roles, extra))
            .await
            .expect("service starts");
        let base = running
            .storage_addr
            .map(|a| format!("http://{a}"))
            .unwrap_or_default();
        Service {
            running: Some(running),
            base,
            // A fresh connection per request: the API may answer a PUT (401, 200, 409) before
            // reading its body and then close the connection, which a pooled client would reuse.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("HTTP client"),
        }
    }

    pub fn db(&self) -> mongodb::Database {
        self.mongo.database()
    }

    pub async fn count(&self, collection: &str, filter: Document) -> u64 {
        self.db()
            .collection::<Document>(collection)
            .count_documents(filter)
            .await
            .expect("count")
    }

    /// Nothing of the job is stored: no video, no chunks, no state.
    pub async fn assert_nothing_stored(&self) {
        assert_eq!(self.count("videos.files", doc! {}).await, 0, "video files");
        assert_eq!(
            self.count("videos.chunks", doc! {}).await,
            0,
            "video chunks"
        );
        assert_eq!(self.count("jobs", doc! {}).await, 0, "job states");
    }

    pub async fn amqp(&self) -> Connection {
        Connection::connect(&self.amqp_url, ConnectionProperties::default())
            .await
            .expect("AMQP")
    }

    /// Messages ready in `queue` (AMQP passive declare: exact and immediate, on any broker);
    /// `None` while the queue does not exist.
    pub async fn queue_depth(&self, queue: &str) -> Option<u32> {
        let conn = self.amqp().await;
        let channel = conn.create_channel().await.expect("channel");
        let depth = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()
            .map(|q| q.message_count());
        let _ = conn.close(200, "done".into()).await;
        depth
    }

    /// Waits until the service has declared `queue`.
    pub async fn wait_for_queue(&self, queue: &str, limit: Duration) {
        wait_for(&format!("the {queue} queue"), limit, || async {
            self.queue_depth(queue).await
        })
        .await;
    }

    /// Publishes `payload` to `queue` as a persistent message, confirmed, as another producer
    /// (or a redelivery) would.
    pub async fn publish_raw(&self, queue: &str, payload: &[u8]) {
        let conn = self.amqp().await;
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        let confirmation = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("basic.publish")
            .await
            .expect("publisher confirm");
        assert!(confirmation.is_ack(), "the broker refused the message");
        let _ = conn.close(200, "done".into()).await;
    }

    /// Takes every message now in `queue` (acked: removed).
    pub async fn drain(&self, queue: &str) -> Vec<Vec<u8>> {
        let conn = self.amqp().await;
        let channel = conn.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            out.push(message.delivery.data.clone());
        }
        let _ = conn.close(200, "done".into()).await;
        out
    }

    /// Waits until `n` events are on `mp3` and takes them.
    pub async fn events(&self, n: usize) -> Vec<JobEvent> {
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while events.len() < n {
            for data in self.drain("mp3").await {
                events.push(serde_json::from_slice(&data).expect("a JobEvent"));
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} events arrived: {events:?}",
                events.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        events
    }

    /// The management API's base URL and credentials.
    pub fn management() -> (String, String, String) {
        let url = ServiceUrls::from_env().rabbitmq_management;
        let mut parsed = reqwest::Url::parse(&url).expect("management URL");
        let user = match parsed.username() {
            "" => "guest".to_owned(),
            u => u.to_owned(),
        };
        let password = parsed.password().unwrap_or("guest").to_owned();
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        (
            parsed.as_str().trim_end_matches('/').to_owned(),
            user,
            password,
        )
    }

    /// Closes every client connection to this vhost through the management API.
    pub async fn close_connections(&self, name_contains: &str) -> usize {
        let (base, user, password) = Env::management();
        let client = reqwest::Client::new();
        let mut closed = 0;
        // The management API lists a new connection a moment after it opens.
        let deadline = Instant::now() + Duration::from_secs(30);
        while closed == 0 {
            let list: Vec<serde_json::Value> = client
                .get(format!(
                    "{base}/api/vhosts/{}/connections",
                    self.vhost().name()
                ))
                .basic_auth(&user, Some(&password))
                .send()
                .await
                .expect("management API")
                .json()
                .await
                .expect("connections JSON");
            for c in list {
                let name = c["name"].as_str().unwrap_or_default();
                let client_name = c["client_properties"]["connection_name"]
                    .as_str()
                    .unwrap_or_default();
                if client_name.contains(name_contains) {
                    client
                        .delete(format!("{base}/api/connections/{}", percent_encode(name)))
                        .basic_auth(&user, Some(&password))
                        .send()
                        .await
                        .expect("closing a connection")
                        .error_for_status()
                        .expect("closed");
                    closed += 1;
                }
            }
            if closed == 0 {
                assert!(
                    Instant::now() < deadline,
                    "no connection named *{name_contains}*"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        closed
    }

    /// How many times the broker has delivered a message of `queue` again (after a nack or a
    /// lost connection), from the management API of the shared broker. Its statistics lag by up
    /// to 5 s (`collect_statistics_interval`).
    pub async fn redeliveries(&self, queue: &str) -> u64 {
        let (base, user, password) = Env::management();
        let stats: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{base}/api/queues/{}/{}",
                percent_encode(self.vhost().name()),
                percent_encode(queue)
            ))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .expect("management API")
            .error_for_status()
            .expect("the queue exists")
            .json()
            .await
            .expect("queue JSON");
        stats["message_stats"]["redeliver"].as_u64().unwrap_or(0)
    }

    pub async fn delete_vhost(&self) {
        let (base, user, password) = Env::management();
        reqwest::Client::new()
            .delete(format!("{base}/api/vhosts/{}", self.vhost().name()))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .expect("management API")
            .error_for_status()
            .expect("vhost deleted");
    }
}

impl Env {
    /// `vid2mp3-converter serve --roles ROLES` as a child process, for tests that kill it or
    /// send it signals.
    pub fn spawn_serve(&self, roles: &str, extra: &[(&str, &str)]) -> ServeProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vid2mp3-converter"));
        cmd.arg("serve").arg("--roles").arg(roles);
        for (k, v) in self.vars(roles, extra) {
            cmd.env(k, v);
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting vid2mp3-converter serve");
        ServeProcess { child }
    }

    /// Waits until `job` converts and has written mp3 chunks (it is in the middle of writing).
    pub async fn wait_until_writing(&self, service: &Service, job: &JobId) {
        wait_for(
            "the job to be converting",
            Duration::from_secs(60),
            || async {
                let converting = service
                    .state(job)
                    .await
                    .is_some_and(|s| s.status == JobStatus::Converting);
                let chunks = self.count("mp3s.chunks", doc! {}).await;
                (converting && chunks > 0).then_some(())
            },
        )
        .await;
    }

    /// The only mp3 stored is the finished one of `state`: no chunks of an attempt that died.
    pub async fn assert_only_the_finished_mp3(&self, state: &JobState) {
        let size = state.mp3_size_bytes.expect("an mp3 size");
        assert_eq!(self.count("mp3s.files", doc! {}).await, 1, "mp3 files");
        assert_eq!(
            self.count("mp3s.chunks", doc! {}).await,
            size.div_ceil(255 * 1024),
            "mp3 chunks: the finished mp3's and no others"
        );
    }
}

/// A `vid2mp3-converter serve` child process; killed if the test ends without stopping it.
pub struct ServeProcess {
    child: Child,
}

impl ServeProcess {
    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `limit` for the process to exit (killing it and failing the
    /// test if it does not).
    pub async fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running {} s after SIGTERM", limit.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends the in-process service's logs to the test's output, which libtest shows only for a
/// failing test: why a job was retried or handed back is then in the report. `RUST_LOG` filters
/// (default `info`).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only when a test of this binary set it up already: one is enough.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub struct Service {
    pub running: Option<RunningService>,
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Owner {
    pub id: UserId,
    pub email: String,
}

impl Owner {
    pub fn new() -> Owner {
        Owner {
            id: UserId::new(),
            email: "ada@example.com".into(),
        }
    }
}

impl Service {
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("service stops cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(TOKEN)
    }

    pub async fn put_video(
        &self,
        job: &JobId,
        owner: &Owner,
        name: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.http
            .put(self.url(&video_path(job)))
            .bearer_auth(TOKEN)
            .header(HEADER_OWNER_ID, owner.id.to_string())
            .header(HEADER_OWNER_EMAIL, &owner.email)
            .header(HEADER_ORIGINAL_NAME, percent_encode(name))
            .header("content-type", "video/mp4")
            .body(body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn put_file(&self, job: &JobId, owner: &Owner, path: &Path) -> reqwest::Response {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("video");
        self.put_video(job, owner, name, std::fs::read(path).expect("file"))
            .await
    }

    pub async fn state(&self, job: &JobId) -> Option<JobState> {
        let response = self.get(&job_path(job)).send().await.expect("GET state");
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200);
        Some(response.json().await.expect("JobState"))
    }

    /// Waits until the job's state says it converts.
    pub async fn wait_until_converting(&self, job: &JobId) {
        wait_for(
            "the job to be converting",
            Duration::from_secs(60),
            || async {
                self.state(job)
                    .await
                    .is_some_and(|s| s.status == JobStatus::Converting)
                    .then_some(())
            },
        )
        .await;
    }

    /// Waits until the job is done or failed.
    pub async fn settled(&self, job: &JobId) -> JobState {
        wait_for("the job to settle", Duration::from_secs(120), || async {
            self.state(job)
                .await
                .filter(|s| matches!(s.status, JobStatus::Done | JobStatus::Failed))
        })
        .await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown_token().cancel();
        }
    }
}

/// Polls `check` until it gives a value, or fails the test after `limit` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
