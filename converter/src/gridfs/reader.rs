//! A synchronous `Read + Seek` view of a GridFS file for the transcoder (which runs on a
//! blocking thread). Demuxers read in small pieces and seek back and forth (an MP4's index may
//! sit at the end), so the chunks last read are cached: a 4-byte read costs no round trip.
//!
//! Two chunks, not one: symphonia's MP4 reader, walking interleaved audio and video, reads a
//! little past a chunk boundary, seeks back a few KiB and forward again. With one chunk cached
//! every boundary cost four fetches (96 for a 24-chunk video), and a one-minute job took
//! 0.42–0.58 s against 0.27–0.35 s from a local file (0.35–0.41 s with two; docs/benchmarks.md).

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::runtime::Handle;

use super::{Bucket, StoredFile};

/// Chunks kept: the one being read and the one before it.
pub const CACHED_CHUNKS: usize = 2;

pub struct GridFsReader {
    bucket: Bucket,
    file: StoredFile,
    handle: Handle,
    pos: u64,
    /// The chunks last read, most recent first: (n, bytes).
    cache: VecDeque<(u32, Vec<u8>)>,
    /// Furthest byte read so far (progress for a mostly sequential read).
    furthest: Arc<AtomicU64>,
    /// Set to make the next read fail (job cancelled or timed out).
    cancel: Arc<AtomicBool>,
    fetches: u64,
}

impl GridFsReader {
    pub fn new(bucket: Bucket, file: StoredFile, handle: Handle) -> GridFsReader {
        GridFsReader {
            bucket,
            file,
            handle,
            pos: 0,
            cache: VecDeque::with_capacity(CACHED_CHUNKS + 1),
            furthest: Arc::new(AtomicU64::new(0)),
            cancel: Arc::new(AtomicBool::new(false)),
            fetches: 0,
        }
    }

    /// Shares a cancel flag with whoever may stop the job.
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> GridFsReader {
        self.cancel = cancel;
        self
    }

    /// The furthest offset read, updated as reading goes.
    pub fn progress(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.furthest)
    }

    pub fn len(&self) -> u64 {
        self.file.length
    }

    pub fn is_empty(&self) -> bool {
        self.file.length == 0
    }

    /// Chunks fetched from MongoDB so far.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }
}

impl Read for GridFsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                // Not `Interrupted`: readers such as `read_exact` and `io::copy` retry that.
                "the job was cancelled",
            ));
        }
        if buf.is_empty() || self.pos >= self.file.length {
            return Ok(0);
        }
        let size = u64::from(self.file.chunk_size);
        let n = u32::try_from(self.pos / size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond GridFS"))?;
        match self.cache.iter().position(|(c, _)| *c == n) {
            Some(0) => {}
            Some(i) => {
                if let Some(hit) = self.cache.remove(i) {
                    self.cache.push_front(hit);
                }
            }
            None => {
                let data = self
                    .handle
                    .block_on(self.bucket.chunk(&self.file, n))
                    .map_err(io::Error::other)?;
                self.fetches += 1;
                self.cache.push_front((n, data));
                self.cache.truncate(CACHED_CHUNKS);
            }
        }
        let Some((_, data)) = self.cache.front() else {
            return Err(io::Error::other("chunk cache empty after a fetch"));
        };
        let offset = (self.pos - u64::from(n) * size) as usize;
        let available = data.get(offset..).unwrap_or(&[]);
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        self.pos += count as u64;
        self.furthest.fetch_max(self.pos, Ordering::Relaxed);
        Ok(count)
    }
}

impl Seek for GridFsReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.file.length.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}
