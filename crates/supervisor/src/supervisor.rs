use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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
use crate::worker::{ProcessSpawner, Spawner};

/// Errors returned by [`Supervisor::submit`] at once, before a task is accepted.
pub type SubmitError = TaskError;

/// The ids of accepted tasks that have not ended: what is owed to callers. The dispatcher
/// settles an id as it sends the task's outcome; if the dispatcher thread ever fails, the
/// supervisor ends every id still here, so no caller waits for ever.
pub(crate) type Ledger = Arc<Mutex<HashSet<u64>>>;

/// The ledger even after a panic while it was held (a set of ids stays consistent).
fn ledger(l: &Ledger) -> MutexGuard<'_, HashSet<u64>> {
    l.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Marks a task as ended; false if it was not owed (already ended).
pub(crate) fn settle(l: &Ledger, id: u64) -> bool {
    ledger(l).remove(&id)
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "no message"
    }
}

/// The public handle on a pool. Cheap calls from any thread; all work happens on the
/// dispatcher thread.
pub struct Supervisor {
    commands: Sender<Command>,
    slots: Arc<QueueSlots>,
    closed: Arc<AtomicBool>,
    /// Why the dispatcher thread failed, once it has.
    broken: Arc<Mutex<Option<String>>>,
    ledger: Ledger,
    next_id: AtomicU64,
    default_options: OcrOptions,
    task_timeout: Duration,
    /// The largest frame a worker reads: a bigger input would cost the worker, not the task.
    max_frame_bytes: usize,
    /// Workers run on GPUs: tasks carry their input size for admission.
    gpu: bool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Supervisor {
    /// Starts the dispatcher thread. Every accepted task ends as one [`Completed`] on
    /// `outcomes`.
    pub fn start(config: PoolConfig, outcomes: Sender<Completed>) -> std::io::Result<Supervisor> {
        Supervisor::start_with(config, outcomes, Box::new(ProcessSpawner))
    }

    /// [`Supervisor::start`] with workers from `spawner` (fake ones in tests).
    pub(crate) fn start_with(
        config: PoolConfig,
        outcomes: Sender<Completed>,
        spawner: Box<dyn Spawner>,
    ) -> std::io::Result<Supervisor> {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let slots = Arc::new(QueueSlots::new(config.queue_max));
        let default_options = config.default_options;
        let task_timeout = config.task_timeout;
        let max_frame_bytes = config.max_frame_bytes;
        let gpu = matches!(config.device, DeviceChoice::Cuda(_));
        let owed: Ledger = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let broken: Arc<Mutex<Option<String>>> = Arc::default();
        let dispatcher = Dispatcher::new(
            config,
            command_rx,
            outcomes.clone(),
            Arc::clone(&owed),
            Arc::clone(&slots),
            spawner,
        );
        let (ledger_, closed_, broken_) =
            (Arc::clone(&owed), Arc::clone(&closed), Arc::clone(&broken));
        let thread = std::thread::Builder::new()
            .name("vo-dispatcher".to_string())
            .spawn(move || {
                // Unwinding drops the dispatcher and with it the workers' pipes: they exit.
                let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| dispatcher.run()))
                else {
                    return;
                };
                let message = format!(
                    "the pool's dispatcher thread failed ({}), a defect of vram-orchestrator; \
                     this pool takes no more tasks: close it and create a new one",
                    panic_text(panic.as_ref())
                );
                log::error!(target: "vram_orchestrator.pool", "{message}");
                closed_.store(true, Ordering::Release);
                *broken_.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
                let ids: Vec<u64> = ledger(&ledger_).drain().collect();
                for id in ids {
                    let outcome = Err(TaskError::PoolBroken {
                        message: message.clone(),
                    });
                    let _ = outcomes.send(Completed { id, outcome });
                }
            })?;
        Ok(Supervisor {
            commands,
            slots,
            closed,
            broken,
            ledger: owed,
            next_id: AtomicU64::new(1),
            default_options,
            task_timeout,
            max_frame_bytes,
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
            return Err(self.closed_error());
        }
        let options = options.unwrap_or(self.default_options);
        let frame = input.frame_len(&options);
        if frame > self.max_frame_bytes {
            return Err(TaskError::InvalidInput {
                message: format!(
                    "this input takes {frame} bytes to send to a worker, more than the {} a \
                     worker accepts (VRAM_ORCH_MAX_INPUT_BYTES plus 1 MiB for the request): \
                     send a smaller or compressed image, or raise VRAM_ORCH_MAX_INPUT_BYTES",
                    self.max_frame_bytes
                ),
            });
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
            options,
            timeout: timeout.unwrap_or(self.task_timeout),
            submitted: Instant::now(),
            attempts: 0,
            fingerprint,
            pixels,
            vram_wait: None,
            fresh_worker_from: None,
        };
        ledger(&self.ledger).insert(id);
        if self.commands.send(Command::Submit(Box::new(task))).is_err() {
            self.slots.release();
            // Not settled: the failed dispatcher's handler took it and ends it.
            if settle(&self.ledger, id) {
                return Err(self.closed_error());
            }
        }
        Ok(id)
    }

