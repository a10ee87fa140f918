use serde::Serialize;
use thiserror::Error;

/// Why a task did not produce a result. Each variant maps onto one Python exception.
#[derive(Debug, Clone, Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskError {
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    #[error(
        "task exceeded its time limit of {limit_s} s (task_timeout_s); the worker was killed \
         and replaced. Raise VRAM_ORCH_TASK_TIMEOUT_S or pass timeout_s= for large inputs"
    )]
    TaskTimeout { limit_s: f64 },
    #[error("{message}")]
    WorkerCrashed {
        message: String,
        exit_code: Option<i32>,
        signal: Option<i32>,
        stderr_tail: String,
        attempts: u32,
    },
    #[error(
        "queue is full ({limit} tasks waiting, VRAM_ORCH_QUEUE_MAX); retry later or raise the limit"
    )]
    QueueFull { limit: usize },
    #[error("the pool is closed")]
    PoolClosed,
    /// The dispatcher thread failed (a defect of ours): every accepted task ends with this
    /// and the pool takes no more.
    #[error("{message}")]
    PoolBroken { message: String },
    #[error("{message}")]
    Setup { message: String },
    #[error("inference failed in the worker: {message}")]
    Inference { message: String },
    #[error("not enough GPU memory: {message}")]
    InsufficientVram {
        required_mb: f64,
        available_mb: f64,
        device: String,
        message: String,
    },
    #[error("task was cancelled")]
    Cancelled,
}
