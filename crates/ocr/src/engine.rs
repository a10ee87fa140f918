//! The public engine: ORT, three sessions, decode, the chosen profile's flow.

use std::time::Instant;

use crate::decode::decode;
use crate::pipeline::Pipeline;
use crate::standby::Standby;
use crate::{
    EngineInfo, EngineOptions, ImageInput, OcrError, OcrOutput, Profile, StageTimings, TaskOptions,
};

/// The model set of RapidOCR 1.4.4, the only one the reference profile runs.
pub const REFERENCE_SET: &str = "ppocr-v4";

pub struct Engine {
    pipeline: Pipeline,
    info: EngineInfo,
    trace: TaskTrace,
}

/// The model input shapes (NCHW) of the last task, for parity checks and debugging.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskTrace {
    pub det: Vec<[usize; 4]>,
    pub cls: Vec<[usize; 4]>,
    pub rec: Vec<[usize; 4]>,
}

impl Engine {
    /// Loads ONNX Runtime (once per process) and the set's three models.
    pub fn new(opts: &EngineOptions) -> Result<Engine, OcrError> {
        Engine::preload(opts)?.activate()
    }

    /// Everything of `new` but the sessions: no CUDA context, no GPU memory until
    /// [`Standby::activate`].
    pub fn preload(opts: &EngineOptions) -> Result<Standby, OcrError> {
        Standby::preload(opts)
    }

    pub(crate) fn assemble(pipeline: Pipeline, info: EngineInfo) -> Engine {
        Engine {
            pipeline,
            info,
            trace: TaskTrace::default(),
        }
    }

    pub fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    /// Model input shapes of the last `run`.
    pub fn last_trace(&self) -> &TaskTrace {
        &self.trace
    }

    /// OCRs one image. Bad input is an `InvalidInput` error; the engine stays usable.
    pub fn run(
        &mut self,
        input: ImageInput<'_>,
        task: &TaskOptions,
    ) -> Result<OcrOutput, OcrError> {
        let t0 = Instant::now();
        let mut t = StageTimings::default();
        self.trace = TaskTrace::default();
        let img = decode(input, task.profile, &task.limits)?;
        t.decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let lines = match task.profile {
            Profile::Reference if self.info.model_set != REFERENCE_SET => {
                return Err(OcrError::InvalidInput(format!(
                    "the reference profile reproduces RapidOCR 1.4.4 and needs the \
                     {REFERENCE_SET} model set; this engine runs {}",
                    self.info.model_set
                )))
            }
            Profile::Reference => self.pipeline.run_reference(&img, &task.limits, &mut t),
            Profile::Default => self.pipeline.run_default(&img, &task.limits, &mut t),
        };
        self.pipeline.trim();
        self.trace = TaskTrace {
            det: self.pipeline.det.take_shapes(),
            cls: self.pipeline.cls.take_shapes(),
            rec: self
                .pipeline
                .rec
                .iter_mut()
                .flat_map(|lane| lane.model.take_shapes())
                .collect(),
        };
        let lines = lines?;
        t.total_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(OcrOutput {
            lines,
            width: img.width(),
            height: img.height(),
            rotation: match task.profile {
                Profile::Default => self.pipeline.last_turn,
                Profile::Reference => 0,
            },
            timings: t,
        })
    }
}
