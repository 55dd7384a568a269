//! Writing a GridFS file chunk by chunk. A full chunk is inserted in the background while the
//! next one fills, so the writer's caller (an upload's body, the encoder) does not wait for each
//! round trip to MongoDB: at most two chunks in memory, three when the first is held back for
//! the mp3's Xing frame (which follows the ID3 tag, bounded to fit that chunk with it). An insert's error surfaces at the next write or at close.

use std::io;
use std::mem;

use mongodb::bson::Document;
use mongodb::bson::oid::ObjectId;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::{Bucket, CHUNK_SIZE, GridFsError, StoredFile};
use crate::transcode::Mp3Sink;

pub struct GridFsWriter {
    bucket: Bucket,
    id: ObjectId,
    buf: Vec<u8>,
    next_n: u32,
    length: u64,
    /// When set, chunk 0 is kept here until [`GridFsWriter::close`] so its first bytes can
    /// still be replaced ([`GridFsWriter::patch_start`]).
    hold_first: bool,
    held_first: Option<Vec<u8>>,
    /// The last full chunk's insert, still running.
    in_flight: Option<JoinHandle<Result<(), GridFsError>>>,
    /// Closed or aborted: nothing left to clean up when dropped.
    finished: bool,
}

impl GridFsWriter {
    pub(super) fn new(bucket: Bucket, id: ObjectId, hold_first: bool) -> GridFsWriter {
        GridFsWriter {
            bucket,
            id,
            buf: Vec::with_capacity(CHUNK_SIZE as usize),
            next_n: 0,
            length: 0,
            hold_first,
            held_first: None,
            in_flight: None,
            finished: false,
        }
    }

