//! `vram_orchestrator._native`: the thin PyO3 layer over the supervisor.
//!
//! It converts Python values to Rust and back, maps errors onto the exception classes, and
//! releases the GIL around anything heavy or waiting (`blocking`). Pool logic lives in
//! `vram-orch-supervisor`.

mod blocking;
mod convert;
mod errors;
mod pool;

use pyo3::prelude::*;

/// NVML's view of the GPUs as JSON (`{"status": "available"|"unavailable", ...}`).
#[pyfunction]
#[pyo3(signature = (scripted=None))]
fn gpu_probe_json(py: Python<'_>, scripted: Option<std::path::PathBuf>) -> PyResult<String> {
    let source = scripted.map_or(
        vram_orch_supervisor::GpuSource::Nvml,
        vram_orch_supervisor::GpuSource::Scripted,
    );
    let report = blocking::blocking(py, |_| Some(source.probe()))?;
    Ok(serde_json::to_string(&report)
        .unwrap_or_else(|e| format!("{{\"status\":\"unavailable\",\"reason\":\"{e}\"}}")))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust `log` records (pool events, forwarded worker lines) go to Python `logging`.
    // Levels are not cached so logging configured after import still applies.
    if let Ok(logger) = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers) {
        let _ = logger.install();
    }
    errors::register(m)?;
    m.add_class::<pool::NativePool>()?;
    m.add_function(wrap_pyfunction!(gpu_probe_json, m)?)?;
    m.add("PROTOCOL_VERSION", vram_orch_protocol::PROTOCOL_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
