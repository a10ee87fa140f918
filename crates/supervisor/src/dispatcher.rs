//! The dispatcher thread: the only owner of the queue and the workers.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use nix::sys::signal::Signal;
use vram_orch_protocol::{ErrorKind, Hello, Request, Response, PROTOCOL_VERSION};

use crate::config::{DeviceChoice, PoolConfig};
use crate::error::TaskError;
use crate::gpu::pid_namespace_is_nested;
use crate::procfs;
use crate::sampler::{Reading, Sampler};
use crate::slots::QueueSlots;
use crate::snapshot::{ExitRecord, PoolSnapshot, WorkerSnapshot};
use crate::supervisor::Ledger;
use crate::task::{Completed, Task, TaskOutcome, TaskSuccess, WorkerStamp};
use crate::vram::{GpuMemory, Placement, VramPolicy};
use crate::worker::{describe_status, WorkerEvent, WorkerEvents, WorkerProcess};

/// With an idle timeout of 0 a worker still waits this long for the next task, so a caller
/// that sends tasks one after another (the common synchronous loop) reuses the warm worker
/// instead of paying a spawn per task. Far below the 0.5 s the idle contract allows.
const IDLE_LINGER: Duration = Duration::from_millis(100);
/// Inputs remembered as having crashed a worker (no retry for them).
const CRASHED_INPUTS_KEPT: usize = 256;
const RECENT_EXITS_KEPT: usize = 32;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitReason {
    Idle,
    Recycle,
    Timeout,
    Crash,
    Close,
    StartupFailed,
    ProtocolError,
    Cancel,
}

impl ExitReason {
    fn as_str(self) -> &'static str {
        match self {
            ExitReason::Idle => "idle",
            ExitReason::Recycle => "recycle",
            ExitReason::Timeout => "timeout",
            ExitReason::Crash => "crash",
            ExitReason::Close => "close",
            ExitReason::StartupFailed => "startup_failed",
            ExitReason::ProtocolError => "protocol_error",
            ExitReason::Cancel => "cancel",
        }
    }
}

struct Busy {
    task: Box<Task>,
    started: Instant,
    deadline: Instant,
}

enum State {
    Starting,
    Idle {
        since: Instant,
    },
    Busy(Busy),
    /// Asked to go. `task` is the one it was running when it went wrong (a malformed
    /// frame): it ends, retried or failed, once the process has exited.
    Stopping {
        kill_at: Option<Instant>,
        task: Option<Box<Task>>,
    },
}

struct Worker {
    process: WorkerProcess,
    /// The GPU (NVML index) it is pinned to.
    gpu: Option<u32>,
    /// Started in standby (no sessions, no CUDA context) and not given a task yet.
    standby: bool,
    state: State,
    spawned: Instant,
    hello: Option<Hello>,
    tasks_served: u64,
    /// Why we asked it to go (None: it went by itself, a crash).
    stop_reason: Option<(ExitReason, String)>,
}

impl Worker {
    fn device(&self) -> String {
        match self.gpu {
            Some(n) => format!("cuda:{n}"),
            None => self
                .hello
                .as_ref()
                .map(|h| h.device.clone())
                .unwrap_or_default(),
        }
    }
}

pub(crate) struct Dispatcher {
    config: PoolConfig,
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
}

