//! Media minutes per day: what each job's conversion claimed, per UTC day.
//!
//! A video's duration is known only once the worker has opened it (the container, or ffprobe,
//! states it), so the minutes are counted then, on the UTC day the conversion runs: the job
//! claims its stated duration in `media_usage` (one document per job), and if the day's claims
//! of its owner then exceed the quota it takes its claim back and fails with `quota_exceeded`.
//! When the job is done its claim becomes the length actually converted if that is longer (a
//! header can claim less than the file holds), and media that state no duration are claimed
//! then. A retried job keeps its first claim. Claims are never given back for a job that ran:
//! deleting it, or a later failure, does not undo the work. An upload is refused while the
//! day's claims are at or over the quota.

use std::time::Duration;

use mongodb::bson::{Bson, DateTime, doc};
use time::OffsetDateTime;
use vid2mp3_contracts::{JobId, UserId};

use super::{QuotaError, QuotaExceeded, QuotaStore, first, number};
use crate::job_state::is_duplicate_key;

/// The UTC day claims count on: `2026-12-06`.
pub fn utc_day(at: OffsetDateTime) -> String {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Time until the next UTC midnight, when the day's minutes renew.
pub fn until_next_utc_day() -> Duration {
    until_next_day_from(OffsetDateTime::now_utc())
}

fn until_next_day_from(now: OffsetDateTime) -> Duration {
    let now = now.to_offset(time::UtcOffset::UTC);
    let secs_today = u64::from(now.hour()) * 3600 + u64::from(now.minute()) * 60;
    let secs_today = secs_today + u64::from(now.second());
    Duration::from_secs(86_400 - secs_today.min(86_399))
}

fn to_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl QuotaStore {
    /// Milliseconds of media `owner`'s conversions claimed today (UTC).
    pub async fn media_used_today(&self, owner: &UserId) -> Result<u64, mongodb::error::Error> {
        self.media_used_on(owner, &utc_day(OffsetDateTime::now_utc()))
            .await
    }

    async fn media_used_on(&self, owner: &UserId, day: &str) -> Result<u64, mongodb::error::Error> {
        let pipeline = [
            doc! {"$match": {"owner_id": owner.to_string(), "day": day}},
            doc! {"$group": {"_id": Bson::Null, "ms": {"$sum": "$media_ms"}}},
        ];
        Ok(first(self.media.aggregate(pipeline).await?)
            .await?
            .map_or(0, |totals| number(&totals, "ms")))
    }

    /// Claims `media` for `job` on today's allowance of `owner`; `Err(Exceeded)` (and no claim)
    /// when it does not fit. A job that claimed before (an earlier attempt) keeps that claim.
    pub async fn claim_media(
        &self,
        job: &JobId,
        owner: &UserId,
        media: Duration,
    ) -> Result<(), QuotaError> {
        let _one_at_a_time = self.locks.lock(owner).await;
        let day = utc_day(OffsetDateTime::now_utc());
        let media_ms = to_ms(media);
        let claimed = self
            .media
            .insert_one(doc! {
                "_id": job.to_string(),
                "owner_id": owner.to_string(),
                "day": &day,
                "media_ms": media_ms,
                "claimed_at": DateTime::now(),
            })
            .await;
        match claimed {
            Ok(_) => {}
            Err(error) if is_duplicate_key(&error) => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        // Counted after our own claim was written (see the module `quota`).
        let used = self.media_used_on(owner, &day).await?;
        let limits = self.limits;
        if used <= limits.media_ms_per_day() {
            return Ok(());
        }
        self.media.delete_one(doc! {"_id": job.to_string()}).await?;
        let own = u64::try_from(media_ms).unwrap_or(u64::MAX);
        Err(QuotaExceeded::media_too_long_for_today(
            own,
            used.saturating_sub(own),
            limits.media_minutes_per_day,
        )
        .into())
    }

    /// A job is done after converting `converted`: its claim is at least that long (and is made
    /// now if the media never stated a duration).
    pub async fn settle_media(
        &self,
        job: &JobId,
        owner: &UserId,
        converted: Duration,
    ) -> Result<(), mongodb::error::Error> {
        self.media
            .update_one(
                doc! {"_id": job.to_string()},
                doc! {
                    "$max": {"media_ms": to_ms(converted)},
                    "$setOnInsert": {
                        "owner_id": owner.to_string(),
                        "day": utc_day(OffsetDateTime::now_utc()),
                        "claimed_at": DateTime::now(),
                    },
                },
            )
            .upsert(true)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn days_are_utc_dates_and_renew_at_midnight() {
        // 2026-03-09 23:59:59 UTC, and the same instant seen from UTC+2.
        let late = at(1_773_100_799);
        assert_eq!(utc_day(late), "2026-03-09");
        let offset = time::UtcOffset::from_hms(2, 0, 0).unwrap();
        assert_eq!(utc_day(late.to_offset(offset)), "2026-03-09");
        assert_eq!(utc_day(at(1_773_100_800)), "2026-03-10");
        assert_eq!(
            until_next_day_from(at(1_773_100_740)),
            Duration::from_secs(60)
        );
        assert_eq!(
            until_next_day_from(at(1_773_100_800)),
            Duration::from_secs(86_400)
        );
    }
}
