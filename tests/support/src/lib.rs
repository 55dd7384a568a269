//! The helpers of `vid2mp3-test-support-core` (isolated resources on the shared backing services,
//! private servers, readiness polling; re-exported here whole), plus what needs runtime-host:
//! the repository's `spin.toml` run in-process ([`SpinApp`]) and the whole platform for one
//! test ([`Platform`]).

mod platform;
mod spin_app;

pub use platform::{
    CONFIRMATION_SUBJECT, ConverterProcess, Platform, PlatformBuilder, TokenKeys,
    confirmation_link_in, confirmation_token_in,
};
pub use runtime_host::ClientLimits;
pub use spin_app::{SpinApp, SpinAppBuilder, app_client_limits};
pub use vid2mp3_test_support_core::*;
