//! Where the mp3 goes, as it is produced.
//!
//! The Xing/LAME tag frame leads the audio (right after the ID3 tag) but its counts are only
//! known at the end, so a sink receives a placeholder of the final size first and the real frame
//! last ([`Mp3Sink::finish`]). A file patches it in place; a GridFS writer keeps its first chunk
//! back until then (which also keeps a half-written mp3 from ever being visible), and the ID3
//! tag is bounded so that the Xing frame still lies in that chunk.

use std::fs::File;
use std::io::{self, Cursor, Seek, SeekFrom, Write};

/// A destination for an mp3 stream.
pub trait Mp3Sink: Send {
    /// Appends encoded bytes.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Throws away everything written so far: another decoder is about to start over.
    fn restart(&mut self) -> io::Result<()>;

    /// Replaces `frame.len()` bytes at offset `at` with `frame` and completes the file.
    fn finish(&mut self, at: u64, frame: &[u8]) -> io::Result<()>;
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

    fn finish(&mut self, at: u64, frame: &[u8]) -> io::Result<()> {
        let end = self.stream_position()?;
        self.seek(SeekFrom::Start(at))?;
        Write::write_all(self, frame)?;
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

    fn finish(&mut self, at: u64, frame: &[u8]) -> io::Result<()> {
        let buf = self.get_mut();
        let place = usize::try_from(at)
            .ok()
            .and_then(|at| buf.get_mut(at..at.checked_add(frame.len())?));
        let Some(place) = place else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the tag frame lies beyond the stream",
            ));
        };
        place.copy_from_slice(frame);
        Ok(())
    }
}
