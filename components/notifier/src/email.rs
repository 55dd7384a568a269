//! The emails: "your mp3 is ready" and "we could not convert your video", as text and HTML.
//!
//! Everything that came from a user (the file name above all, but also the address and the
//! converter's message) is HTML-escaped in the HTML part and stripped of control characters in
//! the subject, where a line break could otherwise end the header.

use vid2mp3_contracts::{ErrorCode, JobEvent, JobOutcome};

/// How much of a file name goes into a subject line; the body always has all of it.
const SUBJECT_NAME_CHARS: usize = 80;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("a done event without an mp3 id cannot be told to anyone")]
    DoneWithoutMp3,
}

/// The email for `event`, with links under `public_base_url` (no trailing slash).
pub fn render(event: &JobEvent, public_base_url: &str) -> Result<Email, RenderError> {
    let name = display_name(&event.original_name);
    let job_link = format!("{public_base_url}/api/v1/jobs/{}/mp3", event.job_id);
    let (subject, text, html) = match &event.outcome {
        JobOutcome::Done {
            mp3_size_bytes,
            duration_ms,
        } => {
            let fid = event.mp3_fid.as_ref().ok_or(RenderError::DoneWithoutMp3)?;
            let course_link = format!("{public_base_url}/download?fid={fid}");
            let facts = format!(
                "{}, {}",
                format_duration(*duration_ms),
                format_size(*mp3_size_bytes)
            );
            let subject = format!("Your mp3 of \"{}\" is ready", subject_name(name));
            let text = format!(
                "Hello,\n\n\
                 your video \"{name}\" is now an mp3 ({facts}).\n\n\
                 mp3 id (fid): {fid}\n\
                 Download it: {job_link}\n\
                 or, with the course's client: {course_link}\n\n\
                 Downloads need you to be logged in as {to}.\n\n\
                 vid2mp3\n",
                to = event.username,
            );
            let html = format!(
                "<!DOCTYPE html>\n<html><body>\n\
                 <p>Hello,</p>\n\
                 <p>your video &ldquo;<strong>{name}</strong>&rdquo; is now an mp3 ({facts}).</p>\n\
                 <p>mp3 id (fid): <code>{fid}</code></p>\n\
                 <p><a href=\"{job_link}\">Download your mp3</a><br>\n\
                 or, with the course's client: <a href=\"{course_link}\">{course_link}</a></p>\n\
                 <p>Downloads need you to be logged in as {to}.</p>\n\
                 <p>vid2mp3</p>\n\
                 </body></html>\n",
                name = escape_html(name),
                facts = escape_html(&facts),
                fid = escape_html(fid.as_str()),
                job_link = escape_html(&job_link),
                course_link = escape_html(&course_link),
                to = escape_html(&event.username),
            );
            (subject, text, html)
        }
        JobOutcome::Failed { code, message } => {
            let explained = explain_failure(*code, message);
            let subject = format!("We could not convert \"{}\"", subject_name(name));
            let details = explained
                .details
                .map(|d| format!("Details: {d}\n"))
                .unwrap_or_default();
            let text = format!(
                "Hello,\n\n\
                 we could not turn your video \"{name}\" into an mp3.\n\n\
                 What went wrong: {what}\n\
                 What you can try: {advice}\n\
                 {details}\n\
                 Job id: {job_id}\n\n\
                 vid2mp3\n",
                what = explained.what,
                advice = explained.advice,
                job_id = event.job_id,
            );
            let details_html = explained
                .details
                .map(|d| format!("<p>Details: {}</p>\n", escape_html(d)))
                .unwrap_or_default();
            let html = format!(
                "<!DOCTYPE html>\n<html><body>\n\
                 <p>Hello,</p>\n\
                 <p>we could not turn your video &ldquo;<strong>{name}</strong>&rdquo; into an mp3.</p>\n\
                 <p><strong>What went wrong:</strong> {what}</p>\n\
                 <p><strong>What you can try:</strong> {advice}</p>\n\
                 {details_html}\
                 <p>Job id: <code>{job_id}</code></p>\n\
                 <p>vid2mp3</p>\n\
                 </body></html>\n",
                name = escape_html(name),
                what = escape_html(&explained.what),
                advice = escape_html(explained.advice),
                job_id = event.job_id,
            );
            (subject, text, html)
        }
    };
    Ok(Email {
        to: event.username.clone(),
        subject,
        text,
        html,
    })
}

/// A failure told to the person who uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained<'a> {
    pub what: String,
    pub advice: &'static str,
    /// The converter's own message, when it adds something to ours.
    pub details: Option<&'a str>,
}

const TRY_AGAIN: &str =
    "Please upload the video again. If it keeps failing, write to us and quote the job id below.";

