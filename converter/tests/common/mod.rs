//! What the service tests share: a converter service on the test's own vhost, Redis prefix and
//! Mongo database, the corpus, and small helpers to read queues and wait for conditions.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lapin::options::BasicGetOptions;
use lapin::{Connection, ConnectionProperties};
use mongodb::bson::{Document, doc};
use vid2mp3_contracts::storage_api::{
    HEADER_ORIGINAL_NAME, HEADER_OWNER_EMAIL, HEADER_OWNER_ID, JobState, JobStatus, job_path,
    video_path,
};
use vid2mp3_contracts::{JobEvent, JobId, UserId};
use vid2mp3_converter::config::Config;
use vid2mp3_converter::service::{self, RunningService};
use vid2mp3_test_support::{MongoDatabase, RabbitVhost, RedisNamespace, ServiceUrls};

pub const TOKEN: &str = "test-storage-token";

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

/// The test's own resources on the shared services.
pub struct Env {
    pub vhost: RabbitVhost,
    pub redis: RedisNamespace,
    pub mongo: MongoDatabase,
    pub events_channel: String,
}

impl Env {
    pub async fn new() -> Env {
        let redis = RedisNamespace::create().await.expect("Redis");
        let events_channel = redis.key("job-events");
        Env {
            vhost: RabbitVhost::create().await.expect("RabbitMQ"),
            mongo: MongoDatabase::create().await.expect("MongoDB"),
            redis,
            events_channel,
        }
    }

    /// The service's environment variables for this test.
    pub fn vars(&self, roles: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            ("VID2MP3_ROLES", roles.to_owned()),
            ("VID2MP3_MONGO_URL", self.mongo.url().to_owned()),
            ("VID2MP3_MONGO_DB", self.mongo.name().to_owned()),
            ("VID2MP3_AMQP_URL", self.vhost.amqp_url().to_owned()),
            ("VID2MP3_REDIS_URL", self.redis.url().to_owned()),
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
        Connection::connect(self.vhost.amqp_url(), ConnectionProperties::default())
            .await
            .expect("AMQP")
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
                    self.vhost.name()
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

    pub async fn delete_vhost(&self) {
        let (base, user, password) = Env::management();
        reqwest::Client::new()
            .delete(format!("{base}/api/vhosts/{}", self.vhost.name()))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .expect("management API")
            .error_for_status()
            .expect("vhost deleted");
    }
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
