//! Property tests ("fuzzing", bounded for CI) of the frame decoder: whatever bytes arrive,
//! `read_frame` returns a frame or an error and never panics, never allocates more than its
//! limit allows, and every frame `write_frame` makes reads back as it was written.

use std::io::{self, Read};

use proptest::prelude::*;
use serde_json::Value;
use vram_orch_protocol::{
    read_frame, write_frame, AnalyzeRequest, Frame, FrameError, InputKind, OcrOptions, Profile,
    Request, Response, TextCell,
};

/// Cases per property: all of them together run in about a second in release mode.
const CASES: u32 = 4096;

/// `CASES`, or `PROPTEST_CASES` when set (a longer run by hand).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        // Failures are reported, not written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn encode(header: &Request, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    write_frame(&mut buf, header, payload).expect("writing to a Vec");
    buf
}

/// Requests of every kind. Box coordinates are quarter pixels: exact in JSON.
fn request() -> impl Strategy<Value = Request> {
    let input = prop_oneof![
        Just(InputKind::Encoded),
        ".{0,40}".prop_map(|path| InputKind::Path { path }),
        (any::<u32>(), any::<u32>(), any::<u8>()).prop_map(|(width, height, channels)| {
            InputKind::Raw {
                width,
                height,
                channels,
            }
        }),
    ];
    let options = (any::<bool>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(reference, max_input_bytes, max_pixels, max_det_pixels)| OcrOptions {
            profile: if reference {
                Profile::Reference
            } else {
                Profile::Default
            },
            max_input_bytes,
            max_pixels,
            max_det_pixels,
        },
    );
    let coord = (-40_000i32..40_000).prop_map(|q| q as f32 / 4.0);
    let cell = (
        ".{0,12}",
        [coord.clone(), coord.clone(), coord.clone(), coord],
    )
        .prop_map(|(text, bbox)| TextCell { text, bbox });
    let analyze = proptest::option::of(
        (
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(cell, 0..4)),
        )
            .prop_map(|(tables, text_cells)| AnalyzeRequest { tables, text_cells }),
    );
    prop_oneof![
        any::<u64>().prop_map(|id| Request::Ping { id }),
        any::<u64>().prop_map(|id| Request::Info { id }),
        Just(Request::Shutdown),
        (any::<u64>(), input, options, analyze).prop_map(|(id, input, options, analyze)| {
            Request::Ocr {
                id,
                input,
                options,
                analyze,
            }
        }),
    ]
}

fn json(header: &Request) -> Value {
    serde_json::to_value(header).unwrap()
}

