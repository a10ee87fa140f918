use std::path::PathBuf;
use std::time::Duration;

use vram_orch_protocol::OcrOptions;

use crate::gpu::GpuSource;

/// Where workers run. `auto` is resolved by the Python layer (NVML) before it gets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    /// The GPUs (NVML indices) workers may be placed on; each worker is pinned to one.
    Cuda(Vec<u32>),
}

/// GPU memory settings (used with CUDA devices only).
#[derive(Debug, Clone)]
pub struct GpuConfig {
    pub source: GpuSource,
    /// Kept free on every device beyond all reservations.
    pub vram_margin_mb: f64,
    pub admission_timeout: Duration,
    /// Recycle a worker that grew this much past its level after its first task.
    pub worker_vram_growth_mb: f64,
    /// Where learned per-task peaks persist.
    pub peaks_dir: Option<PathBuf>,
}

/// Everything the pool needs, already validated by the caller (the Python layer checks
/// environment variables and paths and reports bad values with their names).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub worker_bin: PathBuf,
    /// The model set's name (its files are in `model_dir`).
    pub model_set: String,
    pub model_dir: PathBuf,
    pub ort_dylib: PathBuf,
    pub device: DeviceChoice,
    /// The worker's whole environment (it starts from an empty one).
    pub worker_env: Vec<(String, String)>,
    pub max_workers: usize,
    /// Tasks that may wait for a worker; more fail at once with `QueueFull`.
    pub queue_max: usize,
    /// `Some(t)`: a worker with no task for `t` exits (FREE_VRAM_ON_IDLE on). `None`: warm.
    pub idle_timeout: Option<Duration>,
    pub task_timeout: Duration,
    /// Between SIGTERM and SIGKILL when a worker must go.
    pub kill_grace: Duration,
    /// A worker that has not said hello by then is killed and its start counts as failed.
    pub startup_timeout: Duration,
    /// Recycle a worker after this many tasks (0 = never).
    pub max_tasks_per_worker: u64,
    /// Recycle a worker whose resident memory passes this (0 = no limit).
    pub worker_rss_limit_mb: u64,
    /// Attempts after a crash, on a fresh worker.
    pub max_retries: u32,
    /// ONNX Runtime intra-op threads per worker (0 = its default).
    pub threads: usize,
    /// CUDA arena limit per worker, and the GPU memory past which it is recycled.
    pub worker_vram_limit_mb: Option<u64>,
    /// Folder for the workers' graph-optimised models (CPU workers use it).
    pub graph_cache_dir: Option<PathBuf>,
    /// cuDNN convolution algorithm search of CUDA workers: heuristic, exhaustive or default.
    pub cudnn_conv_algo: String,
    /// CUDA provider options left at ONNX Runtime's default (ONNX Runtime's names), for a
    /// CUDA start that fails with one of ours.
    pub cuda_defaults: Vec<String>,
    pub gpu: GpuConfig,
    /// Keep one standby worker (ONNX Runtime loaded, no CUDA context, no VRAM) while idle.
    pub standby: bool,
    /// Defaults for tasks that do not say otherwise.
    pub default_options: OcrOptions,
    pub max_frame_bytes: usize,
}