/// Plain words for each way a conversion can fail. The match has no wildcard on purpose: a new
/// error code must get its own words (or an explicit fallback) before this compiles.
pub fn explain_failure(code: ErrorCode, message: &str) -> Explained<'_> {
    let message = message.trim();
    let ours = |what: &str, advice: &'static str| Explained {
        what: what.to_owned(),
        advice,
        details: (!message.is_empty() && message != what).then_some(message),
    };
    match code {
        ErrorCode::NotMedia | ErrorCode::UnsupportedMediaType => ours(
            "The file you uploaded is not a video or audio file we can read.",
            "Check that you picked the right file, and upload a video such as MP4, MKV, WebM or MOV.",
        ),
        ErrorCode::NoAudio => ours(
            "The video has no sound track, so there is nothing to put in an mp3.",
            "Upload a version of the video that has sound.",
        ),
        ErrorCode::Undecodable => ours(
            "The file looks like a video, but it is damaged or its sound is in a format we cannot decode.",
            "Export or save the video again (for example as MP4 with AAC sound) and upload the new file.",
        ),
        ErrorCode::PayloadTooLarge => ours(
            "The file is larger than we accept.",
            "Upload a shorter video, or one saved at a lower quality.",
        ),
        ErrorCode::TimedOut => ours(
            "Converting the video took longer than we allow.",
            "Try a shorter video, or split it into parts and upload them one by one.",
        ),
        // The converter's message names the limit and when it renews.
        ErrorCode::QuotaExceeded => ours(
            "Converting the video would have gone over your account's daily allowance of media minutes.",
            "Upload it again once your allowance has renewed (at 00:00 UTC); the details below say how much is left.",
        ),
        ErrorCode::RetriesExhausted | ErrorCode::Internal | ErrorCode::Unavailable => ours(
            "Something went wrong on our side while converting, and trying again did not help.",
            TRY_AGAIN,
        ),
        // Not conversion failures: if one arrives anyway, the converter's message is the best
        // account there is.
        ErrorCode::BadRequest
        | ErrorCode::Unauthorized
        | ErrorCode::Forbidden
        | ErrorCode::EmailNotConfirmed
        | ErrorCode::NotFound
        | ErrorCode::Conflict
        | ErrorCode::TooManyRequests
        | ErrorCode::PreconditionFailed
        | ErrorCode::Locked => Explained {
            what: if message.is_empty() {
                "The conversion failed.".to_owned()
            } else {
                message.to_owned()
            },
            advice: TRY_AGAIN,
            details: None,
        },
    }
}

/// The name to show for the upload: what the user called it, or a stand-in when empty.
fn display_name(original: &str) -> &str {
    let trimmed = original.trim();
    if trimmed.is_empty() {
        "your video"
    } else {
        trimmed
    }
}

/// One line, bounded: control characters (CR/LF above all) become spaces.
fn subject_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SUBJECT_NAME_CHARS)
        .collect();
    if name.chars().count() > SUBJECT_NAME_CHARS {
        out.push('…');
    }
    out
}

/// Escapes text for an HTML element or a quoted attribute value.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn format_duration(ms: u64) -> String {
    let secs = (ms + 500) / 1000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Decimal units, as file managers and phones show sizes.
