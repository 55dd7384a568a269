//! wasi:http of `0.2.0-rc-2023-10-18`, adapted call by call to wasmtime-wasi-http's WASI 0.2
//! implementation (and so to runtime-host's hooks: allowed hosts, chaining, pooled clients).
//!
//! What this snapshot shaped differently: `fields` are built from a list and their setters
//! cannot fail (a refused header traps); requests and responses are built in one call with a
//! borrowed header set, which is copied; request options are a record of milliseconds; every
//! failure is one `error` variant of four strings. Errors keep Spin's mapping: a WASI 0.2
//! error code reaches the component as `unexpected-error` with the code's text, and a
//! component's error becomes `internal-error` with the text.

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi_http::WasiHttpCtxView;

use super::http_types::{outgoing_handler, types as r};
use super::latest::http::types as l;

use l::{
    Fields, FutureIncomingResponse, FutureTrailers, IncomingBody, IncomingRequest,
    IncomingResponse, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
};

macro_rules! method_and_scheme {
    ($from:ident => $to:ident) => {
        impl From<$from::Method> for $to::Method {
            fn from(m: $from::Method) -> Self {
                match m {
                    $from::Method::Get => $to::Method::Get,
                    $from::Method::Head => $to::Method::Head,
                    $from::Method::Post => $to::Method::Post,
                    $from::Method::Put => $to::Method::Put,
                    $from::Method::Delete => $to::Method::Delete,
                    $from::Method::Connect => $to::Method::Connect,
                    $from::Method::Options => $to::Method::Options,
                    $from::Method::Trace => $to::Method::Trace,
                    $from::Method::Patch => $to::Method::Patch,
                    $from::Method::Other(s) => $to::Method::Other(s),
                }
            }
        }

        impl From<$from::Scheme> for $to::Scheme {
            fn from(s: $from::Scheme) -> Self {
                match s {
                    $from::Scheme::Http => $to::Scheme::Http,
                    $from::Scheme::Https => $to::Scheme::Https,
                    $from::Scheme::Other(s) => $to::Scheme::Other(s),
                }
            }
        }
    };
}

method_and_scheme!(l => r);
method_and_scheme!(r => l);

impl From<l::ErrorCode> for r::Error {
    fn from(e: l::ErrorCode) -> Self {
        Self::UnexpectedError(format!("{e:?}"))
    }
}

impl From<r::Error> for l::ErrorCode {
    fn from(e: r::Error) -> Self {
        let text = match e {
            r::Error::InvalidUrl(s) => format!("invalid url: {s}"),
            r::Error::TimeoutError(s) => format!("timeout: {s}"),
            r::Error::ProtocolError(s) => format!("protocol error: {s}"),
            r::Error::UnexpectedError(s) => format!("unexpected error: {s}"),
        };
        Self::InternalError(Some(text))
    }
}

/// A WASI 0.2 call that returns `result<_, ()>` failed on a value this snapshot let through.
fn refused<T>(what: &str) -> wasmtime::Result<T> {
    wasmtime::bail!("invalid {what} supplied")
}

impl r::Host for WasiHttpCtxView<'_> {}

impl r::HostFields for WasiHttpCtxView<'_> {
    fn new(&mut self, entries: Vec<(String, Vec<u8>)>) -> wasmtime::Result<Resource<Fields>> {
        match l::HostFields::from_list(self, entries) {
            Ok(fields) => Ok(fields),
            Err(e) => wasmtime::bail!("invalid headers: {:?}", e.downcast()?),
        }
    }

    fn get(&mut self, self_: Resource<Fields>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        l::HostFields::get(self, self_, name)
    }

    fn set(
        &mut self,
        self_: Resource<Fields>,
        name: String,
        value: Vec<Vec<u8>>,
    ) -> wasmtime::Result<()> {
        l::HostFields::set(self, self_, name, value).map_err(|e| header_trap(e, "set"))
    }

    fn delete(&mut self, self_: Resource<Fields>, name: String) -> wasmtime::Result<()> {
        l::HostFields::delete(self, self_, name).map_err(|e| header_trap(e, "delete"))
    }

    fn append(
        &mut self,
        self_: Resource<Fields>,
        name: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<()> {
        l::HostFields::append(self, self_, name, value).map_err(|e| header_trap(e, "append"))
    }

    fn entries(&mut self, self_: Resource<Fields>) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        l::HostFields::entries(self, self_)
    }

    fn clone(&mut self, self_: Resource<Fields>) -> wasmtime::Result<Resource<Fields>> {
        l::HostFields::clone(self, self_)
    }

    fn drop(&mut self, rep: Resource<Fields>) -> wasmtime::Result<()> {
        l::HostFields::drop(self, rep)
    }
}

