//! An engine loaded up to, but not including, its sessions.
//!
//! Everything that can fail on a bad installation (ONNX Runtime, the model files, the CUDA
//! provider libraries) is done; nothing that touches the GPU is. Session creation is the
//! step that creates the CUDA context and the arena, so it waits for [`Standby::activate`].

use std::path::{Path, PathBuf};

use ort::environment::Environment;

use crate::analysis::DocumentModels;
use crate::ctc::Charset;
use crate::engine::Engine;
use crate::graph_cache::GraphCache;
use crate::pipeline::{Fallback, Orienter, Pipeline, Reader, RecLane};
use crate::runtime::{environment, providers_available, Model};
use crate::{cuda_libs, Device, Dictionary, EngineInfo, EngineOptions, OcrError};

pub struct Standby {
    env: &'static Environment,
    opts: EngineOptions,
    graph_cache: Option<GraphCache>,
    info: EngineInfo,
    det: ModelFile,
    cls: ModelFile,
    rec: ModelFile,
    /// The second rec model, for sets that have one.
    rec_fallback: Option<ModelFile>,
    /// The dictionary file's text, for sets whose rec model does not carry it.
    dict: Option<String>,
    /// The page orientation model, for sets that have one.
    orientation: Option<ModelFile>,
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
                "model file {} not found (VRAM_ORCH_MODEL_DIR must hold the model set's files)",
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
        let (dir, set) = (&opts.model_dir, &opts.model_set);
        let det = ModelFile::read(dir, &set.files.det.name)?;
        let cls = ModelFile::read(dir, &set.files.cls.name)?;
        let rec = ModelFile::read(dir, &set.files.rec.name)?;
        let rec_fallback = match &set.files.rec_fallback {
            Some(file) => Some(ModelFile::read(dir, &file.name)?),
            None => None,
        };
        let dict = match &set.files.dict {
            Some(file) => {
                let f = ModelFile::read(dir, &file.name)?;
                Some(String::from_utf8(f.bytes).map_err(|_| {
                    OcrError::Setup(format!("{} is not UTF-8 text", f.path.display()))
                })?)
            }
            None => None,
        };
        let orientation = match &set.files.orientation {
            Some(file) => Some(ModelFile::read(dir, &file.name)?),
            None => None,
        };
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
            model_set: set.name.clone(),
            models: set.file_names(),
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
            rec_fallback,
            dict,
            orientation,
        })
    }

    /// The same as the active engine's `info`.
    pub fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    /// Creates the sessions (on CUDA: the context and the arena) and the engine. The model
    /// bytes are dropped once the sessions hold their own copy.
    ///
    /// Rec is created on a second thread while det, cls and orientation are created here:
    /// session creation is CPU-bound graph work and rec's takes as long as the others
    /// together, so a worker is ready sooner whenever a second core is free.
    pub fn activate(self) -> Result<Engine, OcrError> {
        let (env, opts, cache) = (self.env, &self.opts, self.graph_cache.as_ref());
        let (lanes, rec_opts) = rec_lanes(opts);
        let (others, rec) = std::thread::scope(|s| {
            let rec = s.spawn(|| {
                let load = |file: &ModelFile, name| {
                    (0..lanes)
                        .map(|_| Ok(RecLane::new(file.load(env, &rec_opts, name, cache)?)))
                        .collect::<Result<Vec<_>, OcrError>>()
                };
                let rec = load(&self.rec, "rec")?;
                let fallback = match &self.rec_fallback {
                    Some(f) => Some(load(f, "rec_fallback")?),
                    None => None,
                };
                Ok((rec, fallback))
            });
            let others = (|| {
                let det = self.det.load(env, opts, "det", cache)?;
                let cls = self.cls.load(env, opts, "cls", cache)?;
                let orientation = match &self.orientation {
                    Some(f) => Some(f.load(env, opts, "orientation", cache)?),
                    None => None,
                };
                Ok((det, cls, orientation))
            })();
            let rec = rec
                .join()
                .unwrap_or_else(|_| Err(OcrError::Setup("rec: session creation panicked".into())));
            (others, rec)
        });
        let ((det, cls, orientation), (rec, rec_fallback)) = (others?, rec?);
        let set = &self.opts.model_set;
        let orienter = match (orientation, &set.orientation) {
            (Some(model), Some(settings)) => Some(Orienter::new(model, settings, set)?),
            _ => None,
        };
        let dict = match (&set.rec.dictionary, self.dict) {
            (Dictionary::Metadata(key), _) => rec[0].model.metadata(key).ok_or_else(|| {
                OcrError::Setup(format!(
                    "{} has no {key:?} metadata, where the {} set keeps its dictionary",
                    set.files.rec.name, set.name
                ))
            })?,
            (Dictionary::File(_), Some(text)) => text,
            (Dictionary::File(role), None) => {
                return Err(OcrError::Setup(format!(
                    "the {} set reads its dictionary from its {role} file, which it does not name",
                    set.name
                )))
            }
        };
        let charset = Charset::from_lines(&dict);
        log::debug!("rec dictionary: {} entries", charset.entries());
        let fallback = match (rec_fallback, &set.rec_fallback, &set.files.rec_fallback) {
            (Some(lanes), Some(settings), Some(file)) => {
                let Dictionary::Metadata(key) = &settings.rec.dictionary else {
                    return Err(OcrError::Setup(format!(
                        "the {} set's fallback rec must carry its dictionary in its metadata",
                        set.name
                    )));
                };
                let dict = lanes[0].model.metadata(key).ok_or_else(|| {
                    OcrError::Setup(format!("{} has no {key:?} metadata", file.name))
                })?;
                Some(Fallback::new(lanes, Charset::from_lines(&dict), settings))
            }
            _ => None,
        };
        let rec = Reader::new(rec, charset, &set.rec);
        let pipeline = Pipeline::new(det, cls, rec, fallback, orienter, set);
        let documents = DocumentModels::new(self.opts);
        Ok(Engine::assemble(pipeline, documents, self.info))
    }
}

/// How many rec sessions an engine runs a page's lines on, and their options. A CPU engine
/// with two or more threads gets two, each with half the threads: per-line rec runs are
/// too short to keep two threads busy (one line on 2 threads: 1.5x the speed of 1), two
/// lines at once on 1 thread each keep both (measured in docs/profiles.md). CUDA runs
/// one: the GPU is shared anyway, and a second session doubles the arena.
fn rec_lanes(opts: &EngineOptions) -> (usize, EngineOptions) {
    match opts.device {
        Device::Cpu if opts.intra_threads >= 2 => {
            let mut half = opts.clone();
            half.intra_threads = opts.intra_threads / 2;
            (2, half)
        }
        _ => (1, opts.clone()),
    }
}
