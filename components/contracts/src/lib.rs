//! What vid2mp3's services agree on, defined once: ids, queue messages, account emails, the
//! converter's storage API, conversion progress, token claims, error codes, how a client's
//! address is found behind trusted proxies, which webhook callbacks are allowed, and how secrets
//! and configuration errors are held, and how an error's chain is logged.
//!
//! Plain Rust with serde only, so it builds for the native converter and for the wasm32-wasip2
//! components alike. Changing a type here changes a wire format: add fields as optional, bump
//! the message `version` for anything else.

pub mod account_email;
pub mod account_erasure;
pub mod auth_api;
pub mod claims;
pub mod client_addr;
pub mod error_chain;
pub mod error_code;
pub mod ids;
pub mod loudness;
pub mod messages;
pub mod profile;
pub mod progress;
pub mod secret;
pub mod spin_variables;
pub mod storage_api;
pub mod webhook;

pub use claims::Claims;
pub use error_chain::error_chain;
pub use error_code::{ErrorBody, ErrorCode, ErrorDetail};
pub use ids::{FileId, IdError, JobId, UserId};
pub use loudness::LoudnessTarget;
pub use messages::{JobEvent, JobOutcome, VideoJob};
pub use profile::QualityProfile;
pub use secret::Secret;
pub use spin_variables::ConfigError;
