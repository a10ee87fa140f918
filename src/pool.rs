//! `NativePool`: the Python handle on a supervisor.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use vram_orch_supervisor::{Completed, Supervisor, TaskError};

use crate::blocking::blocking;
use crate::convert::{self, NativeOcrOptions};
use crate::errors::{self, SetupError};

/// The thread that hands finished tasks to Python, and a channel that disconnects when it
/// has delivered the last one (so waiting for it can be interrupted).
struct Completer {
    handle: JoinHandle<()>,
    finished: Receiver<()>,
}

/// Owns a supervisor and the thread that hands finished tasks to Python.
///
/// `on_done(task_id, result_dict_or_None, exception_or_None)` is called once per accepted
/// task, from a thread of ours (holding the GIL only for the call), never from the
/// dispatcher, so slow Python code cannot stall scheduling.
#[pyclass(frozen, module = "vram_orchestrator._native")]
pub struct NativePool {
    supervisor: Arc<Supervisor>,
    completer: Mutex<Option<Completer>>,
}

#[pymethods]
impl NativePool {
    #[new]
    fn new(config: &Bound<'_, PyAny>, on_done: Py<PyAny>) -> PyResult<NativePool> {
        let config = convert::pool_config(config)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let supervisor = Supervisor::start(config, tx)
            .map_err(|e| SetupError::new_err(format!("cannot start the supervisor: {e}")))?;
        let (finished_tx, finished) = crossbeam_channel::bounded::<()>(0);
        let handle = std::thread::Builder::new()
            .name("vo-completer".to_string())
            .spawn(move || {
                deliver(rx, on_done);
                drop(finished_tx);
            })
            .map_err(|e| SetupError::new_err(format!("cannot start a thread: {e}")))?;
        Ok(NativePool {
            supervisor: Arc::new(supervisor),
            completer: Mutex::new(Some(Completer { handle, finished })),
        })
    }

    /// Queues one image; returns the task id. A full queue raises QueueFull at once, or
    /// after waiting up to `queue_timeout_s` for a slot. With `analyze` (see
    /// `convert::analyze_request`) the task is a page analysis. The input is copied and
    /// hashed without the GIL; Ctrl-C interrupts the wait for a slot.
    #[pyo3(signature = (image, options=None, timeout_s=None, queue_timeout_s=None, analyze=None))]
    fn submit(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        options: Option<NativeOcrOptions>,
        timeout_s: Option<f64>,
        queue_timeout_s: Option<f64>,
        analyze: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u64> {
        let image = convert::image(image)?;
        let analyze = analyze
            .map(convert::analyze_request)
            .transpose()?
            .map(Arc::new);
        let options = options.map(Into::into);
        let timeout = timeout_s.map(convert::seconds);
        let wait = convert::seconds(queue_timeout_s.unwrap_or(0.0));
        let mut input = blocking(py, |_| Some(image.to_input()))?;
        input.analyze = analyze;
        // No deadline: a wait too long for `Instant` (`inf` is held to about 31 years).
        let deadline = Instant::now().checked_add(wait);
        let supervisor = &self.supervisor;
        let submitted = blocking(py, |slice| {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let this = left.min(slice);
            match supervisor.submit(input.clone(), options, timeout, this) {
                // Room may come later: look at signals, then wait again.
                Err(TaskError::QueueFull { .. }) if this < left => None,
                done => Some(done),
            }
        })?;
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
    fn snapshot_json(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let supervisor = &self.supervisor;
        let snapshot = blocking(py, |_| Some(supervisor.snapshot()))?;
        Ok(snapshot.and_then(|s| serde_json::to_string(&s).ok()))
    }

    fn is_closed(&self) -> bool {
        self.supervisor.is_closed()
    }

    /// Ends every worker and waits for them. When `timeout_s` passes first, or Ctrl-C
    /// interrupts the wait, what has not finished fails with PoolClosed and the workers
    /// are killed; then it returns False (or raises KeyboardInterrupt).
    #[pyo3(signature = (cancel_pending=false, timeout_s=None))]
    fn close(
        &self,
        py: Python<'_>,
        cancel_pending: bool,
        timeout_s: Option<f64>,
    ) -> PyResult<bool> {
        let timeout = timeout_s.map(convert::seconds);
        // The supervisor waits in one call: it runs on a thread of its own, so this one can
        // look at signals meanwhile.
        let (tx, done) = crossbeam_channel::bounded(1);
        let supervisor = Arc::clone(&self.supervisor);
        std::thread::Builder::new()
            .name("vo-close".to_string())
            .spawn(move || {
                let _ = tx.send(supervisor.close(cancel_pending, timeout));
            })
            .map_err(|e| SetupError::new_err(format!("cannot start a thread: {e}")))?;
        let waited = blocking(py, |slice| match done.recv_timeout(slice) {
            Ok(finished) => Some(finished),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(false),
        });
        if !matches!(waited, Ok(true)) {
            // Cut short: nothing may go on running for a caller that stopped waiting.
            // The dispatcher fails what remains with PoolClosed and kills the workers.
            let supervisor = &self.supervisor;
            blocking(py, |_| Some(supervisor.close(true, Some(Duration::ZERO))))?;
            return waited;
        }
        // The dispatcher has sent every outcome; let the completer deliver them.
        let completer = self.completer.lock().ok().and_then(|mut c| c.take());
        // Never wait for ourselves (a close() reached from a delivery).
        let completer = completer.filter(|c| c.handle.thread().id() != std::thread::current().id());
        if let Some(completer) = completer {
            let delivered = blocking(py, |slice| match completer.finished.recv_timeout(slice) {
                Err(RecvTimeoutError::Timeout) => None,
                _ => Some(()),
            });
            if let Err(interrupted) = delivered {
                // A later close() waits for the deliveries instead.
                if let Ok(mut slot) = self.completer.lock() {
                    *slot = Some(completer);
                }
                return Err(interrupted);
            }
            let _ = completer.handle.join();
        }
        Ok(true)
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
