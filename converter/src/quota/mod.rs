//! Per-account quotas: stored bytes, queued jobs and media minutes per day.
//!
//! The converter owns what they count (job records, file sizes, durations), so it enforces them:
//! the storage API when a video is stored ([`admission`]), the worker once a video's duration is
//! known ([`media`]). Every check counts from the records themselves, never from a counter kept
//! beside them, so a crash cannot make the figures drift. Each check writes first and counts
//! after (an upload's reservation, a job's claim of minutes), then takes its write back when the
//! count is over the limit: of N racing requests the last to count sees all the others, so
//! concurrent requests can be refused together but never admitted past a limit. Within one
//! process an account's checks also run one at a time ([`OwnerLocks`]), so there racing
//! requests are admitted up to the limit exactly; only requests of one account racing on two
//! converter replicas can be refused together.
//!
//! | quota | counts | refused with |
//! |---|---|---|
//! | stored bytes | every job's video and mp3, plus the bytes reserved by uploads under way | `413` at the start (declared length) or where the body crosses it |
//! | queued jobs | jobs `queued` or `converting`, plus uploads under way | `429` |
//! | media minutes per day | minutes claimed by conversions started this UTC day | `429` at upload once none is left (`Retry-After`: until 00:00 UTC); a job longer than what is left fails |

pub mod admission;
mod erase;
pub mod media;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::{Collection, Database, IndexModel};
use vid2mp3_contracts::UserId;

use crate::job_state::JOBS_COLLECTION;

pub use self::admission::Reservation;

/// Uploads under way, one document each: what they have reserved (see [`admission`]).
pub const UPLOADS_COLLECTION: &str = "uploads";
/// Media minutes claimed, one document per job (see [`media`]).
pub const MEDIA_USAGE_COLLECTION: &str = "media_usage";

/// The limits, the same for every account (`VID2MP3_QUOTA_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Bytes of videos and mp3s one account may keep.
    pub stored_bytes: u64,
    /// Jobs one account may have waiting or converting at once.
    pub queued_jobs: u32,
    /// Minutes of media one account may have converted per UTC day.
    pub media_minutes_per_day: u32,
}

impl Default for Quotas {
    /// 10 GiB is five uploads of the gateway's largest size; 20 jobs is a day's uploads for
    /// someone converting a lecture series; 600 minutes is ten hours of media a day, about three
    /// minutes of one core at the encoder's measured speed.
    fn default() -> Quotas {
        Quotas {
            stored_bytes: 10 << 30,
            queued_jobs: 20,
            media_minutes_per_day: 600,
        }
    }
}

impl Quotas {
    pub fn media_ms_per_day(&self) -> u64 {
        u64::from(self.media_minutes_per_day) * 60_000
    }
}

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    StoredBytes,
    QueuedJobs,
    MediaMinutesPerDay,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::StoredBytes => "stored bytes",
            Limit::QueuedJobs => "queued jobs",
            Limit::MediaMinutesPerDay => "media minutes per day",
        }
    }
}

/// A refusal: which limit, and the words that tell the account's owner where they stand and
/// what frees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota exceeded ({}): {message}", limit.as_str())]
pub struct QuotaExceeded {
    pub limit: Limit,
    pub message: String,
    /// When waiting is what frees it (the day's minutes).
    pub retry_after: Option<Duration>,
}

impl QuotaExceeded {
    /// Another job in flight would go over: `used` of `limit` jobs.
    pub fn queued_jobs(used: u64, limit: u32) -> QuotaExceeded {
        QuotaExceeded {
            limit: Limit::QueuedJobs,
            message: format!(
                "quota exceeded: queued jobs. You have {used} jobs waiting or converting (uploads \
                 under way count too) and the limit is {limit}. Upload again once one has \
                 finished, or delete one you no longer need; nothing of this upload was kept."
            ),
            retry_after: None,
        }
    }

    /// `wanted` more bytes do not fit: `used` of `limit` are taken.
    pub fn stored_bytes(used: u64, wanted: u64, limit: u64, declared: bool) -> QuotaExceeded {
        let what = if declared {
            format!("this upload is {}", bytes(wanted))
        } else {
            "this upload grew past what is left".to_owned()
        };
        QuotaExceeded {
            limit: Limit::StoredBytes,
            message: format!(
                "quota exceeded: stored bytes. Your videos, mp3s and uploads under way take {} of \
                 your {} and {what}. Delete jobs you no longer need to free space, then upload \
                 again; nothing of this upload was kept.",
                bytes(used),
                bytes(limit)
            ),
            retry_after: None,
        }
    }

