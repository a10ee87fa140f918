use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use vram_orch_protocol::OcrOptions;

use crate::config::{DeviceChoice, PoolConfig};
use crate::dispatcher::{Command, Dispatcher};
use crate::error::TaskError;
use crate::slots::QueueSlots;
use crate::snapshot::PoolSnapshot;
use crate::task::{Completed, Task, TaskInput};

/// Errors returned by [`Supervisor::submit`] at once, before a task is accepted.
pub type SubmitError = TaskError;

/// The public handle on a pool. Cheap calls from any thread; all work happens on the
/// dispatcher thread.
pub struct Supervisor {
    commands: Sender<Command>,
    slots: Arc<QueueSlots>,
    closed: AtomicBool,
    next_id: AtomicU64,
    default_options: OcrOptions,
    task_timeout: Duration,
    /// Workers run on GPUs: tasks carry their input size for admission.
    gpu: bool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Supervisor {
    /// Starts the dispatcher thread. Every accepted task ends as one [`Completed`] on
    /// `outcomes`.
    pub fn start(config: PoolConfig, outcomes: Sender<Completed>) -> std::io::Result<Supervisor> {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let slots = Arc::new(QueueSlots::new(config.queue_max));
        let default_options = config.default_options;
        let task_timeout = config.task_timeout;
        let gpu = matches!(config.device, DeviceChoice::Cuda(_));
        let dispatcher = Dispatcher::new(config, command_rx, outcomes, Arc::clone(&slots));
        let thread = std::thread::Builder::new()
            .name("vo-dispatcher".to_string())
            .spawn(move || dispatcher.run())?;
        Ok(Supervisor {
            commands,
            slots,
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            default_options,
            task_timeout,
            gpu,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a task. A full queue fails with `QueueFull` at once, or after waiting up to
    /// `queue_wait` for a slot; a closed pool with `PoolClosed`.
    pub fn submit(
        &self,
        input: TaskInput,
        options: Option<OcrOptions>,
        timeout: Option<Duration>,
        queue_wait: Duration,
    ) -> Result<u64, SubmitError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TaskError::PoolClosed);
        }
        if !self.slots.reserve(queue_wait) {
            return Err(TaskError::QueueFull {
                limit: self.slots.max(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let fingerprint = input.fingerprint();
        let pixels = self.gpu.then(|| input.pixels()).flatten();
        let task = Task {
            id,
            input,
            options: options.unwrap_or(self.default_options),
            timeout: timeout.unwrap_or(self.task_timeout),
            submitted: Instant::now(),
            attempts: 0,
            fingerprint,
            pixels,
            vram_wait: None,
        };
        if self.commands.send(Command::Submit(Box::new(task))).is_err() {
            self.slots.release();
            return Err(TaskError::PoolClosed);
        }
        Ok(id)
    }

    /// Removes a task that is still queued (it then completes as `Cancelled`); a running
    /// task is left to finish.
    pub fn cancel(&self, id: u64) {
        let _ = self.commands.send(Command::Cancel(id));
    }

    /// Starts workers ahead of work, up to `count` (bounded by `max_workers`).
    pub fn warm_up(&self, count: usize) {
        let _ = self.commands.send(Command::WarmUp(count));
    }

    /// Ends every idle worker now, so its memory (GPU memory included) is given back;
    /// busy workers finish their task first and later tasks start fresh workers.
    pub fn release_idle(&self) {
        let _ = self.commands.send(Command::ReleaseIdle);
    }

    /// The pool's state now; `None` once the dispatcher has finished.
    pub fn snapshot(&self) -> Option<PoolSnapshot> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.commands.send(Command::Snapshot(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops accepting tasks; `cancel_pending` fails queued and running tasks with
    /// `PoolClosed`, otherwise they finish first. Ends and reaps every worker. Returns
    /// false when `timeout` passed first (workers are then still being ended).
    pub fn close(&self, cancel_pending: bool, timeout: Option<Duration>) -> bool {
        self.closed.store(true, Ordering::Release);
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self
            .commands
            .send(Command::Close {
                cancel_pending,
                done: tx,
            })
            .is_ok()
        {
            let finished = match timeout {
                Some(t) => rx.recv_timeout(t).is_ok(),
                None => rx.recv().is_ok(),
            };
            if !finished {
                return false;
            }
        }
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(handle) = thread.take() {
                let _ = handle.join();
            }
        }
        true
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.close(true, Some(Duration::from_secs(30)));
    }
}
