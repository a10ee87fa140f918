//! The GPU sampler thread: reads NVML (or a scripted device) and hands each reading to the
//! dispatcher, so the dispatcher never waits on NVML. Fast while tasks run (per-task peaks
//! come from these samples), slow when the pool is quiet; the dispatcher can ask for a
//! reading at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::gpu::{GpuReport, GpuSource};

/// While work runs: short enough to catch a task's peak on realistic pages.
const FAST: Duration = Duration::from_millis(25);
/// While quiet: readings only keep runtime_info and exited workers' release current.
const SLOW: Duration = Duration::from_secs(1);

/// A reading and the instant its probe began.
pub(crate) type Reading = (Instant, GpuReport);

/// The dispatcher's handle on the sampler thread. Dropping the reading receiver ends it.
pub(crate) struct Sampler {
    fast: Arc<AtomicBool>,
    wake: Sender<()>,
}

impl Sampler {
    pub fn start(source: GpuSource) -> std::io::Result<(Sampler, Receiver<Reading>)> {
        let (tx, readings) = crossbeam_channel::unbounded();
        let (wake, woken) = crossbeam_channel::bounded(1);
        let fast = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fast);
        std::thread::Builder::new()
            .name("vo-gpu-sampler".to_string())
            .spawn(move || run(source, tx, woken, flag))?;
        Ok((Sampler { fast, wake }, readings))
    }

    /// Sample fast (tasks run or wait) or slowly.
    pub fn set_fast(&self, fast: bool) {
        if self.fast.swap(fast, Ordering::Relaxed) != fast && fast {
            self.now();
        }
    }

    /// Asks for a reading now (one is already on its way if asked twice).
    pub fn now(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

fn run(source: GpuSource, readings: Sender<Reading>, woken: Receiver<()>, fast: Arc<AtomicBool>) {
    loop {
        // Stamped before the probe: a reading stamped after a task ended shows memory as
        // it was after that task.
        let at = Instant::now();
        let report = source.probe();
        if readings.send((at, report)).is_err() {
            return; // the dispatcher is gone
        }
        let interval = if fast.load(Ordering::Relaxed) {
            FAST
        } else {
            SLOW
        };
        match woken.recv_timeout(interval) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
