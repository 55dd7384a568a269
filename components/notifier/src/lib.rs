//! Sends the email for each finished job, delivered by the converter's relay over Redis.
//!
//! Not built yet (issue 6): it refuses every message with an error, so the relay's
//! at-least-once delivery keeps the event instead of losing it to a silent no-op.

#[cfg(target_arch = "wasm32")]
use spin_sdk::redis_component;

// Exported only in the Wasm build: a native cdylib cannot link WIT export names, and native
// builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
#[redis_component]
fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    refuse(message.len())
}

pub fn refuse(len: usize) -> anyhow::Result<()> {
    anyhow::bail!("notifier is not built yet; left a {len}-byte event unacknowledged")
}

#[cfg(test)]
mod tests {
    #[test]
    fn refuses_events() {
        assert!(super::refuse(3).is_err());
    }
}
