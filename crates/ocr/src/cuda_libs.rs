//! The CUDA provider libraries, loaded ahead of the first CUDA session.
//!
//! Loading them is what can fail on a machine without a usable CUDA set-up (missing
//! onnxruntime-gpu, cuDNN or cuBLAS), so a standby worker does it at start and reports such
//! a machine at once. dlopen runs no CUDA call: no context, no VRAM.

use std::path::Path;
use std::sync::OnceLock;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};

use crate::OcrError;

/// In load order, with the flags ONNX Runtime itself uses: the shared bridge global (the
/// provider resolves its symbols there), the CUDA provider local (its own copies of
/// protobuf and friends must not interpose on anyone else's). RTLD_NOW pulls in cuDNN and
/// cuBLAS now, which is the slow part a standby takes off the first task.
const LIBS: [(&str, i32); 2] = [
    ("libonnxruntime_providers_shared.so", RTLD_GLOBAL),
    ("libonnxruntime_providers_cuda.so", RTLD_LOCAL),
];

/// Held for the process: ONNX Runtime dlopens the same paths when it registers the CUDA
/// provider and must find them already loaded (and a failure must stay a failure).
static LOADED: OnceLock<Result<Vec<Library>, String>> = OnceLock::new();

/// Loads both provider libraries from the folder of `ort_dylib`, once per process.
pub(crate) fn load(ort_dylib: &Path, device: u32) -> Result<(), OcrError> {
    let res = LOADED.get_or_init(|| {
        let dir = ort_dylib.parent().unwrap_or(Path::new(""));
        LIBS.iter()
            .map(|(name, scope)| open(&dir.join(name), *scope, device))
            .collect()
    });
    match res {
        Ok(_) => Ok(()),
        Err(e) => Err(OcrError::Setup(e.clone())),
    }
}

fn open(path: &Path, scope: i32, device: u32) -> Result<Library, String> {
    // SAFETY: these are ONNX Runtime's own provider libraries, the ones it would load itself
    // on session creation; their initialisers make no CUDA calls.
    unsafe { Library::open(Some(path.as_os_str()), RTLD_NOW | scope) }.map_err(|e| {
        let detail = std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
        format!(
            "CUDA device {device} requested but {} could not be loaded ({e}{detail}); it needs \
             the onnxruntime-gpu wheel and CUDA/cuDNN libraries on LD_LIBRARY_PATH (or use \
             device=cpu)",
            path.display()
        )
    })
}
