//! The CUDA libraries ONNX Runtime's CUDA provider needs, loaded ahead of the first CUDA
//! session, without creating a CUDA context.
//!
//! What a standby worker may load is bounded by two facts seen on an H200 (ORT 1.30, CUDA 13):
//! - Opening ONNX Runtime's provider libraries ourselves crashes: the CUDA provider's static
//!   initialisers run before the shared bridge has the runtime's host table (SIGSEGV).
//! - Having ONNX Runtime load them (registering the CUDA provider on a builder) creates the
//!   CUDA context: 518 MB of VRAM for a worker that runs nothing.
//!
//! So the provider itself waits for the first session; what is loaded here is everything it
//! links or opens that is not ONNX Runtime's: the CUDA runtime, cuBLAS(Lt), cuRAND, and
//! cuDNN with its parts (cuDNN opens those lazily on its first call). These are the bulk of
//! the bytes, opening them runs no CUDA call, and a missing one is reported at once. The
//! provider's later dlopen of the same names finds them loaded.

use std::ffi::CStr;
use std::path::Path;
use std::sync::OnceLock;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use serde::Serialize;

use crate::runtime::{environment, providers_available};
use crate::OcrError;

/// Linked by the CUDA provider (its NEEDED entries besides libcuda), in dependency order,
/// for a provider built against CUDA `major` (cuRAND's soname is 10 in CUDA 12 and 13).
fn cuda_libs(major: u32) -> [String; 4] {
    [
        format!("libcudart.so.{major}"),
        format!("libcublasLt.so.{major}"),
        format!("libcublas.so.{major}"),
        "libcurand.so.10".to_string(),
    ]
}

/// The CUDA major version ONNX Runtime's provider was built for: the wheel's
/// `build_and_package_info.py` beside the core library says `cuda_version = '13.0'`.
/// Without that file (a build of one's own), CUDA 13.
pub(crate) fn cuda_major(ort_dylib: &Path) -> u32 {
    let info = ort_dylib.with_file_name("build_and_package_info.py");
    std::fs::read_to_string(info)
        .ok()
        .and_then(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("cuda_version"))
                .find_map(|rest| {
                    let v = rest.trim_start_matches([' ', '=', '\'', '"']);
                    v.split('.').next()?.parse().ok()
                })
        })
        .unwrap_or(13)
}
/// cuDNN 9's entry library: without it no convolution runs on CUDA.
const CUDNN: &str = "libcudnn.so.9";
/// cuDNN 9's parts, opened by cuDNN when first needed. Best effort: a build may lack some.
const CUDNN_PARTS: [&str; 7] = [
    "libcudnn_graph.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
];
/// The NVIDIA driver's CUDA library, linked by the provider; it comes with the driver.
const DRIVER: &str = "libcuda.so.1";
/// ONNX Runtime's CUDA provider, next to its core library.
const PROVIDER: &str = "libonnxruntime_providers_cuda.so";
/// ONNX Runtime's bridge to its provider libraries, next to its core library.
const PROVIDER_BRIDGE: &str = "libonnxruntime_providers_shared.so";

/// Held for the process (and a failure stays a failure).
static LOADED: OnceLock<Result<Vec<Library>, String>> = OnceLock::new();

/// Opens the CUDA libraries and cuDNN, once per process; checks the provider is there.
pub(crate) fn load(ort_dylib: &Path, device: u32) -> Result<(), OcrError> {
    let res = LOADED.get_or_init(|| {
        let provider = ort_dylib.parent().unwrap_or(Path::new("")).join(PROVIDER);
        if !provider.is_file() {
            return Err(format!(
                "CUDA device {device} requested but {} does not exist: {} is not the \
                 onnxruntime-gpu build (pip install vram-orchestrator[gpu]), or use device=cpu",
                provider.display(),
                ort_dylib.display()
            ));
        }
        let mut libs = Vec::new();
        let major = cuda_major(ort_dylib);
        for name in cuda_libs(major).iter().map(String::as_str).chain([CUDNN]) {
            libs.push(open(name, device, major)?);
        }
        for part in CUDNN_PARTS {
            match open(part, device, major) {
                Ok(lib) => libs.push(lib),
                Err(e) => log::debug!("{part} not preloaded: {e}"),
            }
        }
        Ok(libs)
    });
    match res {
        Ok(_) => Ok(()),
        Err(e) => Err(OcrError::Setup(e.clone())),
    }
}

fn open(name: &str, device: u32, major: u32) -> Result<Library, String> {
    // SAFETY: CUDA's and cuDNN's own libraries, the ones the provider links or opens; their
    // initialisers make no CUDA calls.
    unsafe { Library::open(Some(Path::new(name).as_os_str()), RTLD_NOW | RTLD_LOCAL) }.map_err(
        |e| {
            let detail =
                std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
            format!(
                "CUDA device {device} requested but {name} could not be loaded ({e}{detail}); \
                 this ONNX Runtime's CUDA provider needs the CUDA {major} runtime, cuBLAS and \
                 cuDNN 9 (nvidia-* wheels or LD_LIBRARY_PATH), or use device=cpu"
            )
        },
    )
}

