//! Why a conversion failed, and whether trying again could help.

use std::io;
use std::time::Duration;

/// Whether a failed job should be retried.
///
/// The job worker acts on this: a permanent failure becomes a failure event at once, a transient
/// one goes back to the queue with backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The same input will fail the same way again (not media, no audio, undecodable).
    Permanent,
    /// The failure came from the environment (I/O, a missing or overloaded decoder, a timeout).
    Transient,
}

/// A failed conversion.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("the upload is empty")]
    EmptyInput,
    #[error("not a media file: {0}")]
    NotMedia(String),
    #[error("the media has no audio stream")]
    NoAudio,
    #[error("the audio cannot be decoded: {0}")]
    Undecodable(String),
    #[error("decoding took longer than the limit of {0:?}")]
    Timeout(Duration),
    #[error("the ffmpeg decoder could not be started: {0}")]
    DecoderUnavailable(#[source] io::Error),
    #[error("reading the input failed: {0}")]
    Input(#[source] io::Error),
    #[error("writing the mp3 failed: {0}")]
    Output(#[source] io::Error),
    #[error("the mp3 encoder rejected the stream: {0}")]
    Encoder(String),
    /// The text is what the uploader reads; the meter's own error stays in the chain for logs.
    #[error("the loudness of the audio cannot be measured")]
    Loudness(#[source] crate::transcode::loudness::MeterError),
    /// As `Loudness`: a plain text for the uploader, the resampler's error in the chain.
    #[error("the audio cannot be converted to an MP3 sample rate")]
    Resample(#[source] crate::transcode::pcm::ResampleError),
}

impl TranscodeError {
    /// Whether retrying the same input can succeed.
    pub fn kind(&self) -> FailureKind {
        match self {
            TranscodeError::EmptyInput
            | TranscodeError::NotMedia(_)
            | TranscodeError::NoAudio
            | TranscodeError::Undecodable(_)
            // LAME refusing parameters is deterministic for a given stream.
            | TranscodeError::Encoder(_)
            // The meter refuses a format or its samples the same way every time.
            | TranscodeError::Loudness(_)
            | TranscodeError::Resample(_) => FailureKind::Permanent,
            TranscodeError::Timeout(_)
            | TranscodeError::DecoderUnavailable(_)
            | TranscodeError::Input(_)
            | TranscodeError::Output(_) => FailureKind::Transient,
        }
    }

    /// A stable, machine-readable code for job state and failure events.
    pub fn code(&self) -> &'static str {
        match self {
            TranscodeError::EmptyInput => "empty_input",
            TranscodeError::NotMedia(_) => "not_media",
            TranscodeError::NoAudio => "no_audio",
            TranscodeError::Undecodable(_) => "undecodable",
            TranscodeError::Timeout(_) => "timeout",
            TranscodeError::DecoderUnavailable(_) => "decoder_unavailable",
            TranscodeError::Input(_) => "input_io",
            TranscodeError::Output(_) => "output_io",
            // Reported as before this variant existed, so stored states and events keep their codes.
            TranscodeError::Encoder(_)
            | TranscodeError::Loudness(_)
            | TranscodeError::Resample(_) => "encoder",
        }
    }
}
