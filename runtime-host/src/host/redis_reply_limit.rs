//! The bytes between redis-rs and a Redis server, with every reply held to the result limit.
//!
//! redis-rs reads a whole reply into memory before it parses it, so a `GET` of a 1 GiB value or
//! an `SMEMBERS` of a huge set would be buffered in full before the host could refuse it (Spin
//! checks its limit only after that). [`ReplyLimit`] sits under redis-rs's connection and frames
//! the server's replies as they arrive: a reply is handed to redis-rs once it is complete and
//! within the limit; a larger one is dropped as it streams in (never held past the limit) and
//! redis-rs gets an error reply with [`LIMIT_ERROR_CODE`] in its place. Replies and requests
//! stay in step, so the connection, shared by every instance, goes on working.
//!
//! The framing reads only the type bytes and length lines of RESP2 and RESP3, never the payload.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The error code of the stand-in reply, recognised by the Redis host interface.
pub const LIMIT_ERROR_CODE: &str = "RESULTLIMIT";

/// Deeper nesting than any Redis reply has; a server that sends more is broken or hostile.
const MAX_DEPTH: usize = 1024;

/// A length line is a type byte, at most 20 digits with a sign, and CR LF.
const MAX_HEADER_LINE: usize = 32;

const READ_CHUNK: usize = 64 * 1024;

pub struct ReplyLimit<S> {
    inner: S,
    max_bytes: usize,
    framer: Framer,
    /// The reply being received, while it is within the limit.
    current: Vec<u8>,
    /// The reply being received went over the limit; its bytes are dropped as they come.
    oversized: bool,
    /// Complete replies (or stand-ins) that redis-rs has not read yet, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    chunk: Box<[u8]>,
}

impl<S> ReplyLimit<S> {
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self {
            inner,
            max_bytes,
            framer: Framer::default(),
            current: Vec::new(),
            oversized: false,
            ready: Vec::new(),
            ready_at: 0,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.oversized {
            return;
        }
        if self.current.len() + bytes.len() > self.max_bytes {
            self.oversized = true;
            self.current = Vec::new();
        } else {
            self.current.extend_from_slice(bytes);
        }
    }

    fn finish_reply(&mut self) {
        if self.oversized {
            self.oversized = false;
            self.ready.extend_from_slice(
                format!(
                    "-{LIMIT_ERROR_CODE} query result exceeds limit of {} bytes\r\n",
                    self.max_bytes
                )
                .as_bytes(),
            );
        } else if self.ready.is_empty() {
            std::mem::swap(&mut self.ready, &mut self.current);
        } else {
            self.ready.append(&mut self.current);
        }
    }

    /// Frames `n` bytes just read into `chunk`.
    fn received(&mut self, n: usize) -> io::Result<()> {
        let chunk = std::mem::take(&mut self.chunk);
        let mut rest = &chunk[..n];
        let result = loop {
            if rest.is_empty() {
                break Ok(());
            }
            match self.framer.feed(rest) {
                Ok(Some(end)) => {
                    self.take(&rest[..end]);
                    self.finish_reply();
                    rest = &rest[end..];
                }
                Ok(None) => {
                    self.take(rest);
                    break Ok(());
                }
                Err(e) => break Err(e),
            }
        };
        self.chunk = chunk;
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReplyLimit<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                    // A big reply's buffer is not kept for the small ones after it.
                    if this.ready.capacity() > READ_CHUNK {
                        this.ready = Vec::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                // End of stream: a partial reply is of no use to anyone.
                return Poll::Ready(Ok(()));
            }
            this.received(n)?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReplyLimit<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[derive(Debug, Default)]
enum Expect {
    /// The type byte of the next value.
    #[default]
    Type,
    /// The rest of a one-line value (`+`, `-`, `:`, `_`, `#`, `,`, `(`), up to its LF.
    Line,
    /// A length line of type `kind`, collected in `Framer::header`.
    Header { kind: u8 },
    /// The rest of a bulk payload and its CR LF.
    Bulk(u64),
}

/// Finds where each top-level RESP value ends.
#[derive(Debug, Default)]
struct Framer {
    expect: Expect,
    header: Vec<u8>,
    /// Elements still to come in each open aggregate, innermost last.
    open: Vec<u64>,
}

fn protocol_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("redis reply: {what}"))
}

