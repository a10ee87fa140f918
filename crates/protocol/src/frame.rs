use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// Largest frame accepted by default (image payloads included).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 256 << 20;

/// A decoded frame: the typed header and the raw payload that followed it.
#[derive(Debug)]
pub struct Frame<H> {
    pub header: H,
    pub payload: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum FrameError {
    /// The peer closed the stream cleanly between two frames.
    #[error("end of stream")]
    Eof,
    #[error("i/o error on the frame stream: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Writes one frame and flushes it.
pub fn write_frame<H: Serialize>(
    out: &mut impl Write,
    header: &H,
    payload: &[u8],
) -> Result<(), FrameError> {
    let header = serde_json::to_vec(header).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let body_len = 4 + header.len() + payload.len();
    let body_len = u32::try_from(body_len).map_err(|_| FrameError::TooLarge {
        size: body_len,
        limit: u32::MAX as usize,
    })?;
    // One buffered write for header-sized frames keeps small round trips to one syscall.
    let mut head = Vec::with_capacity(8 + header.len());
    head.extend_from_slice(&body_len.to_le_bytes());
    head.extend_from_slice(&(header.len() as u32).to_le_bytes());
    head.extend_from_slice(&header);
    if payload.is_empty() {
        out.write_all(&head)?;
    } else {
        out.write_all(&head)?;
        out.write_all(payload)?;
    }
    out.flush()?;
    Ok(())
}

/// Reads one frame; `max_bytes` bounds the body before anything is allocated.
pub fn read_frame<H: DeserializeOwned>(
    input: &mut impl Read,
    max_bytes: usize,
) -> Result<Frame<H>, FrameError> {
    let mut len = [0u8; 4];
    match read_exact_or_eof(input, &mut len)? {
        ReadOutcome::Eof => return Err(FrameError::Eof),
        ReadOutcome::Full => {}
    }
    let body_len = u32::from_le_bytes(len) as usize;
    if body_len > max_bytes {
        return Err(FrameError::TooLarge {
            size: body_len,
            limit: max_bytes,
        });
    }
    if body_len < 4 {
        return Err(FrameError::Malformed(format!(
            "body of {body_len} bytes has no header length"
        )));
    }
    let mut body = vec![0u8; body_len];
    input.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            FrameError::Malformed("stream ended inside a frame".to_string())
        }
        _ => FrameError::Io(e),
    })?;
    let header_len = u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize;
    if header_len > body_len - 4 {
        return Err(FrameError::Malformed(format!(
            "header of {header_len} bytes in a body of {body_len}"
        )));
    }
    let header = serde_json::from_slice(&body[4..4 + header_len])
        .map_err(|e| FrameError::Malformed(format!("bad header: {e}")))?;
    // Reuse the body allocation for the payload instead of copying it out.
    body.drain(..4 + header_len);
    Ok(Frame {
        header,
        payload: body,
    })
}

enum ReadOutcome {
    Full,
    Eof,
}

/// Like `read_exact`, but a stream that ends before the first byte is a clean EOF.
fn read_exact_or_eof(input: &mut impl Read, buf: &mut [u8]) -> Result<ReadOutcome, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(ReadOutcome::Eof),
            Ok(0) => {
                return Err(FrameError::Malformed(
                    "stream ended inside a frame length".to_string(),
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ReadOutcome::Full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};

    #[test]
    fn round_trip_keeps_header_and_payload() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Ping { id: 7 }, b"abc").unwrap();
        let frame: Frame<Request> = read_frame(&mut buf.as_slice(), 1024).unwrap();
        assert!(matches!(frame.header, Request::Ping { id: 7 }));
        assert_eq!(frame.payload, b"abc");
    }

    #[test]
    fn clean_eof_between_frames() {
        let err = read_frame::<Response>(&mut [].as_slice(), 1024).unwrap_err();
        assert!(matches!(err, FrameError::Eof));
    }

    #[test]
    fn oversized_frame_is_refused_before_allocation() {
        let bytes = (u32::MAX - 1).to_le_bytes();
        let err = read_frame::<Response>(&mut bytes.as_slice(), 1 << 20).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn truncated_and_garbage_frames_are_malformed() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Ping { id: 1 }, b"").unwrap();
        let cut = &buf[..buf.len() - 2];
        let err = read_frame::<Request>(&mut &cut[..], 1024).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");

        let garbage = [
            12u8, 0, 0, 0, 8, 0, 0, 0, b'n', b'o', b'p', b'e', b'!', b'!', b'!', b'!',
        ];
        let err = read_frame::<Request>(&mut &garbage[..], 1024).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");

        let bad_header_len = [8u8, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3, 4];
        let err = read_frame::<Request>(&mut &bad_header_len[..], 1024).unwrap_err();
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }
}
