//! The exception classes, declared once, and the one place task errors become them.
//!
//! They are named as `vram_orchestrator.errors` (where the package re-exports them), so
//! pickle finds them: an error crosses a process pool or an RQ job with its fields.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use vram_orch_supervisor::TaskError;

create_exception!(
    vram_orchestrator.errors,
    VramOrchestratorError,
    PyException,
    "Base class of every error raised by vram_orchestrator."
);
create_exception!(
    vram_orchestrator.errors,
    InsufficientVram,
    VramOrchestratorError,
    "Not enough free GPU memory for the task within the admission timeout."
);
create_exception!(
    vram_orchestrator.errors,
    TaskTimeout,
    VramOrchestratorError,
    "The task ran past its time limit; its worker was killed and replaced."
);
create_exception!(
    vram_orchestrator.errors,
    WorkerCrashed,
    VramOrchestratorError,
    "The worker process died while running the task (exit code or signal, stderr tail)."
);
create_exception!(
    vram_orchestrator.errors,
    InvalidInput,
    VramOrchestratorError,
    "The input cannot be OCRed (unreadable, too large, unsupported layout)."
);
create_exception!(
    vram_orchestrator.errors,
    QueueFull,
    VramOrchestratorError,
    "Too many tasks are waiting (VRAM_ORCH_QUEUE_MAX)."
);
create_exception!(
    vram_orchestrator.errors,
    PoolClosed,
    VramOrchestratorError,
    "The pool was closed before the task could run."
);
create_exception!(
    vram_orchestrator.errors,
    SetupError,
    VramOrchestratorError,
    "The pool or its workers cannot be set up; the message says what to fix."
);
create_exception!(
    vram_orchestrator.errors,
    InferenceError,
    VramOrchestratorError,
    "A model run failed inside the worker."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add(
        "VramOrchestratorError",
        py.get_type::<VramOrchestratorError>(),
    )?;
    m.add("InsufficientVram", py.get_type::<InsufficientVram>())?;
    m.add("TaskTimeout", py.get_type::<TaskTimeout>())?;
    m.add("WorkerCrashed", py.get_type::<WorkerCrashed>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("QueueFull", py.get_type::<QueueFull>())?;
    m.add("PoolClosed", py.get_type::<PoolClosed>())?;
    m.add("SetupError", py.get_type::<SetupError>())?;
    m.add("InferenceError", py.get_type::<InferenceError>())?;
    Ok(())
}

/// Builds the exception instance for a failed task, with its structured fields as
/// attributes (e.g. `WorkerCrashed.exit_code`, `TaskTimeout.limit_s`).
pub fn task_error(py: Python<'_>, error: &TaskError) -> PyErr {
    let message = error.to_string();
    let err = match error {
        TaskError::InvalidInput { .. } => InvalidInput::new_err(message),
        TaskError::TaskTimeout { .. } => TaskTimeout::new_err(message),
        TaskError::WorkerCrashed { .. } => WorkerCrashed::new_err(message),
        TaskError::QueueFull { .. } => QueueFull::new_err(message),
        TaskError::PoolClosed | TaskError::PoolBroken { .. } => PoolClosed::new_err(message),
        TaskError::Setup { .. } => SetupError::new_err(message),
        TaskError::Inference { .. } => InferenceError::new_err(message),
        TaskError::InsufficientVram { .. } => InsufficientVram::new_err(message),
        TaskError::Cancelled => pyo3::exceptions::asyncio::CancelledError::new_err(message),
    };
    // Attributes are extras on an exception that already carries the message: a failure to
    // set one must not replace the error being raised.
    let value = err.value(py);
    match error {
        TaskError::TaskTimeout { limit_s } => {
            let _ = value.setattr("limit_s", limit_s);
        }
        TaskError::WorkerCrashed {
            exit_code,
            signal,
            stderr_tail,
            attempts,
            ..
        } => {
            let _ = value.setattr("exit_code", exit_code);
            let _ = value.setattr("signal", signal);
            let _ = value.setattr("stderr_tail", stderr_tail);
            let _ = value.setattr("attempts", attempts);
        }
        TaskError::InsufficientVram {
            required_mb,
            available_mb,
            device,
            ..
        } => {
            let _ = value.setattr("required_mb", required_mb);
            let _ = value.setattr("available_mb", available_mb);
            let _ = value.setattr("device", device);
        }
        TaskError::QueueFull { limit } => {
            let _ = value.setattr("limit", limit);
        }
        _ => {}
    }
    err
}