impl Framer {
    /// Consumes `data`; `Some(end)` when a top-level value ends just before `data[end]`.
    fn feed(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        let mut at = 0;
        while at < data.len() {
            let value_ended = match self.expect {
                Expect::Type => {
                    let kind = data[at];
                    at += 1;
                    self.expect = match kind {
                        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Expect::Line,
                        b'$' | b'!' | b'=' | b'*' | b'~' | b'>' | b'%' | b'|' => {
                            self.header.clear();
                            Expect::Header { kind }
                        }
                        other => {
                            return Err(protocol_error(format!("unknown type byte {other:#04x}")));
                        }
                    };
                    false
                }
                Expect::Line => match data[at..].iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        at += lf + 1;
                        self.expect = Expect::Type;
                        true
                    }
                    None => {
                        at = data.len();
                        false
                    }
                },
                Expect::Header { kind } => {
                    let (line, ended) = match data[at..].iter().position(|&b| b == b'\n') {
                        Some(lf) => (&data[at..at + lf], true),
                        None => (&data[at..], false),
                    };
                    if self.header.len() + line.len() > MAX_HEADER_LINE {
                        return Err(protocol_error("length line too long".into()));
                    }
                    self.header.extend_from_slice(line);
                    at += line.len() + usize::from(ended);
                    if ended {
                        self.header_done(kind)?
                    } else {
                        false
                    }
                }
                Expect::Bulk(left) => {
                    let n = left.min((data.len() - at) as u64);
                    at += n as usize;
                    if n == left {
                        self.expect = Expect::Type;
                        true
                    } else {
                        self.expect = Expect::Bulk(left - n);
                        false
                    }
                }
            };
            if value_ended && self.close_value() {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Acts on a complete length line; true if it was a whole value (nil, empty aggregate).
    fn header_done(&mut self, kind: u8) -> io::Result<bool> {
        let text = std::str::from_utf8(&self.header)
            .ok()
            .map(|s| s.trim_end_matches('\r'))
            .ok_or_else(|| protocol_error("length line is not text".into()))?;
        let n: i64 = text
            .parse()
            .map_err(|_| protocol_error(format!("bad length {text:?}")))?;
        self.expect = Expect::Type;
        match kind {
            b'$' | b'!' | b'=' => match u64::try_from(n) {
                Ok(len) => {
                    self.expect = Expect::Bulk(len + 2);
                    Ok(false)
                }
                Err(_) if n == -1 => Ok(true),
                Err(_) => Err(protocol_error(format!("bad length {n}"))),
            },
            _ => {
                let elements = match (kind, u64::try_from(n)) {
                    // An attribute is followed by the value it describes.
                    (b'|', Ok(pairs)) => 2 * pairs + 1,
                    (b'%', Ok(pairs)) => 2 * pairs,
                    (_, Ok(count)) => count,
                    (_, Err(_)) if n == -1 => 0,
                    _ => return Err(protocol_error(format!("bad length {n}"))),
                };
                if elements == 0 {
                    return Ok(true);
                }
                if self.open.len() == MAX_DEPTH {
                    return Err(protocol_error("nested too deeply".into()));
                }
                self.open.push(elements);
                Ok(false)
            }
        }
    }

    /// Counts a finished value against the aggregates it is in; true if the top level ended.
    fn close_value(&mut self) -> bool {
        while let Some(left) = self.open.last_mut() {
            *left -= 1;
            if *left > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Where each top-level value ends when `wire` arrives in pieces of `step` bytes.
    fn ends(wire: &[u8], step: usize) -> Vec<usize> {
        let mut framer = Framer::default();
        let mut out = Vec::new();
        let mut offset = 0;
        for piece in wire.chunks(step) {
            let mut rest = piece;
            let mut base = offset;
            while let Some(end) = framer.feed(rest).expect("valid RESP") {
                out.push(base + end);
                base += end;
                rest = &rest[end..];
            }
            offset += piece.len();
        }
        out
    }

    #[test]
    fn frames_every_reply_kind_in_any_split() {
        let replies: [&[u8]; 14] = [
            b"+OK\r\n",
            b"-ERR no\r\n",
            b":42\r\n",
            b"$5\r\nhello\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*3\r\n:1\r\n$2\r\nab\r\n*2\r\n+x\r\n$-1\r\n",
            b"%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
            b"~2\r\n_\r\n#t\r\n",
            b",1.5\r\n",
            b"=8\r\ntxt:some\r\n",
        ];
        let wire: Vec<u8> = replies.concat();
        let mut expected = Vec::new();
        let mut end = 0;
        for r in replies {
            end += r.len();
            expected.push(end);
        }
        for step in [1, 2, 3, 7, 64, wire.len()] {
            assert_eq!(ends(&wire, step), expected, "pieces of {step}");
        }
    }

    #[test]
    fn bad_replies_are_errors_not_guesses() {
        for wire in [
            &b"?x\r\n"[..],
            b"$-2\r\n",
            b"*abc\r\n",
            b"$999999999999999999999999999999\r\n",
        ] {
            assert!(
                Framer::default().feed(wire).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(Framer::default().feed(&deep).is_err());
    }

    async fn through(wire: Vec<u8>, max: usize, step: usize) -> Vec<u8> {
        let (mut server, client) = tokio::io::duplex(step);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in wire.chunks(step) {
                server.write_all(piece).await.expect("write");
            }
        });
        let mut limited = ReplyLimit::new(client, max);
        let mut out = Vec::new();
        limited.read_to_end(&mut out).await.expect("read");
        writer.await.expect("writer");
        out
    }

    #[tokio::test]
    async fn replies_over_the_limit_become_errors_and_the_rest_pass() {
        let big = format!("$100\r\n{}\r\n", "x".repeat(100));
        let wire = format!(":1\r\n{big}*2\r\n{big}:2\r\n+OK\r\n");
        let stand_in = format!("-{LIMIT_ERROR_CODE} query result exceeds limit of 64 bytes\r\n");
        for step in [1, 5, 64, 4096] {
            let out = through(wire.clone().into_bytes(), 64, step).await;
            assert_eq!(
                String::from_utf8(out).expect("text"),
                format!(":1\r\n{stand_in}{stand_in}+OK\r\n"),
                "pieces of {step}"
            );
        }
        // At the limit exactly, a reply passes.
        let exact = format!("$57\r\n{}\r\n", "y".repeat(57));
        assert_eq!(exact.len(), 64);
        let out = through(exact.clone().into_bytes(), 64, 7).await;
        assert_eq!(out, exact.into_bytes());
    }

    #[tokio::test]
    async fn an_oversized_reply_is_never_held() {
        // 8 MiB through a 1 KiB limit: what the stream holds stays near its read chunk.
        let payload = 8 << 20;
        let mut wire = format!("${payload}\r\n").into_bytes();
        wire.resize(wire.len() + payload, b'z');
        wire.extend_from_slice(b"\r\n:7\r\n");
        let (mut server, client) = tokio::io::duplex(READ_CHUNK);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = server.write_all(&wire).await;
        });
        let mut limited = ReplyLimit::new(client, 1024);
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = limited.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            assert!(
                limited.current.capacity() <= 2048 && limited.ready.capacity() <= READ_CHUNK * 2
            );
        }
        assert_eq!(
            String::from_utf8(out).expect("text"),
            format!("-{LIMIT_ERROR_CODE} query result exceeds limit of 1024 bytes\r\n:7\r\n")
        );
    }
}
