//! wasi:http of `0.2.0-rc-2023-11-10`, forwarded to wasmtime-wasi-http's WASI 0.2 implementation
//! (and so to runtime-host's hooks: allowed hosts, chaining, pooled clients).

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, IoError};
use wasmtime_wasi_http::WasiHttpCtxView;
use wasmtime_wasi_http::p2::{HeaderError, HttpError};

use super::http_types::{outgoing_handler, types as r};
use super::latest::http::types as l;

use l::{
    Fields, FutureIncomingResponse, FutureTrailers, IncomingBody, IncomingRequest,
    IncomingResponse, OutgoingBody, OutgoingRequest, OutgoingResponse, RequestOptions,
    ResponseOutparam,
};

type HttpResult<T> = Result<T, HttpError>;
type HeaderResult<T> = Result<T, HeaderError>;

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

/// The two `error-code` variants are the same list of cases.
macro_rules! error_code {
    ($from:ident => $to:ident) => {
        impl From<$from::ErrorCode> for $to::ErrorCode {
            fn from(e: $from::ErrorCode) -> Self {
                use $from::ErrorCode as F;
                use $to::ErrorCode as T;
                let field_size = |p: $from::FieldSizePayload| $to::FieldSizePayload {
                    field_name: p.field_name,
                    field_size: p.field_size,
                };
                match e {
                    F::DnsTimeout => T::DnsTimeout,
                    F::DnsError(p) => T::DnsError($to::DnsErrorPayload {
                        rcode: p.rcode,
                        info_code: p.info_code,
                    }),
                    F::DestinationNotFound => T::DestinationNotFound,
                    F::DestinationUnavailable => T::DestinationUnavailable,
                    F::DestinationIpProhibited => T::DestinationIpProhibited,
                    F::DestinationIpUnroutable => T::DestinationIpUnroutable,
                    F::ConnectionRefused => T::ConnectionRefused,
                    F::ConnectionTerminated => T::ConnectionTerminated,
                    F::ConnectionTimeout => T::ConnectionTimeout,
                    F::ConnectionReadTimeout => T::ConnectionReadTimeout,
                    F::ConnectionWriteTimeout => T::ConnectionWriteTimeout,
                    F::ConnectionLimitReached => T::ConnectionLimitReached,
                    F::TlsProtocolError => T::TlsProtocolError,
                    F::TlsCertificateError => T::TlsCertificateError,
                    F::TlsAlertReceived(p) => T::TlsAlertReceived($to::TlsAlertReceivedPayload {
                        alert_id: p.alert_id,
                        alert_message: p.alert_message,
                    }),
                    F::HttpRequestDenied => T::HttpRequestDenied,
                    F::HttpRequestLengthRequired => T::HttpRequestLengthRequired,
                    F::HttpRequestBodySize(n) => T::HttpRequestBodySize(n),
                    F::HttpRequestMethodInvalid => T::HttpRequestMethodInvalid,
                    F::HttpRequestUriInvalid => T::HttpRequestUriInvalid,
                    F::HttpRequestUriTooLong => T::HttpRequestUriTooLong,
                    F::HttpRequestHeaderSectionSize(n) => T::HttpRequestHeaderSectionSize(n),
                    F::HttpRequestHeaderSize(p) => T::HttpRequestHeaderSize(p.map(field_size)),
                    F::HttpRequestTrailerSectionSize(n) => T::HttpRequestTrailerSectionSize(n),
                    F::HttpRequestTrailerSize(p) => T::HttpRequestTrailerSize(field_size(p)),
                    F::HttpResponseIncomplete => T::HttpResponseIncomplete,
                    F::HttpResponseHeaderSectionSize(n) => T::HttpResponseHeaderSectionSize(n),
                    F::HttpResponseHeaderSize(p) => T::HttpResponseHeaderSize(field_size(p)),
                    F::HttpResponseBodySize(n) => T::HttpResponseBodySize(n),
                    F::HttpResponseTrailerSectionSize(n) => T::HttpResponseTrailerSectionSize(n),
                    F::HttpResponseTrailerSize(p) => T::HttpResponseTrailerSize(field_size(p)),
                    F::HttpResponseTransferCoding(s) => T::HttpResponseTransferCoding(s),
                    F::HttpResponseContentCoding(s) => T::HttpResponseContentCoding(s),
                    F::HttpResponseTimeout => T::HttpResponseTimeout,
                    F::HttpUpgradeFailed => T::HttpUpgradeFailed,
                    F::HttpProtocolError => T::HttpProtocolError,
                    F::LoopDetected => T::LoopDetected,
                    F::ConfigurationError => T::ConfigurationError,
                    F::InternalError(s) => T::InternalError(s),
                }
            }
        }
    };
}

error_code!(l => r);
error_code!(r => l);

