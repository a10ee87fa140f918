//! The dispatcher's view of GPU memory: the latest readings, what each worker uses, the
//! learned peaks, the reservations, and the three decisions built on them — where a task
//! may run (placement with admission), when a task has waited too long, and when a worker
//! has grown enough to be recycled.
//!
//! No clock or NVML inside: the dispatcher passes readings and instants in, so every rule
//! is tested against scripted devices below.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::admission::{estimate_mb, Admission, Decision, PeakBook, Requirement};
use crate::error::TaskError;
use crate::gpu::{GpuDevice, GpuReport};
use crate::peak_writer::PeakWriter;

/// Learned peaks get this much on top (NVML is sampled, a spike can fall between samples).
const PEAK_HEADROOM: f64 = 0.2;
/// A reading older than this is not trusted for a decision: the dispatcher asks for a new one.
pub(crate) const READING_MAX_AGE: Duration = Duration::from_millis(50);
/// How long the memory of an exited worker may take to show as free before we stop waiting
/// for it.
const RELEASE_WAIT: Duration = Duration::from_secs(10);
/// Learned peaks are written at most this often (and at close).
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// A rise of device memory this large while a worker ran alone, with the worker's pid never
/// listed by NVML, says NVML's pids are not ours (a sandbox or a pid namespace that
/// `/proc` does not reveal). A CUDA context alone is several hundred MB.
const UNMATCHED_RISE_MB: f64 = 128.0;
/// After this many such tasks, per-process readings are given up for whole-device ones.
const UNMATCHED_TASKS: u32 = 2;
const LOG_TARGET: &str = "vram_orchestrator.gpu";

/// GPU memory settings of a pool.
#[derive(Debug, Clone)]
pub struct VramPolicy {
    /// NVML indices workers may use.
    pub devices: Vec<u32>,
    /// Kept free on every device, beyond every reservation.
    pub vram_margin_mb: f64,
    /// A task waits this long for memory before failing with `InsufficientVram`.
    pub admission_timeout: Duration,
    /// Recycle a worker whose memory passes this between tasks.
    pub worker_limit_mb: Option<f64>,
    /// Recycle a worker that grew this much past its level after its first task.
    pub worker_vram_growth_mb: f64,
    /// Where learned peaks persist (`peaks.json`), if anywhere.
    pub peaks_dir: Option<PathBuf>,
    /// Total size of the model files (first estimate of a task's need).
    pub model_bytes: u64,
    /// Names the model set in the peak keys.
    pub models: String,
}

/// Where the task at the head of the queue goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Placement {
    /// To this idle worker (admitted; its reservation is made).
    Worker(u64),
    /// To a new worker on this device; call [`GpuMemory::reserve_spawn`] with its id.
    Spawn { device: u32, need: Requirement },
    /// Not now: the best device lacks memory (or no reading is fresh enough).
    Wait {
        required_mb: f64,
        available_mb: f64,
        device: u32,
    },
    /// Nothing can take it now for other reasons (no idle worker, no room to spawn).
    Blocked,
}

/// One worker's memory as NVML shows it.
#[derive(Debug, Clone)]
struct WorkerVram {
    device: u32,
    pid: u32,
    current_mb: f64,
    /// NVML has listed its pid at least once.
    listed: bool,
    /// Level after its first task (the post-warm-up level growth is measured from).
    baseline_mb: Option<f64>,
    task: Option<TaskVram>,
    /// When its last task ended: a reading taken after that shows its level between tasks.
    finished_at: Option<Instant>,
    /// Whole-device use in the last reading taken while it was idle (after its last task):
    /// where its next task starts from. The reading at the moment a task starts may still
    /// be one taken during the previous task.
    idle_device_used: Option<f64>,
}

#[derive(Debug, Clone)]
struct TaskVram {
    key: String,
    peak_mb: f64,
    /// Whole-device use when the task started (for readings without per-process figures).
    device_used_at_start: f64,
    /// Highest whole-device use seen during the task.
    device_used_peak: f64,
    alone_on_device: bool,
}

