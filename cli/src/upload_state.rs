//! The local record of unfinished uploads, so a run that was cut off (network, Ctrl-C, a killed
//! process) is resumed by running the same command again.
//!
//! One small JSON file per upload in `$XDG_CONFIG_HOME/vid2mp3/uploads/` (beside the
//! credentials), named after a hash of the server, the account and the file's absolute path.
//! It keeps the upload's URL and what the file was when the upload started (size and
//! modification time): a file that changed since is not resumed, since the server's bytes would
//! be the start of another file. It never holds the token. Written like the credentials: 0600
//! in a 0700 directory, replaced atomically, so a kill mid-write leaves the old record or none.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config_store::{ConfigError, private_dir, private_file};

const FORMAT_VERSION: u32 = 1;

/// Which file, to which account on which server: what a record must match to be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    pub server: String,
    pub account: String,
    /// Absolute and canonical, so `./a.mkv` and `/home/me/a.mkv` are one file.
    pub path: PathBuf,
    pub size: u64,
    /// Nanoseconds since the epoch (0 where the platform has no modification time).
    pub modified_ns: u128,
}

impl UploadKey {
    /// The key of the file at `path` as it is now.
    pub fn for_file(server: &str, account: &str, path: &Path) -> std::io::Result<UploadKey> {
        let path = fs::canonicalize(path)?;
        let meta = fs::metadata(&path)?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(UploadKey {
            server: server.to_owned(),
            account: account.to_owned(),
            path,
            size: meta.len(),
            modified_ns,
        })
    }

    /// The record's file name: the same for every version of the file, so a changed file finds
    /// (and replaces) the record of its earlier version instead of leaving it behind.
    fn file_name(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.server.as_bytes(),
            self.account.as_bytes(),
            self.path.as_os_str().as_encoded_bytes(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        format!("{}.json", hex::encode(&hash.finalize()[..16]))
    }
}

/// One unfinished upload, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub version: u32,
    pub server: String,
    pub account: String,
    pub path: PathBuf,
    pub size: u64,
    /// As a string: JSON numbers lose precision past 2^53.
    pub modified_ns: String,
    /// The upload's absolute URL.
    pub upload_url: String,
    /// The upload's id, which is its job's id once the last byte is stored.
    pub id: String,
}

impl UploadRecord {
    pub fn new(key: &UploadKey, upload_url: &str, id: &str) -> UploadRecord {
        UploadRecord {
            version: FORMAT_VERSION,
            server: key.server.clone(),
            account: key.account.clone(),
            path: key.path.clone(),
            size: key.size,
            modified_ns: key.modified_ns.to_string(),
            upload_url: upload_url.to_owned(),
            id: id.to_owned(),
        }
    }

    fn is_same_upload_as(&self, key: &UploadKey) -> bool {
        self.server == key.server && self.account == key.account && self.path == key.path
    }

    fn is_same_file_as(&self, key: &UploadKey) -> bool {
        self.size == key.size && self.modified_ns == key.modified_ns.to_string()
    }
}

/// What the store knows about a file's earlier upload.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No unfinished upload of this file.
    None,
    /// An unfinished upload of exactly this file: resume it.
    Resumable(UploadRecord),
    /// An unfinished upload of this path, but the file has changed since (size or modification
    /// time): its bytes on the server are not this file's.
    Changed(UploadRecord),
    /// A record that cannot be read: ignored (and replaced by the next upload).
    Unreadable { path: PathBuf, reason: String },
}

pub struct UploadStateStore {
    dir: PathBuf,
}

impl UploadStateStore {
    /// `uploads/` in the user's config directory, beside the credentials.
    pub fn in_user_config_dir() -> Result<UploadStateStore, ConfigError> {
        let dir = dirs::config_dir().ok_or(ConfigError::NoConfigDir)?;
        Ok(UploadStateStore::at(dir.join("vid2mp3").join("uploads")))
    }

    pub fn at(dir: PathBuf) -> UploadStateStore {
        UploadStateStore { dir }
    }