/// A reader that hands its bytes over in chunks of the given sizes (cycled), with an
/// `Interrupted` error before every chunk whose size is 0, as a pipe may.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    next: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        if size == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads frames until the stream fails or ends; returns how many were read and the error.
/// Bounded: every frame read consumes at least 8 bytes.
fn drain<H: serde::de::DeserializeOwned>(bytes: &[u8], max: usize) -> (usize, FrameError) {
    let mut input = bytes;
    let mut frames = 0;
    loop {
        match read_frame::<H>(&mut input, max) {
            Ok(_) => frames += 1,
            Err(e) => return (frames, e),
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes: frames or an error, never a panic; a stream never ends in an I/O error
    /// (a slice cannot fail) and a decoded frame never exceeds the limit.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        max in 0usize..4096,
    ) {
        let (frames, err) = drain::<Request>(&bytes, max);
        prop_assert!(frames <= bytes.len() / 8);
        prop_assert!(!matches!(err, FrameError::Io(_)), "{err}");
        let (_, err) = drain::<Value>(&bytes, max);
        prop_assert!(!matches!(err, FrameError::Io(_)), "{err}");
        let mut input = bytes.as_slice();
        if let Ok(frame) = read_frame::<Value>(&mut input, max) {
            prop_assert!(frame.payload.len() + 4 <= max);
        }
    }

    /// Bytes that start like a frame (a small length and header length) followed by
    /// anything: reach the header parser far more often than uniform bytes do.
    #[test]
    fn plausible_frames_of_garbage_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        declared in 0u32..600,
        header_len in 0u32..600,
    ) {
        let mut bytes = declared.to_le_bytes().to_vec();
        bytes.extend_from_slice(&header_len.to_le_bytes());
        bytes.extend_from_slice(&body);
        for max in [0, 16, 1 << 20] {
            let (_, err) = drain::<Request>(&bytes, max);
            prop_assert!(!matches!(err, FrameError::Io(_)), "{err}");
            let (_, err) = drain::<Response>(&bytes, max);
            prop_assert!(!matches!(err, FrameError::Io(_)), "{err}");
        }
    }

    /// Valid frames read back as written, one after another, then a clean end of stream,
    /// also when the pipe delivers them in pieces and is interrupted.
    #[test]
    fn valid_frames_round_trip(
        frames in proptest::collection::vec(
            (request(), proptest::collection::vec(any::<u8>(), 0..3000)), 1..4),
        sizes in proptest::collection::vec(0usize..700, 1..8),
    ) {
        let mut stream = Vec::new();
        for (header, payload) in &frames {
            stream.extend_from_slice(&encode(header, payload));
        }
        let sizes = if sizes.iter().all(|&s| s == 0) { vec![1] } else { sizes };
        let mut input = Chunked { data: &stream, sizes, next: 0 };
        for (header, payload) in &frames {
            let back: Frame<Request> = read_frame(&mut input, stream.len()).unwrap();
            prop_assert_eq!(json(&back.header), json(header));
            prop_assert_eq!(&back.payload, payload);
        }
        let end = read_frame::<Request>(&mut input, stream.len()).unwrap_err();
        prop_assert!(matches!(end, FrameError::Eof), "{end}");
    }

    /// A valid frame cut anywhere: a clean end of stream at 0 bytes, else malformed.
    #[test]
    fn truncated_frames_are_malformed(
        header in request(),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        cut in any::<proptest::sample::Index>(),
    ) {
        let bytes = encode(&header, &payload);
        let cut = cut.index(bytes.len());
        let err = read_frame::<Request>(&mut &bytes[..cut], bytes.len()).unwrap_err();
        if cut == 0 {
            prop_assert!(matches!(err, FrameError::Eof), "{err}");
        } else {
            prop_assert!(matches!(err, FrameError::Malformed(_)), "cut at {cut}: {err}");
        }
    }

    /// The body length replaced by any value: above the limit it is refused as too large
    /// (before the body is allocated or read), below 4 or beyond the data it is malformed,
    /// anything else decodes or fails; never a panic.
    #[test]
    fn corrupted_body_length(
        header in request(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        declared in prop_oneof![any::<u32>(), 0u32..1024],
        max in prop_oneof![Just(usize::MAX), 0usize..2048],
    ) {
        let mut bytes = encode(&header, &payload);
        let real = bytes.len() - 4;
        bytes[..4].copy_from_slice(&declared.to_le_bytes());
        let declared = declared as usize;
        match read_frame::<Request>(&mut bytes.as_slice(), max) {
            Err(FrameError::TooLarge { size, limit }) => {
                prop_assert!(declared > max);
                prop_assert_eq!((size, limit), (declared, max));
            }
            Err(FrameError::Malformed(_)) => prop_assert!(declared <= max),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
            Ok(frame) => {
                prop_assert!(declared <= max && declared >= 4 && declared <= real);
                prop_assert_eq!(json(&frame.header), json(&header));
                prop_assert_eq!(frame.payload.len() + real - declared, payload.len());
            }
        }
    }

    /// The header length replaced by any value: only the right one decodes.
    #[test]
    fn corrupted_header_length(
        header in request(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        declared in prop_oneof![any::<u32>(), 0u32..1024],
    ) {
        let mut bytes = encode(&header, &payload);
        let real = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        bytes[4..8].copy_from_slice(&declared.to_le_bytes());
        match read_frame::<Request>(&mut bytes.as_slice(), bytes.len()) {
            Ok(frame) => {
                // A cut JSON object never parses; a longer one only when the payload bytes
                // it took in are JSON whitespace.
                prop_assert!(declared >= real);
                let taken = (declared - real) as usize;
                prop_assert!(payload[..taken].iter().all(|b| b" \t\n\r".contains(b)));
                prop_assert_eq!(json(&frame.header), json(&header));
                prop_assert_eq!(&frame.payload[..], &payload[taken..]);
            }
            Err(FrameError::Malformed(_)) => prop_assert_ne!(declared, real),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    /// Bytes of a valid frame flipped: a frame or an error, never a panic or an I/O error.
    #[test]
    fn flipped_bytes_never_panic(
        header in request(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let mut bytes = encode(&header, &payload);
        let n = bytes.len();
        for (at, mask) in flips {
            bytes[at.index(n)] ^= mask;
        }
        for max in [n, 1 << 20] {
            let (_, err) = drain::<Request>(&bytes, max);
            prop_assert!(!matches!(err, FrameError::Io(_)), "{err}");
        }
    }

    /// The limit: a frame whose body fits is read, one byte over is refused as too large.
    #[test]
    fn size_limit_is_exact(
        header in request(),
        payload in proptest::collection::vec(any::<u8>(), 0..4096),
        slack in -64isize..64,
    ) {
        let bytes = encode(&header, &payload);
        let body = bytes.len() - 4;
        let max = body.saturating_add_signed(slack);
        match read_frame::<Request>(&mut bytes.as_slice(), max) {
            Ok(frame) => {
                prop_assert!(body <= max);
                prop_assert_eq!(&frame.payload, &payload);
            }
            Err(FrameError::TooLarge { size, limit }) => {
                prop_assert!(body > max);
                prop_assert_eq!((size, limit), (body, max));
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

/// A declared length at the 4 GiB maximum with the default limit: refused before anything
/// is allocated or read (a reader that panics if it is read past the length shows that).
#[test]
fn huge_declared_length_reads_nothing_more() {
    struct LengthOnly(usize);
    impl Read for LengthOnly {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let len = u32::MAX.to_le_bytes();
            assert!(self.0 < 4, "read past the length field");
            let n = buf.len().min(4 - self.0);
            buf[..n].copy_from_slice(&len[self.0..self.0 + n]);
            self.0 += n;
            Ok(n)
        }
    }
    let err = read_frame::<Request>(
        &mut LengthOnly(0),
        vram_orch_protocol::DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
}
