//! From the source's chapters to the ID3 chapters: in time order, inside the media, at most
//! [`MAX_CHAPTERS`], each running until the next one starts.

use std::time::Duration;

use super::{MAX_CHAPTER_TITLE_CHARS, MAX_CHAPTERS, SourceChapter, clean_text};

/// One CHAP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp3Chapter {
    pub start_ms: u32,
    pub end_ms: u32,
    pub title: String,
}

/// Orders, bounds and (past [`MAX_CHAPTERS`]) thins the source's chapters.
///
/// Chapters that start at or after the end of the media are dropped, as is a second chapter
/// starting at the same time as another. With more than [`MAX_CHAPTERS`] left, every
/// `n / MAX_CHAPTERS`-th is kept, so the table still spans the whole recording; a kept chapter
/// then runs until the next kept one. A chapter without a title is called "Chapter N".
pub fn plan(source: &[SourceChapter], duration: Option<Duration>) -> Vec<Mp3Chapter> {
    let media_ms = duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut ordered: Vec<&SourceChapter> = source
        .iter()
        .filter(|c| media_ms.is_none_or(|end| c.start_ms < end))
        .collect();
    ordered.sort_by_key(|c| c.start_ms);
    ordered.dedup_by_key(|c| c.start_ms);
    let n = ordered.len();
    let kept: Vec<&SourceChapter> = if n > MAX_CHAPTERS {
        (0..MAX_CHAPTERS)
            .map(|j| ordered[j * n / MAX_CHAPTERS])
            .collect()
    } else {
        ordered
    };
    let ms = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    kept.iter()
        .enumerate()
        .map(|(i, c)| {
            let next = kept.get(i + 1).map(|n| n.start_ms);
            // Thinned chapters run to the next kept one; the source's own end would leave gaps.
            let own_end = if n > MAX_CHAPTERS { None } else { c.end_ms };
            let end = match (own_end.filter(|&e| e > c.start_ms), next) {
                (Some(e), Some(next)) => e.min(next),
                (Some(e), None) => e,
                (None, Some(next)) => next,
                (None, None) => media_ms.unwrap_or(c.start_ms),
            };
            let end = media_ms.map_or(end, |m| end.min(m)).max(c.start_ms);
            Mp3Chapter {
                start_ms: ms(c.start_ms),
                end_ms: ms(end),
                title: c
                    .title
                    .as_deref()
                    .and_then(|t| clean_text(t, MAX_CHAPTER_TITLE_CHARS))
                    .unwrap_or_else(|| format!("Chapter {}", i + 1)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(start_ms: u64, end_ms: Option<u64>, title: &str) -> SourceChapter {
        SourceChapter {
            start_ms,
            end_ms,
            title: (!title.is_empty()).then(|| title.to_owned()),
        }
    }

    #[test]
    fn chapters_are_ordered_and_end_where_the_next_starts() {
        let planned = plan(
            &[
                ch(2000, None, "b"),
                ch(0, Some(1000), "a"),
                ch(5000, None, ""),
            ],
            Some(Duration::from_secs(9)),
        );
        let got: Vec<(u32, u32, &str)> = planned
            .iter()
            .map(|c| (c.start_ms, c.end_ms, c.title.as_str()))
            .collect();
        assert_eq!(
            got,
            [(0, 1000, "a"), (2000, 5000, "b"), (5000, 9000, "Chapter 3")]
        );
    }

    #[test]
    fn chapters_past_the_end_or_at_the_same_time_are_dropped() {
        let planned = plan(
            &[ch(0, None, "a"), ch(0, None, "dup"), ch(3000, None, "late")],
            Some(Duration::from_secs(3)),
        );
        assert_eq!(planned.len(), 1);
        assert_eq!((planned[0].end_ms, planned[0].title.as_str()), (3000, "a"));
    }

    #[test]
    fn an_unknown_length_ends_the_last_chapter_at_its_own_end_or_start() {
        let planned = plan(&[ch(0, None, "a"), ch(1000, Some(4000), "b")], None);
        assert_eq!((planned[1].start_ms, planned[1].end_ms), (1000, 4000));
        let planned = plan(&[ch(7000, None, "only")], None);
        assert_eq!((planned[0].start_ms, planned[0].end_ms), (7000, 7000));
    }

    #[test]
    fn five_hundred_chapters_are_thinned_evenly_across_the_whole_recording() {
        let source: Vec<SourceChapter> = (0..500)
            .map(|i| ch(i * 1000, Some(i * 1000 + 1000), &format!("part {i}")))
            .collect();
        let planned = plan(&source, Some(Duration::from_secs(500)));
        assert_eq!(planned.len(), MAX_CHAPTERS);
        assert_eq!(planned[0].start_ms, 0);
        assert!(
            planned.last().unwrap().start_ms >= 497_000,
            "the tail is still reachable"
        );
        assert_eq!(planned.last().unwrap().end_ms, 500_000);
        for pair in planned.windows(2) {
            assert!(pair[0].start_ms < pair[1].start_ms);
            assert_eq!(pair[0].end_ms, pair[1].start_ms, "no gaps after thinning");
        }
    }

    #[test]
    fn long_titles_are_cut() {
        let planned = plan(&[ch(0, None, &"é".repeat(1000))], None);
        assert_eq!(planned[0].title.chars().count(), MAX_CHAPTER_TITLE_CHARS);
    }
}
