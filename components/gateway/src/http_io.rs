//! The gateway's side of WASI HTTP beyond spin-sdk's buffered `Request`/`Response`: a request's
//! head, buffered and streamed answers. Reading bodies and outgoing requests (streamed, abortable,
//! bounded) come from `vid2mp3-wasi-http`, which the notifier uses too.
//!
//! Everything blocks: an instance serves one request, so there is nothing else to run meanwhile.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::types::{self as wt, OutgoingBody, OutgoingResponse};
pub use vid2mp3_wasi_http::{
    BodyLimit, BodyReader, Fetched, IoError, StreamedRequest, Target, fetch, response_header,
};
use vid2mp3_wasi_http::{fields, write_all};
use wasi::io::streams::OutputStream;

use crate::errors::ApiError;

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
            return Err((Some(out), IoError::Request(format!("bad status {status}"))));
        }
        let Ok(body) = response.body() else {
            return Err((Some(out), IoError::Request("no response body".into())));
        };
        let Ok(stream) = body.write() else {
            return Err((
                Some(out),
                IoError::Request("response body not writable".into()),
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
