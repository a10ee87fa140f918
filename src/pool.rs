//! `NativePool`: the Python handle on a supervisor.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use vram_orch_supervisor::{Completed, Supervisor};

use crate::convert;
use crate::errors::{self, SetupError};

/// Owns a supervisor and the thread that hands finished tasks to Python.
///
/// `on_done(task_id, result_dict_or_None, exception_or_None)` is called once per accepted
/// task, from a thread of ours (holding the GIL only for the call), never from the
/// dispatcher, so slow Python code cannot stall scheduling.
#[pyclass(frozen, module = "vram_orchestrator._native")]
pub struct NativePool {
    supervisor: Arc<Supervisor>,
    completer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[pymethods]
impl NativePool {
    #[new]
    fn new(config: &Bound<'_, PyDict>, on_done: Py<PyAny>) -> PyResult<NativePool> {
        let config = convert::pool_config(config)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let supervisor = Supervisor::start(config, tx)
            .map_err(|e| SetupError::new_err(format!("cannot start the supervisor: {e}")))?;
        let completer = std::thread::Builder::new()
            .name("vo-completer".to_string())
            .spawn(move || deliver(rx, on_done))
            .map_err(|e| SetupError::new_err(format!("cannot start a thread: {e}")))?;
        Ok(NativePool {
            supervisor: Arc::new(supervisor),
            completer: std::sync::Mutex::new(Some(completer)),
        })
    }

    /// Queues one image; returns the task id. A full queue raises QueueFull at once, or
    /// after waiting up to `queue_timeout_s` (GIL released) for a slot. With `analyze`
    /// (see `convert::analyze_request`) the task is a page analysis.
    #[pyo3(signature = (image, options=None, timeout_s=None, queue_timeout_s=None, analyze=None))]
    fn submit(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
        timeout_s: Option<f64>,
        queue_timeout_s: Option<f64>,
        analyze: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u64> {
        let mut input = convert::task_input(image)?;
        input.analyze = analyze
            .map(convert::analyze_request)
            .transpose()?
            .map(Arc::new);
        let options = options.map(convert::ocr_options).transpose()?;
        let timeout = timeout_s.map(convert::seconds);
        let wait = convert::seconds(queue_timeout_s.unwrap_or(0.0));
        let supervisor = Arc::clone(&self.supervisor);
        let submitted = if wait.is_zero() {
            supervisor.submit(input, options, timeout, wait)
        } else {
            py.detach(move || supervisor.submit(input, options, timeout, wait))
        };
        submitted.map_err(|e| errors::task_error(py, &e))
    }

    /// Cancels a task: a queued one is removed, a running one's worker is ended; either
    /// completes as cancelled.
    fn cancel(&self, task_id: u64) {
        self.supervisor.cancel(task_id);
    }

    fn warm_up(&self, count: usize) {
        self.supervisor.warm_up(count);
    }

    /// Ends every idle worker now.
    fn release_idle(&self) {
        self.supervisor.release_idle();
    }

    /// The pool's state as JSON (workers, queue, counters, recent exits).
    fn snapshot_json(&self, py: Python<'_>) -> Option<String> {
        let supervisor = Arc::clone(&self.supervisor);
        py.detach(move || supervisor.snapshot())
            .and_then(|s| serde_json::to_string(&s).ok())
    }

    fn is_closed(&self) -> bool {
        self.supervisor.is_closed()
    }

    /// Ends every worker and waits for them (GIL released). Returns False on timeout.
    #[pyo3(signature = (cancel_pending=false, timeout_s=None))]
    fn close(&self, py: Python<'_>, cancel_pending: bool, timeout_s: Option<f64>) -> bool {
        let supervisor = Arc::clone(&self.supervisor);
        let timeout = timeout_s.map(convert::seconds);
        let finished = py.detach(move || supervisor.close(cancel_pending, timeout));
        if finished {
            // The dispatcher has sent every outcome; let the completer deliver them.
            let handle = self.completer.lock().ok().and_then(|mut h| h.take());
            // Never join ourselves (a close() reached from a delivery would panic).
            let handle = handle.filter(|h| h.thread().id() != std::thread::current().id());
            if let Some(handle) = handle {
                py.detach(move || {
                    let _ = handle.join();
                });
            }
        }
        finished
    }
}

fn deliver(outcomes: Receiver<Completed>, on_done: Py<PyAny>) {
    for done in outcomes {
        Python::attach(|py| {
            let call = match &done.outcome {
                Ok(success) => convert::result_dict(py, success)
                    .and_then(|d| on_done.call1(py, (done.id, d, py.None()))),
                Err(error) => {
                    let exc = errors::task_error(py, error).into_value(py);
                    on_done.call1(py, (done.id, py.None(), exc))
                }
            };
            if let Err(e) = call {
                e.write_unraisable(py, None);
            }
        });
    }
}