    /// The day's minutes are used up (`used_ms` of `limit` minutes), at upload.
    pub fn media_minutes_used_up(used_ms: u64, limit: u32) -> QuotaExceeded {
        let renews = media::until_next_utc_day();
        QuotaExceeded {
            limit: Limit::MediaMinutesPerDay,
            message: format!(
                "quota exceeded: media minutes per day. Conversions started today (UTC) used {} \
                 of your {limit} min. The allowance renews at 00:00 UTC, in {}; nothing of this \
                 upload was kept.",
                minutes(used_ms),
                hours_minutes(renews)
            ),
            retry_after: Some(renews),
        }
    }

    /// A job's media (`media_ms`) are longer than what is left of the day's minutes.
    pub fn media_too_long_for_today(media_ms: u64, used_ms: u64, limit: u32) -> QuotaExceeded {
        let limit_ms = u64::from(limit) * 60_000;
        let renews = media::until_next_utc_day();
        QuotaExceeded {
            limit: Limit::MediaMinutesPerDay,
            message: format!(
                "quota exceeded: media minutes per day. This file is {} min long, but only {} of \
                 your {limit} min for today (UTC) are left. The allowance renews at 00:00 UTC, in \
                 {}: upload it again then. The video is kept until you delete the job.",
                minutes(media_ms),
                minutes(limit_ms.saturating_sub(used_ms)),
                hours_minutes(renews)
            ),
            retry_after: Some(renews),
        }
    }

    /// The HTTP status of this refusal: only stored bytes are not a matter of waiting.
    pub fn http_status(&self) -> u16 {
        match self.limit {
            Limit::StoredBytes => 413,
            Limit::QueuedJobs | Limit::MediaMinutesPerDay => 429,
        }
    }
}

/// Why a quota could not be checked or applied.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Exceeded(#[from] QuotaExceeded),
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
}

/// `n` bytes for people: `1.5 GiB`, `700 KiB`, `12 bytes`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Milliseconds of media as minutes with one decimal: `12.5`.
fn minutes(ms: u64) -> String {
    format!("{:.1}", ms as f64 / 60_000.0)
}

fn hours_minutes(d: Duration) -> String {
    let total = d.as_secs().div_ceil(60);
    format!("{} h {:02} min", total / 60, total % 60)
}

/// Makes one account's quota checks in this process run one at a time. Striped by owner: a
/// fixed set of locks needs no clean-up, and two accounts sharing a stripe only wait for each
/// other's check (a few MongoDB round trips), never for an upload.
struct OwnerLocks([tokio::sync::Mutex<()>; 64]);

impl OwnerLocks {
    fn new() -> OwnerLocks {
        OwnerLocks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }

    async fn lock(&self, owner: &UserId) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = owner.to_string().bytes().fold(0_usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        self.0[stripe % self.0.len()].lock().await
    }
}

/// Reads the account's records for the quotas; shared by the storage API and the worker.
#[derive(Clone)]
pub struct QuotaStore {
    limits: Quotas,
    locks: Arc<OwnerLocks>,
    jobs: Collection<Document>,
    uploads: Collection<Document>,
    media: Collection<Document>,
}

impl fmt::Debug for QuotaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaStore")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What an account's jobs take: bytes kept and jobs waiting or converting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct JobsUsage {
    stored_bytes: u64,
    active_jobs: u64,
}

/// What an account's uploads under way have reserved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct UploadsUsage {
    uploads: u64,
    reserved_bytes: u64,
    /// The jobs those uploads are for: their records, once written, are not counted again.
    jobs: Vec<String>,
}

impl QuotaStore {
    pub fn new(db: &Database, limits: Quotas) -> QuotaStore {
        QuotaStore {
            limits,
            locks: Arc::new(OwnerLocks::new()),
            jobs: db.collection(JOBS_COLLECTION),
            uploads: db.collection(UPLOADS_COLLECTION),
            media: db.collection(MEDIA_USAGE_COLLECTION),
        }
    }

