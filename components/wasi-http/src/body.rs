use spin_sdk::http::IncomingRequest;
use spin_sdk::wit::wasi::http0_2_0::types::{Fields, IncomingBody, IncomingResponse};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::IoError;

/// What chunked reads ask for at once.
const READ_CHUNK: u64 = 64 * 1024;

/// A body read chunk by chunk. The stream is declared first so it is dropped before its body,
/// as WASI requires of a child resource.
pub struct BodyReader {
    stream: InputStream,
    _body: IncomingBody,
}

impl BodyReader {
    pub fn of_request(req: IncomingRequest) -> Result<BodyReader, IoError> {
        let body = req
            .consume()
            .map_err(|()| IoError::Request("the request body was already taken".into()))?;
        Self::of_body(body)
    }

    pub fn of_response(resp: &IncomingResponse) -> Result<BodyReader, IoError> {
        let body = resp
            .consume()
            .map_err(|()| IoError::Request("the response body was already taken".into()))?;
        Self::of_body(body)
    }

    fn of_body(body: IncomingBody) -> Result<BodyReader, IoError> {
        let stream = body
            .stream()
            .map_err(|()| IoError::Request("the body has no stream".into()))?;
        Ok(BodyReader {
            stream,
            _body: body,
        })
    }

    /// The next chunk; `None` at the end of the body.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, IoError> {
        loop {
            match self.stream.blocking_read(READ_CHUNK) {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => return Ok(Some(chunk)),
                Err(StreamError::Closed) => return Ok(None),
                Err(StreamError::LastOperationFailed(_)) => return Err(IoError::Aborted),
            }
        }
    }

    /// The whole body, refusing more than `limit` bytes ([`IoError::TooLarge`]).
    pub fn read_to_end(mut self, limit: usize) -> Result<Vec<u8>, IoError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            if all.len() + chunk.len() > limit {
                return Err(IoError::TooLarge { limit });
            }
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }

    /// The first `limit` bytes of the body; the rest is not read.
    pub fn read_prefix(mut self, limit: usize) -> Result<Vec<u8>, IoError> {
        let mut all = Vec::new();
        while all.len() < limit {
            let Some(chunk) = self.next_chunk()? else {
                break;
            };
            all.extend_from_slice(&chunk);
        }
        all.truncate(limit);
        Ok(all)
    }
}

/// Writes all of `data`, waiting whenever the host has no room.
pub fn write_all(stream: &OutputStream, mut data: &[u8]) -> Result<(), IoError> {
    while !data.is_empty() {
        let room = stream
            .check_write()
            .map_err(|e| IoError::Request(format!("write: {e:?}")))?;
        if room == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
        stream
            .write(&data[..n])
            .map_err(|e| IoError::Request(format!("write: {e:?}")))?;
        data = &data[n..];
    }
    Ok(())
}

/// Header fields from name/value pairs. An error names the problem, never a value (some are keys).
pub fn fields(headers: &[(String, String)]) -> Result<Fields, IoError> {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect();
    Fields::from_list(&list).map_err(|e| IoError::Request(format!("bad header: {e:?}")))
}
