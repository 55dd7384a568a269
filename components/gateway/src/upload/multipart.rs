//! `multipart/form-data` uploads (what `curl -F file=@video.mkv` sends), parsed as a stream by
//! multer: the file's bytes go on to storage as they arrive; nothing holds the whole upload.
//!
//! multer pulls from its input stream for as long as the stream is ready, and a WASI read that
//! blocks is always ready, so fed directly it would take in the whole body before returning the
//! first field (a 70 MB form outgrew the instance's memory). The stream therefore hands over one
//! chunk per poll and then reports itself pending (having woken itself), and [`drive`] polls
//! again: multer holds at most one read chunk (64 KiB) plus a boundary's length at any time.
//! What comes before the file and after it is bounded as well ([`MAX_FRAMING_BYTES`]), since
//! multer would buffer a preamble or a field header without end while looking for its end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::stream::{self, Stream};

use crate::http_io::{BodyReader, IoError};

/// Form fields that are not files are read and dropped; this bounds each.
const MAX_TEXT_FIELD_BYTES: u64 = 64 * 1024;

/// What the gateway reads before the file's field begins, and again after it ends: the other
/// fields, part headers and framing, counted in whole read chunks (so it is at least one chunk
/// more than the fields themselves may hold).
pub const MAX_FRAMING_BYTES: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("the multipart body is malformed or cut off ({0}); send the whole file again")]
    Malformed(String),
    #[error("the form has no file: send exactly one file field, e.g. curl -F 'file=@video.mkv'")]
    NoFile,
    #[error("the form has more than one file; send exactly one per upload")]
    SecondFile,
    #[error(
        "the form has more than {MAX_FRAMING_BYTES} bytes of other fields before or after its file; \
         send the file with at most a few small fields"
    )]
    TooMuchFraming,
    #[error("the client stopped sending the upload")]
    Aborted,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    if super::naming::essence(content_type) != "multipart/form-data" {
        return None;
    }
    multer::parse_boundary(content_type).ok()
}

/// What the body stream and the code driving multer share.
#[derive(Default)]
struct Feed {
    /// Set when the stream has handed over a chunk and will read the next one on its next poll;
    /// a `Pending` from multer without it would be a real stall.
    yielded: AtomicBool,
    /// While false, every byte read counts against [`MAX_FRAMING_BYTES`].
    in_file: AtomicBool,
    framing_bytes: AtomicU64,
    over_framing_limit: AtomicBool,
}

impl Feed {
    /// Starts counting framing again (after the file's field).
    fn framing(&self) {
        self.in_file.store(false, Ordering::Relaxed);
        self.framing_bytes.store(0, Ordering::Relaxed);
    }
}

/// Where a form's bytes come from: the request body (or, in unit tests, a list of chunks).
pub trait ChunkSource: Send + 'static {
    /// The next chunk; `None` at the end of the body.
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, IoError>;
}

impl ChunkSource for BodyReader {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, IoError> {
        BodyReader::next_chunk(self)
    }
}

fn body_stream(
    mut reader: impl ChunkSource,
    feed: Arc<Feed>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut chunk_handed_over = false;
    stream::poll_fn(move |cx: &mut Context<'_>| {
        if chunk_handed_over {
            // One chunk per poll: multer must parse what it has before it gets more.
            chunk_handed_over = false;
            feed.yielded.store(true, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(match reader.next_chunk() {
            Ok(Some(chunk)) => {
                chunk_handed_over = true;
                if !feed.in_file.load(Ordering::Relaxed) {
                    let seen = feed
                        .framing_bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed)
                        + chunk.len() as u64;
                    if seen > MAX_FRAMING_BYTES {
                        feed.over_framing_limit.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "too much framing",
                        ))));
                    }
                }
                Some(Ok(Bytes::from(chunk)))
            }
            Ok(None) => None,
            Err(e) => Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                e,
            ))),
        })
    })
}

/// The one file of a form, read chunk by chunk.
pub struct FormFile {
    form: multer::Multipart<'static>,
    field: Option<multer::Field<'static>>,
    feed: Arc<Feed>,
    pub file_name: String,
    pub content_type: Option<String>,
}

