//! The dispatcher thread: the only owner of the queue and the workers.
//!
//! It reacts to commands (from the [`crate::Supervisor`] handle), worker events, GPU
//! readings and its own deadlines; each kind of work has a module here. Workers are known
//! only through [`Spawner`] and [`crate::worker::WorkerHandle`], so `tests` drives the whole
//! state machine with fake workers.

mod gpu_memory;
mod recovery;
mod schedule;
mod timers;
mod workers;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use nix::sys::signal::Signal;

use crate::config::PoolConfig;
use crate::error::TaskError;
use crate::sampler::{Reading, Sampler};
use crate::slots::QueueSlots;
use crate::snapshot::{PoolSnapshot, WorkerSnapshot};
use crate::supervisor::Ledger;
use crate::task::{Completed, Task, TaskOutcome};
use crate::vram::GpuMemory;
use crate::worker::{Spawner, WorkerEvent, WorkerEvents};
use workers::{ExitReason, State, Worker};

/// With an idle timeout of 0 a worker still waits this long for the next task, so a caller
/// that sends tasks one after another (the common synchronous loop) reuses the warm worker
/// instead of paying a spawn per task. Far below the 0.5 s the idle contract allows.
const IDLE_LINGER: Duration = Duration::from_millis(100);
/// Inputs remembered as having crashed a worker (no retry for them).
const CRASHED_INPUTS_KEPT: usize = 256;
const RECENT_EXITS_KEPT: usize = 32;
/// Starts in a row killed or stopped from outside that are replaced before the queue fails.
const START_RETRIES: u32 = 2;
/// Python logger name of pool events (pyo3-log maps targets onto logger names).
const LOG_TARGET: &str = "vram_orchestrator.pool";

pub(crate) enum Command {
    Submit(Box<Task>),
    Cancel(u64),
    WarmUp(usize),
    /// End every idle worker now (memory back on demand, whatever the idle policy).
    ReleaseIdle,
    Snapshot(Sender<PoolSnapshot>),
    Close {
        cancel_pending: bool,
        done: Sender<()>,
    },
    /// Fails the dispatcher thread, for tests of what follows.
    #[cfg(test)]
    Panic,
}

pub(crate) struct Dispatcher {
    config: PoolConfig,
    spawner: Box<dyn Spawner>,
    commands: Receiver<Command>,
    events_tx: Sender<(u64, WorkerEvent)>,
    events: WorkerEvents,
    outcomes: Sender<Completed>,
    /// Accepted tasks not ended yet, shared with the supervisor (see [`Ledger`]).
    ledger: Ledger,
    /// Queue slots, shared with the handle (which reserves them).
    slots: Arc<QueueSlots>,
    queue: VecDeque<Box<Task>>,
    workers: BTreeMap<u64, Worker>,
    next_worker_id: u64,
    crashed_inputs: VecDeque<u64>,
    /// Last reason a worker could not start, for the error of tasks that then cannot run.
    last_startup_error: Option<String>,
    closing: Option<bool>,
    close_waiters: Vec<Sender<()>>,
    stats: PoolSnapshot,
    /// GPU memory bookkeeping and its readings (CUDA devices only).
    gpu: Option<GpuMemory>,
    sampler: Option<Sampler>,
    readings: Receiver<Reading>,
    /// A standby worker failed to start: no more standbys (they would fail the same way).
    standby_broken: bool,
    /// Starts in a row that were killed or stopped from outside, and replaced.
    start_retries: u32,
}

impl Dispatcher {
    pub fn new(
        config: PoolConfig,
        commands: Receiver<Command>,
        outcomes: Sender<Completed>,
        ledger: Ledger,
        slots: Arc<QueueSlots>,
        spawner: Box<dyn Spawner>,
    ) -> Dispatcher {
        let (events_tx, events) = crossbeam_channel::unbounded();
        let stats = PoolSnapshot {
            queue_max: config.queue_max,
            ..PoolSnapshot::default()
        };
        let (gpu, sampler, readings) = match gpu_memory::start(&config) {
            Some((gm, Ok((sampler, readings)))) => (Some(gm), Some(sampler), readings),
            Some((mut gm, Err(e))) => {
                // No readings will come: admit without measuring rather than wait forever.
                let reason = format!("cannot start the GPU sampler thread: {e}");
                log::error!(target: LOG_TARGET, "{reason}");
                gm.on_reading(
                    Instant::now(),
                    crate::gpu::GpuReport::Unavailable { reason },
                );
                (Some(gm), None, crossbeam_channel::never())
            }
            None => (None, None, crossbeam_channel::never()),
        };
        Dispatcher {
            spawner,
            gpu,
            sampler,
            readings,
            standby_broken: false,
            start_retries: 0,
            config,
            commands,
            events_tx,
            events,
            outcomes,
            ledger,
            slots,
            queue: VecDeque::new(),
            workers: BTreeMap::new(),
            next_worker_id: 1,
            crashed_inputs: VecDeque::new(),
            last_startup_error: None,
            closing: None,
            close_waiters: Vec::new(),
            stats,
        }
    }