impl From<l::HeaderError> for r::HeaderError {
    fn from(e: l::HeaderError) -> Self {
        match e {
            l::HeaderError::InvalidSyntax => Self::InvalidSyntax,
            l::HeaderError::Forbidden => Self::Forbidden,
            l::HeaderError::Immutable => Self::Immutable,
        }
    }
}

impl r::Host for WasiHttpCtxView<'_> {
    fn convert_error_code(&mut self, err: HttpError) -> wasmtime::Result<r::ErrorCode> {
        Ok(l::Host::convert_error_code(self, err)?.into())
    }

    fn convert_header_error(&mut self, err: HeaderError) -> wasmtime::Result<r::HeaderError> {
        Ok(l::Host::convert_header_error(self, err)?.into())
    }

    fn http_error_code(
        &mut self,
        err: Resource<IoError>,
    ) -> wasmtime::Result<Option<r::ErrorCode>> {
        Ok(l::Host::http_error_code(self, err)?.map(Into::into))
    }
}

impl r::HostFields for WasiHttpCtxView<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<Fields>> {
        l::HostFields::new(self)
    }

    fn from_list(&mut self, entries: Vec<(String, Vec<u8>)>) -> HeaderResult<Resource<Fields>> {
        l::HostFields::from_list(self, entries)
    }

    fn get(&mut self, self_: Resource<Fields>, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        l::HostFields::get(self, self_, name)
    }

    fn set(
        &mut self,
        self_: Resource<Fields>,
        name: String,
        value: Vec<Vec<u8>>,
    ) -> HeaderResult<()> {
        l::HostFields::set(self, self_, name, value)
    }

    fn delete(&mut self, self_: Resource<Fields>, name: String) -> HeaderResult<()> {
        l::HostFields::delete(self, self_, name)
    }

    fn append(
        &mut self,
        self_: Resource<Fields>,
        name: String,
        value: Vec<u8>,
    ) -> HeaderResult<()> {
        l::HostFields::append(self, self_, name, value)
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
    fn new(&mut self, headers: Resource<Fields>) -> wasmtime::Result<Resource<OutgoingRequest>> {
        l::HostOutgoingRequest::new(self, headers)
    }

    fn body(
        &mut self,
        self_: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Result<Resource<OutgoingBody>, ()>> {
        l::HostOutgoingRequest::body(self, self_)
    }

    fn method(&mut self, self_: Resource<OutgoingRequest>) -> wasmtime::Result<r::Method> {
        Ok(l::HostOutgoingRequest::method(self, self_)?.into())
    }

    fn set_method(
        &mut self,
        self_: Resource<OutgoingRequest>,
        method: r::Method,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostOutgoingRequest::set_method(self, self_, method.into())
    }

    fn path_with_query(
        &mut self,
        self_: Resource<OutgoingRequest>,
    ) -> wasmtime::Result<Option<String>> {
        l::HostOutgoingRequest::path_with_query(self, self_)
    }

    fn set_path_with_query(
        &mut self,
        self_: Resource<OutgoingRequest>,
        path_with_query: Option<String>,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostOutgoingRequest::set_path_with_query(self, self_, path_with_query)
    }

    fn scheme(&mut self, self_: Resource<OutgoingRequest>) -> wasmtime::Result<Option<r::Scheme>> {
        Ok(l::HostOutgoingRequest::scheme(self, self_)?.map(Into::into))
    }

    fn set_scheme(
        &mut self,
        self_: Resource<OutgoingRequest>,
        scheme: Option<r::Scheme>,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostOutgoingRequest::set_scheme(self, self_, scheme.map(Into::into))
    }

    fn authority(&mut self, self_: Resource<OutgoingRequest>) -> wasmtime::Result<Option<String>> {
        l::HostOutgoingRequest::authority(self, self_)
    }

    fn set_authority(
        &mut self,
        self_: Resource<OutgoingRequest>,
        authority: Option<String>,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostOutgoingRequest::set_authority(self, self_, authority)
    }

    fn headers(&mut self, self_: Resource<OutgoingRequest>) -> wasmtime::Result<Resource<Fields>> {
        l::HostOutgoingRequest::headers(self, self_)
    }

    fn drop(&mut self, rep: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        l::HostOutgoingRequest::drop(self, rep)
    }
}

/// The `-ms` names of this snapshot carry nanosecond durations, like WASI 0.2's renamed ones.
impl r::HostRequestOptions for WasiHttpCtxView<'_> {
    fn new(&mut self) -> wasmtime::Result<Resource<RequestOptions>> {
        l::HostRequestOptions::new(self)
    }

    fn connect_timeout_ms(
        &mut self,
        self_: Resource<RequestOptions>,
    ) -> wasmtime::Result<Option<u64>> {
        l::HostRequestOptions::connect_timeout(self, self_)
    }

    fn set_connect_timeout_ms(
        &mut self,
        self_: Resource<RequestOptions>,
        ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostRequestOptions::set_connect_timeout(self, self_, ms)
    }

    fn first_byte_timeout_ms(
        &mut self,
        self_: Resource<RequestOptions>,
    ) -> wasmtime::Result<Option<u64>> {
        l::HostRequestOptions::first_byte_timeout(self, self_)
    }

    fn set_first_byte_timeout_ms(
        &mut self,
        self_: Resource<RequestOptions>,
        ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostRequestOptions::set_first_byte_timeout(self, self_, ms)
    }

    fn between_bytes_timeout_ms(
        &mut self,
        self_: Resource<RequestOptions>,
    ) -> wasmtime::Result<Option<u64>> {
        l::HostRequestOptions::between_bytes_timeout(self, self_)
    }

    fn set_between_bytes_timeout_ms(
        &mut self,
        self_: Resource<RequestOptions>,
        ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostRequestOptions::set_between_bytes_timeout(self, self_, ms)
    }

    fn drop(&mut self, rep: Resource<RequestOptions>) -> wasmtime::Result<()> {
        l::HostRequestOptions::drop(self, rep)
    }
}

