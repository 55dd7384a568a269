//! Uploads under way: each is admitted against the account's quotas before its first byte is
//! stored, and reserves the bytes it stores before it stores them.
//!
//! A reservation is a document in `uploads` (owner, job, bytes reserved, expiry). It counts as a
//! queued job and its bytes as stored until the upload ends: the job's record then counts
//! instead. The record is written before the reservation is removed, and a record whose job
//! still has a reservation is not counted, so an upload that ends is counted exactly once
//! throughout (counting both for that moment refused racing uploads below the limit). An upload of unknown length (chunked,
//! multipart) reserves half of what was left when it last looked, at most 64 MiB at a time, so
//! that uploads running side by side share what is left instead of the first taking it all; the
//! piece that does not fit ends the upload with `413`, before it is stored. A reservation whose
//! process died expires after an hour without a refresh; a live upload refreshes its own every
//! ten minutes.

use std::time::{Duration, Instant};

use mongodb::bson::{Bson, DateTime, doc};
use tracing::warn;
use vid2mp3_contracts::{JobId, UserId};

use super::{QuotaError, QuotaExceeded, QuotaStore, UploadsUsage, first, number};

/// What an upload of unknown length reserves at a time: one aggregation per 64 MiB stored.
const STEP_BYTES: u64 = 64 << 20;
/// A reservation not refreshed for this long belongs to an upload that is gone.
const RESERVATION_TTL: Duration = Duration::from_secs(3600);
/// How often a live upload moves its reservation's expiry on.
const REFRESH_AFTER: Duration = Duration::from_secs(600);