/// An exited worker whose memory NVML may still count as used.
#[derive(Debug, Clone)]
struct Releasing {
    device: u32,
    pid: u32,
    since: Instant,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceSnapshot {
    pub index: u32,
    pub name: String,
    pub total_mb: f64,
    pub free_mb: f64,
    /// Admitted but not yet allocated by our workers.
    pub reserved_mb: f64,
    /// Memory of exited workers NVML has not shown as free yet.
    pub releasing_workers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct VramSnapshot {
    pub devices: Vec<DeviceSnapshot>,
    /// Learned peak (MB) per kind of task: `models/profile/device/bucket`.
    pub learned_peaks_mb: std::collections::BTreeMap<String, f64>,
    /// False in a nested pid namespace, or once NVML's pids proved not to be ours (device
    /// memory rose while a worker ran alone, its pid never listed): whole-device readings
    /// are used instead.
    pub per_process_readings: bool,
    pub vram_margin_mb: f64,
    pub peaks_file: Option<PathBuf>,
}

pub(crate) struct GpuMemory {
    policy: VramPolicy,
    per_process: bool,
    /// Tasks that ran alone, raised device memory, and whose worker NVML never listed.
    unmatched_tasks: u32,
    reading: Option<(Instant, Vec<GpuDevice>)>,
    unavailable: Option<String>,
    admission: Admission,
    book: PeakBook,
    /// Saves `book` (when learned peaks persist).
    writer: Option<PeakWriter>,
    dirty: bool,
    last_save: Option<Instant>,
    workers: HashMap<u64, WorkerVram>,
    releasing: Vec<Releasing>,
    /// Per device: whole-device use in the latest reading with nothing of ours on it (the
    /// memory of others). Without per-process readings, a worker alone on its device holds
    /// what the device uses beyond this.
    others_mb: HashMap<u32, f64>,
}

impl GpuMemory {
    pub fn new(policy: VramPolicy, per_process: bool) -> GpuMemory {
        let path = policy.peaks_dir.as_ref().map(|d| d.join("peaks.json"));
        let book = match &path {
            Some(path) => {
                let (book, warning) = PeakBook::load(path);
                if let Some(w) = warning {
                    log::warn!(target: LOG_TARGET, "{w}");
                } else if !book.peaks_mb.is_empty() {
                    log::info!(
                        target: LOG_TARGET,
                        "{} learned VRAM peaks loaded from {}",
                        book.peaks_mb.len(),
                        path.display()
                    );
                }
                book
            }
            None => PeakBook::default(),
        };
        let writer = path.map(PeakWriter::start);
        GpuMemory {
            admission: Admission::new(policy.vram_margin_mb),
            policy,
            per_process,
            unmatched_tasks: 0,
            reading: None,
            unavailable: None,
            book,
            writer,
            dirty: false,
            last_save: None,
            workers: HashMap::new(),
            releasing: Vec::new(),
            others_mb: HashMap::new(),
        }
    }

    // ---- readings ----------------------------------------------------------------------

    /// Takes a reading probed at `now`: each worker's memory, its task's peak, the
    /// reservations. Returns the workers to recycle: idle ones whose level, read after
    /// their last task, passed the limit or grew past their post-warm-up level.
    pub fn on_reading(&mut self, now: Instant, report: GpuReport) -> Vec<(u64, String)> {
        let devices = match report {
            GpuReport::Available { devices, .. } => devices,
            GpuReport::Unavailable { reason } => {
                if self.unavailable.as_deref() != Some(reason.as_str()) {
                    log::warn!(target: LOG_TARGET, "GPU readings stopped: {reason}");
                }
                self.unavailable = Some(reason);
                self.reading = None;
                return Vec::new();
            }
        };
        self.unavailable = None;
        let used_by_pid: HashMap<u32, f64> = devices
            .iter()
            .flat_map(|d| d.processes.iter())
            .filter_map(|p| p.used_mb.map(|mb| (p.pid, mb)))
            .collect();
        // Devices with exactly one worker of ours and nothing of ours being released: there,
        // whole-device readings can tell that worker's memory.
        let mut workers_on: HashMap<u32, usize> = HashMap::new();
        for device in self.workers.values().map(|w| w.device) {
            *workers_on.entry(device).or_default() += 1;
        }
        let releasing_on: HashSet<u32> = self.releasing.iter().map(|r| r.device).collect();
        for d in &devices {
            if !workers_on.contains_key(&d.index) && !releasing_on.contains(&d.index) {
                self.others_mb.insert(d.index, d.used_mb);
            }
        }
        let others_mb = &self.others_mb;
        let sole = |device: u32| {
            workers_on.get(&device) == Some(&1)
                && !releasing_on.contains(&device)
                && others_mb.contains_key(&device)
        };
        for (id, w) in self.workers.iter_mut() {
            let device_used = devices
                .iter()
                .find(|d| d.index == w.device)
                .map(|d| d.used_mb);
            if self.per_process {
                let listed = used_by_pid.get(&w.pid).copied();
                w.listed |= listed.is_some();
                w.current_mb = listed.unwrap_or(0.0);
            } else if let (true, Some(u), Some(others)) =
                (sole(w.device), device_used, others_mb.get(&w.device))
            {
                w.current_mb = (u - others).max(0.0);
            }
            if w.task.is_none() && w.finished_at.is_none_or(|t| now > t) {
                w.idle_device_used = device_used.or(w.idle_device_used);
            }
            if let Some(task) = w.task.as_mut() {
                if let Some(u) = device_used {
                    task.device_used_peak = task.device_used_peak.max(u);
                }
                let seen = if self.per_process || sole(w.device) {
                    Some(w.current_mb)
                } else if task.alone_on_device {
                    device_used.map(|u| (u - task.device_used_at_start).max(0.0))
                } else {
                    None
                };
                if let Some(mb) = seen {
                    task.peak_mb = task.peak_mb.max(mb);
                }
            }
            self.admission.observe(*id, w.current_mb);
        }
        let mut recycle = Vec::new();
        for (id, w) in self.workers.iter_mut() {
            if w.task.is_some() || w.finished_at.is_none_or(|t| now <= t) {
                continue;
            }
            w.finished_at = None;
            if !self.per_process && !sole(w.device) {
                continue;
            }
            let base = *w.baseline_mb.get_or_insert(w.current_mb);
            if let Some(reason) = growth(&self.policy, w.current_mb, base) {
                recycle.push((*id, reason));
            }
        }
        self.releasing.retain(|r| {
            let listed = devices
                .iter()
                .filter(|d| d.index == r.device)
                .any(|d| d.processes.iter().any(|p| p.pid == r.pid));
            listed && now.duration_since(r.since) < RELEASE_WAIT
        });
        self.reading = Some((now, devices));
        recycle
    }

    /// Whether a decision at `now` may use the last reading.
    pub fn reading_is_fresh(&self, now: Instant) -> bool {
        matches!(&self.reading, Some((at, _)) if now.duration_since(*at) <= READING_MAX_AGE)
    }

    fn device(&self, index: u32) -> Option<&GpuDevice> {
        self.reading
            .as_ref()
            .and_then(|(_, ds)| ds.iter().find(|d| d.index == index))
    }

    // ---- placement and admission -----------------------------------------------------

    /// What a task with `pixels` input pixels (if known) of `profile` needs on `device`.
    pub fn requirement(
        &self,
        profile: &str,
        device: u32,
        pixels: Option<u64>,
    ) -> (String, Requirement) {
        let name = self
            .device(device)
            .map(|d| d.name.as_str())
            .unwrap_or("gpu");
        let px = pixels.unwrap_or(4_000_000);
        let key = PeakBook::key(&self.policy.models, profile, name, px);
        let estimate = estimate_mb(self.policy.model_bytes, px);
        let need = self.book.requirement(&key, estimate, PEAK_HEADROOM);
        (key, need)
    }

    /// Picks where the head task runs: an idle worker whose device has room (warm ones
    /// first: they already hold part of the need), else a new worker on the device with the
    /// most room, else waits with the numbers of the best device. `idle` lists idle
    /// workers (id, standby), warmest first; `can_spawn` says whether a worker may start.
    pub fn place(
        &mut self,
        now: Instant,
        profile: &str,
        pixels: Option<u64>,
        idle: &[(u64, bool)],
        can_spawn: bool,
    ) -> Placement {
        if self.unavailable.is_some() {
            // NVML stopped answering: no figure to admit against, so nothing is refused.
            return self.place_unmeasured(profile, pixels, idle, can_spawn);
        }
        if !self.reading_is_fresh(now) {
            return Placement::Blocked; // the dispatcher asks for a reading and comes back
        }
        // The device with the most room among those that were short, for the error.
        let mut short: Option<(f64, f64, u32)> = None;
        fn note(short: &mut Option<(f64, f64, u32)>, required: f64, available: f64, device: u32) {
            if short.is_none_or(|(_, a, _)| available > a) {
                *short = Some((required, available, device));
            }
        }
        // Warm workers first, standbys (which hold nothing yet) after.
        let mut order: Vec<(u64, bool)> = idle.to_vec();
        order.sort_by_key(|(_, standby)| *standby);
        for (id, _) in order {
            let Some(w) = self.workers.get(&id) else {
                continue;
            };
            let (device, used) = (w.device, w.current_mb);
            let Some(free) = self.device(device).map(|d| d.free_mb) else {
                continue;
            };
            let (_, need) = self.requirement(profile, device, pixels);
            match self.admission.decide(id, device, free, need, used) {
                Decision::Admit => return Placement::Worker(id),
                Decision::Wait {
                    required_mb,
                    available_mb,
                } => note(&mut short, required_mb - used, available_mb, device),
            }
        }
        if !can_spawn {
            return match short {
                Some((required_mb, available_mb, device)) => Placement::Wait {
                    required_mb,
                    available_mb,
                    device,
                },
                None => Placement::Blocked,
            };
        }
        let mut best: Option<(f64, u32, Requirement)> = None;
        for &device in &self.policy.devices {
            let Some(free) = self.device(device).map(|d| d.free_mb) else {
                continue;
            };
            let (_, need) = self.requirement(profile, device, pixels);
            let available = self.admission.available_mb(device, free);
            if need.required_mb <= available {
                if best.is_none_or(|(a, _, _)| available > a) {
                    best = Some((available, device, need));
                }
            } else {
                note(&mut short, need.required_mb, available.max(0.0), device);
            }
        }
        match (best, short) {
            (Some((_, device, need)), _) => Placement::Spawn { device, need },
            (None, Some((required_mb, available_mb, device))) => Placement::Wait {
                required_mb,
                available_mb,
                device,
            },
            (None, None) => Placement::Blocked,
        }
    }

    fn place_unmeasured(
        &mut self,
        profile: &str,
        pixels: Option<u64>,
        idle: &[(u64, bool)],
        can_spawn: bool,
    ) -> Placement {
        if let Some((id, _)) = idle.first() {
            return Placement::Worker(*id);
        }
        match self.policy.devices.first() {
            Some(&device) if can_spawn => Placement::Spawn {
                device,
                need: self.requirement(profile, device, pixels).1,
            },
            _ => Placement::Blocked,
        }
    }

    /// Reserves a placement's need for the worker just spawned (and tracked) for it.
    pub fn reserve_spawn(&mut self, worker: u64, device: u32, need: Requirement) {
        let free = self.device(device).map(|d| d.free_mb).unwrap_or(0.0);
        // Placement checked the fit a moment ago with the same reading: this admits.
        let _ = self.admission.decide(worker, device, free, need, 0.0);
    }

    /// Starts tracking a worker's memory (spawned, pinned to `device`).
    pub fn track(&mut self, worker: u64, pid: u32, device: u32) {
        self.workers.entry(worker).or_insert(WorkerVram {
            device,
            pid,
            current_mb: 0.0,
            listed: false,
            baseline_mb: None,
            task: None,
            finished_at: None,
            idle_device_used: None,
        });
    }

    /// What pins a worker to NVML device `index` in CUDA_VISIBLE_DEVICES (its UUID).
    pub fn uuid_of(&self, index: u32) -> Option<String> {
        self.device(index)
            .map(|d| d.uuid.clone())
            .filter(|u| !u.is_empty())
    }

    /// Whether `required_mb` fits any allowed device when it is otherwise empty.
    pub fn could_ever_fit(&self, required_mb: f64) -> bool {
        let Some((_, devices)) = &self.reading else {
            return true;
        };
        devices
            .iter()
            .filter(|d| self.policy.devices.contains(&d.index))
            .any(|d| required_mb <= d.total_mb - self.policy.vram_margin_mb)
    }

    /// Drops the reservation of a worker that has no task to run after all.
    pub fn unreserve(&mut self, worker: u64) {
        self.admission.release(worker);
    }

    #[cfg(test)]
    pub fn holds_reservation(&self, worker: u64) -> bool {
        self.admission.holds(worker)
    }

    /// Whether a task that has waited since `since` must now fail: the admission timeout
    /// passed and no exited worker's memory is still on its way back on `device`.
    pub fn wait_expired(&self, now: Instant, since: Instant, device: u32) -> bool {
        now.duration_since(since) >= self.policy.admission_timeout
            && !self.releasing.iter().any(|r| r.device == device)
    }

    /// When the next admission deadline of a task waiting since `since` falls.
    pub fn wait_deadline(&self, since: Instant) -> Instant {
        since + self.policy.admission_timeout
    }

    /// The error of a task that could not get memory, saying what uses it.
    pub fn insufficient(&self, required_mb: f64, available_mb: f64, device: u32) -> TaskError {
        let (name, users) = match self.device(device) {
            Some(d) => {
                let ours: Vec<u32> = self.workers.values().map(|w| w.pid).collect();
                let mut users: Vec<String> = d
                    .processes
                    .iter()
                    .map(|p| {
                        let mb = p
                            .used_mb
                            .map(|m| format!("{m:.0} MB"))
                            .unwrap_or("? MB".into());
                        let who = if ours.contains(&p.pid) {
                            "our worker".to_string()
                        } else {
                            process_name(p.pid)
                        };
                        format!("pid {} ({who}) {mb}", p.pid)
                    })
                    .collect();
                if users.is_empty() {
                    users.push(format!("{:.0} MB used, no process listed", d.used_mb));
                }
                (
                    format!("{} ({:.0} of {:.0} MB free)", d.name, d.free_mb, d.total_mb),
                    users.join(", "),
                )
            }
            None => ("unknown".to_string(), "no reading".to_string()),
        };
        let reserved = self.admission.pending_mb(device);
        TaskError::InsufficientVram {
            required_mb,
            available_mb,
            device: format!("cuda:{device}"),
            message: format!(
                "cuda:{device} {name}: this task needs {required_mb:.0} MB, {available_mb:.0} MB \
                 can be given (free minus {:.0} MB margin minus {reserved:.0} MB reserved for \
                 tasks starting now). Using the device: {users}. Wait for load to drop, raise \
                 VRAM_ORCH_ADMISSION_TIMEOUT_S, lower VRAM_ORCH_MAX_WORKERS or free the GPU",
                self.policy.vram_margin_mb
            ),
        }
    }

    // ---- tasks and workers -----------------------------------------------------------

    /// A tracked worker starts a task of kind `key`.
    pub fn task_started(&mut self, worker: u64, key: String) {
        let Some(device) = self.workers.get(&worker).map(|w| w.device) else {
            return;
        };
        let latest = self.device(device).map_or(0.0, |d| d.used_mb);
        let alone = !self
            .workers
            .values()
            .any(|w| w.device == device && w.task.is_some());
        if let Some(w) = self.workers.get_mut(&worker) {
            let used = w.idle_device_used.unwrap_or(latest);
            w.task = Some(TaskVram {
                key,
                peak_mb: w.current_mb,
                device_used_at_start: used,
                device_used_peak: used,
                alone_on_device: alone,
            });
        }
    }

    /// The worker's task ended at `now`: its reservation goes, its peak is learned.
    /// Returns the measured peak (MB), when there is one.
    pub fn task_finished(&mut self, worker: u64, now: Instant) -> Option<f64> {
        self.admission.release(worker);
        let w = self.workers.get_mut(&worker)?;
        let task = w.task.take()?;
        w.finished_at = Some(now);
        let rise = task.device_used_peak - task.device_used_at_start;
        let mut peak = task.peak_mb;
        if self.per_process && !w.listed && task.alone_on_device && rise >= UNMATCHED_RISE_MB {
            self.unmatched_tasks += 1;
            if self.unmatched_tasks >= UNMATCHED_TASKS {
                log::warn!(
                    target: LOG_TARGET,
                    "device memory rose {rise:.0} MB while worker pid {} ran alone, but NVML \
                     never listed that pid: its pids are not ours (sandbox or pid namespace); \
                     using whole-device readings from now on",
                    w.pid
                );
                self.per_process = false;
                peak = rise;
                // Levels read so far were per-process zeros: learn them again.
                for other in self.workers.values_mut() {
                    other.baseline_mb = None;
                }
            }
        }
        if peak <= 0.0 {
            return None;
        }
        if self.book.learn(&task.key, peak) {
            log::debug!(target: LOG_TARGET, "learned VRAM peak {peak:.0} MB for {}", task.key);
            self.dirty = true;
        }
        Some(peak)
    }

    /// A worker exited: its reservation goes; its memory counts as coming back until NVML
    /// stops listing it.
    pub fn worker_exited(&mut self, worker: u64, now: Instant) {
        self.admission.release(worker);
        if let Some(w) = self.workers.remove(&worker) {
            if w.current_mb > 0.0 || !self.per_process {
                self.releasing.push(Releasing {
                    device: w.device,
                    pid: w.pid,
                    since: now,
                });
            }
        }
    }

    /// GPU memory a worker uses now (None when per-process readings are unavailable).
    pub fn worker_mb(&self, worker: u64) -> Option<f64> {
        self.per_process
            .then(|| self.workers.get(&worker).map(|w| w.current_mb))
            .flatten()
    }

    pub fn is_busy(&self) -> bool {
        // A worker between tasks needs one more reading (its level for the recycle check).
        self.workers
            .values()
            .any(|w| w.task.is_some() || w.finished_at.is_some())
            || !self.releasing.is_empty()
    }

    /// The device with the most memory free now (where a standby worker goes).
    pub fn roomiest_device(&self) -> Option<u32> {
        self.policy
            .devices
            .iter()
            .filter_map(|&i| self.device(i).map(|d| (d.free_mb, i)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, i)| i)
            .or_else(|| self.policy.devices.first().copied())
    }

    /// Queues learned peaks for saving when some are new (at most every few seconds unless
    /// `force`); the file is written on the writer's thread.
    pub fn save_peaks(&mut self, now: Instant, force: bool) {
        let Some(writer) = self.writer.as_ref() else {
            return;
        };
        if !self.dirty || (!force && self.last_save.is_some_and(|t| now - t < SAVE_EVERY)) {
            return;
        }
        writer.write(self.book.clone());
        self.dirty = false;
        self.last_save = Some(now);
    }

    /// Saves what is new and returns once it is on disk (the pool is closing).
    pub fn finish_saving(&mut self, now: Instant) {
        self.save_peaks(now, true);
        if let Some(writer) = self.writer.as_mut() {
            writer.finish();
        }
    }

    pub fn snapshot(&self) -> VramSnapshot {
        let devices = self
            .reading
            .as_ref()
            .map(|(_, ds)| ds.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter(|d| self.policy.devices.contains(&d.index))
            .map(|d| DeviceSnapshot {
                index: d.index,
                name: d.name.clone(),
                total_mb: d.total_mb,
                free_mb: d.free_mb,
                reserved_mb: self.admission.pending_mb(d.index),
                releasing_workers: self
                    .releasing
                    .iter()
                    .filter(|r| r.device == d.index)
                    .count(),
            })
            .collect();
        VramSnapshot {
            devices,
            learned_peaks_mb: self
                .book
                .peaks_mb
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            per_process_readings: self.per_process,
            vram_margin_mb: self.policy.vram_margin_mb,
            peaks_file: self.writer.as_ref().map(|w| w.path().to_path_buf()),
        }
    }
}

/// Why a worker at `current_mb` between tasks, `base_mb` after its first, must go.
fn growth(policy: &VramPolicy, current_mb: f64, base_mb: f64) -> Option<String> {
    if let Some(limit) = policy.worker_limit_mb {
        if current_mb > limit {
            return Some(format!(
                "GPU memory {current_mb:.0} MB over {limit:.0} MB (VRAM_ORCH_WORKER_VRAM_LIMIT_MB)"
            ));
        }
    }
    (current_mb > base_mb + policy.worker_vram_growth_mb).then(|| {
        format!(
            "GPU memory grew from {base_mb:.0} MB after its first task to {current_mb:.0} MB \
             (more than VRAM_ORCH_WORKER_VRAM_GROWTH_MB={:.0})",
            policy.worker_vram_growth_mb
        )
    })
}

/// `comm` of a process we can see, for error messages.
fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "another process".to_string())
}

#[cfg(test)]
mod tests;