impl r::HostResponseOutparam for WasiHttpCtxView<'_> {
    fn set(
        &mut self,
        param: Resource<ResponseOutparam>,
        response: Result<Resource<OutgoingResponse>, r::ErrorCode>,
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

    #[allow(clippy::type_complexity)]
    fn get(
        &mut self,
        self_: Resource<FutureTrailers>,
    ) -> wasmtime::Result<Option<Result<Option<Resource<Fields>>, r::ErrorCode>>> {
        Ok(match l::HostFutureTrailers::get(self, self_)? {
            None => None,
            Some(Ok(Ok(trailers))) => Some(Ok(trailers)),
            Some(Ok(Err(e))) => Some(Err(e.into())),
            // This snapshot cannot say "already taken"; Spin traps the same way.
            Some(Err(())) => wasmtime::bail!("trailers have already been retrieved"),
        })
    }

    fn drop(&mut self, rep: Resource<FutureTrailers>) -> wasmtime::Result<()> {
        l::HostFutureTrailers::drop(self, rep)
    }
}

impl r::HostOutgoingResponse for WasiHttpCtxView<'_> {
    fn new(&mut self, headers: Resource<Fields>) -> wasmtime::Result<Resource<OutgoingResponse>> {
        l::HostOutgoingResponse::new(self, headers)
    }

    fn status_code(&mut self, self_: Resource<OutgoingResponse>) -> wasmtime::Result<u16> {
        l::HostOutgoingResponse::status_code(self, self_)
    }

    fn set_status_code(
        &mut self,
        self_: Resource<OutgoingResponse>,
        status_code: u16,
    ) -> wasmtime::Result<Result<(), ()>> {
        l::HostOutgoingResponse::set_status_code(self, self_, status_code)
    }

    fn headers(&mut self, self_: Resource<OutgoingResponse>) -> wasmtime::Result<Resource<Fields>> {
        l::HostOutgoingResponse::headers(self, self_)
    }

    fn body(
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
    ) -> HttpResult<()> {
        l::HostOutgoingBody::finish(self, this, trailers)
    }

    fn drop(&mut self, rep: Resource<OutgoingBody>) -> wasmtime::Result<()> {
        l::HostOutgoingBody::drop(self, rep)
    }
}

impl r::HostFutureIncomingResponse for WasiHttpCtxView<'_> {
    fn subscribe(
        &mut self,
        self_: Resource<FutureIncomingResponse>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        l::HostFutureIncomingResponse::subscribe(self, self_)
    }

    #[allow(clippy::type_complexity)]
    fn get(
        &mut self,
        self_: Resource<FutureIncomingResponse>,
    ) -> wasmtime::Result<Option<Result<Result<Resource<IncomingResponse>, r::ErrorCode>, ()>>>
    {
        Ok(l::HostFutureIncomingResponse::get(self, self_)?
            .map(|taken| taken.map(|response| response.map_err(Into::into))))
    }

    fn drop(&mut self, rep: Resource<FutureIncomingResponse>) -> wasmtime::Result<()> {
        l::HostFutureIncomingResponse::drop(self, rep)
    }
}

impl outgoing_handler::Host for WasiHttpCtxView<'_> {
    fn handle(
        &mut self,
        request: Resource<OutgoingRequest>,
        options: Option<Resource<RequestOptions>>,
    ) -> HttpResult<Resource<FutureIncomingResponse>> {
        super::latest::http::outgoing_handler::Host::handle(self, request, options)
    }
}
