//! The GPU memory side of a CUDA pool: readings, the sampler's pace, what peaks are
//! learned per.

use std::time::Instant;

use crossbeam_channel::Receiver;

use super::workers::ExitReason;
use super::workers::State;
use super::{Dispatcher, LOG_TARGET};
use crate::config::{DeviceChoice, PoolConfig};
use crate::gpu::pid_namespace_is_nested;
use crate::sampler::{Reading, Sampler};
use crate::task::Task;
use crate::vram::{GpuMemory, VramPolicy};

impl Dispatcher {
    pub(super) fn on_reading(&mut self, at: Instant, report: crate::gpu::GpuReport) {
        let Some(gm) = self.gpu.as_mut() else { return };
        let recycle = gm.on_reading(at, report);
        gm.save_peaks(at, false);
        for (id, reason) in recycle {
            let idle = self
                .workers
                .get(&id)
                .is_some_and(|w| matches!(w.state, State::Idle { .. }));
            if idle {
                log::info!(target: LOG_TARGET, "recycling worker {}: {reason}", self.workers[&id].process.pid());
                self.stop(id, ExitReason::Recycle, reason, None);
            }
        }
    }

    /// Fast readings while anything runs, waits or starts; a fresh one at once when a
    /// decision needs it.
    pub(super) fn pace_sampler(&mut self) {
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
}

/// The GPU memory side of a pool on CUDA devices, with its sampler thread.
#[allow(clippy::type_complexity)]
pub(super) fn start(
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
        vram_margin_mb: config.gpu.vram_margin_mb,
        admission_timeout: config.gpu.admission_timeout,
        worker_limit_mb: config.worker_vram_limit_mb.map(|mb| mb as f64),
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
pub(super) fn peak_key(task: &Task) -> &'static str {
    match (task.input.analyze.is_some(), task.options.profile) {
        (true, _) => "analyze",
        (false, vram_orch_protocol::Profile::Default) => "default",
        (false, vram_orch_protocol::Profile::Reference) => "reference",
    }
}
