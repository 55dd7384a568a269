//! Resumable downloads on the local side: the `.part` file, what a response means for it, and
//! the final check-and-rename. No network here, so every case is unit-tested on real files.
//!
//! A download goes to `PATH.part` and becomes `PATH` only once it has exactly the size the
//! server announced; an interrupted one leaves the `.part`, and the next run asks only for the
//! bytes after it (`Range: bytes=<len>-`).
//!
//! Bytes are only ever appended to the file they came from: `PATH.part.meta` records the job
//! and the mp3's `ETag` the `.part` was started with, a resume sends that tag as `If-Range`
//! (so the server sends the whole mp3 instead if it is another file now), and a `.part` with no
//! record, another job's record, or an answer with another `ETag` is thrown away, not extended.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server answered the resume request with {0}; cannot continue the download")]
    UnexpectedRange(String),
    #[error("{} has {got} bytes but the server announced {expected}", .path.display())]
    SizeMismatch {
        path: PathBuf,
        got: u64,
        expected: u64,
    },
}

/// `song.mp3` → `song.mp3.part`, beside it.
pub fn part_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    target.with_file_name(name)
}

/// Which download a `.part` holds the beginning of: written beside it when it is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartOrigin {
    /// The job whose mp3 it is.
    pub job: String,
    /// The mp3's `ETag` as the server sent it (quotes included).
    pub etag: String,
}

/// `song.mp3.part` → `song.mp3.part.meta`, beside it.
pub fn origin_path(part: &Path) -> PathBuf {
    let mut name = part.file_name().unwrap_or_default().to_os_string();
    name.push(".meta");
    part.with_file_name(name)
}

/// The recorded origin of a `.part`; `None` when there is none or it cannot be read (then the
/// `.part` cannot be trusted either).
pub fn read_origin(part: &Path) -> Option<PartOrigin> {
    let text = fs::read(origin_path(part)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Records where a `.part` that was just started comes from.
pub fn write_origin(part: &Path, origin: &PartOrigin) -> Result<(), ResumeError> {
    let path = origin_path(part);
    let text = serde_json::to_vec(origin).map_err(|e| ResumeError::Io {
        action: "write",
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    fs::write(&path, text).map_err(|source| ResumeError::Io {
        action: "write",
        path,
        source,
    })
}

/// Forgets a `.part`'s origin (once it is renamed, or when its answer had no `ETag`).
pub fn remove_origin(part: &Path) -> Result<(), ResumeError> {
    remove_if_there(&origin_path(part))
}

/// Deletes a `.part` and its origin record.
pub fn remove_part(part: &Path) -> Result<(), ResumeError> {
    remove_if_there(part)?;
    remove_origin(part)
}

fn remove_if_there(path: &Path) -> Result<(), ResumeError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ResumeError::Io {
            action: "delete",
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Whether the `.part` found before a download may be continued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartCheck {
    /// No `.part`, or an empty one: download from the start.
    Nothing,
    /// A `.part` of this job's mp3: ask for the rest with this `ETag` as `If-Range`.
    Resume { etag: String },
    /// Not known to be this job's mp3 (the reason, for the user): delete it and start over.
    Foreign(String),
}

/// Decides from the `.part`'s length and recorded origin whether it may be resumed for `job`.
pub fn check_part(existing: u64, origin: Option<&PartOrigin>, job: &str) -> PartCheck {
    if existing == 0 {
        return PartCheck::Nothing;
    }
    match origin {
        None => PartCheck::Foreign(
            "nothing records which download it is from (no readable .part.meta beside it)".into(),
        ),
        Some(o) if o.job != job => PartCheck::Foreign(format!("it is from job {}", o.job)),
        Some(o) if !is_strong_etag(&o.etag) => PartCheck::Foreign(format!(
            "its recorded ETag {:?} cannot identify the file",
            o.etag
        )),
        Some(o) => PartCheck::Resume {
            etag: o.etag.clone(),
        },
    }
}

/// `"abc"` yes; `W/"abc"`, a bare word or an empty string no: only a strong tag identifies
/// bytes (and only a strong tag is allowed in `If-Range`).
pub fn is_strong_etag(tag: &str) -> bool {
    tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"')
}

/// How many bytes an earlier attempt left (0 when there is no `.part`).
pub fn existing_len(part: &Path) -> u64 {
    fs::metadata(part).map(|m| m.len()).unwrap_or(0)
}

/// The `Range` header to send for a `.part` of `existing` bytes.
pub fn range_header(existing: u64) -> Option<String> {
    (existing > 0).then(|| format!("bytes={existing}-"))
}

/// `Content-Range: bytes 100-999/1000` or `bytes */1000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// `None` for `bytes */total` (what a 416 carries).
    pub first_last: Option<(u64, u64)>,
    pub total: Option<u64>,
}

pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let first_last = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a {
                return None;
            }
            Some((a, b))
        }
    };
    Some(ContentRange { first_last, total })
}

/// What to do with the `.part` given the server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// 206 starting where the `.part` ends: append the body.
    Append { offset: u64, total: Option<u64> },
    /// 200: the server sends everything; start the `.part` from zero.
    Restart { total: Option<u64> },
    /// 416 and the `.part` already has every byte: only the rename is left.
    Complete { total: u64 },
    /// 416 for any other reason (a stale `.part` larger than the file, or one from a file that
    /// changed): drop the `.part` and ask again without `Range`.
    Discard,
}

