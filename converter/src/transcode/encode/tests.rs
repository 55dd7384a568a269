use std::io::Cursor;

use super::frame::{FrameHeader, split_frames};
use super::lame::{Lame, LameSettings};
use super::*;

/// A deterministic test signal: a chord with a slow tremolo plus pseudo-random noise, so the
/// psychoacoustic model has transients and tonal parts to decide about.
fn signal(samples: usize, channels: usize, rate: u32) -> Vec<f32> {
    let mut seed = 0x1234_5678u32;
    let mut out = Vec::with_capacity(samples * channels);
    for i in 0..samples {
        let t = i as f32 / rate as f32;
        let tremolo = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
        for c in 0..channels {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let f = 220.0 * (c as f32 + 1.0);
            let tone = (2.0 * std::f32::consts::PI * f * t).sin() * 0.3
                + (2.0 * std::f32::consts::PI * 1.5 * f * t).sin() * 0.2;
            out.push(tone * tremolo + noise * 0.1);
        }
    }
    out
}

fn one_encoder(settings: LameSettings, pcm: &[f32]) -> Vec<u8> {
    let mut lame = Lame::new(settings).expect("lame");
    let mut out = Vec::new();
    lame.encode(pcm, &mut out).expect("encode");
    lame.flush(&mut out).expect("flush");
    out
}

fn segmented(params: EncodeParams, pcm: &[f32], pull_size: usize) -> (Vec<u8>, EncodeOutcome) {
    let mut sink = Cursor::new(Vec::new());
    let mut chunks = pcm.chunks(pull_size);
    let outcome = encode_stream::<(), _>(params, &mut sink, |buf| match chunks.next() {
        Some(c) => {
            buf.extend_from_slice(c);
            Ok(true)
        }
        None => Ok(false),
    })
    .map_err(|e| match e {
        EncodeFailure::Source(()) => "source".to_owned(),
        EncodeFailure::Encode(e) => e.to_string(),
    })
    .expect("encode_stream");
    (sink.into_inner(), outcome)
}

fn check_splice(rate: u32, channels: u8, profile: Profile, seconds: f32, granules: usize) {
    let ch = usize::from(channels);
    let n = (seconds * rate as f32) as usize;
    let pcm = signal(n, ch, rate);
    let settings = LameSettings {
        sample_rate: rate,
        channels,
        rate_control: crate::transcode::profile::rate_control(profile),
    };
    let reference = one_encoder(settings, &pcm);
    let params = EncodeParams {
        sample_rate: rate,
        channels,
        profile,
        segment_granules: granules,
        workers: 3,
    };
    // An odd pull size makes segments complete in the middle of a pull.
    let (mp3, outcome) = segmented(params, &pcm, 777 * ch);
    let tag = FrameHeader::parse(&mp3)
        .expect("tag frame header")
        .frame_len();
    let audio = &mp3[tag..];
    assert_eq!(
        split_frames(audio).map(|l| l.len()),
        split_frames(&reference).map(|l| l.len()),
        "frame count at {rate} Hz × {channels}, {profile}"
    );
    assert!(
        audio == reference.as_slice(),
        "spliced frames differ from one continuous encoder at {rate} Hz × {channels}, {profile}"
    );
    assert_eq!(outcome.samples, n as u64);
    let spf = u64::from(
        MpegVersion::for_sample_rate(rate)
            .expect("rate")
            .samples_per_frame(),
    );
    assert_eq!(
        u64::from(outcome.frames) * spf
            - u64::from(outcome.encoder_delay)
            - u64::from(outcome.padding),
        n as u64,
        "delay + samples + padding fill the frames exactly"
    );
    assert_eq!(outcome.bytes, mp3.len() as u64);
}

#[test]
fn spliced_vbr_segments_are_bit_identical_to_one_encoder() {
    check_splice(44100, 2, Profile::Standard, 6.3, 40);
    check_splice(48000, 1, Profile::Fast, 4.1, 25);
}

#[test]
fn spliced_segments_work_at_mpeg2_rates() {
    check_splice(22050, 2, Profile::Standard, 5.0, 17);
}

