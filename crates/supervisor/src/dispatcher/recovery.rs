//! Tasks whose worker died or could not start: retried on a fresh worker, or failed
//! with the reason.

use nix::sys::signal::Signal;

use super::workers::{last_lines, ExitReason, State};
use super::{Dispatcher, CRASHED_INPUTS_KEPT, LOG_TARGET};
use crate::error::TaskError;
use crate::task::Task;

impl Dispatcher {
    /// A running task is cancelled by ending its worker (a model run cannot be stopped
    /// otherwise), so its memory returns now; the task completes as cancelled.
    pub(super) fn cancel_running(&mut self, task_id: u64) {
        let running = self.workers.iter().find_map(|(worker, w)| match &w.state {
            State::Busy(busy) if busy.task.id == task_id => Some(*worker),
            _ => None,
        });
        let Some(worker) = running else {
            return; // finished meanwhile, or unknown
        };
        let detail = "its task was cancelled".to_string();
        self.stop(worker, ExitReason::Cancel, detail, Some(Signal::SIGKILL));
        let task = match self.workers.get_mut(&worker).map(|w| &mut w.state) {
            Some(State::Stopping { task, .. }) => task.take(),
            _ => None,
        };
        if let Some(task) = task {
            self.complete(task.id, Err(TaskError::Cancelled));
        }
    }

    /// A worker died while running `task`: retry on a fresh worker, or fail it.
    pub(super) fn on_task_lost(
        &mut self,
        task: Box<Task>,
        pid: u32,
        summary: &str,
        exit_code: Option<i32>,
        signal: Option<i32>,
        stderr_tail: String,
    ) {
        // A poison input submitted again is not retried; this task's own retries are
        // bounded by max_retries alone. A worker killed from outside (SIGKILL, SIGTERM: an
        // operator, the OOM killer) does not mark its input as poison.
        let crashed_before = task.attempts == 1 && self.crashed_inputs.contains(&task.fingerprint);
        let outside = [
            Signal::SIGKILL,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ]
        .iter()
        .any(|s| signal == Some(*s as i32));
        if !outside && !self.crashed_inputs.contains(&task.fingerprint) {
            if self.crashed_inputs.len() == CRASHED_INPUTS_KEPT {
                self.crashed_inputs.pop_front();
            }
            self.crashed_inputs.push_back(task.fingerprint);
        }
        let retries_left = task.attempts <= self.config.max_retries;
        if retries_left && !crashed_before && self.closing != Some(true) {
            log::warn!(
            target: LOG_TARGET,
                "retrying task {} on a fresh worker (attempt {} of {})",
                task.id,
                task.attempts + 1,
                self.config.max_retries + 1
            );
            self.stats.retried += 1;
            let mut task = task;
            task.fresh_worker_from = Some(self.next_worker_id);
            self.slots.put_back();
            self.queue.push_front(task);
            return;
        }
        let why = if crashed_before {
            "this input crashed a worker before, so it was not retried".to_string()
        } else if self.closing == Some(true) {
            "the pool is closing, so it was not retried".to_string()
        } else if task.attempts > 1 {
            format!(
                "every one of its {} attempts crashed a worker; VRAM_ORCH_MAX_RETRIES={}",
                task.attempts, self.config.max_retries
            )
        } else {
            "not retried: VRAM_ORCH_MAX_RETRIES=0".to_string()
        };
        let output = last_lines(&stderr_tail, 10);
        let output = if output.trim().is_empty() {
            "(the worker wrote nothing)".to_string()
        } else {
            output
        };
        let message = format!(
            "worker {pid} {summary} while running this task ({why}); other tasks are \
             unaffected. Last worker output:\n{output}"
        );
        self.complete(
            task.id,
            Err(TaskError::WorkerCrashed {
                message,
                exit_code,
                signal,
                stderr_tail,
                attempts: task.attempts,
            }),
        );
    }

    /// A start failed and no worker is ready to run the queue: fail the queue rather than
    /// respawn in a loop (workers still starting would most likely fail the same way).
    pub(super) fn fail_queue_if_no_worker(&mut self) {
        let ready = self
            .workers
            .values()
            .any(|w| matches!(w.state, State::Idle { .. } | State::Busy(_)));
        if ready {
            return;
        }
        let message = self
            .last_startup_error
            .clone()
            .unwrap_or_else(|| "the worker could not start".to_string());
        for task in std::mem::take(&mut self.queue) {
            self.slots.release();
            self.complete(
                task.id,
                Err(TaskError::Setup {
                    message: message.clone(),
                }),
            );
        }
    }
}
