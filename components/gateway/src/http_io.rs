//! The WASI HTTP plumbing the gateway needs beyond spin-sdk's buffered `Request`/`Response`:
//! reading a request body chunk by chunk, streaming a response, and a streamed outgoing request
//! that can be **aborted** (spin-sdk's body sink always finishes the body when dropped, which would
//! turn a client's aborted upload into a short but "complete" one at the storage API).
//!
//! Everything blocks: an instance serves one request, so there is nothing else to run meanwhile.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{
    self as wt, Fields, IncomingBody, IncomingResponse, OutgoingBody, OutgoingRequest,
    OutgoingResponse,
};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use crate::errors::ApiError;

/// What chunked reads ask for at once.
const READ_CHUNK: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("the connection ended before the body did")]
    Aborted,
    #[error("{0}")]
    Wasi(String),
}

/// A request's method, path, query and headers (the body is read separately).
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    pub fn from_request(req: &IncomingRequest) -> RequestHead {
        let method = match req.method() {
            wt::Method::Get => "GET".to_owned(),
            wt::Method::Head => "HEAD".to_owned(),
            wt::Method::Post => "POST".to_owned(),
            wt::Method::Put => "PUT".to_owned(),
            wt::Method::Delete => "DELETE".to_owned(),
            wt::Method::Patch => "PATCH".to_owned(),
            wt::Method::Options => "OPTIONS".to_owned(),
            wt::Method::Connect => "CONNECT".to_owned(),
            wt::Method::Trace => "TRACE".to_owned(),
            wt::Method::Other(other) => other,
        };
        let path_with_query = req.path_with_query().unwrap_or_else(|| "/".to_owned());
        let (path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (path_with_query, String::new()),
        };
        RequestHead {
            method,
            path,
            query,
            headers: req.headers().entries(),
        }
    }

    /// A header's value as text (the first one when repeated); `None` when absent or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every value of a header, in the order received (repeated headers form one list).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .collect()
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        url_query_param(&self.query, name)
    }
}

pub fn url_query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

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
            .map_err(|()| IoError::Wasi("the request body was already taken".into()))?;
        let stream = body
            .stream()
            .map_err(|()| IoError::Wasi("the request body has no stream".into()))?;
        Ok(BodyReader {
            stream,
            _body: body,
        })
    }

    pub fn of_response(resp: &IncomingResponse) -> Result<BodyReader, IoError> {
        let body = resp
            .consume()
            .map_err(|()| IoError::Wasi("the response body was already taken".into()))?;
        let stream = body
            .stream()
            .map_err(|()| IoError::Wasi("the response body has no stream".into()))?;
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

    /// The whole body, refusing more than `limit` bytes.
    pub fn read_to_end(mut self, limit: usize) -> Result<Result<Vec<u8>, ()>, IoError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            if all.len() + chunk.len() > limit {
                return Ok(Err(()));
            }
            all.extend_from_slice(&chunk);
        }
        Ok(Ok(all))
    }
}

fn write_all(stream: &OutputStream, mut data: &[u8]) -> Result<(), IoError> {
    while !data.is_empty() {
        let room = stream
            .check_write()
            .map_err(|e| IoError::Wasi(format!("write: {e:?}")))?;
        if room == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
        stream
            .write(&data[..n])
            .map_err(|e| IoError::Wasi(format!("write: {e:?}")))?;
        data = &data[n..];
    }
    Ok(())
}

fn fields(headers: &[(String, String)]) -> Result<Fields, IoError> {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect();
    Fields::from_list(&list).map_err(|e| IoError::Wasi(format!("bad header: {e:?}")))
}

/// A buffered answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"could not write the answer"}}"#.to_vec()
        });
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn error(e: &ApiError) -> Reply {
        let mut reply = Reply::json(
            e.status(),
            &vid2mp3_contracts::ErrorBody::new(e.code, e.message.clone()),
        );
        reply.headers.extend(e.headers.iter().cloned());
        reply
    }
}