    /// Waits for the insert in flight, if any, and returns its outcome.
    async fn settle(&mut self) -> Result<(), GridFsError> {
        insert_outcome(self.in_flight.take()).await
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Appends bytes; every full chunk goes to MongoDB before this returns.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), GridFsError> {
        let size = CHUNK_SIZE as usize;
        while !data.is_empty() {
            let take = (size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            self.length += take as u64;
            data = &data[take..];
            if self.buf.len() == size {
                let chunk = mem::replace(&mut self.buf, Vec::with_capacity(size));
                self.store_chunk(chunk).await?;
            }
        }
        Ok(())
    }

    async fn store_chunk(&mut self, chunk: Vec<u8>) -> Result<(), GridFsError> {
        let n = self.next_n;
        if n == 0 && self.hold_first {
            self.held_first = Some(chunk);
        } else {
            self.settle().await?;
            let bucket = self.bucket.clone();
            let id = self.id;
            self.in_flight = Some(tokio::spawn(async move {
                bucket.insert_chunk(id, n, chunk).await
            }));
        }
        self.next_n += 1;
        Ok(())
    }

    /// Replaces the first `header.len()` bytes (only while chunk 0 is still in memory).
    pub fn patch_start(&mut self, header: &[u8]) -> Result<(), GridFsError> {
        self.patch(0, header)
    }

    /// Replaces `bytes.len()` bytes at `at`, which must lie in chunk 0 (only while it is still in
    /// memory).
    pub fn patch(&mut self, at: u64, bytes: &[u8]) -> Result<(), GridFsError> {
        let first = match self.held_first.as_mut() {
            Some(chunk) => chunk,
            None if self.next_n == 0 => &mut self.buf,
            None => {
                return Err(GridFsError::Misuse(
                    "the first chunk was already written; open the writer with hold_first_chunk",
                ));
            }
        };
        let place = usize::try_from(at)
            .ok()
            .and_then(|at| first.get_mut(at..at.checked_add(bytes.len())?));
        let Some(place) = place else {
            return Err(GridFsError::Misuse(
                "the bytes to patch lie beyond the first chunk or the file",
            ));
        };
        place.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes what is left and then the files document: from now on the file is visible.
    pub async fn close(
        mut self,
        filename: &str,
        metadata: Document,
    ) -> Result<StoredFile, GridFsError> {
        let tail = mem::take(&mut self.buf);
        let tail_n = self.next_n;
        if !tail.is_empty() {
            // Counted before the insert: a failed close must still clean this chunk up.
            self.next_n += 1;
        }
        let held_first = self.held_first.take();
        let in_flight = self.in_flight.take();
        let (bucket, id) = (&self.bucket, self.id);
        let last = async {
            if tail.is_empty() {
                return Ok(());
            }
            // The last chunk may be chunk 0 itself (a file under one chunk).
            bucket.insert_chunk(id, tail_n, tail).await
        };
        let first = async {
            match held_first {
                Some(first) => bucket.insert_chunk(id, 0, first).await,
                None => Ok(()),
            }
        };
        let in_flight = insert_outcome(in_flight);
        // All three finish before an error is returned, so none lands after the cleanup.
        let (in_flight, last, first) = tokio::join!(in_flight, last, first);
        in_flight.and(last).and(first)?;
        let file = StoredFile {
            id: self.id,
            length: self.length,
            chunk_size: CHUNK_SIZE,
            filename: Some(filename.to_owned()),
            metadata,
        };
        self.bucket.insert_file(&file).await?;
        self.finished = true;
        Ok(file)
    }

    /// Removes every chunk written so far; nothing of this file remains.
    pub async fn abort(mut self) -> Result<(), GridFsError> {
        self.finished = true;
        // A chunk still being inserted would land after the delete; its own error does not
        // matter, since the file is being thrown away.
        let _ = self.settle().await;
        self.bucket.delete_chunks(self.id).await.map(|_| ())
    }

    /// Throws everything away and starts the same file over.
    pub async fn restart(&mut self) -> Result<(), GridFsError> {
        let _ = self.settle().await;
        self.bucket.delete_chunks(self.id).await?;
        self.buf.clear();
        self.held_first = None;
        self.next_n = 0;
        self.length = 0;
        Ok(())
    }
}

/// The outcome of a background chunk insert (none: nothing to wait for).
async fn insert_outcome(
    task: Option<JoinHandle<Result<(), GridFsError>>>,
) -> Result<(), GridFsError> {
    match task {
        None => Ok(()),
        Some(task) => task.await.map_err(GridFsError::Interrupted)?,
    }
}

impl Drop for GridFsWriter {
    /// A writer dropped half way (its task was cancelled, a panic) removes its chunks in the
    /// background, so an interrupted upload leaves nothing behind.
    fn drop(&mut self) {
        if self.finished || self.next_n == 0 {
            return;
        }
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        let bucket = self.bucket.clone();
        let id = self.id;
        let in_flight = self.in_flight.take();
        handle.spawn(async move {
            let _ = insert_outcome(in_flight).await;
            if let Err(error) = bucket.delete_chunks(id).await {
                tracing::warn!(%id, %error, "could not remove the chunks of an unfinished file");
            }
        });
    }
}

/// The transcoder's [`Mp3Sink`] over a [`GridFsWriter`]: the transcoder runs on a blocking
/// thread, so each call waits for MongoDB on the runtime's handle.
pub struct GridFsMp3Sink {
    writer: Option<GridFsWriter>,
    handle: Handle,
    /// Checked on every write: set when the job is cancelled or timed out.
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl GridFsMp3Sink {
    pub fn new(
        writer: GridFsWriter,
        handle: Handle,
        cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> GridFsMp3Sink {
        GridFsMp3Sink {
            writer: Some(writer),
            handle,
            cancel,
        }
    }

    /// The writer, with the stream complete (after the transcoder returned).
    pub fn into_writer(mut self) -> Option<GridFsWriter> {
        self.writer.take()
    }

    fn writer(&mut self) -> io::Result<&mut GridFsWriter> {
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(io::Error::other(
                // Not `Interrupted`: readers such as `read_exact` and `io::copy` retry that.
                "the job was cancelled",
            ));
        }
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("the mp3 writer is gone"))
    }
}

fn io_error(error: GridFsError) -> io::Error {
    io::Error::other(error)
}

impl Mp3Sink for GridFsMp3Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let handle = self.handle.clone();
        let writer = self.writer()?;
        handle.block_on(writer.write(bytes)).map_err(io_error)
    }

    fn restart(&mut self) -> io::Result<()> {
        let handle = self.handle.clone();
        let writer = self.writer()?;
        handle.block_on(writer.restart()).map_err(io_error)
    }

    fn finish(&mut self, at: u64, frame: &[u8]) -> io::Result<()> {
        self.writer()?.patch(at, frame).map_err(io_error)
    }
}