/// Decides from the status and headers of the answer to a request made with
/// `range_header(existing)`.
pub fn plan(
    status: u16,
    existing: u64,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> Result<Plan, ResumeError> {
    let range = content_range.and_then(parse_content_range);
    match status {
        200 => Ok(Plan::Restart {
            total: content_length,
        }),
        206 => match range {
            Some(ContentRange {
                first_last: Some((first, _)),
                total,
            }) if first == existing => Ok(Plan::Append {
                offset: existing,
                total,
            }),
            _ => Err(ResumeError::UnexpectedRange(format!(
                "206 and Content-Range {:?} for a request from byte {existing}",
                content_range.unwrap_or("(none)")
            ))),
        },
        416 => match range.and_then(|r| r.total) {
            Some(total) if total == existing && existing > 0 => Ok(Plan::Complete { total }),
            _ => Ok(Plan::Discard),
        },
        other => Err(ResumeError::UnexpectedRange(format!("HTTP {other}"))),
    }
}

/// Opens the `.part` for writing as the plan says: appending after its bytes, or empty.
pub fn open_part(part: &Path, plan: Plan) -> Result<File, ResumeError> {
    let io = |action| {
        move |source| ResumeError::Io {
            action,
            path: part.to_owned(),
            source,
        }
    };
    match plan {
        Plan::Append { offset, .. } => {
            let file = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(io("open"))?;
            // The `.part` must still be what the Range was computed from.
            let len = file.metadata().map_err(io("inspect"))?.len();
            if len != offset {
                return Err(ResumeError::SizeMismatch {
                    path: part.to_owned(),
                    got: len,
                    expected: offset,
                });
            }
            Ok(file)
        }
        Plan::Restart { .. } | Plan::Complete { .. } | Plan::Discard => OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(!matches!(plan, Plan::Complete { .. }))
            .open(part)
            .map_err(io("create")),
    }
}

/// Checks the `.part` has the announced size and renames it to the target; its size.
/// With no announced size (no Content-Length, which our gateway always sends) the transport's
/// own end-of-body is all there is to trust.
pub fn finish(part: &Path, target: &Path, total: Option<u64>) -> Result<u64, ResumeError> {
    let len = fs::metadata(part)
        .map_err(|source| ResumeError::Io {
            action: "inspect",
            path: part.to_owned(),
            source,
        })?
        .len();
    if let Some(expected) = total
        && expected != len
    {
        return Err(ResumeError::SizeMismatch {
            path: part.to_owned(),
            got: len,
            expected,
        });
    }
    fs::rename(part, target).map_err(|source| ResumeError::Io {
        action: "rename the finished download to",
        path: target.to_owned(),
        source,
    })?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_part_file_sits_beside_the_target() {
        assert_eq!(
            part_path(Path::new("/x/song.mp3")),
            PathBuf::from("/x/song.mp3.part")
        );
        assert_eq!(part_path(Path::new("a")), PathBuf::from("a.part"));
    }

    #[test]
    fn the_origin_record_sits_beside_the_part_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let part = tmp.path().join("song.mp3.part");
        assert_eq!(origin_path(&part), tmp.path().join("song.mp3.part.meta"));
        assert_eq!(read_origin(&part), None);
        let origin = PartOrigin {
            job: "job-a".into(),
            etag: "\"abc\"".into(),
        };
        write_origin(&part, &origin).unwrap();
        assert_eq!(read_origin(&part), Some(origin));
        fs::write(origin_path(&part), b"{not json").unwrap();
        assert_eq!(read_origin(&part), None, "a damaged record trusts nothing");
        fs::write(&part, b"123").unwrap();
        remove_part(&part).unwrap();
        assert!(!part.exists() && !origin_path(&part).exists());
        remove_part(&part).unwrap();
    }

    #[test]
    fn only_a_part_recorded_for_this_job_with_a_strong_etag_is_resumed() {
        let of = |job: &str, etag: &str| PartOrigin {
            job: job.into(),
            etag: etag.into(),
        };
        assert_eq!(check_part(0, None, "a"), PartCheck::Nothing);
        assert_eq!(
            check_part(0, Some(&of("b", "\"x\"")), "a"),
            PartCheck::Nothing
        );
        assert_eq!(
            check_part(10, Some(&of("a", "\"x\"")), "a"),
            PartCheck::Resume {
                etag: "\"x\"".into()
            }
        );
        for (origin, why) in [
            (None, "nothing records"),
            (Some(of("b", "\"x\"")), "from job b"),
            (Some(of("a", "W/\"x\"")), "cannot identify"),
            (Some(of("a", "")), "cannot identify"),
        ] {
            match check_part(10, origin.as_ref(), "a") {
                PartCheck::Foreign(reason) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{origin:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_range_is_asked_only_when_there_is_something_to_resume() {
        assert_eq!(range_header(0), None);
        assert_eq!(range_header(1000).as_deref(), Some("bytes=1000-"));
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-999/1000"),
            Some(ContentRange {
                first_last: Some((100, 999)),
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes */1000"),
            Some(ContentRange {
                first_last: None,
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                first_last: Some((0, 9)),
                total: None
            })
        );
        for bad in [
            "",
            "bytes",
            "items 0-9/10",
            "bytes 9-0/10",
            "bytes a-b/10",
            "bytes 0-9",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn what_each_answer_means() {
        assert_eq!(
            plan(200, 0, None, Some(10)).unwrap(),
            Plan::Restart { total: Some(10) }
        );
        // The server ignored our Range: start over.
        assert_eq!(
            plan(200, 500, None, Some(1000)).unwrap(),
            Plan::Restart { total: Some(1000) }
        );
        assert_eq!(
            plan(206, 500, Some("bytes 500-999/1000"), Some(500)).unwrap(),
            Plan::Append {
                offset: 500,
                total: Some(1000)
            }
        );
        // A range that does not start where we are cannot be appended.
        assert!(plan(206, 500, Some("bytes 0-999/1000"), None).is_err());
        assert!(plan(206, 500, None, None).is_err());
        // Already complete, or stale.
        assert_eq!(
            plan(416, 1000, Some("bytes */1000"), None).unwrap(),
            Plan::Complete { total: 1000 }
        );
        assert_eq!(
            plan(416, 5000, Some("bytes */1000"), None).unwrap(),
            Plan::Discard
        );
        assert_eq!(plan(416, 5000, None, None).unwrap(), Plan::Discard);
        assert!(plan(500, 0, None, None).is_err());
    }

    #[test]
    fn resuming_appends_to_the_part_and_renames_when_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("song.mp3");
        let part = part_path(&target);
        let whole: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();

        // An interrupted first attempt.
        fs::write(&part, &whole[..4000]).unwrap();
        let existing = existing_len(&part);
        assert_eq!(existing, 4000);
        let p = plan(206, existing, Some("bytes 4000-9999/10000"), Some(6000)).unwrap();
        let mut f = open_part(&part, p).unwrap();
        f.write_all(&whole[4000..]).unwrap();
        drop(f);
        let Plan::Append { total, .. } = p else {
            panic!("{p:?}")
        };
        assert_eq!(finish(&part, &target, total).unwrap(), 10_000);
        assert_eq!(fs::read(&target).unwrap(), whole);
        assert!(!part.exists());
    }

    #[test]
    fn a_restart_truncates_the_part() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("song.mp3");
        let part = part_path(&target);
        fs::write(&part, vec![7u8; 20_000]).unwrap();
        let p = plan(200, 20_000, None, Some(3)).unwrap();
        let mut f = open_part(&part, p).unwrap();
        f.write_all(b"abc").unwrap();
        drop(f);
        assert_eq!(finish(&part, &target, Some(3)).unwrap(), 3);
        assert_eq!(fs::read(&target).unwrap(), b"abc");
    }

    #[test]
    fn a_short_part_is_not_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("song.mp3");
        let part = part_path(&target);
        fs::write(&part, b"12345").unwrap();
        assert!(matches!(
            finish(&part, &target, Some(10)),
            Err(ResumeError::SizeMismatch {
                got: 5,
                expected: 10,
                ..
            })
        ));
        assert!(part.exists(), "kept for the next attempt");
        assert!(!target.exists());
    }

    #[test]
    fn appending_to_a_part_that_changed_meanwhile_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let part = tmp.path().join("x.part");
        fs::write(&part, b"12345").unwrap();
        let p = Plan::Append {
            offset: 3,
            total: Some(10),
        };
        assert!(open_part(&part, p).is_err());
    }

    #[test]
    fn a_complete_part_is_kept_as_is() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("song.mp3");
        let part = part_path(&target);
        fs::write(&part, b"0123456789").unwrap();
        let p = plan(416, 10, Some("bytes */10"), None).unwrap();
        drop(open_part(&part, p).unwrap());
        assert_eq!(finish(&part, &target, Some(10)).unwrap(), 10);
        assert_eq!(fs::read(&target).unwrap(), b"0123456789");
    }
}