/// Sends a buffered answer.
pub fn send_reply(out: ResponseOutparam, reply: Reply) {
    let mut headers = reply.headers;
    headers.push(("content-length".into(), reply.body.len().to_string()));
    match ResponseStream::start(out, reply.status, &headers) {
        Ok(mut stream) => {
            let written = if reply.body.is_empty() {
                Ok(())
            } else {
                stream.write(&reply.body)
            };
            match written {
                Ok(()) => stream.finish(),
                Err(e) => eprintln!("gateway: the client went away mid-answer: {e}"),
            }
        }
        Err((out, e)) => {
            eprintln!("gateway: could not start the answer: {e}");
            if let Some(out) = out {
                wt::ResponseOutparam::set(
                    out.into_inner(),
                    Err(wt::ErrorCode::InternalError(None)),
                );
            }
        }
    }
}

/// An answer whose body is written as it comes.
pub struct ResponseStream {
    stream: OutputStream,
    body: Option<OutgoingBody>,
}

impl ResponseStream {
    /// Sends status and headers. On failure the outparam is handed back when it is still unset.
    pub fn start(
        out: ResponseOutparam,
        status: u16,
        headers: &[(String, String)],
    ) -> Result<ResponseStream, (Option<ResponseOutparam>, IoError)> {
        let fields = fields(headers).map_err(|e| (None, e))?;
        let response = OutgoingResponse::new(fields);
        if response.set_status_code(status).is_err() {
            return Err((Some(out), IoError::Wasi(format!("bad status {status}"))));
        }
        let Ok(body) = response.body() else {
            return Err((Some(out), IoError::Wasi("no response body".into())));
        };
        let Ok(stream) = body.write() else {
            return Err((
                Some(out),
                IoError::Wasi("response body not writable".into()),
            ));
        };
        out.set(response);
        Ok(ResponseStream {
            stream,
            body: Some(body),
        })
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), IoError> {
        write_all(&self.stream, data)
    }

    pub fn finish(mut self) {
        let _ = self.stream.blocking_flush();
        let body = self.body.take();
        drop(self);
        if let Some(body) = body
            && let Err(e) = OutgoingBody::finish(body, None)
        {
            eprintln!("gateway: the answer did not finish: {e:?}");
        }
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

pub struct Target<'a> {
    pub method: wt::Method,
    pub https: bool,
    pub authority: &'a str,
    pub path_and_query: &'a str,
}

impl StreamedRequest {
    pub fn start(
        target: &Target,
        headers: &[(String, String)],
    ) -> Result<StreamedRequest, IoError> {
        let request = OutgoingRequest::new(fields(headers)?);
        let bad = |what: &str| IoError::Wasi(format!("bad outgoing {what}"));
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
        let response = outgoing_handler::handle(request, None)
            .map_err(|e| IoError::Wasi(format!("sending failed: {e:?}")))?;
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
            None => Err(IoError::Wasi("the body is finished".into())),
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
            OutgoingBody::finish(body, None)
                .map_err(|e| IoError::Wasi(format!("finishing the body failed: {e:?}")))?;
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
            .ok_or_else(|| IoError::Wasi("no response".into()))?;
        future.subscribe().block();
        incoming(future.get())
    }
}

type FutureAnswer = Option<Result<Result<IncomingResponse, wt::ErrorCode>, ()>>;

fn incoming(answer: FutureAnswer) -> Result<IncomingResponse, IoError> {
    match answer {
        Some(Ok(Ok(resp))) => Ok(resp),
        Some(Ok(Err(e))) => Err(IoError::Wasi(format!("{e:?}"))),
        Some(Err(())) | None => Err(IoError::Wasi("the response was lost".into())),
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

/// A small request with a buffered body and answer (at most `limit` bytes of it).
pub fn fetch(
    target: &Target,
    headers: &[(String, String)],
    body: &[u8],
    limit: usize,
) -> Result<Fetched, IoError> {
    let mut headers = headers.to_vec();
    if !body.is_empty() {
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let mut request = StreamedRequest::start(target, &headers)?;
    if !body.is_empty() {
        request.write(body)?;
    }
    let response = request.finish()?;
    let status = response.status();
    let headers = response.headers().entries();
    let body = BodyReader::of_response(&response)?
        .read_to_end(limit)?
        .map_err(|()| IoError::Wasi(format!("the answer is larger than {limit} bytes")))?;
    Ok(Fetched {
        status,
        headers,
        body,
    })
}
