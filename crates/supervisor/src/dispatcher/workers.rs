//! Workers as the dispatcher sees them: their states, starting and stopping them, what
//! they say, and how they end.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use vram_orch_protocol::{ErrorKind, Hello, Response, PROTOCOL_VERSION};

use super::{Dispatcher, LOG_TARGET, RECENT_EXITS_KEPT, START_RETRIES};
use crate::error::TaskError;
use crate::snapshot::ExitRecord;
use crate::task::{Task, TaskSuccess, WorkerStamp};
use crate::worker::{describe_status, WorkerEvent, WorkerHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExitReason {
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
    pub(super) fn as_str(self) -> &'static str {
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

pub(super) struct Busy {
    pub(super) task: Box<Task>,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
}

pub(super) enum State {
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

pub(super) struct Worker {
    pub(super) process: Box<dyn WorkerHandle>,
    /// The GPU (NVML index) it is pinned to.
    pub(super) gpu: Option<u32>,
    /// Started in standby (no sessions, no CUDA context) and not given a task yet.
    pub(super) standby: bool,
    pub(super) state: State,
    pub(super) spawned: Instant,
    pub(super) hello: Option<Hello>,
    pub(super) tasks_served: u64,
    /// Why we asked it to go (None: it went by itself, a crash).
    pub(super) stop_reason: Option<(ExitReason, String)>,
}

impl Worker {
    pub(super) fn device(&self) -> String {
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

impl Dispatcher {
    // ---- workers -------------------------------------------------------------------

    /// Whether a start that failed by chance (killed or stopped from outside) may be
    /// replaced: at most [`START_RETRIES`] in a row, then the queue fails with the reason.
    pub(super) fn start_retry(&mut self) -> bool {
        if self.start_retries >= START_RETRIES {
            return false;
        }
        self.start_retries += 1;
        true
    }

    pub(super) fn live_workers(&self) -> usize {
        self.workers
            .values()
            .filter(|w| !matches!(w.state, State::Stopping { .. }))
            .count()
    }

    /// Starts a worker, pinned to NVML device `gpu` when given; returns its id.
    pub(super) fn spawn(&mut self, gpu: Option<u32>, standby: bool) -> Option<u64> {
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let visible = gpu.map(|n| {
            self.gpu
                .as_ref()
                .and_then(|gm| gm.uuid_of(n))
                .unwrap_or_else(|| n.to_string())
        });
        let spawned = self.spawner.spawn(
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
                log::debug!(target: LOG_TARGET, "{kind} {} spawned on {on}", process.pid());
                self.stats.spawned += 1;
                if let (Some(gm), Some(n)) = (self.gpu.as_mut(), gpu) {
                    gm.track(id, process.pid(), n);
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
    pub(super) fn stop(
        &mut self,
        id: u64,
        reason: ExitReason,
        detail: String,
        signal: Option<Signal>,
    ) {
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

    pub(super) fn take_busy_task(&mut self, id: u64) -> Option<Box<Task>> {
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

    pub(super) fn on_worker_event(&mut self, id: u64, event: WorkerEvent) {
        match event {
            WorkerEvent::Frame(frame) => self.on_frame(id, frame),
            WorkerEvent::Garbage(message) => {
                if let Some(w) = self.workers.get(&id) {
                    log::error!(target: LOG_TARGET, "worker {} sent a malformed frame: {message}", w.process.pid());
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

    pub(super) fn on_frame(&mut self, id: u64, frame: Response) {
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
                        worker.process.pid(),
                        hello.device,
                        hello.ort_version
                    );
                worker.standby = hello.standby;
                worker.hello = Some(hello);
                self.start_retries = 0;
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
                            pid: worker.process.pid(),
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
                log::error!(target: LOG_TARGET, "worker {}: {message}", worker.process.pid());
                if kind == ErrorKind::Setup {
                    self.last_startup_error = Some(message.clone());
                    worker.stop_reason = Some((ExitReason::StartupFailed, message));
                }
            }
            Response::Pong { .. } | Response::Info { .. } => {}
        }
    }

    /// Takes the busy task `task_id` off worker `id`, which becomes idle.
    pub(super) fn finish_busy(&mut self, id: u64, task_id: u64) -> Option<Busy> {
        let worker = self.workers.get_mut(&id)?;
        match &worker.state {
            State::Busy(busy) if busy.task.id == task_id => {}
            _ => {
                log::warn!(
                target: LOG_TARGET,
                        "worker {} answered task {task_id}, which it was not running",
                        worker.process.pid()
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
    pub(super) fn after_task(&mut self, id: u64) {
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
            let rss_mb = worker.process.rss_bytes().unwrap_or(0) >> 20;
            if rss_mb > limit_mb {
                let detail = format!("resident memory {rss_mb} MB over {limit_mb} MB");
                self.stop(id, ExitReason::Recycle, detail, None);
            }
        }
    }

    pub(super) fn on_exit(&mut self, id: u64, status: ExitStatus, stderr_tail: String) {
        let Some(worker) = self.workers.remove(&id) else {
            return;
        };
        if let Some(gm) = self.gpu.as_mut() {
            gm.worker_exited(id, Instant::now());
        }
        let pid = worker.process.pid();
        let (exit_code, signal, how) = describe_status(&status);
        let was_starting = matches!(worker.state, State::Starting);
        let (reason, detail) = match worker.stop_reason {
            Some(r) => r,
            // Killed from outside while loading (the OOM killer, say): nothing says the
            // next start fails too, so a few are replaced before the queue is failed.
            None if was_starting && signal.is_some() && self.start_retry() => {
                (ExitReason::Crash, "killed while starting".to_string())
            }
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
}

pub(super) fn task_error(kind: ErrorKind, message: String) -> TaskError {
    match kind {
        ErrorKind::InvalidInput => TaskError::InvalidInput { message },
        ErrorKind::Setup => TaskError::Setup { message },
        ErrorKind::Inference | ErrorKind::Protocol => TaskError::Inference { message },
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
