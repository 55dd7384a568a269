//! Progress bars on stderr. indicatif hides them when stderr is not a terminal, so scripts and
//! logs get no control characters.

use indicatif::{ProgressBar, ProgressStyle};

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A transfer: bytes done, total, bytes/s and ETA.
pub fn transfer_bar(total: Option<u64>, label: &str) -> ProgressBar {
    let bar = match total {
        Some(t) => ProgressBar::new(t).with_style(style(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )),
        None => ProgressBar::new_spinner().with_style(style("{msg} {bytes} {bytes_per_sec}")),
    };
    bar.with_message(label.to_owned())
}

/// A conversion: percent from the API's `progress_percent`.
pub fn conversion_bar(label: &str) -> ProgressBar {
    ProgressBar::new(100)
        .with_style(style("{msg} [{bar:30}] {pos}% {elapsed}"))
        .with_message(label.to_owned())
}