    fn path_for(&self, key: &UploadKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    pub fn lookup(&self, key: &UploadKey) -> Lookup {
        let path = self.path_for(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::None,
            Err(e) => {
                return Lookup::Unreadable {
                    path,
                    reason: e.to_string(),
                };
            }
        };
        let record: UploadRecord = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return Lookup::Unreadable {
                    path,
                    reason: e.to_string(),
                };
            }
        };
        if record.version != FORMAT_VERSION {
            return Lookup::Unreadable {
                path,
                reason: format!("format version {} is not {FORMAT_VERSION}", record.version),
            };
        }
        if !record.is_same_upload_as(key) {
            // Another file's record under this name (a hash collision, or an edited file).
            return Lookup::None;
        }
        if record.is_same_file_as(key) {
            Lookup::Resumable(record)
        } else {
            Lookup::Changed(record)
        }
    }

    pub fn save(&self, key: &UploadKey, record: &UploadRecord) -> Result<(), ConfigError> {
        let path = self.path_for(key);
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Io {
                action,
                path,
                source,
            }
        };
        private_dir(&self.dir).map_err(io("create", &self.dir))?;
        let json = serde_json::to_vec_pretty(record).map_err(|e| ConfigError::Io {
            action: "encode",
            path: path.clone(),
            source: e.into(),
        })?;
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let mut out = private_file(&temp).map_err(io("create", &temp))?;
        out.write_all(&json)
            .and_then(|()| out.sync_all())
            .map_err(io("write", &temp))?;
        fs::rename(&temp, &path).map_err(io("replace", &path))
    }

    /// Forgets the record of `key`'s upload (done, or given up); a missing one is fine.
    pub fn remove(&self, key: &UploadKey) -> Result<(), ConfigError> {
        let path = self.path_for(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ConfigError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Setup {
        _tmp: tempfile::TempDir,
        store: UploadStateStore,
        video: PathBuf,
    }

    fn setup() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let video = tmp.path().join("clip.mkv");
        fs::write(&video, vec![7u8; 4096]).unwrap();
        let store = UploadStateStore::at(tmp.path().join("config").join("uploads"));
        Setup {
            _tmp: tmp,
            store,
            video,
        }
    }

    fn key(s: &Setup) -> UploadKey {
        UploadKey::for_file("http://127.0.0.1:3000", "a@example.com", &s.video).unwrap()
    }

    fn saved(s: &Setup) -> UploadRecord {
        let k = key(s);
        let record = UploadRecord::new(&k, "http://127.0.0.1:3000/api/v1/uploads/u1", "u1");
        s.store.save(&k, &record).unwrap();
        record
    }

    #[test]
    fn a_saved_upload_is_found_again_for_the_same_file_server_and_account() {
        let s = setup();
        assert_eq!(s.store.lookup(&key(&s)), Lookup::None);
        let record = saved(&s);
        assert_eq!(s.store.lookup(&key(&s)), Lookup::Resumable(record.clone()));
        // The same file by another path spelling is the same upload.
        let dotted = s.video.parent().unwrap().join(".").join("clip.mkv");
        let k = UploadKey::for_file("http://127.0.0.1:3000", "a@example.com", &dotted).unwrap();
        assert_eq!(s.store.lookup(&k), Lookup::Resumable(record));
        // The record never holds a token, only what identifies the upload.
        let text = fs::read_to_string(s.store.path_for(&key(&s))).unwrap();
        assert!(!text.to_lowercase().contains("token"), "{text}");
        s.store.remove(&key(&s)).unwrap();
        s.store.remove(&key(&s)).unwrap();
        assert_eq!(s.store.lookup(&key(&s)), Lookup::None);
    }

    #[test]
    fn another_server_account_or_path_is_another_upload() {
        let s = setup();
        saved(&s);
        let mut k = key(&s);
        k.server = "https://other.example".into();
        assert_eq!(s.store.lookup(&k), Lookup::None);
        let mut k = key(&s);
        k.account = "b@example.com".into();
        assert_eq!(s.store.lookup(&k), Lookup::None);
        let copy = s.video.with_file_name("copy.mkv");
        fs::copy(&s.video, &copy).unwrap();
        let k = UploadKey::for_file("http://127.0.0.1:3000", "a@example.com", &copy).unwrap();
        assert_eq!(s.store.lookup(&k), Lookup::None);
    }

    #[test]
    fn a_changed_file_is_not_resumed() {
        let s = setup();
        let record = saved(&s);
        // Another size.
        fs::write(&s.video, vec![7u8; 5000]).unwrap();
        assert_eq!(s.store.lookup(&key(&s)), Lookup::Changed(record.clone()));
        // The same size, but modified later.
        fs::write(&s.video, vec![8u8; 4096]).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&s.video)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(s.store.lookup(&key(&s)), Lookup::Changed(record));
    }

    #[test]
    fn a_corrupt_record_is_reported_and_then_replaced() {
        let s = setup();
        saved(&s);
        let path = s.store.path_for(&key(&s));
        fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            s.store.lookup(&key(&s)),
            Lookup::Unreadable { path: p, .. } if p == path
        ));
        let record = saved(&s);
        assert_eq!(s.store.lookup(&key(&s)), Lookup::Resumable(record));
        // A record of a future format is not guessed at either.
        let mut future = serde_json::to_value(saved(&s)).unwrap();
        future["version"] = 99.into();
        fs::write(&path, future.to_string()).unwrap();
        assert!(matches!(
            s.store.lookup(&key(&s)),
            Lookup::Unreadable { .. }
        ));
    }

    #[cfg(unix)]
    #[test]
    fn records_are_private_and_written_whole() {
        use std::os::unix::fs::PermissionsExt;
        let s = setup();
        saved(&s);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&s.store.path_for(&key(&s))), 0o600);
        assert_eq!(mode(&s.store.dir), 0o700);
        // No temp file is left beside the record.
        let names: Vec<_> = fs::read_dir(&s.store.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
