use std::collections::BTreeMap;

use serde::Serialize;

use crate::vram::VramSnapshot;

/// A point-in-time view of the pool, for `runtime_info()` and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolSnapshot {
    pub workers: Vec<WorkerSnapshot>,
    pub queue_length: usize,
    pub queue_max: usize,
    pub in_flight: usize,
    pub submitted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub spawned: u64,
    pub exits_by_reason: BTreeMap<String, u64>,
    pub recent_exits: Vec<ExitRecord>,
    pub closed: bool,
    /// Devices, reservations and learned peaks (CUDA pools only).
    pub gpu: Option<VramSnapshot>,
    /// Queued tasks waiting for GPU memory.
    pub waiting_for_vram: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerSnapshot {
    pub pid: u32,
    /// starting | idle | busy | stopping
    pub state: &'static str,
    pub device: String,
    pub tasks_served: u64,
    pub age_s: f64,
    /// Time from spawn to hello (ONNX Runtime and models loaded), once ready.
    pub ready_ms: Option<f64>,
    pub rss_mb: Option<f64>,
    /// Started in standby: no sessions, no CUDA context, no GPU memory yet.
    pub standby: bool,
    /// GPU memory NVML shows for it (None on CPU or without per-process readings).
    pub gpu_mb: Option<f64>,
}

/// How a worker ended.
#[derive(Debug, Clone, Serialize)]
pub struct ExitRecord {
    pub pid: u32,
    /// idle | recycle | timeout | crash | close | startup_failed | protocol_error
    pub reason: &'static str,
    pub detail: String,
    pub tasks_served: u64,
    pub lifetime_s: f64,
}
