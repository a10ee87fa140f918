//! The frames exchanged between the supervisor (inside the Python extension) and a worker
//! process, over the worker's stdin and stdout.
//!
//! A frame is `u32 LE length` + body; the body is `u32 LE header length` + a JSON header
//! (a [`Request`] or [`Response`]) + an optional binary payload (image bytes). JSON keeps the
//! headers readable and versionable; the payload stays raw so images are never re-encoded.
//! Every read is bounded by a size cap: a peer that sends more is a protocol error, and the
//! supervisor kills that worker (never itself).

mod frame;
mod messages;

pub use frame::{read_frame, write_frame, Frame, FrameError, DEFAULT_MAX_FRAME_BYTES};
pub use messages::*;

/// Bumped on any incompatible change of the messages; the worker states it in its hello.
pub const PROTOCOL_VERSION: u32 = 1;
