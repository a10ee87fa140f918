//! The exception classes, declared once, and the one place task errors become them.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use vram_orch_supervisor::TaskError;

create_exception!(
    _native,
    VramOrchestratorError,
    PyException,
    "Base class of every error raised by vram_orchestrator."
);
create_exception!(
    _native,
    InsufficientVram,
    VramOrchestratorError,
    "Not enough free GPU memory for the task within the admission timeout."
);
create_exception!(
    _native,
    TaskTimeout,
    VramOrchestratorError,
    "The task ran past its time limit; its worker was killed and replaced."
);
create_exception!(
    _native,
    WorkerCrashed,
    VramOrchestratorError,
    "The worker process died while running the task (exit code or signal, stderr tail)."
);
create_exception!(
    _native,
    InvalidInput,
    VramOrchestratorError,
    "The input cannot be OCRed (unreadable, too large, unsupported layout)."
);
create_exception!(
    _native,
    QueueFull,
    VramOrchestratorError,
    "Too many tasks are waiting (VRAM_ORCH_QUEUE_MAX)."
);
create_exception!(
    _native,
    PoolClosed,
    VramOrchestratorError,
    "The pool was closed before the task could run."
);
create_exception!(
    _native,
    SetupError,
    VramOrchestratorError,
    "The pool or its workers cannot be set up; the message says what to fix."
);
create_exception!(
    _native,
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
        TaskError::PoolClosed => PoolClosed::new_err(message),
        TaskError::Setup { .. } => SetupError::new_err(message),
        TaskError::Inference { .. } => InferenceError::new_err(message),
        TaskError::InsufficientVram { .. } => InsufficientVram::new_err(message),
        TaskError::Cancelled => pyo3::exceptions::asyncio::CancelledError::new_err(message),
    };
    let value = err.value(py);
    let set = |name: &str, v: Bound<'_, PyAny>| {
        let _ = value.setattr(name, v);
    };
    match error {
        TaskError::TaskTimeout { limit_s } => set(
            "limit_s",
            limit_s.into_pyobject(py).expect("float").into_any(),
        ),
        TaskError::WorkerCrashed {
            exit_code,
            signal,
            stderr_tail,
            attempts,
            ..
        } => {
            set(
                "exit_code",
                exit_code.into_pyobject(py).expect("int").into_any(),
            );
            set("signal", signal.into_pyobject(py).expect("int").into_any());
            set(
                "stderr_tail",
                stderr_tail.into_pyobject(py).expect("str").into_any(),
            );
            set(
                "attempts",
                attempts.into_pyobject(py).expect("int").into_any(),
            );
        }
        TaskError::InsufficientVram {
            required_mb,
            available_mb,
            device,
            ..
        } => {
            set(
                "required_mb",
                required_mb.into_pyobject(py).expect("float").into_any(),
            );
            set(
                "available_mb",
                available_mb.into_pyobject(py).expect("float").into_any(),
            );
            set("device", device.into_pyobject(py).expect("str").into_any());
        }
        TaskError::QueueFull { limit } => {
            set("limit", limit.into_pyobject(py).expect("int").into_any())
        }
        _ => {}
    }
    err
}
