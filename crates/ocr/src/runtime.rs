//! ONNX Runtime: one environment per process, one session per model.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use ort::environment::Environment;
use ort::ep::{self, ArenaExtendStrategy, ExecutionProvider};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session, SessionOutputs};
use ort::value::TensorRef;

use crate::graph_cache::{self, Entry, GraphCache};
use crate::{ConvAlgo, Device, EngineOptions, OcrError};

/// The environment and the ORT version, or why they could not be had. Kept for the
/// process: ORT cannot be loaded twice, and a failed load must fail every later engine too.
static ENV: OnceLock<Result<(Environment, String), String>> = OnceLock::new();

pub(crate) fn environment(dylib: &Path) -> Result<(&'static Environment, &'static str), OcrError> {
    let res = ENV.get_or_init(|| {
        let builder = ort::init_from(dylib).map_err(|e| {
            format!(
                "cannot load ONNX Runtime from {}: {e} (set VRAM_ORCH_ORT_DYLIB to the \
                 libonnxruntime.so of an onnxruntime >= 1.24 wheel)",
                dylib.display()
            )
        })?;
        // No usage telemetry from workers (ONNX Runtime's Microsoft builds send it).
        let env = builder
            .with_name("vram-orch-ocr")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))?;
        Ok((env, ort_version(dylib)))
    });
    match res {
        Ok((env, v)) => Ok((env, v.as_str())),
        Err(e) => Err(OcrError::Setup(e.clone())),
    }
}

/// "1.31.1" from the build info string, else from the file name.
fn ort_version(dylib: &Path) -> String {
    let info = ort::info();
    if let Some(i) = info.find("git-branch=rel-") {
        let rest = &info[i + "git-branch=rel-".len()..];
        let v: String = rest
            .chars()
            .take_while(|c| *c != ',' && *c != ' ')
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
    let name = dylib
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_prefix("libonnxruntime.so.")
        .unwrap_or("unknown")
        .to_string()
}

pub(crate) fn providers_available() -> Vec<String> {
    let mut v = vec!["CPUExecutionProvider".to_string()];
    if ep::CUDA::is_available().unwrap_or(false) {
        v.push("CUDAExecutionProvider".to_string());
    }
    v
}

/// Loads the model file `file` of `opts.model_dir` on its own (the page analysis models,
/// outside a [`crate::Standby`]): the process's environment, the graph cache on CPU.
pub(crate) fn open_model(opts: &EngineOptions, file: &str, name: &str) -> Result<Model, OcrError> {
    let (env, version) = environment(&opts.ort_dylib)?;
    let path = opts.model_dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| {
        OcrError::Setup(format!(
            "cannot read model file {} ({e}; VRAM_ORCH_MODEL_DIR must hold the model set's files)",
            path.display()
        ))
    })?;
    let cache = match (&opts.graph_cache, opts.device) {
        (Some(dir), Device::Cpu) => GraphCache::open(dir, version),
        _ => None,
    };
    Model::load(env, &bytes, &path, opts, name, cache.as_ref())
}

/// One output of a run: its shape and its data.
pub(crate) type Output = (Vec<i64>, Vec<f32>);

/// One model: its session, its run options and the time spent inside `run`.
pub(crate) struct Model {
    session: Session,
    run_opts: RunOptions,
    pub name: String,
    /// Input shapes of the runs since the last `take_shapes` (for parity checks).
    shapes: Vec<[usize; 4]>,
}

impl Model {
    /// Creates the session from the model's bytes; `path` names it in errors. With a
    /// `cache` (CPU engines only, see `Standby::preload`) a saved optimised graph is loaded
    /// as is, else the optimised graph is saved for the next worker.
    pub fn load(
        env: &Environment,
        bytes: &[u8],
        path: &Path,
        opts: &EngineOptions,
        name: &str,
        cache: Option<&GraphCache>,
    ) -> Result<Model, OcrError> {
        // Every model at level ALL. Det used to run at EXTENDED: ALL's NCHWc layout keeps
        // reordered copies of det's activations, ~100 MB more on a full 1280x1792 page. Pages
        // now go through det at about 1 MP first (see `FIRST_PASS_DET_PIXELS`), where ALL is
        // 6-8 % faster on det and the worker's peak stays within budget.
        let (level, level_name) = (GraphOptimizationLevel::All, "all");
        let entry = cache.map(|c| c.entry(name, bytes, level_name));
        if let Some(Entry {
            file,
            saved: Some(graph),
            ..
        }) = &entry
        {
            let off = GraphOptimizationLevel::Disable;
            match Model::build(env, graph, file, opts, name, off, None) {
                Ok(model) => return Ok(model),
                Err(e) => graph_cache::discard(file, &e),
            }
        }
        let tmp = entry.as_ref().map(|e| e.tmp.as_path());
        let model = Model::build(env, bytes, path, opts, name, level, tmp);
        if let Some(e) = &entry {
            match model {
                Ok(_) => graph_cache::publish(&e.tmp, &e.file),
                Err(_) => {
                    let _ = std::fs::remove_file(&e.tmp);
                }
            }
        }
        model
    }

