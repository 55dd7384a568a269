//! What the CLI's end-to-end tests share: running the built binary with its own HOME, test
//! media, and a proxy that records the requests the client sends.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use vid2mp3_test_support::test_media::{
    ScratchDir as Scratch, decoded_samples, make_large_mkv, make_mkv,
};
pub use vid2mp3_test_support::{Platform, PlatformBuilder};

pub const PASSWORD: &str = "correct horse battery staple";

/// The platform with its converter, a CLI with a home of its own, and a user who signed up,
/// confirmed and logged in through that CLI (their address is returned).
pub async fn platform_with_signed_in_cli() -> (Platform, Scratch, Cli, String) {
    let p = PlatformBuilder::new()
        .with_converter()
        .start()
        .await
        .expect("platform");
    let scratch = Scratch::new();
    let cli = Cli::new(&scratch.0, &p.url(""));
    let email = p.mailbox.address().to_owned();
    cli.sign_up_and_log_in(&p, &email).await;
    (p, scratch, cli, email)
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// One JSON document per stdout line (what `--json upload A B` prints).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("a stdout line is not JSON ({e}): {l:?} in {self:?}")
                })
            })
            .collect()
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }
}

/// The built `vid2mp3`, with HOME and XDG_CONFIG_HOME in `home` so its credentials are the
/// test's own. Async, because the platform runs on this test's runtime.
pub struct Cli {
    pub home: PathBuf,
    pub server: String,
    pub cwd: PathBuf,
    /// More environment for every run.
    pub env: Vec<(String, String)>,
}

