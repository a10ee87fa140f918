use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ModelSet;

/// Where the models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Device {
    Cpu,
    /// CUDA device ordinal as the worker sees it (after CUDA_VISIBLE_DEVICES).
    Cuda(u32),
}

/// Which behaviour the pipeline follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The models with the reference's defects fixed (bounded det size, no cls misfires,
    /// RGBA/palette decoded as seen).
    #[default]
    Default,
    /// RapidOCR 1.4.4 behaviour, defects included.
    Reference,
}

/// How cuDNN picks a convolution algorithm the first time a session sees an input shape
/// (ONNX Runtime's `cudnn_conv_algo_search`). OCR inputs change shape with every page and
/// line width, so this is paid often: see docs/gpu-results.md for the measured choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvAlgo {
    /// cuDNN's heuristics: no trial runs.
    #[default]
    Heuristic,
    /// Times every algorithm on each new shape, keeps the fastest.
    Exhaustive,
    /// One fixed algorithm, no search.
    Default,
}

impl std::str::FromStr for ConvAlgo {
    type Err = String;

    fn from_str(s: &str) -> Result<ConvAlgo, String> {
        match s {
            "heuristic" => Ok(ConvAlgo::Heuristic),
            "exhaustive" => Ok(ConvAlgo::Exhaustive),
            "default" => Ok(ConvAlgo::Default),
            other => Err(format!(
                "unknown cuDNN conv algorithm search {other:?} (heuristic, exhaustive, default)"
            )),
        }
    }
}

/// The CUDA provider options the engine sets, each by ONNX Runtime's name. `None` (or
/// `false`) leaves ONNX Runtime's own default: a CUDA start that fails with one of them can be
/// retried without it, with no rebuild (`--cuda-defaults`, `VRAM_ORCH_CUDA_DEFAULTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaOptions {
    /// `arena_extend_strategy=kSameAsRequested`: the arena grows by what a run asks for, not
    /// in powers of two (less VRAM held per worker).
    pub arena_same_as_requested: bool,
    /// `gpu_mem_limit`, MiB: the arena's ceiling.
    pub mem_limit_mb: Option<u64>,
    /// `cudnn_conv_algo_search`.
    pub conv_algo: Option<ConvAlgo>,
    /// `cudnn_conv_use_max_workspace`: cuDNN may use as much workspace as its fastest
    /// algorithm wants.
    pub conv_max_workspace: Option<bool>,
    /// Run option `memory.enable_memory_arena_shrinkage`: freed arena chunks go back to the
    /// device after every run, at the cost of allocating them again on the next.
    pub arena_shrink: bool,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            arena_same_as_requested: true,
            mem_limit_mb: None,
            conv_algo: Some(ConvAlgo::default()),
            conv_max_workspace: Some(true),
            arena_shrink: true,
        }
    }
}

impl CudaOptions {
    /// The option names `with_onnxruntime_defaults` accepts, as ONNX Runtime spells them.
    pub const NAMES: [&'static str; 5] = [
        "arena_extend_strategy",
        "gpu_mem_limit",
        "cudnn_conv_algo_search",
        "cudnn_conv_use_max_workspace",
        "memory.enable_memory_arena_shrinkage",
    ];

    /// These options, less the `names` left at ONNX Runtime's default.
    pub fn with_onnxruntime_defaults<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, String> {
        for name in names {
            match name.as_ref() {
                "arena_extend_strategy" => self.arena_same_as_requested = false,
                "gpu_mem_limit" => self.mem_limit_mb = None,
                "cudnn_conv_algo_search" => self.conv_algo = None,
                "cudnn_conv_use_max_workspace" => self.conv_max_workspace = None,
                "memory.enable_memory_arena_shrinkage" => self.arena_shrink = false,
                other => {
                    return Err(format!(
                        "unknown CUDA provider option {other:?} (one of {})",
                        Self::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(self)
    }
}

/// How the engine is built, once per worker.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The models and their settings.
    pub model_set: ModelSet,
    /// Folder with the set's files.
    pub model_dir: PathBuf,
    /// `libonnxruntime.so*` to load (load-dynamic).
    pub ort_dylib: PathBuf,
    pub device: Device,
    /// ONNX Runtime intra-op threads; 0 = ONNX Runtime's default.
    pub intra_threads: usize,
    /// Folder for graph-optimised copies of the models (CPU sessions only): workers after
    /// the first skip graph optimisation. `None`: every session optimises its graph.
    pub graph_cache: Option<PathBuf>,
    /// CUDA provider options (CUDA sessions only).
    pub cuda: CudaOptions,
}

/// Input bounds, checked before anything large is allocated.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Limits {
    /// Largest encoded or raw input accepted, in bytes.
    pub max_input_bytes: usize,
    /// Largest decoded image, width * height.
    pub max_pixels: u64,
    /// Largest det input, width * height (Default profile; Reference follows the reference).
    pub max_det_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 << 20,
            max_pixels: 40_000_000,
            max_det_pixels: 4_000_000,
        }
    }
}

/// Per-task knobs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TaskOptions {
    pub profile: Profile,
    pub limits: Limits,
}

/// An image handed to the engine.
#[derive(Debug, Clone, Copy)]
pub enum ImageInput<'a> {
    /// PNG, JPEG, TIFF, BMP or WebP bytes.
    Encoded(&'a [u8]),
    /// Row-major pixels, `channels` = 1 (gray), 3 (RGB) or 4 (RGBA).
    Raw {
        width: u32,
        height: u32,
        channels: u8,
        data: &'a [u8],
    },
}

/// One recognised line. `bbox` is TL, TR, BR, BL in input pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextLine {
    pub text: String,
    pub score: f32,
    pub bbox: [[f32; 2]; 4],
}

/// Milliseconds spent in each stage of one task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimings {
    pub decode_ms: f64,
    pub det_ms: f64,
    pub cls_ms: f64,
    pub rec_ms: f64,
    /// Time inside `session.run` over all models (the part no code of ours can shrink).
    pub model_ms: f64,
    pub total_ms: f64,
}

/// Result of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrOutput {
    pub lines: Vec<TextLine>,
    pub width: u32,
    pub height: u32,
    /// How far the page's content was turned clockwise (0, 90, 180, 270), as found by the
    /// orientation model; it was read upright and its boxes are in input pixels.
    pub rotation: u16,
    pub timings: StageTimings,
}

/// What the loaded engine can tell about itself (for the handshake and `info`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineInfo {
    pub ort_version: String,
    pub providers_available: Vec<String>,
    /// "cpu" or "cuda:N".
    pub device: String,
    /// The model set's name.
    #[serde(default)]
    pub model_set: String,
    /// Its file names.
    pub models: Vec<String>,
}
