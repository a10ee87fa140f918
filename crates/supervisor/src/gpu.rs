//! GPU facts from NVML only (never CUDA): the Python process must not create a context.
//! NVML is loaded at run time; without it the pool runs in CPU mode and says why.
//!
//! A [`GpuSource`] is either NVML or a scripted device: a JSON file with each device's
//! total memory and the processes using it, so admission and placement can be tested end
//! to end (real worker processes) on machines without a GPU.

use std::path::PathBuf;
use std::sync::OnceLock;

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuDevice {
    pub index: u32,
    /// `GPU-…`: pins a worker with CUDA_VISIBLE_DEVICES whatever CUDA's device order.
    pub uuid: String,
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
        /// The newest CUDA the driver supports ("13.0"); a CUDA build newer than this
        /// cannot start. `None` when NVML cannot say (and for a scripted GPU).
        cuda_driver_version: Option<String>,
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

/// Where GPU readings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSource {
    Nvml,
    /// A scripted device file (see [`ScriptedDevices`]), for tests without a GPU.
    Scripted(PathBuf),
}

impl GpuSource {
    pub fn probe(&self) -> GpuReport {
        match self {
            GpuSource::Nvml => probe(),
            GpuSource::Scripted(path) => ScriptedDevices::read(path),
        }
    }
}

/// The scripted device file: `{"devices": [{"index", "uuid", "name", "total_mb",
/// "processes": [{"pid", "used_mb", "owner"}]}]}`. Used memory is the sum of the processes',
/// as if NVML saw every user; writers replace the file atomically (rename). An entry with
/// an `owner` (a real pid) lasts while that process does, as the driver frees a dead
/// process's memory: a crashed scripted worker leaves nothing behind.
#[derive(Debug, Deserialize)]
pub struct ScriptedDevices {
    devices: Vec<ScriptedDevice>,
}

#[derive(Debug, Deserialize)]
struct ScriptedProcess {
    pid: u32,
    used_mb: Option<f64>,
    #[serde(default)]
    owner: Option<u32>,
}

impl ScriptedProcess {
    fn alive(&self) -> bool {
        self.owner
            .is_none_or(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }
}

#[derive(Debug, Deserialize)]
struct ScriptedDevice {
    index: u32,
    uuid: String,
    name: String,
    total_mb: f64,
    #[serde(default)]
    processes: Vec<ScriptedProcess>,
}

impl ScriptedDevices {
    fn read(path: &std::path::Path) -> GpuReport {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<ScriptedDevices>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(script) => GpuReport::Available {
                driver_version: "scripted".to_string(),
                cuda_driver_version: None,
                devices: script
                    .devices
                    .into_iter()
                    .map(|d| {
                        let processes: Vec<GpuProcess> = d
                            .processes
                            .into_iter()
                            .filter(ScriptedProcess::alive)
                            .map(|p| GpuProcess {
                                pid: p.pid,
                                used_mb: p.used_mb,
                            })
                            .collect();
                        let used: f64 = processes.iter().filter_map(|p| p.used_mb).sum();
                        GpuDevice {
                            index: d.index,
                            uuid: d.uuid,
                            name: d.name,
                            total_mb: d.total_mb,
                            free_mb: (d.total_mb - used).max(0.0),
                            used_mb: used,
                            processes,
                        }
                    })
                    .collect(),
            },
            Err(e) => GpuReport::Unavailable {
                reason: format!("scripted GPU file {}: {e}", path.display()),
            },
        }
    }
}

/// Reads every device. Errors on one device are reported as the whole report's reason.
pub fn probe() -> GpuReport {
    match read_devices() {
        Ok((driver_version, devices)) => GpuReport::Available {
            driver_version,
            // A CUDA version of 13000 means 13.0.
            cuda_driver_version: nvml()
                .ok()
                .and_then(|n| n.sys_cuda_driver_version().ok())
                .map(|v| format!("{}.{}", v / 1000, v % 1000 / 10)),
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
            uuid: device.uuid().unwrap_or_default(),
            name: device.name().unwrap_or_default(),
            total_mb: memory.total as f64 / MB,
            free_mb: memory.free as f64 / MB,
            used_mb: memory.used as f64 / MB,
            processes,
        });
    }
    Ok((driver_version, devices))
}

/// True inside a nested pid namespace (a container): NVML then lists host pids, which are
/// not the ones we see, so per-process readings cannot be matched to our workers.
pub fn pid_namespace_is_nested() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("NSpid:"))
                .map(|l| l.split_whitespace().count() > 2)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_devices_sum_their_processes() {
        let path = std::env::temp_dir().join(format!("vo-gpu-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"devices": [{"index": 0, "uuid": "GPU-a", "name": "Sim", "total_mb": 1000,
                "processes": [{"pid": 1, "used_mb": 300}, {"pid": 2, "used_mb": 100}]}]}"#,
        )
        .unwrap();
        match GpuSource::Scripted(path.clone()).probe() {
            GpuReport::Available { devices, .. } => {
                assert_eq!(devices[0].free_mb, 600.0);
                assert_eq!(devices[0].used_mb, 400.0);
                assert_eq!(devices[0].uuid, "GPU-a");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(
            GpuSource::Scripted(path.clone()).probe(),
            GpuReport::Unavailable { .. }
        ));
        let _ = std::fs::remove_file(&path);
    }

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
