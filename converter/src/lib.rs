//! The vid2mp3 converter sidecar.
//!
//! - [`transcode`]: the product's core, any upload in, one gapless mp3 out;
//! - [`service`]: `serve`, one process running any of the roles below on shared connections;
//! - [`storage_api`]: the internal HTTP API the gateway stores videos through and reads from;
//! - [`worker`]: the `video` queue consumer that converts GridFS to GridFS;
//! - [`relay`]: hands job events from the `mp3` queue to the notifier through Redis;
//! - [`quota`]: per-account quotas (stored bytes, queued jobs, media minutes per day);
//! - [`queue`], [`gridfs`], [`job_state`], [`metrics`], [`config`]: what those share.

pub mod config;
pub mod gridfs;
pub mod job_state;
pub mod metrics;
pub mod queue;
pub mod quota;
pub mod relay;
pub mod service;
pub mod storage_api;
pub mod transcode;
pub mod worker;