    /// Every count below filters by owner first.
    pub async fn ensure_indexes(&self) -> Result<(), mongodb::error::Error> {
        self.jobs
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"owner_id": 1, "status": 1})
                    .build(),
            )
            .await?;
        self.uploads
            .create_index(IndexModel::builder().keys(doc! {"owner_id": 1}).build())
            .await?;
        // MongoDB removes expired reservations by itself; the counts ignore them either way.
        self.uploads
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"expires_at": 1})
                    .options(
                        mongodb::options::IndexOptions::builder()
                            .expire_after(Duration::ZERO)
                            .build(),
                    )
                    .build(),
            )
            .await?;
        self.media
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"owner_id": 1, "day": 1})
                    .build(),
            )
            .await?;
        Ok(())
    }

    /// The owner's jobs, but for those in `reserved` (an upload under way counts them).
    async fn jobs_usage(
        &self,
        owner: &UserId,
        reserved: &[String],
    ) -> Result<JobsUsage, mongodb::error::Error> {
        let pipeline = [
            doc! {"$match": {"owner_id": owner.to_string(), "_id": {"$nin": reserved}}},
            doc! {"$group": {
                "_id": Bson::Null,
                "bytes": {"$sum": {"$add": [
                    {"$ifNull": ["$video_size_bytes", 0]},
                    {"$ifNull": ["$mp3_size_bytes", 0]},
                ]}},
                "active": {"$sum": {"$cond": [
                    {"$in": ["$status", ["queued", "converting"]]}, 1, 0,
                ]}},
            }},
        ];
        let Some(totals) = first(self.jobs.aggregate(pipeline).await?).await? else {
            return Ok(JobsUsage::default());
        };
        Ok(JobsUsage {
            stored_bytes: number(&totals, "bytes"),
            active_jobs: number(&totals, "active"),
        })
    }

    /// Jobs of `owner` waiting or converting, the one being published included: the backlog a
    /// new job's priority comes from.
    pub async fn active_jobs(&self, owner: &UserId) -> Result<u64, mongodb::error::Error> {
        self.jobs
            .count_documents(doc! {
                "owner_id": owner.to_string(),
                "status": {"$in": ["queued", "converting"]},
            })
            .await
    }
}

async fn first(
    mut cursor: mongodb::Cursor<Document>,
) -> Result<Option<Document>, mongodb::error::Error> {
    if cursor.advance().await? {
        Ok(Some(cursor.deserialize_current()?))
    } else {
        Ok(None)
    }
}

/// A non-negative whole number from a sum, whichever numeric type the server chose for it.
fn number(doc: &Document, key: &str) -> u64 {
    match doc.get(key) {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Double(f)) if f.is_finite() && *f > 0.0 => *f as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_as_people_say_them() {
        assert_eq!(bytes(12), "12 bytes");
        assert_eq!(bytes(700 * 1024), "700.0 KiB");
        assert_eq!(bytes(10 << 30), "10.0 GiB");
        assert_eq!(minutes(90_000), "1.5");
        assert_eq!(
            hours_minutes(Duration::from_secs(3 * 3600 + 61)),
            "3 h 02 min"
        );
    }

    #[test]
    fn each_refusal_names_its_limit_and_what_frees_it() {
        let q = QuotaExceeded::queued_jobs(20, 20);
        assert_eq!(q.http_status(), 429);
        assert!(q.message.contains("queued jobs") && q.message.contains("limit is 20"));
        assert!(q.message.contains("delete"));
        let b = QuotaExceeded::stored_bytes(9 << 30, 2 << 30, 10 << 30, true);
        assert_eq!(b.http_status(), 413);
        assert!(
            b.message.contains("9.0 GiB of your 10.0 GiB"),
            "{}",
            b.message
        );
        assert!(
            b.message.contains("this upload is 2.0 GiB"),
            "{}",
            b.message
        );
        let m = QuotaExceeded::media_minutes_used_up(600 * 60_000, 600);
        assert_eq!(m.http_status(), 429);
        assert!(
            m.retry_after
                .is_some_and(|d| d <= Duration::from_secs(86_400))
        );
        assert!(m.message.contains("600.0 of your 600 min"), "{}", m.message);
        let long = QuotaExceeded::media_too_long_for_today(45 * 60_000, 590 * 60_000, 600);
        assert!(long.message.contains("45.0 min long"), "{}", long.message);
        assert!(
            long.message.contains("only 10.0 of your 600 min"),
            "{}",
            long.message
        );
    }

    #[test]
    fn sums_read_whatever_number_type_the_server_chose() {
        let d = doc! {"a": 3_i32, "b": 4_i64, "c": 5.0, "d": -1_i64, "e": "x"};
        assert_eq!(
            ["a", "b", "c", "d", "e", "missing"].map(|k| number(&d, k)),
            [3, 4, 5, 0, 0, 0]
        );
    }
}
