//! The WASI HTTP plumbing vid2mp3's components share, beyond spin-sdk's buffered
//! `Request`/`Response`: a body read chunk by chunk with a bound, and an outgoing request whose
//! body is streamed, which can be **aborted** (spin-sdk's body sink always finishes the body when
//! dropped, which would turn a client's aborted upload into a short but "complete" one) and which
//! carries timeouts (spin-sdk's `send` sets none, so a hung server would hold the instance for as
//! long as the host allows).
//!
//! Everything blocks: an instance serves one request or message, so there is nothing else to run
//! meanwhile. Only the types of `wasi:http@0.2.0` as spin-sdk binds them are used, so the
//! gateway's incoming requests and these outgoing ones share one set of resources.

mod body;
mod error;
mod outgoing;

pub use body::{BodyReader, fields, write_all};
pub use error::IoError;
pub use outgoing::{BodyLimit, Fetched, StreamedRequest, Target, Timeouts, fetch, response_header};