impl Cli {
    pub fn new(home: &Path, server: &str) -> Cli {
        Cli {
            home: home.to_owned(),
            server: server.trim_end_matches('/').to_owned(),
            cwd: home.to_owned(),
            env: Vec::new(),
        }
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.home
            .join("config")
            .join("vid2mp3")
            .join("credentials.json")
    }

    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vid2mp3"));
        cmd.args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("VID2MP3_SERVER", &self.server)
            .env_remove("VID2MP3_CA_CERT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the vid2mp3 binary runs");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            // A run that answers without reading all of its input (a refusal before the
            // password prompt) may exit first: its status and output are what the tests check.
            if let Err(e) = pipe.write_all(input.as_bytes()).await {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
            }
            drop(pipe);
        }
        let out = child.wait_with_output().await.expect("vid2mp3 finishes");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The binary started with `args` (stdin closed, output piped), for a test that kills it.
    pub fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_vid2mp3"))
            .args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("VID2MP3_SERVER", &self.server)
            .env_remove("VID2MP3_CA_CERT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the vid2mp3 binary runs")
    }

    /// The records of unfinished uploads the CLI keeps (`vid2mp3/uploads/*.json`).
    pub fn upload_records(&self) -> Vec<serde_json::Value> {
        let dir = self.home.join("config").join("vid2mp3").join("uploads");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// signup, confirm (the link from the email, read through Mailpit's API) and login with
    /// the test password.
    pub async fn sign_up_and_log_in(&self, p: &Platform, email: &str) {
        let stdin = format!("{PASSWORD}\n");
        self.run(
            &["signup", "--email", email, "--password-stdin"],
            Some(&stdin),
        )
        .await
        .ok();
        self.confirm(p, email, &[]).await;
        self.run(
            &["login", "--email", email, "--password-stdin"],
            Some(&stdin),
        )
        .await
        .ok();
    }

    /// `vid2mp3 [extra...] confirm LINK` with the link from `email`'s confirmation email.
    pub async fn confirm(&self, p: &Platform, email: &str, extra: &[&str]) {
        let link = p
            .confirmation_link(email)
            .await
            .expect("the confirmation email");
        let mut args = extra.to_vec();
        args.extend(["confirm", link.as_str()]);
        self.run(&args, None).await.ok();
    }

    /// Polls `status JOB` until the job is done; its last status document.
    pub async fn wait_done(&self, id: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let s = self.run(&["--json", "status", id], None).await.ok().json();
            match s["status"].as_str() {
                Some("done") => return s,
                Some("failed") => panic!("the conversion failed: {s:#}"),
                _ if tokio::time::Instant::now() > deadline => panic!("not done in time: {s:#}"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
    }

    pub fn token(&self) -> String {
        let text = std::fs::read_to_string(self.credentials_file()).expect("credentials");
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        v["servers"][&self.server]["token"]
            .as_str()
            .expect("a token for the server")
            .to_owned()
    }
}

/// A TCP proxy in front of the gateway that keeps every byte clients send, so a test can see
/// which requests (and headers) the CLI made.
pub struct RecordingProxy {
    pub url: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl RecordingProxy {
    pub async fn start(target_url: &str) -> RecordingProxy {
        RecordingProxy::start_cutting(target_url, None).await
    }

    /// Like `start`, but every connection is cut after `cut_after` bytes of the answer (the
    /// network failing midway through a download).
    pub async fn start_cutting(target_url: &str, cut_after: Option<u64>) -> RecordingProxy {
        let target = target_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = target.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            if let Ok(mut l) = log.lock() {
                                l.extend_from_slice(&buf[..n]);
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        match cut_after {
                            None => {
                                let _ = tokio::io::copy(&mut sr, &mut cw).await;
                            }
                            Some(limit) => {
                                let mut left = limit;
                                let mut buf = vec![0u8; 16 * 1024];
                                while left > 0 {
                                    let want = buf.len().min(left as usize);
                                    match sr.read(&mut buf[..want]).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => {
                                            if cw.write_all(&buf[..n]).await.is_err() {
                                                break;
                                            }
                                            left -= n as u64;
                                        }
                                    }
                                }
                            }
                        }
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        RecordingProxy { url, sent }
    }

    /// Everything clients sent so far, lower-cased (header names are case-insensitive).
    pub fn sent_text(&self) -> String {
        let bytes = self.sent.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).to_ascii_lowercase()
    }

    pub fn clear(&self) {
        if let Ok(mut l) = self.sent.lock() {
            l.clear();
        }
    }
}

/// A TCP proxy in front of the gateway that passes what clients send at most `bytes_per_s`
/// (a slow uplink, so a test can stop an upload midway) and counts those bytes.
pub struct ThrottledProxy {
    pub url: String,
    sent: Arc<AtomicU64>,
}

impl ThrottledProxy {
    pub async fn start(target_url: &str, bytes_per_s: u64) -> ThrottledProxy {
        let target = target_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let sent = Arc::new(AtomicU64::new(0));
        let count = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (target, count) = (target.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        // Small reads, each followed by the pause the rate asks for.
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            count.fetch_add(n as u64, Ordering::SeqCst);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            tokio::time::sleep(std::time::Duration::from_secs_f64(
                                n as f64 / bytes_per_s as f64,
                            ))
                            .await;
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        ThrottledProxy { url, sent }
    }

    /// Bytes clients sent through the proxy so far.
    pub fn sent_bytes(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// Where the gateway at `base_url` says an upload stands (HEAD): `Some(offset)`, or `None`
/// when it does not know the upload. `upload_url` may point at a proxy; only its path is used.
pub async fn server_upload_offset(base_url: &str, token: &str, upload_url: &str) -> Option<u64> {
    let path = url::Url::parse(upload_url)
        .expect("an upload URL")
        .path()
        .to_owned();
    let r = reqwest::Client::new()
        .head(format!("{}{path}", base_url.trim_end_matches('/')))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD of the upload");
    match r.status().as_u16() {
        404 => None,
        200 => Some(
            r.headers()
                .get("upload-offset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("an Upload-Offset"),
        ),
        other => panic!("HEAD {path}: {other}"),
    }
}

/// Writes a `.part` for `target` as an earlier, interrupted `vid2mp3 download` leaves it: its
/// bytes, and `<target>.part.meta` naming the job and mp3 ETag it came from (`None`: no record,
/// as a `.part` from anything else has).
pub fn plant_part(target: &Path, bytes: &[u8], origin: Option<(&str, &str)>) -> PathBuf {
    let part = part_of(target);
    std::fs::write(&part, bytes).unwrap();
    let meta = meta_of(target);
    match origin {
        Some((job, etag)) => std::fs::write(
            &meta,
            serde_json::json!({"job": job, "etag": etag}).to_string(),
        )
        .unwrap(),
        None => {
            let _ = std::fs::remove_file(&meta);
        }
    }
    part
}

/// `x.mp3` → `x.mp3.part`
pub fn part_of(target: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part", target.display()))
}

/// `x.mp3` → `x.mp3.part.meta`
pub fn meta_of(target: &Path) -> PathBuf {
    PathBuf::from(format!("{}.part.meta", target.display()))
}

/// A TLS-terminating proxy in front of the gateway: it accepts only TLS (a self-signed
/// certificate for 127.0.0.1 and localhost, whose PEM is in `ca_file`), forwards the decrypted
/// bytes over plain TCP, and counts the handshakes and keeps the plaintext requests, so a test
/// can prove a client really spoke TLS.
pub struct TlsProxy {
    pub url: String,
    pub ca_file: PathBuf,
    handshakes: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl TlsProxy {
    pub async fn start(target_url: &str, dir: &Path) -> TlsProxy {
        let target = target_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a self-signed certificate");
        let ca_file = dir.join(format!("test-ca-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&ca_file, cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(signing_key.serialize_der()),
        );
        // The provider named, so the test does not depend on which one features unify to.
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("a server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (count, fail, log) = (handshakes.clone(), refused.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, target) = (acceptor.clone(), target.clone());
                let (count, fail, log) = (count.clone(), fail.clone(), log.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(client).await {
                        Ok(tls) => tls,
                        Err(_) => {
                            fail.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = tokio::io::split(tls);
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            if let Ok(mut l) = log.lock() {
                                l.extend_from_slice(&buf[..n.min(4096)]);
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        TlsProxy {
            url,
            ca_file,
            handshakes,
            refused,
            sent,
        }
    }

    /// Completed TLS handshakes so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// Connections that did not complete a TLS handshake.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// What clients sent inside TLS (the start of each read), lower-cased.
    pub fn sent_text(&self) -> String {
        let bytes = self.sent.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).to_ascii_lowercase()
    }
}

/// Job `id`'s whole mp3 and its ETag, fetched directly from the gateway at `base_url`.
pub async fn server_mp3(base_url: &str, token: &str, id: &str) -> (Vec<u8>, String) {
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/jobs/{id}/mp3",
            base_url.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = r
        .headers()
        .get("etag")
        .expect("the mp3 has an ETag")
        .to_str()
        .unwrap()
        .to_owned();
    (r.bytes().await.unwrap().to_vec(), etag)
}