/// This snapshot's header setters cannot fail, so a refusal (an invalid or forbidden header,
/// immutable fields) traps, as on Spin.
fn header_trap(e: wasmtime_wasi_http::p2::HeaderError, call: &str) -> wasmtime::Error {
    match e.downcast() {
        Ok(code) => wasmtime::format_err!("fields.{call}: {code:?}"),
        Err(trap) => trap,
    }
}

impl r::HostIncomingRequest for WasiHttpCtxView<'_> {
    fn method(&mut self, self_: Resource<IncomingRequest>) -> wasmtime::Result<r::Method> {
        Ok(l::HostIncomingRequest::method(self, self_)?.into())
    }

    fn path_with_query(
        &mut self,
        self_: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        l::HostIncomingRequest::path_with_query(self, self_)
    }

    fn scheme(&mut self, self_: Resource<IncomingRequest>) -> wasmtime::Result<Option<r::Scheme>> {
        Ok(l::HostIncomingRequest::scheme(self, self_)?.map(Into::into))
    }

    fn authority(&mut self, self_: Resource<IncomingRequest>) -> wasmtime::Result<Option<String>> {
        l::HostIncomingRequest::authority(self, self_)
    }

    fn headers(&mut self, self_: Resource<IncomingRequest>) -> wasmtime::Result<Resource<Fields>> {
        l::HostIncomingRequest::headers(self, self_)
    }

    fn consume(
        &mut self,
        self_: Resource<IncomingRequest>,
    ) -> wasmtime::Result<Result<Resource<IncomingBody>, ()>> {
        l::HostIncomingRequest::consume(self, self_)
    }

    fn drop(&mut self, rep: Resource<IncomingRequest>) -> wasmtime::Result<()> {
        l::HostIncomingRequest::drop(self, rep)
    }
}

impl r::HostOutgoingRequest for WasiHttpCtxView<'_> {
    fn new(
        &mut self,
        method: r::Method,
        path_with_query: Option<String>,
        scheme: Option<r::Scheme>,
        authority: Option<String>,
        headers: Resource<Fields>,
    ) -> wasmtime::Result<Resource<OutgoingRequest>> {
        // This snapshot allowed no authority, which meant the scheme's default port on an empty
        // host; WASI 0.2 requires one. The empty host is what a relative URL looks like, so
        // such a request goes to the app itself, as on Spin.
        let authority = authority.unwrap_or_else(|| match scheme {
            Some(r::Scheme::Https) | None => ":443".to_owned(),
            Some(r::Scheme::Http | r::Scheme::Other(_)) => ":80".to_owned(),
        });
        let headers = l::HostFields::clone(self, headers)?;
        let request = l::HostOutgoingRequest::new(self, headers)?;
        let this = || Resource::<OutgoingRequest>::new_borrow(request.rep());
        let set = [
            (
                "method",
                l::HostOutgoingRequest::set_method(self, this(), method.into())?,
            ),
            (
                "path-with-query",
                l::HostOutgoingRequest::set_path_with_query(self, this(), path_with_query)?,
            ),
            (
                "scheme",
                l::HostOutgoingRequest::set_scheme(self, this(), scheme.map(Into::into))?,
            ),
            (
                "authority",
                l::HostOutgoingRequest::set_authority(self, this(), Some(authority))?,
            ),
        ];
        if let Some((what, _)) = set.iter().find(|(_, r)| r.is_err()) {
            l::HostOutgoingRequest::drop(self, request)?;
            return refused(what);
        }
        Ok(request)
    }

    fn write(
        &mut self,
        self_: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Result<Resource<OutgoingBody>, ()>> {
        l::HostOutgoingRequest::body(self, self_)
    }

    fn drop(&mut self, rep: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        l::HostOutgoingRequest::drop(self, rep)
    }
}

