//! Where the video comes from: anything readable and seekable.
//!
//! Demuxers seek (MP4 keeps its index at the end unless it was made "faststart"), so the
//! source must be `Seek`. A GridFS reader plugs in here by caching the chunk it is in.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use symphonia::core::io::MediaSource;

/// A seekable byte source that can move between threads.
pub trait ReadSeek: Read + Seek + Send + Sync {}
impl<T: Read + Seek + Send + Sync> ReadSeek for T {}

/// The video to convert.
pub struct MediaInput {
    reader: Box<dyn ReadSeek>,
    /// Set for local files so ffmpeg can open (and seek in) the file itself.
    path: Option<PathBuf>,
    len: Option<u64>,
}

impl MediaInput {
    pub fn open_file(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(MediaInput {
            reader: Box::new(file),
            path: Some(path.to_owned()),
            len: Some(len),
        })
    }

    /// A source without a file behind it (GridFS, memory). `len` is its size if known.
    pub fn from_reader(reader: impl ReadSeek + 'static, len: Option<u64>) -> Self {
        MediaInput {
            reader: Box::new(reader),
            path: None,
            len,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn len(&self) -> Option<u64> {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// Reads up to `buf.len()` bytes from the start (short only at end of input).
    pub(crate) fn read_head(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.seek(SeekFrom::Start(0))?;
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.reader.seek(SeekFrom::Start(0))?;
        Ok(filled)
    }

    pub(crate) fn reader(&mut self) -> &mut dyn ReadSeek {
        &mut *self.reader
    }

    /// A view symphonia can read from, borrowing this input.
    pub(crate) fn media_source(&mut self) -> io::Result<BorrowedSource<'_>> {
        self.reader.seek(SeekFrom::Start(0))?;
        Ok(BorrowedSource {
            inner: &mut *self.reader,
            len: self.len,
        })
    }
}

/// Lends a [`MediaInput`]'s reader to symphonia without giving it away: the input is needed again
/// if the fast path gives up and ffmpeg takes over.
pub(crate) struct BorrowedSource<'a> {
    inner: &'a mut dyn ReadSeek,
    len: Option<u64>,
}

impl Read for BorrowedSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for BorrowedSource<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl MediaSource for BorrowedSource<'_> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.len
    }
}
