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

use std::path::Path;
use std::sync::OnceLock;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::OcrError;

/// Linked by the CUDA provider (its NEEDED entries besides libcuda), in dependency order.
const CUDA_LIBS: [&str; 4] = [
    "libcudart.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
    "libcurand.so.10",
];
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
/// ONNX Runtime's CUDA provider, next to its core library.
const PROVIDER: &str = "libonnxruntime_providers_cuda.so";

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
        for name in CUDA_LIBS.into_iter().chain([CUDNN]) {
            libs.push(open(name, device)?);
        }
        for part in CUDNN_PARTS {
            match open(part, device) {
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

fn open(name: &str, device: u32) -> Result<Library, String> {
    // SAFETY: CUDA's and cuDNN's own libraries, the ones the provider links or opens; their
    // initialisers make no CUDA calls.
    unsafe { Library::open(Some(Path::new(name).as_os_str()), RTLD_NOW | RTLD_LOCAL) }.map_err(
        |e| {
            let detail =
                std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
            format!(
                "CUDA device {device} requested but {name} could not be loaded ({e}{detail}); \
                 the CUDA provider needs the CUDA 13 runtime, cuBLAS and cuDNN 9 (nvidia-* \
                 wheels or LD_LIBRARY_PATH), or use device=cpu"
            )
        },
    )
}
