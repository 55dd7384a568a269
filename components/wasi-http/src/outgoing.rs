use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    self as wt, ErrorCode, IncomingResponse, OutgoingBody, OutgoingRequest, RequestOptions,
};
use wasi::io::streams::OutputStream;

use crate::IoError;
use crate::body::{BodyReader, fields, write_all};
use crate::error::describe;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Where a request goes.
pub struct Target<'a> {
    pub method: wt::Method,
    pub https: bool,
    pub authority: &'a str,
    pub path_and_query: &'a str,
}

/// Per-phase time limits of a request. A host that cannot set one refuses it; the request still
/// goes, bounded by the host's own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect_secs: u64,
    pub first_byte_secs: u64,
    pub between_bytes_secs: u64,
}

impl Timeouts {
    fn options(&self) -> RequestOptions {
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(self.connect_secs * NANOS_PER_SEC));
        let _ = options.set_first_byte_timeout(Some(self.first_byte_secs * NANOS_PER_SEC));
        let _ = options.set_between_bytes_timeout(Some(self.between_bytes_secs * NANOS_PER_SEC));
        options
    }
}

/// A request whose body is streamed out; dropped without [`StreamedRequest::finish`], it is
/// aborted and the server sees a broken body, never a short complete one.
pub struct StreamedRequest {
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    response: Option<wt::FutureIncomingResponse>,
    /// An answer that came before the body ended (WASI hands a response out only once).
    early: Option<Result<IncomingResponse, IoError>>,
}

impl StreamedRequest {
    pub fn start(
        target: &Target,
        headers: &[(String, String)],
        timeouts: Option<&Timeouts>,
    ) -> Result<StreamedRequest, IoError> {
        let request = OutgoingRequest::new(fields(headers)?);
        let bad = |what: &str| IoError::Request(format!("bad outgoing {what}"));
        request
            .set_method(&target.method)
            .map_err(|()| bad("method"))?;
        let scheme = if target.https {
            wt::Scheme::Https
        } else {
            wt::Scheme::Http
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        request
            .set_authority(Some(target.authority))
            .map_err(|()| bad("authority"))?;
        request
            .set_path_with_query(Some(target.path_and_query))
            .map_err(|()| bad("path"))?;
        let body = request.body().map_err(|()| bad("body"))?;
        let stream = body.write().map_err(|()| bad("body stream"))?;
        let response = outgoing_handler::handle(request, timeouts.map(Timeouts::options))
            .map_err(|e| IoError::Request(format!("sending failed: {}", describe(&e))))?;
        Ok(StreamedRequest {
            stream: Some(stream),
            body: Some(body),
            response: Some(response),
            early: None,
        })
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        match &self.stream {
            Some(stream) => write_all(stream, data),
            None => Err(IoError::Request("the body is finished".into())),
        }
    }

    /// Whether the server already answered (e.g. refused the body early). The answer is kept
    /// for [`StreamedRequest::response`].
    pub fn answered_early(&mut self) -> bool {
        if self.early.is_none()
            && let Some(answer) = self.response.as_ref().and_then(|r| r.get())
        {
            self.early = Some(incoming(Some(answer)));
        }
        self.early.is_some()
    }

    /// Ends the body and waits for the answer.
    pub fn finish(mut self) -> Result<IncomingResponse, IoError> {
        if let Some(stream) = self.stream.take() {
            let _ = stream.blocking_flush();
        }
        if let Some(body) = self.body.take() {
            OutgoingBody::finish(body, None).map_err(|e| {
                IoError::Request(format!("finishing the body failed: {}", describe(&e)))
            })?;
        }
        self.response()
    }

    /// Waits for the answer without finishing the body (when the server answered early).
    pub fn response(mut self) -> Result<IncomingResponse, IoError> {
        if let Some(early) = self.early.take() {
            return early;
        }
        let future = self
            .response
            .take()
            .ok_or_else(|| IoError::Request("no response".into()))?;
        future.subscribe().block();
        incoming(future.get())
    }
}

type FutureAnswer = Option<Result<Result<IncomingResponse, ErrorCode>, ()>>;

fn incoming(answer: FutureAnswer) -> Result<IncomingResponse, IoError> {
    match answer {
        Some(Ok(Ok(resp))) => Ok(resp),
        Some(Ok(Err(e))) => Err(IoError::Request(describe(&e))),
        Some(Err(())) | None => Err(IoError::Request("the response was lost".into())),
    }
}

impl Drop for StreamedRequest {
    fn drop(&mut self) {
        // Stream before body before the response: WASI's parent/child order. The body is
        // dropped unfinished, which is what aborts the request.
        drop(self.stream.take());
        drop(self.body.take());
        drop(self.response.take());
        drop(self.early.take());
    }
}

/// A response's header, as text.
pub fn response_header(resp: &IncomingResponse, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .into_iter()
        .next()
        .and_then(|v| String::from_utf8(v).ok())
}

/// How much of an answer's body [`fetch`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// All of it, or [`IoError::TooLarge`] past this many bytes.
    Refuse(usize),
    /// At most this many bytes; the rest is not read (an answer judged by its status).
    Truncate(usize),
}

/// A buffered answer to [`fetch`].
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A small request with a buffered body and answer.
pub fn fetch(
    target: &Target,
    headers: &[(String, String)],
    body: &[u8],
    limit: BodyLimit,
    timeouts: Option<&Timeouts>,
) -> Result<Fetched, IoError> {
    let mut headers = headers.to_vec();
    if !body.is_empty() {
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let mut request = StreamedRequest::start(target, &headers, timeouts)?;
    if !body.is_empty() {
        request.write(body)?;
    }
    let response = request.finish()?;
    let status = response.status();
    let headers = response.headers().entries();
    let reader = BodyReader::of_response(&response)?;
    let body = match limit {
        BodyLimit::Refuse(limit) => reader.read_to_end(limit)?,
        BodyLimit::Truncate(limit) => reader.read_prefix(limit)?,
    };
    Ok(Fetched {
        status,
        headers,
        body,
    })
}