fn expiry() -> DateTime {
    let ttl = i64::try_from(RESERVATION_TTL.as_millis()).unwrap_or(i64::MAX);
    DateTime::from_millis(DateTime::now().timestamp_millis().saturating_add(ttl))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An admitted upload's hold on the account's quotas. [`Reservation::release`] it when the upload
/// ends, stored or not.
#[derive(Debug)]
pub struct Reservation {
    store: QuotaStore,
    id: String,
    owner: UserId,
    reserved: u64,
    declared: bool,
    refreshed: Instant,
    /// What the stored-bytes quota had left when this upload last counted.
    left: u64,
}

impl QuotaStore {
    /// Admits an upload by `owner` of `declared` bytes (`None`: unknown until its end): the day's
    /// media minutes must not be used up, one more job in flight must fit the queued-jobs quota,
    /// and the declared bytes (or a first step of an unknown length) the stored-bytes quota.
    pub async fn admit(
        &self,
        owner: &UserId,
        job: &JobId,
        declared: Option<u64>,
    ) -> Result<Reservation, QuotaError> {
        let _one_at_a_time = self.locks.lock(owner).await;
        let used_ms = self.media_used_today(owner).await?;
        let limits = self.limits;
        if used_ms >= limits.media_ms_per_day() {
            return Err(QuotaExceeded::media_minutes_used_up(
                used_ms,
                limits.media_minutes_per_day,
            )
            .into());
        }
        // Reservations of uploads that died with their process: this owner's are counted now.
        self.uploads
            .delete_many(
                doc! {"owner_id": owner.to_string(), "expires_at": {"$lte": DateTime::now()}},
            )
            .await?;
        let id = uuid::Uuid::now_v7().to_string();
        self.uploads
            .insert_one(doc! {
                "_id": &id,
                "owner_id": owner.to_string(),
                "job_id": job.to_string(),
                "reserved_bytes": 0_i64,
                "declared": declared.is_some(),
                "expires_at": expiry(),
            })
            .await?;
        let mut reservation = Reservation {
            store: self.clone(),
            id,
            owner: *owner,
            reserved: 0,
            declared: declared.is_some(),
            refreshed: Instant::now(),
            left: 0,
        };
        let admitted = async {
            // Counted after our own reservation was written (see the module `quota`).
            let (uploads, jobs) = self.usage_after_write(owner).await?;
            let in_flight = uploads.uploads + jobs.active_jobs;
            if in_flight > u64::from(limits.queued_jobs) {
                return Err(QuotaExceeded::queued_jobs(in_flight - 1, limits.queued_jobs).into());
            }
            reservation.left = limits
                .stored_bytes
                .saturating_sub(uploads.reserved_bytes.saturating_add(jobs.stored_bytes));
            match declared {
                Some(n) => reservation.grow(n, n).await,
                None => reservation.grow(reservation.step(1), 1).await,
            }
        }
        .await;
        match admitted {
            Ok(()) => Ok(reservation),
            Err(error) => {
                reservation.release().await;
                Err(error)
            }
        }
    }

    async fn uploads_usage(&self, owner: &UserId) -> Result<UploadsUsage, mongodb::error::Error> {
        let pipeline = [
            doc! {"$match": {"owner_id": owner.to_string(), "expires_at": {"$gt": DateTime::now()}}},
            doc! {"$group": {
                "_id": Bson::Null,
                "uploads": {"$sum": 1},
                "bytes": {"$sum": "$reserved_bytes"},
                "jobs": {"$push": "$job_id"},
            }},
        ];
        let Some(totals) = first(self.uploads.aggregate(pipeline).await?).await? else {
            return Ok(UploadsUsage::default());
        };
        let jobs = match totals.get("jobs") {
            Some(Bson::Array(ids)) => ids
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(UploadsUsage {
            uploads: number(&totals, "uploads"),
            reserved_bytes: number(&totals, "bytes"),
            jobs,
        })
    }

    /// Uploads first, then jobs: an upload that ends meanwhile writes its job's record before
    /// it removes its reservation, so it is counted by one or the other, never by neither, and
    /// never by both (a record is skipped while its job was seen reserved).
    async fn usage_after_write(
        &self,
        owner: &UserId,
    ) -> Result<(UploadsUsage, super::JobsUsage), mongodb::error::Error> {
        let uploads = self.uploads_usage(owner).await?;
        let jobs = self.jobs_usage(owner, &uploads.jobs).await?;
        Ok((uploads, jobs))
    }
}

impl Reservation {
    /// Makes sure `total` bytes of this upload are reserved before they are stored: `Err`
    /// (`413`) when they do not fit the stored-bytes quota.
    pub async fn cover(&mut self, total: u64) -> Result<(), QuotaError> {
        if total <= self.reserved {
            if self.refreshed.elapsed() > REFRESH_AFTER {
                self.store
                    .uploads
                    .update_one(
                        doc! {"_id": &self.id},
                        doc! {"$set": {"expires_at": expiry()}},
                    )
                    .await?;
                self.refreshed = Instant::now();
            }
            return Ok(());
        }
        let needed = total - self.reserved;
        let want = if self.declared {
            needed
        } else {
            self.step(needed)
        };
        let store = self.store.clone();
        let _one_at_a_time = store.locks.lock(&self.owner).await;
        self.grow(want, needed).await
    }

    /// What an upload of unknown length asks for when it needs `needed` more bytes.
    fn step(&self, needed: u64) -> u64 {
        (self.left / 2).min(STEP_BYTES).max(needed)
    }

    /// Reserves `want` more bytes, or what is left of the quota if that is at least `at_least`.
    async fn grow(&mut self, want: u64, at_least: u64) -> Result<(), QuotaError> {
        self.add(to_i64(want)).await?;
        self.reserved += want;
        let (uploads, jobs) = self.store.usage_after_write(&self.owner).await?;
        let total = uploads.reserved_bytes.saturating_add(jobs.stored_bytes);
        let limit = self.store.limits.stored_bytes;
        if total <= limit {
            self.left = limit - total;
            return Ok(());
        }
        let over = total - limit;
        self.left = 0;
        if over < want && want - over >= at_least {
            // Less than asked for, but enough for now: the rest goes back at once.
            self.add(-to_i64(over)).await?;
            self.reserved -= over;
            return Ok(());
        }
        self.add(-to_i64(want)).await?;
        self.reserved -= want;
        Err(QuotaExceeded::stored_bytes(total - want, at_least, limit, self.declared).into())
    }

    async fn add(&mut self, bytes: i64) -> Result<(), mongodb::error::Error> {
        self.store
            .uploads
            .update_one(
                doc! {"_id": &self.id},
                doc! {"$inc": {"reserved_bytes": bytes}, "$set": {"expires_at": expiry()}},
            )
            .await?;
        self.refreshed = Instant::now();
        Ok(())
    }

    /// Keeps the reservation past this request, until `until`: a resumable upload holds its
    /// declared bytes and its job's place across its pieces. Returns its id, for
    /// [`QuotaStore::extend_reservation`] and [`QuotaStore::end_reservation`].
    pub async fn keep_until(self, until: DateTime) -> Result<String, mongodb::error::Error> {
        self.store
            .uploads
            .update_one(doc! {"_id": &self.id}, doc! {"$set": {"expires_at": until}})
            .await?;
        Ok(self.id)
    }

    /// Ends the reservation. A failure is only logged: the reservation then expires by itself
    /// (and refuses more than it should until it does).
    pub async fn release(self) {
        if let Err(error) = self.store.uploads.delete_one(doc! {"_id": &self.id}).await {
            warn!(reservation = %self.id, %error, "could not remove an upload's reservation; it expires within the hour");
        }
    }
}

impl QuotaStore {
    /// Moves a kept reservation's expiry (a resumable upload that made progress).
    pub async fn extend_reservation(
        &self,
        id: &str,
        until: DateTime,
    ) -> Result<(), mongodb::error::Error> {
        self.uploads
            .update_one(doc! {"_id": id}, doc! {"$set": {"expires_at": until}})
            .await?;
        Ok(())
    }

    /// Ends a kept reservation (the upload's job is recorded, or the upload is gone).
    pub async fn end_reservation(&self, id: &str) -> Result<(), mongodb::error::Error> {
        self.uploads.delete_one(doc! {"_id": id}).await?;
        Ok(())
    }
}
