//! Deadlines: task time limits, startup, kill grace and idle release.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::workers::{ExitReason, State};
use super::{Dispatcher, IDLE_LINGER, LOG_TARGET};
use crate::error::TaskError;

impl Dispatcher {
    pub(super) fn on_timers(&mut self, now: Instant) {
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
                    let stopped = self
                        .workers
                        .get(&id)
                        .is_some_and(|w| w.process.is_stopped());
                    if stopped && self.start_retry() {
                        let detail = "stopped (SIGSTOP or a debugger) while starting".to_string();
                        self.stop(id, ExitReason::Crash, detail, Some(Signal::SIGKILL));
                        continue;
                    }
                    let limit = self.config.startup_timeout.as_secs_f64();
                    let detail = format!("not ready after {limit} s");
                    self.last_startup_error = Some(format!("the worker was {detail}"));
                    self.stop(id, ExitReason::StartupFailed, detail, Some(Signal::SIGKILL));
                    // As after any failed start: no respawn loop for the waiting tasks.
                    self.fail_queue_if_no_worker();
                }
                Timer::Kill => {
                    if let Some(w) = self.workers.get_mut(&id) {
                        log::warn!(
                        target: LOG_TARGET,
                                        "worker {} still running after the {:.1} s grace period: SIGKILL",
                                        w.process.pid(),
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

    pub(super) fn idle_limit(&self) -> Option<Duration> {
        self.config.idle_timeout.map(|t| t.max(IDLE_LINGER))
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
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
}

pub(super) enum Timer {
    Timeout,
    StartupTimeout,
    Kill,
    Idle,
}
