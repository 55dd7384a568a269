//! Where the client keeps its sessions: one JSON file in the user's config dir
//! (`$XDG_CONFIG_HOME/vid2mp3/credentials.json`, usually `~/.config/...`), one token per server.
//!
//! The file holds bearer tokens, so it is created 0600 inside a 0700 directory and replaced
//! atomically (write a private temp file, then rename): a crash never leaves a half-written file,
//! and there is no moment when the token is readable by others.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find your config directory (is HOME set?)")]
    NoConfigDir,
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a credentials file this client wrote ({source}); delete it and log in again", .path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One server's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    pub token: String,
    #[serde(default)]
    pub email: Option<String>,
    /// Seconds since the epoch; lets the client say "expired" instead of sending a dead token.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl StoredSession {
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= now_secs())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    /// Keyed by the server URL as `server_key` normalizes it.
    #[serde(default)]
    servers: BTreeMap<String, StoredSession>,
}

pub struct CredentialStore {
    path: PathBuf,
}

/// The same server written two ways (`http://h:3000` and `http://h:3000/`) is one entry.
pub fn server_key(server: &url::Url) -> String {
    server.as_str().trim_end_matches('/').to_owned()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl CredentialStore {
    /// The file in the user's config directory.
    pub fn in_user_config_dir() -> Result<CredentialStore, ConfigError> {
        let dir = dirs::config_dir().ok_or(ConfigError::NoConfigDir)?;
        Ok(CredentialStore::at(
            dir.join("vid2mp3").join("credentials.json"),
        ))
    }

    pub fn at(path: PathBuf) -> CredentialStore {
        CredentialStore { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self, server: &str) -> Result<Option<StoredSession>, ConfigError> {
        Ok(self.read()?.servers.remove(server))
    }

    pub fn save(&self, server: &str, session: StoredSession) -> Result<(), ConfigError> {
        let mut file = self.read()?;
        file.servers.insert(server.to_owned(), session);
        self.write(&file)
    }

    /// Forgets the server's session; whether there was one.
    pub fn remove(&self, server: &str) -> Result<bool, ConfigError> {
        let mut file = self.read()?;
        let had = file.servers.remove(server).is_some();
        if had {
            self.write(&file)?;
        }
        Ok(had)
    }

    fn read(&self) -> Result<CredentialsFile, ConfigError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialsFile::default());
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|source| ConfigError::Corrupt {
            path: self.path.clone(),
            source,
        })
    }

    fn write(&self, file: &CredentialsFile) -> Result<(), ConfigError> {
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Io {
                action,
                path,
                source,
            }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        private_dir(dir).map_err(io("create", dir))?;
        let json = serde_json::to_vec_pretty(file).map_err(|e| ConfigError::Io {
            action: "encode",
            path: self.path.clone(),
            source: e.into(),
        })?;
        let temp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let mut out = private_file(&temp).map_err(io("create", &temp))?;
        out.write_all(&json)
            .and_then(|()| out.sync_all())
            .map_err(io("write", &temp))?;
        fs::rename(&temp, &self.path).map_err(io("replace", &self.path))
    }
}

#[cfg(unix)]
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // The directory may predate us with looser bits; it is ours, so tighten it.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
pub(crate) fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Created 0600 from the start (not chmod-ed after), so no other user can open it in between.
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(token: &str) -> StoredSession {
        StoredSession {
            token: token.into(),
            email: Some("a@example.com".into()),
            expires_at: Some(now_secs() + 3600),
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_0600_and_its_dir_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(tmp.path().join("vid2mp3").join("credentials.json"));
        store.save("http://a", session("t1")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&tmp.path().join("vid2mp3")), 0o700);
        // Still 0600 after being rewritten.
        store.save("http://b", session("t2")).unwrap();
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn sessions_are_kept_per_server() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(tmp.path().join("c.json"));
        assert_eq!(store.load("http://a").unwrap(), None);
        store.save("http://a", session("ta")).unwrap();
        store.save("https://b.example", session("tb")).unwrap();
        assert_eq!(store.load("http://a").unwrap().unwrap().token, "ta");
        assert_eq!(
            store.load("https://b.example").unwrap().unwrap().token,
            "tb"
        );
        // Logging in again replaces only that server's token.
        store.save("http://a", session("ta2")).unwrap();
        assert_eq!(store.load("http://a").unwrap().unwrap().token, "ta2");
        assert_eq!(
            store.load("https://b.example").unwrap().unwrap().token,
            "tb"
        );
        // Logging out of one leaves the other.
        assert!(store.remove("http://a").unwrap());
        assert!(!store.remove("http://a").unwrap());
        assert_eq!(store.load("http://a").unwrap(), None);
        assert_eq!(
            store.load("https://b.example").unwrap().unwrap().token,
            "tb"
        );
    }

    #[test]
    fn server_urls_are_normalized() {
        let a = url::Url::parse("http://127.0.0.1:3000").unwrap();
        let b = url::Url::parse("http://127.0.0.1:3000/").unwrap();
        assert_eq!(server_key(&a), server_key(&b));
        assert_eq!(server_key(&a), "http://127.0.0.1:3000");
    }

    #[test]
    fn a_corrupt_file_is_reported_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.json");
        fs::write(&path, "not json").unwrap();
        let store = CredentialStore::at(path.clone());
        assert!(matches!(
            store.load("http://a"),
            Err(ConfigError::Corrupt { .. })
        ));
        assert!(store.save("http://a", session("t")).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "not json");
    }

    #[test]
    fn expiry_is_known() {
        let mut s = session("t");
        assert!(!s.is_expired());
        s.expires_at = Some(now_secs().saturating_sub(1));
        assert!(s.is_expired());
        s.expires_at = None;
        assert!(!s.is_expired());
    }
}
