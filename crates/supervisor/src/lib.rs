//! The worker pool behind `vram_orchestrator.OcrPool`, in plain Rust (no pyo3).
//!
//! One dispatcher thread owns all state (queue, workers, timers) and reacts to events:
//! submissions from callers, frames and exits from workers, and its own deadlines. Callers
//! never block it and it never waits on a worker: each worker has a writer thread (so a
//! stopped worker cannot stall a write) and reader threads for stdout (frames) and stderr
//! (logs, crash tails). Finished tasks leave through one outcome channel.

pub mod admission;
mod config;
mod dispatcher;
mod error;
pub mod gpu;
mod peak_writer;
mod procfs;
mod sampler;
mod slots;
mod snapshot;
mod supervisor;
mod task;
mod vram;
mod worker;

pub use config::{DeviceChoice, GpuConfig, PoolConfig};
pub use error::TaskError;
pub use gpu::GpuSource;
pub use snapshot::{ExitRecord, PoolSnapshot, WorkerSnapshot};
pub use supervisor::{SubmitError, Supervisor};
pub use task::{Completed, TaskInput, TaskOutcome, TaskSuccess, WorkerStamp};
pub use vram::{DeviceSnapshot, VramSnapshot};
pub use vram_orch_protocol::{
    AnalyzeRequest, Cell, InputKind, Line, OcrOptions, OcrResult, PageLayout, Profile, Region,
    Table, TextCell, Timings,
};