#[test]
fn a_clip_shorter_than_a_segment_is_one_segment() {
    check_splice(44100, 2, Profile::Standard, 0.3, 100);
}

#[test]
fn cbr_streams_keep_their_bitrate_and_exact_length() {
    let rate = 44100;
    let n = 3 * rate as usize + 17;
    let pcm = signal(n, 2, rate);
    let params = EncodeParams {
        sample_rate: rate,
        channels: 2,
        profile: Profile::Cbr128,
        segment_granules: 30,
        workers: 2,
    };
    let (mp3, outcome) = segmented(params, &pcm, 4096);
    let tag_len = FrameHeader::parse(&mp3).expect("tag").frame_len();
    assert_eq!(&mp3[4 + 32..4 + 36], b"Info");
    let lens = split_frames(&mp3[tag_len..]).expect("frames");
    assert_eq!(lens.len() as u32, outcome.frames);
    let mut at = tag_len;
    for len in lens {
        let h = FrameHeader::parse(&mp3[at..]).expect("frame");
        assert_eq!(h.bitrate_kbps, 128);
        at += usize::from(len);
    }
    assert_eq!(
        u64::from(outcome.frames) * 1152 - u64::from(outcome.encoder_delay + outcome.padding),
        n as u64
    );
}

#[test]
fn an_empty_source_is_an_error_not_an_empty_mp3() {
    let params = EncodeParams::new(44100, 2, Profile::Standard, 5.0);
    let mut sink = Cursor::new(Vec::new());
    let result = encode_stream::<(), _>(params, &mut sink, |_| Ok(false));
    assert!(matches!(
        result,
        Err(EncodeFailure::Encode(TranscodeError::Undecodable(_)))
    ));
}

#[test]
fn a_failing_source_stops_the_encode() {
    let params = EncodeParams::new(44100, 2, Profile::Fast, 0.2);
    let mut sink = Cursor::new(Vec::new());
    let mut calls = 0;
    let result = encode_stream::<&str, _>(params, &mut sink, |buf| {
        calls += 1;
        if calls > 20 {
            return Err("decoder broke");
        }
        buf.extend(std::iter::repeat_n(0.1f32, 4410 * 2));
        Ok(true)
    });
    assert!(matches!(
        result,
        Err(EncodeFailure::Source("decoder broke"))
    ));
}

#[test]
fn rates_that_mp3_lacks_are_refused() {
    let params = EncodeParams::new(96000, 2, Profile::Standard, 5.0);
    let mut sink = Cursor::new(Vec::new());
    let result = encode_stream::<(), _>(params, &mut sink, |_| Ok(false));
    assert!(matches!(
        result,
        Err(EncodeFailure::Encode(TranscodeError::Encoder(_)))
    ));
}

#[test]
fn an_id3_tag_goes_first_and_the_xing_frame_right_after_it() {
    let params = EncodeParams::new(44100, 2, Profile::Standard, 0.5);
    let pcm = signal(44100 * 2, 2, 44100);
    let (plain, plain_outcome) = segmented(params, &pcm, 4096);
    let id3 = [b"ID3\x04\0\0\0\0\0\x05".as_slice(), b"12345"].concat();
    let mut sink = Cursor::new(Vec::new());
    let mut chunks = pcm.chunks(4096);
    let outcome =
        encode_stream_tagged::<(), _>(params, &id3, &mut sink, |buf| match chunks.next() {
            Some(c) => {
                buf.extend_from_slice(c);
                Ok(true)
            }
            None => Ok(false),
        })
        .map_err(|_| "encode")
        .expect("tagged encode");
    let tagged = sink.into_inner();
    assert_eq!(&tagged[..id3.len()], id3.as_slice());
    // The same stream after the tag: Xing frame (with its counts, which exclude the ID3 tag,
    // as LAME's do) and audio, byte for byte.
    assert_eq!(&tagged[id3.len()..], plain.as_slice());
    assert_eq!(outcome.bytes, plain_outcome.bytes + id3.len() as u64);
    assert_eq!(outcome.samples, plain_outcome.samples);
}
