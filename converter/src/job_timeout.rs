//! A job's time limit. It follows the media's duration: LAME's work, which is most of a job,
//! grows with the samples, not the bytes (a 10-minute talk at 32 kbit/s and a 10-minute film
//! at 20 Mbit/s cost the encoder the same). The duration is known only once the decoder has
//! opened the container (or ffprobe has read it), so until then a bound from the size guards
//! the spooling and probing. Both are capped: a container can state any duration it likes.

use std::time::Duration;

/// The limits a worker applies to each job (`VID2MP3_JOB_TIMEOUT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTimeouts {
    /// Every job gets this much, whatever its length: connecting, reading the first chunks,
    /// starting ffmpeg, writing the files document.
    pub base: Duration,
    /// Until the duration is known: this much per MiB of video on top of `base`.
    pub per_mib: Duration,
    /// Once the duration is known: this much per minute of media on top of `base`.
    pub per_media_minute: Duration,
    /// No job runs longer, whatever its size or stated duration.
    pub max: Duration,
}

impl Default for JobTimeouts {
    /// 6 s per media minute allows a tenth of realtime: the encoder was measured at ~200×
    /// realtime on 2 cores, so a job meets the limit only when something is badly wrong. The
    /// cap of 2 h covers ~19 hours of media at that rate.
    fn default() -> Self {
        JobTimeouts {
            base: Duration::from_secs(120),
            per_mib: Duration::from_secs(2),
            per_media_minute: Duration::from_secs(6),
            max: Duration::from_secs(2 * 3600),
        }
    }
}

impl JobTimeouts {
    /// The limit while only the size is known: `base + per_mib × MiB`, at most `max`.
    pub fn before_duration(&self, size_bytes: u64) -> Duration {
        let mib = u32::try_from(size_bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX);
        self.base
            .saturating_add(self.per_mib.saturating_mul(mib))
            .min(self.max)
    }

    /// The limit once the media states its duration: `base + per_media_minute × minutes`, at
    /// most `max`.
    pub fn for_duration(&self, media: Duration) -> Duration {
        // In whole nanoseconds, so equal inputs give equal limits on every machine.
        let share = self
            .per_media_minute
            .as_nanos()
            .checked_mul(media.as_nanos())
            .map(|n| n / 60_000_000_000)
            .map_or(Duration::MAX, nanos_to_duration);
        self.base.saturating_add(share).min(self.max)
    }
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> JobTimeouts {
        JobTimeouts {
            base: Duration::from_secs(120),
            per_mib: Duration::from_secs(2),
            per_media_minute: Duration::from_secs(6),
            max: Duration::from_secs(7200),
        }
    }

    #[test]
    fn a_longer_file_gets_a_longer_limit() {
        let t = limits();
        assert_eq!(t.for_duration(Duration::ZERO), Duration::from_secs(120));
        assert_eq!(
            t.for_duration(Duration::from_secs(60)),
            Duration::from_secs(126)
        );
        assert_eq!(
            t.for_duration(Duration::from_secs(600)),
            Duration::from_secs(180)
        );
        assert_eq!(
            t.for_duration(Duration::from_secs(3 * 3600)),
            Duration::from_secs(1200)
        );
        assert!(
            t.for_duration(Duration::from_secs(601)) > t.for_duration(Duration::from_secs(600))
        );
    }

    #[test]
    fn a_file_that_lies_about_its_duration_is_still_bounded() {
        let t = limits();
        // A header claiming years (or the most a Duration holds) still gets at most `max`.
        assert_eq!(t.for_duration(Duration::from_secs(10 * 365 * 86400)), t.max);
        assert_eq!(t.for_duration(Duration::MAX), t.max);
        // One claiming a second gets about the base: a decoder that runs on past it is stopped.
        assert_eq!(
            t.for_duration(Duration::from_secs(1)),
            Duration::from_millis(120_100)
        );
    }

    #[test]
    fn before_the_duration_is_known_the_size_bounds_the_probe() {
        let t = limits();
        assert_eq!(t.before_duration(0), t.base);
        assert_eq!(t.before_duration(1), Duration::from_secs(122));
        assert_eq!(t.before_duration(100 << 20), Duration::from_secs(320));
        assert_eq!(t.before_duration(u64::MAX), t.max);
    }

    #[test]
    fn the_defaults_leave_room_for_an_hour_of_media() {
        let t = JobTimeouts::default();
        assert_eq!(
            t.for_duration(Duration::from_secs(3600)),
            Duration::from_secs(480)
        );
        assert!(t.base <= t.max);
    }
}