impl r::HostResponseOutparam for WasiHttpCtxView<'_> {
    fn set(
        &mut self,
        param: Resource<ResponseOutparam>,
        response: Result<Resource<OutgoingResponse>, r::Error>,
    ) -> wasmtime::Result<()> {
        l::HostResponseOutparam::set(self, param, response.map_err(Into::into))
    }

    fn drop(&mut self, rep: Resource<ResponseOutparam>) -> wasmtime::Result<()> {
        l::HostResponseOutparam::drop(self, rep)
    }
}

impl r::HostIncomingResponse for WasiHttpCtxView<'_> {
    fn status(&mut self, self_: Resource<IncomingResponse>) -> wasmtime::Result<u16> {
        l::HostIncomingResponse::status(self, self_)
    }

    fn headers(&mut self, self_: Resource<IncomingResponse>) -> wasmtime::Result<Resource<Fields>> {
        l::HostIncomingResponse::headers(self, self_)
    }

    fn consume(
        &mut self,
        self_: Resource<IncomingResponse>,
    ) -> wasmtime::Result<Result<Resource<IncomingBody>, ()>> {
        l::HostIncomingResponse::consume(self, self_)
    }

    fn drop(&mut self, rep: Resource<IncomingResponse>) -> wasmtime::Result<()> {
        l::HostIncomingResponse::drop(self, rep)
    }
}

impl r::HostIncomingBody for WasiHttpCtxView<'_> {
    fn stream(
        &mut self,
        self_: Resource<IncomingBody>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, ()>> {
        l::HostIncomingBody::stream(self, self_)
    }

    fn finish(
        &mut self,
        this: Resource<IncomingBody>,
    ) -> wasmtime::Result<Resource<FutureTrailers>> {
        l::HostIncomingBody::finish(self, this)
    }

    fn drop(&mut self, rep: Resource<IncomingBody>) -> wasmtime::Result<()> {
        l::HostIncomingBody::drop(self, rep)
    }
}

impl r::HostFutureTrailers for WasiHttpCtxView<'_> {
    fn subscribe(
        &mut self,
        self_: Resource<FutureTrailers>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        l::HostFutureTrailers::subscribe(self, self_)
    }

    fn get(
        &mut self,
        self_: Resource<FutureTrailers>,
    ) -> wasmtime::Result<Option<Result<Resource<Fields>, r::Error>>> {
        Ok(match l::HostFutureTrailers::get(self, self_)? {
            None => None,
            Some(Ok(Ok(Some(trailers)))) => Some(Ok(trailers)),
            // This snapshot cannot say "no trailers": an empty set says it.
            Some(Ok(Ok(None))) => Some(Ok(l::HostFields::new(self)?)),
            Some(Ok(Err(e))) => Some(Err(e.into())),
            Some(Err(())) => wasmtime::bail!("trailers have already been retrieved"),
        })
    }

    fn drop(&mut self, rep: Resource<FutureTrailers>) -> wasmtime::Result<()> {
        l::HostFutureTrailers::drop(self, rep)
    }
}

impl r::HostOutgoingResponse for WasiHttpCtxView<'_> {
    fn new(
        &mut self,
        status_code: u16,
        headers: Resource<Fields>,
    ) -> wasmtime::Result<Resource<OutgoingResponse>> {
        let headers = l::HostFields::clone(self, headers)?;
        let response = l::HostOutgoingResponse::new(self, headers)?;
        let this = Resource::<OutgoingResponse>::new_borrow(response.rep());
        if l::HostOutgoingResponse::set_status_code(self, this, status_code)?.is_err() {
            l::HostOutgoingResponse::drop(self, response)?;
            return refused("status code");
        }
        Ok(response)
    }

    fn write(
        &mut self,
        self_: Resource<OutgoingResponse>,
    ) -> wasmtime::Result<Result<Resource<OutgoingBody>, ()>> {
        l::HostOutgoingResponse::body(self, self_)
    }

    fn drop(&mut self, rep: Resource<OutgoingResponse>) -> wasmtime::Result<()> {
        l::HostOutgoingResponse::drop(self, rep)
    }
}