/// Runs one of multer's futures to its end. Reads block, so the only `Pending` it can return is
/// the stream's own pause between chunks, after which polling again reads on.
fn drive<T>(
    feed: &Feed,
    future: impl std::future::Future<Output = Result<T, multer::Error>>,
) -> Result<T, FormError> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        feed.yielded.store(false, Ordering::Relaxed);
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(v)) => return Ok(v),
            Poll::Ready(Err(multer::Error::StreamReadFailed(_))) => {
                return Err(if feed.over_framing_limit.load(Ordering::Relaxed) {
                    FormError::TooMuchFraming
                } else {
                    FormError::Aborted
                });
            }
            Poll::Ready(Err(e)) => return Err(FormError::Malformed(e.to_string())),
            Poll::Pending if feed.yielded.load(Ordering::Relaxed) => continue,
            Poll::Pending => {
                return Err(FormError::Malformed("the body stream stalled".into()));
            }
        }
    }
}

/// Reads a text field to its end and drops it, refusing one over [`MAX_TEXT_FIELD_BYTES`].
fn skip_text_field(feed: &Feed, field: &mut multer::Field<'static>) -> Result<(), FormError> {
    let mut seen = 0u64;
    while let Some(chunk) = drive(feed, field.chunk())? {
        seen += chunk.len() as u64;
        if seen > MAX_TEXT_FIELD_BYTES {
            return Err(FormError::Malformed(format!(
                "a text field is over {MAX_TEXT_FIELD_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

impl FormFile {
    /// Skips leading text fields and stops at the first file field.
    pub fn open(reader: impl ChunkSource, boundary: String) -> Result<FormFile, FormError> {
        let feed = Arc::new(Feed::default());
        let mut form = multer::Multipart::new(body_stream(reader, feed.clone()), boundary);
        loop {
            let Some(mut field) = drive(&feed, form.next_field())? else {
                return Err(FormError::NoFile);
            };
            if let Some(name) = field.file_name() {
                let file_name = name.to_owned();
                let content_type = field.content_type().map(|m| m.to_string());
                feed.in_file.store(true, Ordering::Relaxed);
                return Ok(FormFile {
                    form,
                    field: Some(field),
                    feed,
                    file_name,
                    content_type,
                });
            }
            skip_text_field(&feed, &mut field)?;
        }
    }

    /// The file's next bytes; `None` at its end.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, FormError> {
        match self.field.as_mut() {
            Some(field) => drive(&self.feed, field.chunk()),
            None => Ok(None),
        }
    }

    /// After the file: the rest of the form must hold no other file and end properly.
    pub fn finish(mut self) -> Result<(), FormError> {
        drop(self.field.take());
        self.feed.framing();
        loop {
            let Some(mut field) = drive(&self.feed, self.form.next_field())? else {
                return Ok(());
            };
            if field.file_name().is_some() {
                return Err(FormError::SecondFile);
            }
            skip_text_field(&self.feed, &mut field)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A body as a list of chunks, counting how many the form has taken.
    struct Chunks {
        left: std::collections::VecDeque<Vec<u8>>,
        taken: Arc<Mutex<usize>>,
        /// Ends with a broken connection instead of the body's end.
        cut: bool,
    }

    impl ChunkSource for Chunks {
        fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, IoError> {
            match self.left.pop_front() {
                Some(chunk) => {
                    *self.taken.lock().unwrap() += 1;
                    Ok(Some(chunk))
                }
                None if self.cut => Err(IoError::Aborted),
                None => Ok(None),
            }
        }
    }

    const CHUNK: usize = 64 * 1024;

    /// `before`, a file part of `file_chunks` 64 KiB chunks of 'v', then `after`, cut into
    /// 64 KiB reads as the request body arrives.
    fn form(before: &str, file_chunks: usize, after: &str) -> (Vec<Vec<u8>>, usize) {
        let mut body = before.as_bytes().to_vec();
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.mkv\"\r\n\
              Content-Type: video/x-matroska\r\n\r\n",
        );
        body.resize(body.len() + file_chunks * CHUNK, b'v');
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(after.as_bytes());
        body.extend_from_slice(b"--XyZ--\r\n");
        let chunks: Vec<Vec<u8>> = body.chunks(CHUNK).map(<[u8]>::to_vec).collect();
        let n = chunks.len();
        (chunks, n)
    }

    fn source(chunks: Vec<Vec<u8>>, cut: bool) -> (Chunks, Arc<Mutex<usize>>) {
        let taken = Arc::new(Mutex::new(0));
        (
            Chunks {
                left: chunks.into(),
                taken: taken.clone(),
                cut,
            },
            taken,
        )
    }

    #[test]
    fn boundaries_come_only_from_form_data() {
        assert_eq!(
            boundary("multipart/form-data; boundary=------------------------abc123").as_deref(),
            Some("------------------------abc123")
        );
        assert_eq!(boundary("multipart/mixed; boundary=x"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("video/mp4"), None);
    }

    #[test]
    fn the_file_streams_a_chunk_at_a_time() {
        let (chunks, total) = form(
            "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n",
            200,
            "",
        );
        let (body, taken) = source(chunks, false);
        let mut file = FormFile::open(body, "XyZ".into()).expect("a file field");
        assert_eq!(file.file_name, "v.mkv");
        let mut bytes = 0usize;
        let mut most_ahead = 0usize;
        while let Some(chunk) = file.next_chunk().expect("a chunk") {
            bytes += chunk.len();
            assert!(chunk.iter().all(|b| *b == b'v'), "only the file's bytes");
            // Bytes taken from the body but not yet handed on: what multer is holding.
            let read = *taken.lock().unwrap() * CHUNK;
            most_ahead = most_ahead.max(read.saturating_sub(bytes));
        }
        assert_eq!(bytes, 200 * CHUNK);
        assert!(
            most_ahead <= 2 * CHUNK,
            "the form read {most_ahead} bytes ahead of the file"
        );
        file.finish().expect("the form ends properly");
        assert_eq!(*taken.lock().unwrap(), total);
    }

    #[test]
    fn framing_before_or_after_the_file_is_bounded() {
        let big = "x".repeat(40 * 1024);
        let fields: String = (0..8)
            .map(|i| {
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n{big}\r\n")
            })
            .collect();
        // 320 KiB of small fields before the file.
        let (chunks, _) = form(&fields, 2, "");
        let (body, taken) = source(chunks, false);
        assert!(matches!(
            FormFile::open(body, "XyZ".into()),
            Err(FormError::TooMuchFraming)
        ));
        assert!(*taken.lock().unwrap() as u64 * CHUNK as u64 <= MAX_FRAMING_BYTES + CHUNK as u64);

        // The same after it.
        let (chunks, _) = form("", 2, &fields);
        let (body, _) = source(chunks, false);
        let mut file = FormFile::open(body, "XyZ".into()).expect("a file field");
        while file.next_chunk().expect("a chunk").is_some() {}
        assert!(matches!(file.finish(), Err(FormError::TooMuchFraming)));

        // A preamble that never reaches a boundary is framing too.
        let endless = vec![vec![b'p'; CHUNK]; 64];
        let (body, _) = source(endless, false);
        assert!(matches!(
            FormFile::open(body, "XyZ".into()),
            Err(FormError::TooMuchFraming)
        ));
    }

    #[test]
    fn a_body_cut_off_mid_file_is_an_error() {
        let (mut chunks, _) = form("", 8, "");
        chunks.truncate(4);
        // The connection breaks.
        let (body, _) = source(chunks.clone(), true);
        let mut file = FormFile::open(body, "XyZ".into()).expect("a file field");
        let outcome = loop {
            match file.next_chunk() {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        assert!(matches!(outcome, Err(FormError::Aborted)), "{outcome:?}");
        // The body ends early (a complete HTTP body holding half a form).
        let (body, _) = source(chunks, false);
        let mut file = FormFile::open(body, "XyZ".into()).expect("a file field");
        let outcome = loop {
            match file.next_chunk() {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        assert!(
            matches!(outcome, Err(FormError::Malformed(_))),
            "{outcome:?}"
        );
    }
}