/// What a CUDA worker would load, found as this process's loader finds it, with no CUDA call
/// made (no context, no VRAM): `vram-orch-worker --cuda-report`.
#[derive(Debug, Serialize)]
pub struct CudaReport {
    pub ort_library: String,
    /// ONNX Runtime's version, when the library loaded.
    pub ort_version: Option<String>,
    pub ort_error: Option<String>,
    /// The CUDA major version the provider was built for (the libraries below follow it).
    pub cuda_major: u32,
    /// Execution providers this ONNX Runtime build has.
    pub providers_available: Vec<String>,
    /// ONNX Runtime's provider libraries (not opened here: see the module comment).
    pub provider_files: Vec<LibraryReport>,
    /// The driver's, CUDA's and cuDNN's libraries, in the order a CUDA start needs them.
    pub libraries: Vec<LibraryReport>,
}

/// One library: where it was found, or why not.
#[derive(Debug, Serialize)]
pub struct LibraryReport {
    pub name: String,
    /// Without it, CUDA cannot start (cuDNN's parts are opened by cuDNN when needed).
    pub required: bool,
    pub path: Option<String>,
    pub error: Option<String>,
}

/// Opens what the CUDA provider would (as a standby does, plus the driver's library) and
/// reports each library's path or error. Opening runs no CUDA call.
pub fn cuda_report(ort_dylib: &Path) -> CudaReport {
    let (ort_version, ort_error) = match environment(ort_dylib) {
        Ok((_, version)) => (Some(version.to_string()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let folder = ort_dylib.parent().unwrap_or(Path::new(""));
    let provider_files = [PROVIDER_BRIDGE, PROVIDER]
        .into_iter()
        .map(|name| {
            let name = name.to_string();
            let path = folder.join(&name);
            let found = path.is_file();
            LibraryReport {
                name,
                required: true,
                path: found.then(|| path.display().to_string()),
                error: (!found).then(|| format!("{} does not exist", path.display())),
            }
        })
        .collect();
    let cuda_major = cuda_major(ort_dylib);
    let required = [DRIVER.to_string()]
        .into_iter()
        .chain(cuda_libs(cuda_major))
        .chain([CUDNN.to_string()]);
    let libraries = required
        .map(|name| (name, true))
        .chain(
            CUDNN_PARTS
                .into_iter()
                .map(|name| (name.to_string(), false)),
        )
        .map(|(name, required)| {
            // SAFETY: as in `open`; the driver's library likewise makes no CUDA call until
            // cuInit, which nothing here calls.
            let opened = unsafe { Library::open(Some(&name), RTLD_NOW | RTLD_LOCAL) };
            match opened {
                Ok(lib) => LibraryReport {
                    name,
                    required,
                    path: loaded_from(lib),
                    error: None,
                },
                Err(e) => LibraryReport {
                    name,
                    required,
                    path: None,
                    error: Some(
                        std::error::Error::source(&e)
                            .map_or_else(|| e.to_string(), |s| s.to_string()),
                    ),
                },
            }
        })
        .collect();
    CudaReport {
        ort_library: ort_dylib.display().to_string(),
        providers_available: match ort_version {
            Some(_) => providers_available(),
            None => Vec::new(),
        },
        ort_version,
        ort_error,
        cuda_major,
        provider_files,
        libraries,
    }
}

/// The file the loader opened for `lib` (its link-map name: the path it was found at).
/// The library stays loaded: the report's process ends right after.
fn loaded_from(lib: Library) -> Option<String> {
    // glibc's `struct link_map` (<link.h>); only the first two fields are read.
    #[repr(C)]
    struct LinkMap {
        _l_addr: usize,
        l_name: *const libc::c_char,
    }
    let handle = lib.into_raw();
    let mut map: *const LinkMap = std::ptr::null();
    // SAFETY: `handle` is a live dlopen handle (never closed), and RTLD_DI_LINKMAP writes
    // one pointer to its link map, whose name glibc keeps for the library's lifetime.
    unsafe {
        if libc::dlinfo(
            handle,
            libc::RTLD_DI_LINKMAP,
            (&mut map as *mut *const LinkMap).cast(),
        ) != 0
            || map.is_null()
            || (*map).l_name.is_null()
        {
            return None;
        }
        let name = CStr::from_ptr((*map).l_name).to_string_lossy().into_owned();
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vram-orch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn cuda_major_follows_the_wheels_build_info() {
        let dir = folder("build-info");
        let dylib = dir.join("libonnxruntime.so.1.26.0");
        assert_eq!(cuda_major(&dylib), 13, "no build info: CUDA 13");
        let info =
            "package_name = 'onnxruntime-gpu'\n__version__ = '1.26.0'\ncuda_version = '12.8'\n";
        std::fs::write(dir.join("build_and_package_info.py"), info).unwrap();
        assert_eq!(cuda_major(&dylib), 12);
        assert_eq!(cuda_libs(12)[0], "libcudart.so.12");
        std::fs::write(
            dir.join("build_and_package_info.py"),
            "cuda_version=\"13.0\"\n",
        )
        .unwrap();
        assert_eq!(cuda_major(&dylib), 13);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn report_names_what_is_missing_without_failing() {
        let dir = folder("no-ort");
        let report = cuda_report(&dir.join("libonnxruntime.so.1.30.0"));
        assert!(report.ort_version.is_none());
        assert!(report.ort_error.is_some());
        assert!(report.providers_available.is_empty());
        assert!(report
            .provider_files
            .iter()
            .all(|f| f.path.is_none() && f.error.as_deref().unwrap().contains("does not exist")));
        let names: Vec<_> = report.libraries.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names[..2], ["libcuda.so.1", "libcudart.so.13"]);
        assert!(report
            .libraries
            .iter()
            .any(|l| l.name == "libcudnn.so.9" && l.required));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