    /// One session at `level`; ONNX Runtime writes the optimised graph to `save` if given.
    fn build(
        env: &Environment,
        bytes: &[u8],
        path: &Path,
        opts: &EngineOptions,
        name: &str,
        level: GraphOptimizationLevel,
        save: Option<&Path>,
    ) -> Result<Model, OcrError> {
        let err =
            |what: &str, e: &dyn std::fmt::Display| OcrError::Setup(format!("{name}: {what}: {e}"));
        let mut b = Session::builder(env).map_err(|e| err("session builder", &e))?;
        b = b
            .with_optimization_level(level)
            .map_err(|e| err("optimisation level", &e))?;
        if let Some(save) = save {
            b = b
                .with_optimized_model_path(save)
                .map_err(|e| err("optimised model path", &e))?;
        }
        if opts.intra_threads > 0 {
            b = b
                .with_intra_threads(opts.intra_threads)
                .map_err(|e| err("intra threads", &e))?;
        }
        // Three sessions run one after another, each with its own pool: spinning idle
        // threads only steal cores from the busy one and from sibling workers (measured
        // 16-21 % faster on the test set on a shared 2-core machine).
        b = b
            .with_config_entry("session.intra_op.allow_spinning", "0")
            .map_err(|e| err("spinning", &e))?;
        let mut run_opts = RunOptions::new().map_err(|e| err("run options", &e))?;
        match opts.device {
            Device::Cpu => {
                b = b
                    .with_execution_providers([ep::CPU::default()
                        .with_arena_allocator(false)
                        .build()
                        .error_on_failure()])
                    .map_err(|e| err("CPU provider", &e))?;
            }
            Device::Cuda(n) => {
                let c = &opts.cuda;
                let mut cuda = ep::CUDA::default().with_device_id(n as i32);
                if c.arena_same_as_requested {
                    cuda = cuda.with_arena_extend_strategy(ArenaExtendStrategy::SameAsRequested);
                }
                if let Some(algo) = c.conv_algo {
                    cuda = cuda.with_conv_algorithm_search(match algo {
                        ConvAlgo::Heuristic => ep::cuda::ConvAlgorithmSearch::Heuristic,
                        ConvAlgo::Exhaustive => ep::cuda::ConvAlgorithmSearch::Exhaustive,
                        ConvAlgo::Default => ep::cuda::ConvAlgorithmSearch::Default,
                    });
                }
                if let Some(max) = c.conv_max_workspace {
                    cuda = cuda.with_conv_max_workspace(max);
                }
                if let Some(mb) = c.mem_limit_mb {
                    cuda = cuda.with_memory_limit((mb as usize).saturating_mul(1 << 20));
                }
                // error_on_failure: a CUDA request that cannot be met must not run on CPU.
                b = b
                    .with_execution_providers([
                        cuda.build().error_on_failure(),
                        ep::CPU::default().with_arena_allocator(false).build(),
                    ])
                    .map_err(|e| {
                        OcrError::Setup(format!(
                            "{name}: CUDA device {n} requested but the CUDA execution provider \
                             could not be registered: {e} (needs the onnxruntime-gpu wheel, a \
                             matching CUDA/cuDNN and a driver; or use device=cpu)"
                        ))
                    })?;
                // Only valid once CUDA is registered: on CPU it fails every run.
                if opts.cuda.arena_shrink {
                    run_opts
                        .set("memory.enable_memory_arena_shrinkage", format!("gpu:{n}"))
                        .map_err(|e| err("run option", &e))?;
                }
            }
        }
        let session = b
            .commit_from_memory(bytes)
            .map_err(|e| err(&format!("cannot load {}", path.display()), &e))?;
        Ok(Model {
            session,
            run_opts,
            name: name.to_string(),
            shapes: Vec::new(),
        })
    }

    pub fn take_shapes(&mut self) -> Vec<[usize; 4]> {
        std::mem::take(&mut self.shapes)
    }

    pub fn metadata(&self, key: &str) -> Option<String> {
        self.session.metadata().ok()?.custom(key)
    }

    /// Runs the model and hands the first output's shape and data to `f`.
    pub fn run<R>(
        &mut self,
        shape: [usize; 4],
        data: &[f32],
        model_ms: &mut f64,
        f: impl FnOnce(&[i64], &[f32]) -> Result<R, OcrError>,
    ) -> Result<R, OcrError> {
        self.shapes.push(shape);
        let name = &self.name;
        let outputs = infer(
            &mut self.session,
            &self.run_opts,
            name,
            shape,
            data,
            model_ms,
        )?;
        let (oshape, odata) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| OcrError::Inference(format!("{name}: output: {e}")))?;
        f(oshape, odata)
    }

    /// Runs the model and returns every output, in the model's order, as (shape, data).
    pub fn run_outputs(
        &mut self,
        shape: [usize; 4],
        data: &[f32],
        model_ms: &mut f64,
    ) -> Result<Vec<Output>, OcrError> {
        self.shapes.push(shape);
        let name = &self.name;
        let outputs = infer(
            &mut self.session,
            &self.run_opts,
            name,
            shape,
            data,
            model_ms,
        )?;
        let mut all = Vec::with_capacity(outputs.len());
        for (i, (_, value)) in outputs.iter().enumerate() {
            let (oshape, odata) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| OcrError::Inference(format!("{name}: output {i}: {e}")))?;
            all.push((oshape.to_vec(), odata.to_vec()));
        }
        Ok(all)
    }
}

/// Runs `session` on `data` shaped `shape` (NCHW); adds the time inside `run` to `model_ms`.
/// A function over the model's fields, not a method: its outputs borrow the session only,
/// so callers can still name the model in their errors.
fn infer<'s>(
    session: &'s mut Session,
    run_opts: &'s RunOptions,
    name: &str,
    shape: [usize; 4],
    data: &[f32],
    model_ms: &mut f64,
) -> Result<SessionOutputs<'s>, OcrError> {
    let input = TensorRef::from_array_view((shape, data))
        .map_err(|e| OcrError::Inference(format!("{name}: input tensor: {e}")))?;
    let t = Instant::now();
    let outputs = session
        .run_with_options(ort::inputs![input], run_opts)
        .map_err(|e| OcrError::Inference(format!("{name}: {e}")))?;
    *model_ms += t.elapsed().as_secs_f64() * 1e3;
    Ok(outputs)
}
