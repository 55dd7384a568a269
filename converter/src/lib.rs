//! The vid2mp3 converter sidecar.
//!
//! - [`transcode`]: the product's core, any upload in, one gapless mp3 out;
//! - [`service`]: `serve`, one process running any of the roles below on shared connections;
//!   it only builds each role's dependencies and starts it;
//! - `storage_api`: the internal HTTP API the gateway stores videos through and reads from
//!   (its state: `storage_api::State`; the upload saga: `storage_api::saga`);
//! - `worker`: the `video.fair` queue consumer that converts GridFS to GridFS (`worker::Deps`);
//! - `relay`: hands job events from the `mp3` queue to the notifier through Redis
//!   (`relay::Deps`);
//! - `webhook`: POSTs job events from the `webhooks` queue to their owners' callback URLs,
//!   signed, never to the platform's own network (`webhook::Deps`);
//! - `quota`: per-account quotas (stored bytes, queued jobs, media minutes per day);
//! - `queue`, [`gridfs`], `job_state`, `job_timeout`, `redis_conn`, `shutdown`, [`metrics`],
//!   [`config`]: what those share.
//!
//! Only what is used from outside the crate (the binary, the tests) is public.

pub mod config;
mod deleted_owners;
pub mod gridfs;
mod job_state;
mod job_timeout;
pub mod metrics;
mod queue;
mod quota;
mod redis_conn;
mod relay;
mod resumable;
pub mod service;
mod shutdown;
mod storage_api;
pub mod transcode;
mod webhook;
mod worker;
