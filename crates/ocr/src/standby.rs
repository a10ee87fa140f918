//! An engine loaded up to, but not including, its sessions.
//!
//! Everything that can fail on a bad installation (ONNX Runtime, the model files, the CUDA
//! provider libraries) is done; nothing that touches the GPU is. Session creation is the
//! step that creates the CUDA context and the arena, so it waits for [`Standby::activate`].

use std::path::{Path, PathBuf};

use ort::environment::Environment;

use crate::ctc::Charset;
use crate::engine::{Engine, CLS_MODEL, DET_MODEL, REC_MODEL};
use crate::graph_cache::GraphCache;
use crate::pipeline::Pipeline;
use crate::runtime::{environment, providers_available, Model};
use crate::{cuda_libs, Device, EngineInfo, EngineOptions, OcrError};

pub struct Standby {
    env: &'static Environment,
    opts: EngineOptions,
    graph_cache: Option<GraphCache>,
    info: EngineInfo,
    det: ModelFile,
    cls: ModelFile,
    rec: ModelFile,
}

/// A model file read into memory, with its path for error messages.
struct ModelFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl ModelFile {
    fn read(dir: &Path, file: &str) -> Result<ModelFile, OcrError> {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(OcrError::Setup(format!(
                "model file {} not found (set VRAM_ORCH_MODEL_DIR to the folder with the three PP-OCR .onnx files)",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            OcrError::Setup(format!("cannot read model file {}: {e}", path.display()))
        })?;
        Ok(ModelFile { path, bytes })
    }

    fn load(
        &self,
        env: &Environment,
        opts: &EngineOptions,
        name: &str,
        cache: Option<&GraphCache>,
    ) -> Result<Model, OcrError> {
        Model::load(env, &self.bytes, &self.path, opts, name, cache)
    }
}

impl Standby {
    pub(crate) fn preload(opts: &EngineOptions) -> Result<Standby, OcrError> {
        let (env, version) = environment(&opts.ort_dylib)?;
        let dir = &opts.model_dir;
        let det = ModelFile::read(dir, DET_MODEL)?;
        let cls = ModelFile::read(dir, CLS_MODEL)?;
        let rec = ModelFile::read(dir, REC_MODEL)?;
        if let Device::Cuda(n) = opts.device {
            cuda_libs::load(&opts.ort_dylib, n)?;
        }
        let info = EngineInfo {
            ort_version: version.to_string(),
            providers_available: providers_available(),
            device: match opts.device {
                Device::Cpu => "cpu".to_string(),
                Device::Cuda(n) => format!("cuda:{n}"),
            },
            models: vec![DET_MODEL.into(), CLS_MODEL.into(), REC_MODEL.into()],
        };
        // CPU only: a CUDA session's optimised graph depends on the GPU and the provider.
        let graph_cache = match (&opts.graph_cache, opts.device) {
            (Some(dir), Device::Cpu) => GraphCache::open(dir, version),
            _ => None,
        };
        Ok(Standby {
            env,
            opts: opts.clone(),
            graph_cache,
            info,
            det,
            cls,
            rec,
        })
    }

    /// The same as the active engine's `info`.
    pub fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    /// Creates the three sessions (on CUDA: the context and the arena) and the engine. The
    /// model bytes are dropped once the sessions hold their own copy.
    ///
    /// Rec is created on a second thread while det and cls are created here: session
    /// creation is CPU-bound graph work and rec's takes as long as the other two together,
    /// so a worker is ready sooner whenever a second core is free.
    pub fn activate(self) -> Result<Engine, OcrError> {
        let (env, opts, cache) = (self.env, &self.opts, self.graph_cache.as_ref());
        let (det_cls, rec) = std::thread::scope(|s| {
            let rec = s.spawn(|| self.rec.load(env, opts, "rec", cache));
            let det_cls = self
                .det
                .load(env, opts, "det", cache)
                .and_then(|det| Ok((det, self.cls.load(env, opts, "cls", cache)?)));
            let rec = rec
                .join()
                .unwrap_or_else(|_| Err(OcrError::Setup("rec: session creation panicked".into())));
            (det_cls, rec)
        });
        let ((det, cls), rec) = (det_cls?, rec?);
        let dict = rec.metadata("character").ok_or_else(|| {
            OcrError::Setup(format!(
                "{REC_MODEL} has no \"character\" metadata (the dictionary); use the PP-OCRv4 rec model from rapidocr_onnxruntime 1.4.4"
            ))
        })?;
        let charset = Charset::from_metadata(&dict);
        log::debug!("rec dictionary: {} entries", charset.entries());
        Ok(Engine::assemble(
            Pipeline::new(det, cls, rec, charset),
            self.info,
        ))
    }
}
