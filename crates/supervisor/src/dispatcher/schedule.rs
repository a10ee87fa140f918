//! Which queued task goes to which worker, and when workers are started.

use std::sync::Arc;
use std::time::Instant;

use nix::sys::signal::Signal;
use vram_orch_protocol::Request;

use super::gpu_memory::peak_key;
use super::workers::{Busy, ExitReason, State};
use super::{Dispatcher, LOG_TARGET};
use crate::task::Task;
use crate::vram::Placement;

impl Dispatcher {
    pub(super) fn schedule(&mut self) {
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
    pub(super) fn idle_workers(&self) -> Vec<(u64, bool)> {
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

    pub(super) fn starting_workers(&self) -> usize {
        self.workers
            .values()
            .filter(|w| matches!(w.state, State::Starting) && !w.standby)
            .count()
    }

    pub(super) fn schedule_cpu(&mut self) {
        // In queue order, each task to the first idle worker it may run on; a retry that
        // finds none waits for the fresh worker started for it below (its crashed worker
        // has exited, so there is room for one).
        let mut pos = 0;
        while pos < self.queue.len() {
            let idle = self.idle_workers();
            if idle.is_empty() {
                break;
            }
            let task = &self.queue[pos];
            let Some(&(id, _)) = idle.iter().find(|(id, _)| task.may_run_on(*id)) else {
                pos += 1;
                continue;
            };
            let task = self.queue.remove(pos).expect("position is valid");
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
    pub(super) fn schedule_gpu(&mut self, now: Instant) {
        let mut pos = 0;
        let mut covered = self.starting_workers();
        while pos < self.queue.len() {
            let (profile, pixels) = {
                let t = &self.queue[pos];
                (peak_key(t), t.pixels)
            };
            let idle: Vec<(u64, bool)> = self
                .idle_workers()
                .into_iter()
                .filter(|(id, _)| self.queue[pos].may_run_on(*id))
                .collect();
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
    pub(super) fn wait_for_memory(
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
    pub(super) fn keep_standby(&mut self) {
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

    pub(super) fn dispatch(&mut self, id: u64, mut task: Box<Task>) {
        let pid = self.workers.get(&id).map(|w| w.process.pid());
        if self
            .workers
            .get(&id)
            .is_some_and(|w| w.process.is_stopped())
        {
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
}
