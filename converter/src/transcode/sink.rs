//! Where the mp3 goes, as it is produced.
//!
//! The Xing/LAME tag frame leads the file but its counts are only known at the end, so a sink
//! receives a placeholder of the final size first and the real frame last ([`Mp3Sink::finish`]).
//! A file patches it in place; a GridFS writer keeps its first chunk back until then (which also
//! keeps a half-written mp3 from ever being visible).

use std::fs::File;
use std::io::{self, Cursor, Seek, SeekFrom, Write};

/// A destination for an mp3 stream.
pub trait Mp3Sink: Send {
    /// Appends encoded bytes.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Throws away everything written so far: another decoder is about to start over.
    fn restart(&mut self) -> io::Result<()>;

    /// Replaces the first `header.len()` bytes with `header` and completes the file.
    fn finish(&mut self, header: &[u8]) -> io::Result<()>;
}

impl Mp3Sink for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn restart(&mut self) -> io::Result<()> {
        self.set_len(0)?;
        self.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    fn finish(&mut self, header: &[u8]) -> io::Result<()> {
        let end = self.stream_position()?;
        self.seek(SeekFrom::Start(0))?;
        Write::write_all(self, header)?;
        self.seek(SeekFrom::Start(end))?;
        self.flush()?;
        self.sync_data()
    }
}

/// An in-memory mp3, for tests and small clips.
impl Mp3Sink for Cursor<Vec<u8>> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn restart(&mut self) -> io::Result<()> {
        self.get_mut().clear();
        self.set_position(0);
        Ok(())
    }

    fn finish(&mut self, header: &[u8]) -> io::Result<()> {
        let buf = self.get_mut();
        let Some(head) = buf.get_mut(..header.len()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the tag frame is longer than the stream",
            ));
        };
        head.copy_from_slice(header);
        Ok(())
    }
}