    pub fn run(mut self) {
        loop {
            let wait = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(1));
            select! {
                recv(self.commands) -> cmd => match cmd {
                    Ok(cmd) => self.on_command(cmd),
                    // Every handle is gone: close without waiting for anyone.
                    Err(_) => self.begin_close(true),
                },
                recv(self.events) -> event => {
                    if let Ok((id, event)) = event {
                        self.on_worker_event(id, event);
                    }
                },
                recv(self.readings) -> reading => {
                    if let Ok((at, report)) = reading {
                        self.on_reading(at, report);
                    }
                },
                default(wait) => {},
            }
            self.on_timers(Instant::now());
            self.schedule();
            self.pace_sampler();
            if self.closing.is_some() && self.queue.is_empty() && self.workers.is_empty() {
                break;
            }
        }
        if let Some(gm) = self.gpu.as_mut() {
            gm.finish_saving(Instant::now());
        }
        self.stats.closed = true;
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
        // Answer snapshot requests that raced with the close, then stop.
        while let Ok(cmd) = self.commands.try_recv() {
            self.on_command_after_close(cmd);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            #[cfg(test)]
            Command::Panic => panic!("dispatcher failure asked for by a test"),
            Command::Submit(task) => {
                self.stats.submitted += 1;
                if self.closing == Some(true) {
                    self.slots.release();
                    self.complete(task.id, Err(TaskError::PoolClosed));
                } else {
                    self.queue.push_back(task);
                }
            }
            Command::Cancel(id) => {
                if let Some(pos) = self.queue.iter().position(|t| t.id == id) {
                    let task = self.queue.remove(pos).expect("position is valid");
                    self.slots.release();
                    self.complete(task.id, Err(TaskError::Cancelled));
                } else {
                    self.cancel_running(id);
                }
            }
            Command::WarmUp(count) => {
                let live = self.live_workers();
                for _ in live..count.min(self.config.max_workers) {
                    let gpu = self.gpu.as_ref().and_then(GpuMemory::roomiest_device);
                    if self.spawn(gpu, false).is_none() {
                        break;
                    }
                }
            }
            Command::ReleaseIdle => {
                // A standby holds no GPU memory: it stays.
                let idle: Vec<u64> = self
                    .workers
                    .iter()
                    .filter(|(_, w)| matches!(w.state, State::Idle { .. }) && !w.standby)
                    .map(|(id, _)| *id)
                    .collect();
                for id in idle {
                    let detail = "released on request".to_string();
                    self.stop(id, ExitReason::Idle, detail, None);
                }
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Close {
                cancel_pending,
                done,
            } => {
                self.close_waiters.push(done);
                self.begin_close(cancel_pending);
            }
        }
    }

    fn on_command_after_close(&mut self, cmd: Command) {
        match cmd {
            Command::Submit(task) => {
                self.slots.release();
                self.complete(task.id, Err(TaskError::PoolClosed));
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Close { done, .. } => {
                let _ = done.send(());
            }
            Command::Cancel(_) | Command::WarmUp(_) | Command::ReleaseIdle => {}
            #[cfg(test)]
            Command::Panic => panic!("dispatcher failure asked for by a test"),
        }
    }

    /// Stops taking tasks. With `cancel_pending` (or a second close), queued and running
    /// tasks end with `PoolClosed` and workers are killed; otherwise the queue drains first.
    fn begin_close(&mut self, cancel_pending: bool) {
        let cancel = cancel_pending || self.closing == Some(true);
        self.closing = Some(cancel);
        if !cancel {
            return; // drain: workers stop once the queue is empty (schedule)
        }
        for task in std::mem::take(&mut self.queue) {
            self.slots.release();
            self.complete(task.id, Err(TaskError::PoolClosed));
        }
        let ids: Vec<u64> = self.workers.keys().copied().collect();
        for id in ids {
            if let Some(task) = self.take_busy_task(id) {
                self.complete(task.id, Err(TaskError::PoolClosed));
            }
            self.stop(id, ExitReason::Close, String::new(), Some(Signal::SIGKILL));
        }
    }

    // ---- outcomes and views ------------------------------------------------------------

    fn complete(&mut self, id: u64, outcome: TaskOutcome) {
        match &outcome {
            Ok(_) => self.stats.succeeded += 1,
            Err(_) => self.stats.failed += 1,
        }
        crate::supervisor::settle(&self.ledger, id);
        let _ = self.outcomes.send(Completed { id, outcome });
    }

    fn snapshot(&self) -> PoolSnapshot {
        let now = Instant::now();
        let workers = self
            .workers
            .iter()
            .map(|(id, w)| WorkerSnapshot {
                pid: w.process.pid(),
                state: match w.state {
                    State::Starting => "starting",
                    State::Idle { .. } => "idle",
                    State::Busy(_) => "busy",
                    State::Stopping { .. } => "stopping",
                },
                device: w.device(),
                tasks_served: w.tasks_served,
                age_s: (now - w.spawned).as_secs_f64(),
                ready_ms: w.hello.as_ref().map(|h| h.load_ms),
                rss_mb: w.process.rss_bytes().map(|b| b as f64 / 1048576.0),
                standby: w.standby,
                gpu_mb: self.gpu.as_ref().and_then(|gm| gm.worker_mb(*id)),
            })
            .collect();
        PoolSnapshot {
            workers,
            queue_length: self.queue.len(),
            in_flight: self
                .workers
                .values()
                .filter(|w| matches!(w.state, State::Busy(_)))
                .count(),
            closed: self.closing.is_some(),
            gpu: self.gpu.as_ref().map(GpuMemory::snapshot),
            waiting_for_vram: self.queue.iter().filter(|t| t.vram_wait.is_some()).count(),
            ..self.stats.clone()
        }
    }
}