pub fn format_size(bytes: u64) -> String {
    const KB: f64 = 1000.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} bytes")
    } else if b < KB * KB {
        format!("{:.0} KB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.1} MB", b / (KB * KB))
    } else {
        format!("{:.2} GB", b / (KB * KB * KB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vid2mp3_contracts::messages::MESSAGE_VERSION;
    use vid2mp3_contracts::{FileId, JobId, UserId};

    const BASE: &str = "https://vid2mp3.example";

    fn event(outcome: JobOutcome, name: &str) -> JobEvent {
        let done = matches!(outcome, JobOutcome::Done { .. });
        JobEvent {
            version: MESSAGE_VERSION,
            message_id: uuid::Uuid::now_v7(),
            job_id: "0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d12".parse().unwrap(),
            video_fid: "65f0c0ffee65f0c0ffee65f0".parse::<FileId>().unwrap(),
            mp3_fid: done.then(|| "65f0c0ffee65f0c0ffee65f1".parse().unwrap()),
            username: "ada@example.com".into(),
            owner_id: UserId::new(),
            original_name: name.into(),
            attempt: 1,
            outcome,
        }
    }

    fn done(name: &str) -> JobEvent {
        event(
            JobOutcome::Done {
                mp3_size_bytes: 960_000,
                duration_ms: 60_000,
            },
            name,
        )
    }

    fn failed(code: ErrorCode, message: &str) -> JobEvent {
        event(
            JobOutcome::Failed {
                code,
                message: message.into(),
            },
            "holiday.mp4",
        )
    }

    #[test]
    fn a_done_email_names_the_file_the_fid_and_both_links() {
        let email = render(&done("talk.mkv"), BASE).unwrap();
        assert_eq!(email.to, "ada@example.com");
        assert_eq!(email.subject, "Your mp3 of \"talk.mkv\" is ready");
        let job_link =
            "https://vid2mp3.example/api/v1/jobs/0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d12/mp3";
        let course_link = "https://vid2mp3.example/download?fid=65f0c0ffee65f0c0ffee65f1";
        for part in [&email.text, &email.html] {
            assert!(part.contains("talk.mkv"), "{part}");
            assert!(part.contains("65f0c0ffee65f0c0ffee65f1"), "{part}");
            assert!(part.contains(job_link), "{part}");
            assert!(part.contains(course_link), "{part}");
            assert!(part.contains("1:00, 960 KB"), "{part}");
        }
        assert!(email.html.contains(&format!("<a href=\"{job_link}\">")));
    }

    #[test]
    fn user_text_is_escaped_in_html_and_kept_in_text() {
        let name = "<script>alert('x')</script> & \"friends\".mp4";
        let email = render(&done(name), BASE).unwrap();
        assert!(email.text.contains(name));
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(email.html.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;friends&quot;.mp4"
        ));

        let email = render(&failed(ErrorCode::NoAudio, "<b>no sound</b>"), BASE).unwrap();
        assert!(
            email.html.contains("&lt;b&gt;no sound&lt;/b&gt;"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<b>no"));
    }

    #[test]
    fn a_subject_is_one_bounded_line() {
        let email = render(&done("a\r\nBcc: evil@example.com\r\n.mp4"), BASE).unwrap();
        assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
        let long = "x".repeat(500);
        let email = render(&done(&long), BASE).unwrap();
        assert!(email.subject.chars().count() < 120, "{}", email.subject);
        assert!(email.text.contains(&long));
    }

    #[test]
    fn an_empty_name_reads_as_your_video() {
        let email = render(&done("  "), BASE).unwrap();
        assert_eq!(email.subject, "Your mp3 of \"your video\" is ready");
    }

    #[test]
    fn a_failure_email_says_what_happened_and_what_to_try() {
        let email = render(&failed(ErrorCode::NoAudio, "no audio stream"), BASE).unwrap();
        assert_eq!(email.subject, "We could not convert \"holiday.mp4\"");
        for part in [&email.text, &email.html] {
            assert!(part.contains("has no sound track"), "{part}");
            assert!(
                part.contains("Upload a version of the video that has sound."),
                "{part}"
            );
            assert!(part.contains("Details: no audio stream"), "{part}");
            assert!(
                part.contains("0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d12"),
                "{part}"
            );
            assert!(!part.contains("no_audio"), "codes are for programs: {part}");
        }
    }

    #[test]
    fn every_conversion_failure_has_its_own_words() {
        let conversion_failures = [
            ErrorCode::NotMedia,
            ErrorCode::NoAudio,
            ErrorCode::Undecodable,
            ErrorCode::RetriesExhausted,
            ErrorCode::TimedOut,
            ErrorCode::QuotaExceeded,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
        ];
        for code in conversion_failures {
            let explained = explain_failure(code, "");
            assert!(!explained.what.contains(code.as_str()), "{code:?}");
            assert!(explained.what.ends_with('.'), "{code:?}");
            assert!(explained.advice.ends_with('.'), "{code:?}");
            assert_eq!(explained.details, None);
        }
        // Same words as ours: not repeated as details.
        let e = explain_failure(
            ErrorCode::NoAudio,
            "The video has no sound track, so there is nothing to put in an mp3.",
        );
        assert_eq!(e.details, None);
    }

    #[test]
    fn other_codes_fall_back_to_the_event_message() {
        let e = explain_failure(ErrorCode::Conflict, "  the job was deleted  ");
        assert_eq!(e.what, "the job was deleted");
        assert_eq!(e.advice, TRY_AGAIN);
        let e = explain_failure(ErrorCode::BadRequest, "");
        assert_eq!(e.what, "The conversion failed.");
    }

    #[test]
    fn durations_and_sizes_read_naturally() {
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(59_600), "1:00");
        assert_eq!(format_duration(600_000), "10:00");
        assert_eq!(format_duration(3_723_000), "1:02:03");
        assert_eq!(format_size(999), "999 bytes");
        assert_eq!(format_size(960_000), "960 KB");
        assert_eq!(format_size(9_400_000), "9.4 MB");
        assert_eq!(format_size(1_500_000_000), "1.50 GB");
    }

    #[test]
    fn a_done_event_without_fid_is_an_error_not_a_panic() {
        let mut event = done("x.mp4");
        event.mp3_fid = None;
        assert_eq!(render(&event, BASE), Err(RenderError::DoneWithoutMp3));
    }

    #[test]
    fn job_ids_in_links_are_the_canonical_form() {
        let event = done("x.mp4");
        let email = render(&event, BASE).unwrap();
        let id: JobId = event.job_id;
        assert!(email.text.contains(&format!("/api/v1/jobs/{id}/mp3")));
    }
}
