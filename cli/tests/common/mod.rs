//! What the CLI's end-to-end tests share: running the built binary with its own HOME, test
//! media, and a proxy that records the requests the client sends.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use vid2mp3_test_support::test_media::{ScratchDir as Scratch, decoded_samples, make_mkv};

pub const PASSWORD: &str = "correct horse battery staple";

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
}

impl Cli {
    pub fn new(home: &Path, server: &str) -> Cli {
        Cli {
            home: home.to_owned(),
            server: server.trim_end_matches('/').to_owned(),
            cwd: home.to_owned(),
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
            pipe.write_all(input.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        let out = child.wait_with_output().await.expect("vid2mp3 finishes");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// signup + login with the test password.
    pub async fn sign_up_and_log_in(&self, email: &str) {
        let stdin = format!("{PASSWORD}\n");
        self.run(
            &["signup", "--email", email, "--password-stdin"],
            Some(&stdin),
        )
        .await
        .ok();
        self.run(
            &["login", "--email", email, "--password-stdin"],
            Some(&stdin),
        )
        .await
        .ok();
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
