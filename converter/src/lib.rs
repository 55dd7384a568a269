//! The vid2mp3 converter sidecar.
//!
//! Today it holds the transcoder (`transcode`), the product's core: any upload in, one gapless
//! mp3 out. The storage API, job worker and event relay build on it.

pub mod transcode;