    /// `PoolBroken` with its reason once the dispatcher failed, else `PoolClosed`.
    fn closed_error(&self) -> TaskError {
        match self
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(message) => TaskError::PoolBroken { message },
            None => TaskError::PoolClosed,
        }
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
            // Disconnected is finished too: the dispatcher ended between its last look at
            // the commands and dropping them, and this Close went unread with them.
            let timed_out = match timeout {
                Some(t) => matches!(
                    rx.recv_timeout(t),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout)
                ),
                None => {
                    let _ = rx.recv();
                    false
                }
            };
            if timed_out {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use vram_orch_protocol::InputKind;

    use super::*;

    /// A pool whose worker never says hello (`cat` waits on its stdin): tasks stay queued.
    fn stalled_pool() -> (Supervisor, crossbeam_channel::Receiver<Completed>) {
        let config = PoolConfig {
            worker_bin: PathBuf::from("/bin/cat"),
            max_workers: 1,
            ..crate::dispatcher::fake::config()
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        (Supervisor::start(config, tx).expect("supervisor"), rx)
    }

    fn input() -> TaskInput {
        TaskInput {
            kind: InputKind::Encoded,
            payload: Arc::new(vec![0u8; 8]),
            analyze: None,
        }
    }

    #[test]
    fn a_failed_dispatcher_ends_every_accepted_task_and_takes_no_more() {
        let (pool, outcomes) = stalled_pool();
        let wait = Duration::ZERO;
        let ids: HashSet<u64> = (0..3)
            .map(|_| pool.submit(input(), None, None, wait).expect("accepted"))
            .collect();
        pool.commands
            .send(Command::Panic)
            .expect("dispatcher alive");
        let mut ended = HashSet::new();
        for _ in 0..3 {
            let done = outcomes
                .recv_timeout(Duration::from_secs(10))
                .expect("every accepted task ends");
            assert!(
                matches!(&done.outcome, Err(TaskError::PoolBroken { message }) if message.contains("asked for by a test")),
                "{:?}",
                done.outcome
            );
            ended.insert(done.id);
        }
        assert_eq!(ended, ids);
        assert!(
            outcomes.recv_timeout(Duration::from_millis(200)).is_err(),
            "each ends once"
        );
        assert!(pool.is_closed());
        match pool.submit(input(), None, None, wait) {
            Err(TaskError::PoolBroken { message }) => assert!(message.contains("create a new one")),
            other => panic!("a broken pool accepted a task: {other:?}"),
        }
        assert!(pool.close(true, Some(Duration::from_secs(5))));
    }

    #[test]
    fn tasks_that_end_normally_leave_the_ledger() {
        let (pool, outcomes) = stalled_pool();
        let id = pool.submit(input(), None, None, Duration::ZERO).unwrap();
        assert!(ledger(&pool.ledger).contains(&id));
        pool.cancel(id);
        let done = outcomes.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(done.id, id);
        assert!(ledger(&pool.ledger).is_empty());
    }
}