impl r::HostOutgoingBody for WasiHttpCtxView<'_> {
    fn write(
        &mut self,
        self_: Resource<OutgoingBody>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        l::HostOutgoingBody::write(self, self_)
    }

    fn finish(
        &mut self,
        this: Resource<OutgoingBody>,
        trailers: Option<Resource<Fields>>,
    ) -> wasmtime::Result<()> {
        // This snapshot's finish cannot fail; a body that does not match its content-length
        // is an error WASI 0.2 reports, and a trap here, as on Spin.
        match l::HostOutgoingBody::finish(self, this, trailers) {
            Ok(()) => Ok(()),
            Err(e) => wasmtime::bail!("outgoing-body.finish: {:?}", e.downcast()?),
        }
    }

    fn drop(&mut self, rep: Resource<OutgoingBody>) -> wasmtime::Result<()> {
        l::HostOutgoingBody::drop(self, rep)
    }
}

impl r::HostFutureIncomingResponse for WasiHttpCtxView<'_> {
    #[allow(clippy::type_complexity)]
    fn get(
        &mut self,
        self_: Resource<FutureIncomingResponse>,
    ) -> wasmtime::Result<Option<Result<Result<Resource<IncomingResponse>, r::Error>, ()>>> {
        Ok(l::HostFutureIncomingResponse::get(self, self_)?
            .map(|taken| taken.map(|response| response.map_err(Into::into))))
    }

    fn subscribe(
        &mut self,
        self_: Resource<FutureIncomingResponse>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        l::HostFutureIncomingResponse::subscribe(self, self_)
    }

    fn drop(&mut self, rep: Resource<FutureIncomingResponse>) -> wasmtime::Result<()> {
        l::HostFutureIncomingResponse::drop(self, rep)
    }
}

impl outgoing_handler::Host for WasiHttpCtxView<'_> {
    fn handle(
        &mut self,
        request: Resource<OutgoingRequest>,
        options: Option<r::RequestOptions>,
    ) -> wasmtime::Result<Result<Resource<FutureIncomingResponse>, r::Error>> {
        let options = match options {
            None => None,
            Some(o) => {
                let options = l::HostRequestOptions::new(self)?;
                let this = || Resource::<l::RequestOptions>::new_borrow(options.rep());
                let ns = |ms: Option<u32>| ms.map(|ms| u64::from(ms) * 1_000_000);
                let set = [
                    (
                        "connect timeout",
                        l::HostRequestOptions::set_connect_timeout(
                            self,
                            this(),
                            ns(o.connect_timeout_ms),
                        )?,
                    ),
                    (
                        "first byte timeout",
                        l::HostRequestOptions::set_first_byte_timeout(
                            self,
                            this(),
                            ns(o.first_byte_timeout_ms),
                        )?,
                    ),
                    (
                        "between bytes timeout",
                        l::HostRequestOptions::set_between_bytes_timeout(
                            self,
                            this(),
                            ns(o.between_bytes_timeout_ms),
                        )?,
                    ),
                ];
                if let Some((what, _)) = set.iter().find(|(_, r)| r.is_err()) {
                    l::HostRequestOptions::drop(self, options)?;
                    return refused(what);
                }
                Some(options)
            }
        };
        // The request takes a copy of the options; the resource made here is ours to free.
        let made = options.as_ref().map(|o| o.rep());
        let sent = super::latest::http::outgoing_handler::Host::handle(self, request, options);
        if let Some(rep) = made {
            l::HostRequestOptions::drop(self, Resource::new_own(rep))?;
        }
        match sent {
            Ok(response) => Ok(Ok(response)),
            Err(e) => Ok(Err(e.downcast()?.into())),
        }
    }
}
