//! Where the video comes from: anything readable and seekable.
//!
//! Demuxers seek (MP4 keeps its index at the end unless it was made "faststart"), so the
//! source must be `Seek`. A GridFS reader plugs in here by caching the chunk it is in.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
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
    /// The temporary copy `path` names when the source had no file (removed on drop).
    spool: Option<tempfile::NamedTempFile>,
}

impl MediaInput {
    pub fn open_file(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(MediaInput {
            reader: Box::new(file),
            path: Some(path.to_owned()),
            len: Some(len),
            spool: None,
        })
    }

    /// A source without a file behind it (GridFS, memory). `len` is its size if known.
    pub fn from_reader(reader: impl ReadSeek + 'static, len: Option<u64>) -> Self {
        MediaInput {
            reader: Box::new(reader),
            path: None,
            len,
            spool: None,
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

    /// A path ffmpeg can open and seek in. A source without a file behind it (GridFS) is copied
    /// to a temporary file once, which from then on is also what the decoders read.
    pub fn ensure_file(&mut self) -> io::Result<&Path> {
        if self.path.is_none() {
            let mut spool = tempfile::NamedTempFile::new()?;
            self.reader.seek(SeekFrom::Start(0))?;
            let copied = io::copy(&mut self.reader, spool.as_file_mut())?;
            spool.as_file_mut().flush()?;
            let file = spool.reopen()?;
            self.reader = Box::new(file);
            self.len = Some(copied);
            self.path = Some(spool.path().to_owned());
            self.spool = Some(spool);
        }
        self.path
            .as_deref()
            .ok_or_else(|| io::Error::other("no path after spooling"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_is_spooled_once_and_then_read_from_the_file() {
        let mut input = MediaInput::from_reader(io::Cursor::new(b"RIFF....WAVE".to_vec()), None);
        assert!(input.path().is_none());
        let path = input.ensure_file().unwrap().to_owned();
        assert_eq!(std::fs::read(&path).unwrap(), b"RIFF....WAVE");
        assert_eq!(input.len(), Some(12));
        assert_eq!(input.ensure_file().unwrap(), path, "no second copy");
        let mut head = [0u8; 4];
        assert_eq!(input.read_head(&mut head).unwrap(), 4);
        assert_eq!(&head, b"RIFF");
        drop(input);
        assert!(!path.exists(), "the copy goes with the input");
    }
}
