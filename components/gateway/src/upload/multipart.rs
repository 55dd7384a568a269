//! `multipart/form-data` uploads (what `curl -F file=@video.mkv` sends), parsed as a stream by
//! multer: the file's bytes go on to storage as they arrive; nothing holds the whole upload.

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{self, Stream};

use crate::http_io::BodyReader;

/// Form fields that are not files are read and dropped; this bounds each.
const MAX_TEXT_FIELD_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("the multipart body is malformed or cut off ({0}); send the whole file again")]
    Malformed(String),
    #[error("the form has no file: send exactly one file field, e.g. curl -F 'file=@video.mkv'")]
    NoFile,
    #[error("the form has more than one file; send exactly one per upload")]
    SecondFile,
    #[error("the client stopped sending the upload")]
    Aborted,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    if super::naming::essence(content_type) != "multipart/form-data" {
        return None;
    }
    multer::parse_boundary(content_type).ok()
}

fn body_stream(
    mut reader: BodyReader,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // Reads block (an instance serves one request), so this stream is always ready: multer's
    // futures complete on their first poll.
    stream::poll_fn(move |_| {
        std::task::Poll::Ready(match reader.next_chunk() {
            Ok(Some(chunk)) => Some(Ok(Bytes::from(chunk))),
            Ok(None) => None,
            Err(e) => Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                e,
            ))),
        })
    })
}

/// The one file of a form, read chunk by chunk.
pub struct FormFile {
    form: multer::Multipart<'static>,
    field: Option<multer::Field<'static>>,
    pub file_name: String,
    pub content_type: Option<String>,
}

fn ready<T>(
    future: impl std::future::Future<Output = Result<T, multer::Error>>,
) -> Result<T, FormError> {
    match future.now_or_never() {
        Some(Ok(v)) => Ok(v),
        Some(Err(multer::Error::StreamReadFailed(_))) => Err(FormError::Aborted),
        Some(Err(e)) => Err(FormError::Malformed(e.to_string())),
        None => Err(FormError::Malformed("the body stream stalled".into())),
    }
}

impl FormFile {
    /// Skips leading text fields and stops at the first file field.
    pub fn open(reader: BodyReader, boundary: String) -> Result<FormFile, FormError> {
        let constraints = multer::Constraints::new()
            .size_limit(multer::SizeLimit::new().for_field("__none__", MAX_TEXT_FIELD_BYTES));
        let mut form =
            multer::Multipart::with_constraints(body_stream(reader), boundary, constraints);
        loop {
            let Some(mut field) = ready(form.next_field())? else {
                return Err(FormError::NoFile);
            };
            if let Some(name) = field.file_name() {
                let file_name = name.to_owned();
                let content_type = field.content_type().map(|m| m.to_string());
                return Ok(FormFile {
                    form,
                    field: Some(field),
                    file_name,
                    content_type,
                });
            }
            // A text field: drained, bounded.
            let mut seen = 0u64;
            while let Some(chunk) = ready(field.chunk())? {
                seen += chunk.len() as u64;
                if seen > MAX_TEXT_FIELD_BYTES {
                    return Err(FormError::Malformed(format!(
                        "a text field is over {MAX_TEXT_FIELD_BYTES} bytes"
                    )));
                }
            }
        }
    }

    /// The file's next bytes; `None` at its end.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, FormError> {
        match self.field.as_mut() {
            Some(field) => ready(field.chunk()),
            None => Ok(None),
        }
    }

    /// After the file: the rest of the form must hold no other file and end properly.
    pub fn finish(mut self) -> Result<(), FormError> {
        drop(self.field.take());
        loop {
            let Some(mut field) = ready(self.form.next_field())? else {
                return Ok(());
            };
            if field.file_name().is_some() {
                return Err(FormError::SecondFile);
            }
            let mut seen = 0u64;
            while let Some(chunk) = ready(field.chunk())? {
                seen += chunk.len() as u64;
                if seen > MAX_TEXT_FIELD_BYTES {
                    return Err(FormError::Malformed(format!(
                        "a text field is over {MAX_TEXT_FIELD_BYTES} bytes"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_come_only_from_form_data() {
        assert_eq!(
            boundary("multipart/form-data; boundary=------------------------abc123").as_deref(),
            Some("------------------------abc123")
        );
        assert_eq!(boundary("multipart/mixed; boundary=x"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("video/mp4"), None);
    }
}
