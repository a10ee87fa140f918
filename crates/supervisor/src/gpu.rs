//! GPU facts from NVML only (never CUDA): the Python process must not create a context.
//! NVML is loaded at run time; without it the pool runs in CPU mode and says why.

use std::sync::OnceLock;

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    pub total_mb: f64,
    pub free_mb: f64,
    pub used_mb: f64,
    /// Compute processes NVML lists on this device (host pids).
    pub processes: Vec<GpuProcess>,
}

/// What NVML says now.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GpuReport {
    Available {
        driver_version: String,
        devices: Vec<GpuDevice>,
    },
    /// No NVML (no NVIDIA driver, or not loadable): CPU mode.
    Unavailable { reason: String },
}

fn nvml() -> Result<&'static Nvml, String> {
    static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        Nvml::init().map_err(|e| format!("no NVML ({e}): no NVIDIA driver visible, CPU mode"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

const MB: f64 = 1024.0 * 1024.0;

/// Reads every device. Errors on one device are reported as the whole report's reason.
pub fn probe() -> GpuReport {
    match read_devices() {
        Ok((driver_version, devices)) => GpuReport::Available {
            driver_version,
            devices,
        },
        Err(reason) => GpuReport::Unavailable { reason },
    }
}

fn read_devices() -> Result<(String, Vec<GpuDevice>), String> {
    let nvml = nvml()?;
    let err = |e: nvml_wrapper::error::NvmlError| format!("NVML: {e}");
    let driver_version = nvml.sys_driver_version().map_err(err)?;
    let count = nvml.device_count().map_err(err)?;
    let mut devices = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml.device_by_index(index).map_err(err)?;
        let memory = device.memory_info().map_err(err)?;
        let processes = device
            .running_compute_processes()
            .unwrap_or_default()
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_mb: match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes as f64 / MB),
                    UsedGpuMemory::Unavailable => None,
                },
            })
            .collect();
        devices.push(GpuDevice {
            index,
            name: device.name().unwrap_or_default(),
            total_mb: memory.total as f64 / MB,
            free_mb: memory.free as f64 / MB,
            used_mb: memory.used as f64 / MB,
            processes,
        });
    }
    Ok((driver_version, devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_never_panics_and_says_why_when_unavailable() {
        match probe() {
            GpuReport::Available { devices, .. } => {
                for d in devices {
                    assert!(d.total_mb >= d.free_mb);
                }
            }
            GpuReport::Unavailable { reason } => assert!(reason.contains("NVML"), "{reason}"),
        }
    }
}