impl Dispatcher {
    pub fn new(
        config: PoolConfig,
        commands: Receiver<Command>,
        outcomes: Sender<Completed>,
        ledger: Ledger,
        slots: Arc<QueueSlots>,
    ) -> Dispatcher {
        let (events_tx, events) = crossbeam_channel::unbounded();
        let stats = PoolSnapshot {
            queue_max: config.queue_max,
            ..PoolSnapshot::default()
        };
        let (gpu, sampler, readings) = match gpu_memory(&config) {
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
            gpu,
            sampler,
            readings,
            standby_broken: false,
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
            gm.save_peaks(Instant::now(), true);
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

    /// A running task is cancelled by ending its worker (a model run cannot be stopped
    /// otherwise), so its memory returns now; the task completes as cancelled.
    fn cancel_running(&mut self, task_id: u64) {
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

    // ---- workers -------------------------------------------------------------------

    fn live_workers(&self) -> usize {
        self.workers
            .values()
            .filter(|w| !matches!(w.state, State::Stopping { .. }))
            .count()
    }

    /// Starts a worker, pinned to NVML device `gpu` when given; returns its id.
    fn spawn(&mut self, gpu: Option<u32>, standby: bool) -> Option<u64> {
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let visible = gpu.map(|n| {
            self.gpu
                .as_ref()
                .and_then(|gm| gm.uuid_of(n))
                .unwrap_or_else(|| n.to_string())
        });
        let spawned = WorkerProcess::spawn(
            id,
            &self.config,
            visible.as_deref(),
            standby,
            self.events_tx.clone(),
        );
        match spawned {
            Ok(process) => {
                let on = gpu.map_or("cpu".to_string(), |n| format!("cuda:{n}"));
                let kind = if standby { "standby worker" } else { "worker" };
                log::debug!(target: LOG_TARGET, "{kind} {} spawned on {on}", process.pid);
                self.stats.spawned += 1;
                if let (Some(gm), Some(n)) = (self.gpu.as_mut(), gpu) {
                    gm.track(id, process.pid, n);
                }
                self.workers.insert(
                    id,
                    Worker {
                        process,
                        gpu,
                        standby,
                        state: State::Starting,
                        spawned: Instant::now(),
                        hello: None,
                        tasks_served: 0,
                        stop_reason: None,
                    },
                );
                Some(id)
            }
            Err(e) => {
                let message = format!(
                    "cannot start the worker {}: {e}",
                    self.config.worker_bin.display()
                );
                log::error!(target: LOG_TARGET, "{message}");
                self.last_startup_error = Some(message);
                self.fail_queue_if_no_worker();
                None
            }
        }
    }

    /// Asks a worker to go: closes its stdin (a healthy worker exits on EOF), sends
    /// `signal` if given, and arms SIGKILL after the grace period.
    fn stop(&mut self, id: u64, reason: ExitReason, detail: String, signal: Option<Signal>) {
        let grace = self.config.kill_grace;
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        if worker.stop_reason.is_none() {
            worker.stop_reason = Some((reason, detail));
        }
        worker.process.close_stdin();
        if let Some(sig) = signal {
            worker.process.signal(sig);
        }
        let kill_at = (signal != Some(Signal::SIGKILL)).then(|| Instant::now() + grace);
        let task = match std::mem::replace(&mut worker.state, State::Starting) {
            State::Busy(busy) => Some(busy.task),
            State::Stopping { task, .. } => task,
            State::Starting | State::Idle { .. } => None,
        };
        worker.state = State::Stopping { kill_at, task };
    }

    fn take_busy_task(&mut self, id: u64) -> Option<Box<Task>> {
        let worker = self.workers.get_mut(&id)?;
        if !matches!(worker.state, State::Busy(_)) {
            return None;
        }
        let stopping = State::Stopping {
            kill_at: None,
            task: None,
        };
        match std::mem::replace(&mut worker.state, stopping) {
            State::Busy(busy) => Some(busy.task),
            _ => unreachable!("checked above"),
        }
    }

    fn on_worker_event(&mut self, id: u64, event: WorkerEvent) {
        match event {
            WorkerEvent::Frame(frame) => self.on_frame(id, frame),
            WorkerEvent::Garbage(message) => {
                if let Some(w) = self.workers.get(&id) {
                    log::error!(target: LOG_TARGET, "worker {} sent a malformed frame: {message}", w.process.pid);
                }
                self.stop(
                    id,
                    ExitReason::ProtocolError,
                    format!("sent a malformed frame ({message})"),
                    Some(Signal::SIGKILL),
                );
            }
            WorkerEvent::Exited {
                status,
                stderr_tail,
            } => self.on_exit(id, status, stderr_tail),
        }
    }

    fn on_frame(&mut self, id: u64, frame: Response) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        match frame {
            Response::Hello(hello) => {
                if hello.protocol_version != PROTOCOL_VERSION {
                    let detail = format!(
                        "speaks protocol {} but the extension speaks {PROTOCOL_VERSION}: \
                         reinstall vram-orchestrator",
                        hello.protocol_version
                    );
                    self.last_startup_error = Some(detail.clone());
                    self.stop(id, ExitReason::StartupFailed, detail, Some(Signal::SIGKILL));
                    return;
                }
                let ready_ms = worker.spawned.elapsed().as_secs_f64() * 1e3;
                log::info!(
                target: LOG_TARGET,
                        "worker {} ready on {} in {ready_ms:.0} ms (ONNX Runtime {})",
                        worker.process.pid,
                        hello.device,
                        hello.ort_version
                    );
                worker.standby = hello.standby;
                worker.hello = Some(hello);
                if matches!(worker.state, State::Starting) {
                    worker.state = State::Idle {
                        since: Instant::now(),
                    };
                }
            }
            Response::OcrDone {
                id: task_id,
                result,
            } => {
                if let Some(busy) = self.finish_busy(id, task_id) {
                    let now = Instant::now();
                    let vram_peak_mb = self.gpu.as_mut().and_then(|gm| gm.task_finished(id, now));
                    let worker = &self.workers[&id];
                    let success = TaskSuccess {
                        result,
                        queue_ms: ms(busy.started - busy.task.submitted),
                        total_ms: ms(busy.task.submitted.elapsed()),
                        worker: WorkerStamp {
                            pid: worker.process.pid,
                            device: worker.device(),
                            tasks_served: worker.tasks_served,
                        },
                        attempts: busy.task.attempts,
                        vram_peak_mb,
                    };
                    self.complete(task_id, Ok(success));
                    self.after_task(id);
                }
            }
            Response::Error {
                id: Some(task_id),
                kind,
                message,
            } => {
                if let Some(_busy) = self.finish_busy(id, task_id) {
                    if let Some(gm) = self.gpu.as_mut() {
                        gm.task_finished(id, Instant::now());
                    }
                    self.complete(task_id, Err(task_error(kind, message)));
                    self.after_task(id);
                }
            }
            Response::Error {
                id: None,
                kind,
                message,
            } => {
                // The worker is about to exit (startup or protocol failure).
                log::error!(target: LOG_TARGET, "worker {}: {message}", worker.process.pid);
                if kind == ErrorKind::Setup {
                    self.last_startup_error = Some(message.clone());
                    worker.stop_reason = Some((ExitReason::StartupFailed, message));
                }
            }
            Response::Pong { .. } | Response::Info { .. } => {}
        }
    }

    /// Takes the busy task `task_id` off worker `id`, which becomes idle.
    fn finish_busy(&mut self, id: u64, task_id: u64) -> Option<Busy> {
        let worker = self.workers.get_mut(&id)?;
        match &worker.state {
            State::Busy(busy) if busy.task.id == task_id => {}
            _ => {
                log::warn!(
                target: LOG_TARGET,
                        "worker {} answered task {task_id}, which it was not running",
                        worker.process.pid
                    );
                return None;
            }
        }
        worker.tasks_served += 1;
        let now = Instant::now();
        match std::mem::replace(&mut worker.state, State::Idle { since: now }) {
            State::Busy(busy) => Some(busy),
            _ => unreachable!("checked above"),
        }
    }

    /// Recycle checks between tasks.
    fn after_task(&mut self, id: u64) {
        let Some(worker) = self.workers.get(&id) else {
            return;
        };
        let max_tasks = self.config.max_tasks_per_worker;
        if max_tasks > 0 && worker.tasks_served >= max_tasks {
            let detail = format!("served {max_tasks} tasks (max_tasks_per_worker)");
            self.stop(id, ExitReason::Recycle, detail, None);
            return;
        }
        let limit_mb = self.config.worker_rss_limit_mb;
        if limit_mb > 0 {
            let rss_mb = procfs::rss_bytes(worker.process.pid).unwrap_or(0) >> 20;
            if rss_mb > limit_mb {
                let detail = format!("resident memory {rss_mb} MB over {limit_mb} MB");
                self.stop(id, ExitReason::Recycle, detail, None);
            }
        }
    }

    fn on_exit(&mut self, id: u64, status: ExitStatus, stderr_tail: String) {
        let Some(worker) = self.workers.remove(&id) else {
            return;
        };
        if let Some(gm) = self.gpu.as_mut() {
            gm.worker_exited(id, Instant::now());
        }
        let pid = worker.process.pid;
        let (exit_code, signal, how) = describe_status(&status);
        let was_starting = matches!(worker.state, State::Starting);
        let (reason, detail) = match worker.stop_reason {
            Some(r) => r,
            None if was_starting => (ExitReason::StartupFailed, String::new()),
            None => (ExitReason::Crash, String::new()),
        };
        if worker.standby && reason == ExitReason::StartupFailed && !self.standby_broken {
            log::warn!(target: LOG_TARGET, "standby worker {pid} failed to start: no standby from now on");
            self.standby_broken = true;
        }
        let lifetime_s = worker.spawned.elapsed().as_secs_f64();
        let summary = if detail.is_empty() {
            how.clone()
        } else {
            format!("{detail}; {how}")
        };
        match reason {
            ExitReason::Idle | ExitReason::Recycle | ExitReason::Close => log::info!(
            target: LOG_TARGET,
                "worker {pid} exited ({}): {summary} after {} tasks, {lifetime_s:.1} s",
                reason.as_str(),
                worker.tasks_served
            ),
            _ => log::warn!(
            target: LOG_TARGET,
                "worker {pid} exited ({}): {summary} after {} tasks, {lifetime_s:.1} s",
                reason.as_str(),
                worker.tasks_served
            ),
        }
        *self
            .stats
            .exits_by_reason
            .entry(reason.as_str().to_string())
            .or_default() += 1;
        if self.stats.recent_exits.len() == RECENT_EXITS_KEPT {
            self.stats.recent_exits.remove(0);
        }
        self.stats.recent_exits.push(ExitRecord {
            pid,
            reason: reason.as_str(),
            detail: summary.clone(),
            tasks_served: worker.tasks_served,
            lifetime_s,
        });

        let lost = match worker.state {
            State::Busy(busy) => Some(busy.task),
            State::Stopping { task, .. } => task,
            State::Starting | State::Idle { .. } => None,
        };
        if let Some(task) = lost {
            self.on_task_lost(task, pid, &summary, exit_code, signal, stderr_tail);
        } else if reason == ExitReason::StartupFailed {
            let tail = last_lines(&stderr_tail, 5);
            let message = self.last_startup_error.clone().unwrap_or_else(|| {
                format!("the worker {how} before it was ready. Its last output:\n{tail}")
            });
            self.last_startup_error = Some(message);
            self.fail_queue_if_no_worker();
        }
    }

    /// A worker died while running `task`: retry on a fresh worker, or fail it.
    fn on_task_lost(
        &mut self,
        task: Box<Task>,
        pid: u32,
        summary: &str,
        exit_code: Option<i32>,
        signal: Option<i32>,
        stderr_tail: String,
    ) {
        // A poison input submitted again is not retried; this task's own retries are
        // bounded by max_retries alone.
        let crashed_before = task.attempts == 1 && self.crashed_inputs.contains(&task.fingerprint);
        if !self.crashed_inputs.contains(&task.fingerprint) {
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
    fn fail_queue_if_no_worker(&mut self) {
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

    // ---- scheduling and timers -------------------------------------------------------

    fn schedule(&mut self) {
        if self.gpu.is_some() {
            self.schedule_gpu(Instant::now());
        } else {
            self.schedule_cpu();
        }
        if self.queue.is_empty() {
            // A worker spawned for a task that was cancelled meanwhile holds a reservation
            // it will not use.
            let idle = self.idle_workers();
            if let Some(gm) = self.gpu.as_mut() {
                for (id, _) in idle {
                    gm.unreserve(id);
                }
            }
            if self.closing == Some(false) {
                let idle: Vec<u64> = self
                    .workers
                    .iter()
                    .filter(|(_, w)| matches!(w.state, State::Idle { .. } | State::Starting))
                    .map(|(id, _)| *id)
                    .collect();
                for id in idle {
                    self.stop(id, ExitReason::Close, String::new(), None);
                }
            }
        }
        self.keep_standby();
    }

    /// Idle workers, warm ones first, each warm group the most recently idle first: it is
    /// the warmest and lets the others reach their idle timeout.
    fn idle_workers(&self) -> Vec<(u64, bool)> {
        let mut idle: Vec<(bool, std::cmp::Reverse<Instant>, u64)> = self
            .workers
            .iter()
            .filter_map(|(id, w)| match w.state {
                State::Idle { since } => Some((w.standby, std::cmp::Reverse(since), *id)),
                _ => None,
            })
            .collect();
        idle.sort();
        idle.into_iter()
            .map(|(standby, _, id)| (id, standby))
            .collect()
    }

    fn starting_workers(&self) -> usize {
        self.workers
            .values()
            .filter(|w| matches!(w.state, State::Starting) && !w.standby)
            .count()
    }

    fn schedule_cpu(&mut self) {
        while !self.queue.is_empty() {
            let Some(&(id, _)) = self.idle_workers().first() else {
                break;
            };
            let task = self.queue.pop_front().expect("queue is not empty");
            self.slots.release();
            self.dispatch(id, task);
        }
        if self.closing == Some(true) {
            return;
        }
        let mut needed = self.queue.len().saturating_sub(self.starting_workers());
        while needed > 0 && self.live_workers() < self.config.max_workers {
            if self.spawn(None, false).is_none() {
                break;
            }
            needed -= 1;
        }
    }

    /// In queue order: an idle worker whose GPU admits the task, else a new worker on the
    /// GPU with the most room, else the task waits for memory (and later tasks with it, so
    /// none overtakes it). Tasks beyond the head are covered by workers still starting.
    fn schedule_gpu(&mut self, now: Instant) {
        let mut pos = 0;
        let mut covered = self.starting_workers();
        while pos < self.queue.len() {
            let (profile, pixels) = {
                let t = &self.queue[pos];
                (peak_key(t), t.pixels)
            };
            let idle = self.idle_workers();
            let can_spawn =
                self.closing != Some(true) && self.live_workers() < self.config.max_workers;
            let gm = self.gpu.as_mut().expect("GPU pool");
            let mut short = None;
            if !idle.is_empty() {
                match gm.place(now, profile, pixels, &idle, false) {
                    Placement::Worker(id) => {
                        let task = self.queue.remove(pos).expect("position is valid");
                        self.slots.release();
                        self.dispatch(id, task);
                        continue;
                    }
                    wait @ Placement::Wait { .. } => short = Some(wait),
                    _ => {}
                }
            }
            if covered > 0 {
                covered -= 1; // a starting worker takes it
                pos += 1;
                continue;
            }
            let placement = if can_spawn {
                gm.place(now, profile, pixels, &[], true)
            } else {
                Placement::Blocked
            };
            match (placement, short) {
                (Placement::Spawn { device, need }, _) => {
                    let Some(id) = self.spawn(Some(device), false) else {
                        break;
                    };
                    if let Some(gm) = self.gpu.as_mut() {
                        gm.reserve_spawn(id, device, need);
                    }
                    pos += 1;
                }
                (
                    Placement::Wait {
                        required_mb,
                        available_mb,
                        device,
                    },
                    _,
                )
                | (
                    Placement::Blocked,
                    Some(Placement::Wait {
                        required_mb,
                        available_mb,
                        device,
                    }),
                ) => {
                    self.wait_for_memory(pos, now, required_mb, available_mb, device);
                    break;
                }
                _ => break,
            }
        }
    }

    /// The task at `pos` cannot get GPU memory now: it waits (the admission timeout runs)
    /// or, when it could never fit, fails at once.
    fn wait_for_memory(
        &mut self,
        pos: usize,
        now: Instant,
        required: f64,
        available: f64,
        device: u32,
    ) {
        let gm = self.gpu.as_ref().expect("GPU pool");
        let never = !gm.could_ever_fit(required);
        let task = &mut self.queue[pos];
        let since = task.vram_wait.map_or(now, |(since, ..)| since);
        task.vram_wait = Some((since, required, available, device));
        if never || gm.wait_expired(now, since, device) {
            let error = gm.insufficient(required, available, device);
            let task = self.queue.remove(pos).expect("position is valid");
            self.slots.release();
            log::warn!(target: LOG_TARGET, "task {}: {error}", task.id);
            self.complete(task.id, Err(error));
        }
    }

    /// With FREE_VRAM_ON_IDLE on and standby enabled, keeps one standby worker while the
    /// queue is empty and there is room for it: the next cold task skips process start,
    /// library loading and model reading, and the standby holds no GPU memory meanwhile.
    fn keep_standby(&mut self) {
        if !self.config.standby
            || self.standby_broken
            || self.config.idle_timeout.is_none()
            || self.closing.is_some()
            || !self.queue.is_empty()
            || self.live_workers() >= self.config.max_workers
            || self
                .workers
                .values()
                .any(|w| w.standby && !matches!(w.state, State::Stopping { .. }))
        {
            return;
        }
        let gpu = match self.gpu.as_ref() {
            Some(gm) => match gm.roomiest_device() {
                Some(n) => Some(n),
                None => return,
            },
            None => None,
        };
        self.spawn(gpu, true);
    }

    fn dispatch(&mut self, id: u64, mut task: Box<Task>) {
        let pid = self.workers.get(&id).map(|w| w.process.pid);
        if pid.is_some_and(crate::procfs::is_stopped) {
            // A stopped worker would hold the task until its time limit: the task goes
            // back to the queue, the worker goes.
            log::warn!(
                target: LOG_TARGET,
                "worker {} is stopped (SIGSTOP or a debugger): ended, its task goes to another",
                pid.unwrap_or(0)
            );
            self.slots.put_back();
            self.queue.push_front(task);
            let detail = "it was stopped (SIGSTOP or a debugger) while idle".to_string();
            self.stop(id, ExitReason::Crash, detail, Some(Signal::SIGKILL));
            return;
        }
        let worker = self
            .workers
            .get_mut(&id)
            .expect("dispatch to a known worker");
        task.attempts += 1;
        let request = Request::Ocr {
            id: task.id,
            input: task.input.kind.clone(),
            options: task.options,
            analyze: task.input.analyze.as_deref().cloned(),
        };
        let now = Instant::now();
        if !worker
            .process
            .send(request, Arc::clone(&task.input.payload))
        {
            // Its stdin is closed: it is on its way out. Back to the queue.
            task.attempts -= 1;
            self.slots.put_back();
            self.queue.push_front(task);
            worker.state = State::Stopping {
                kill_at: None,
                task: None,
            };
            return;
        }
        worker.standby = false;
        if let Some(gm) = self.gpu.as_mut() {
            let device = worker.gpu.unwrap_or(0);
            let key = gm.requirement(peak_key(&task), device, task.pixels).0;
            gm.task_started(id, key);
        }
        worker.state = State::Busy(Busy {
            deadline: now + task.timeout,
            started: now,
            task,
        });
    }

    fn on_timers(&mut self, now: Instant) {
        let mut actions = Vec::new();
        for (id, w) in &self.workers {
            match &w.state {
                State::Busy(busy) if now >= busy.deadline => actions.push((*id, Timer::Timeout)),
                State::Starting if now >= w.spawned + self.config.startup_timeout => {
                    actions.push((*id, Timer::StartupTimeout))
                }
                State::Stopping {
                    kill_at: Some(kill_at),
                    ..
                } if now >= *kill_at => actions.push((*id, Timer::Kill)),
                State::Idle { since } if !w.standby => {
                    if let Some(limit) = self.idle_limit() {
                        if self.queue.is_empty() && now >= *since + limit {
                            actions.push((*id, Timer::Idle));
                        }
                    }
                }
                _ => {}
            }
        }
        for (id, action) in actions {
            match action {
                Timer::Timeout => {
                    if let Some(task) = self.take_busy_task(id) {
                        let limit_s = task.timeout.as_secs_f64();
                        self.complete(task.id, Err(TaskError::TaskTimeout { limit_s }));
                        let detail = format!("task exceeded {limit_s} s");
                        self.stop(id, ExitReason::Timeout, detail, Some(Signal::SIGTERM));
                    }
                }
                Timer::StartupTimeout => {
                    let limit = self.config.startup_timeout.as_secs_f64();
                    let detail = format!("not ready after {limit} s");
                    self.last_startup_error = Some(format!("the worker was {detail}"));
                    self.stop(id, ExitReason::StartupFailed, detail, Some(Signal::SIGKILL));
                }
                Timer::Kill => {
                    if let Some(w) = self.workers.get_mut(&id) {
                        log::warn!(
                        target: LOG_TARGET,
                                        "worker {} still running after the {:.1} s grace period: SIGKILL",
                                        w.process.pid,
                                        self.config.kill_grace.as_secs_f64()
                                    );
                        w.process.signal(Signal::SIGKILL);
                        if let State::Stopping { kill_at, .. } = &mut w.state {
                            *kill_at = None;
                        }
                    }
                }
                Timer::Idle => {
                    let detail = "no task within the idle timeout".to_string();
                    self.stop(id, ExitReason::Idle, detail, None);
                }
            }
        }
    }

    fn idle_limit(&self) -> Option<Duration> {
        self.config.idle_timeout.map(|t| t.max(IDLE_LINGER))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let workers = self.workers.values().filter_map(|w| match &w.state {
            State::Busy(busy) => Some(busy.deadline),
            State::Starting => Some(w.spawned + self.config.startup_timeout),
            State::Stopping { kill_at, .. } => *kill_at,
            State::Idle { .. } if w.standby => None,
            State::Idle { since } => self
                .idle_limit()
                .filter(|_| self.queue.is_empty())
                .map(|limit| *since + limit),
        });
        // Tasks waiting for GPU memory: their admission timeout.
        let admission = self.gpu.as_ref().and_then(|gm| {
            self.queue
                .iter()
                .filter_map(|t| t.vram_wait.map(|(since, ..)| gm.wait_deadline(since)))
                .min()
        });
        workers.chain(admission).min()
    }

    // ---- GPU readings ------------------------------------------------------------------

    fn on_reading(&mut self, at: Instant, report: crate::gpu::GpuReport) {
        let Some(gm) = self.gpu.as_mut() else { return };
        let recycle = gm.on_reading(at, report);
        gm.save_peaks(at, false);
        for (id, reason) in recycle {
            let idle = self
                .workers
                .get(&id)
                .is_some_and(|w| matches!(w.state, State::Idle { .. }));
            if idle {
                log::info!(target: LOG_TARGET, "recycling worker {}: {reason}", self.workers[&id].process.pid);
                self.stop(id, ExitReason::Recycle, reason, None);
            }
        }
    }

    /// Fast readings while anything runs, waits or starts; a fresh one at once when a
    /// decision needs it.
    fn pace_sampler(&mut self) {
        let (Some(sampler), Some(gm)) = (self.sampler.as_ref(), self.gpu.as_ref()) else {
            return;
        };
        let active = !self.queue.is_empty()
            || gm.is_busy()
            || self
                .workers
                .values()
                .any(|w| !matches!(w.state, State::Idle { .. }));
        sampler.set_fast(active);
        if !self.queue.is_empty() && !gm.reading_is_fresh(Instant::now()) {
            sampler.now();
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
                pid: w.process.pid,
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
                rss_mb: procfs::rss_bytes(w.process.pid).map(|b| b as f64 / 1048576.0),
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

enum Timer {
    Timeout,
    StartupTimeout,
    Kill,
    Idle,
}

/// The GPU memory side of a pool on CUDA devices, with its sampler thread.
#[allow(clippy::type_complexity)]
fn gpu_memory(
    config: &PoolConfig,
) -> Option<(GpuMemory, std::io::Result<(Sampler, Receiver<Reading>)>)> {
    let DeviceChoice::Cuda(devices) = &config.device else {
        return None;
    };
    let model_bytes: u64 = std::fs::read_dir(&config.model_dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "onnx"))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .sum()
        })
        .unwrap_or(0);
    let policy = VramPolicy {
        devices: devices.clone(),
        margin_mb: config.gpu.margin_mb,
        admission_timeout: config.gpu.admission_timeout,
        worker_limit_mb: config.vram_limit_mb.map(|mb| mb as f64),
        worker_vram_growth_mb: config.gpu.worker_vram_growth_mb,
        peaks_dir: config.gpu.peaks_dir.clone(),
        model_bytes,
        models: config.model_set.clone(),
    };
    let nested = pid_namespace_is_nested();
    if nested {
        log::warn!(
            target: LOG_TARGET,
            "nested pid namespace: NVML lists host pids, so GPU memory is read per device, \
             not per worker (peaks are learned from tasks that run alone on a GPU)"
        );
    }
    let gm = GpuMemory::new(policy, !nested);
    Some((gm, Sampler::start(config.gpu.source.clone())))
}

/// What GPU memory peaks are learned per (with the input size): page analyses load more
/// models than OCR does.
fn peak_key(task: &Task) -> &'static str {
    match (task.input.analyze.is_some(), task.options.profile) {
        (true, _) => "analyze",
        (false, vram_orch_protocol::Profile::Default) => "default",
        (false, vram_orch_protocol::Profile::Reference) => "reference",
    }
}

fn task_error(kind: ErrorKind, message: String) -> TaskError {
    match kind {
        ErrorKind::InvalidInput => TaskError::InvalidInput { message },
        ErrorKind::Setup => TaskError::Setup { message },
        ErrorKind::Inference | ErrorKind::Protocol => TaskError::Inference { message },
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
