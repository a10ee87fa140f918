//! The public engine: ORT, three sessions, decode, the chosen profile's flow.

use std::time::Instant;

use crate::analysis::{lines_from_cells, AnalyzeOptions, DocumentModels, PageLayout};
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
    documents: DocumentModels,
    info: EngineInfo,
    trace: TaskTrace,
}

/// The model input shapes (NCHW) of the last task, for parity checks and debugging.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskTrace {
    pub det: Vec<[usize; 4]>,
    pub cls: Vec<[usize; 4]>,
    pub rec: Vec<[usize; 4]>,
    /// Runs of the set's fallback rec model (lines read again).
    pub rec_fallback: Vec<[usize; 4]>,
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

    pub(crate) fn assemble(
        pipeline: Pipeline,
        documents: DocumentModels,
        info: EngineInfo,
    ) -> Engine {
        Engine {
            pipeline,
            documents,
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
                .lanes
                .iter_mut()
                .flat_map(|lane| lane.model.take_shapes())
                .collect(),
            rec_fallback: self
                .pipeline
                .fallback
                .iter_mut()
                .flat_map(|f| f.reader.lanes.iter_mut())
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

    /// Analyses one page: its lines (OCR, or `opts.text_cells` when given), its layout
    /// regions and, with `opts.tables`, each table's grid. Runs the default profile.
    pub fn analyze(
        &mut self,
        input: ImageInput<'_>,
        task: &TaskOptions,
        opts: &AnalyzeOptions,
    ) -> Result<(OcrOutput, PageLayout), OcrError> {
        if task.profile == Profile::Reference {
            return Err(OcrError::InvalidInput(
                "page analysis runs the default profile; the reference profile is for OCR \
                 parity with RapidOCR 1.4.4"
                    .into(),
            ));
        }
        let t0 = Instant::now();
        let mut t = StageTimings::default();
        self.trace = TaskTrace::default();
        let img = decode(input, task.profile, &task.limits)?;
        t.decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let (lines, turn) = match &opts.text_cells {
            Some(cells) => (lines_from_cells(cells), 0),
            None => {
                let lines = self.pipeline.run_default(&img, &task.limits, &mut t);
                self.pipeline.trim();
                (lines?, self.pipeline.last_turn)
            }
        };
        let layout = self
            .documents
            .analyze(&img, turn, &lines, opts.tables, &mut t.model_ms)?;
        t.total_ms = t0.elapsed().as_secs_f64() * 1e3;
        let output = OcrOutput {
            lines,
            width: img.width(),
            height: img.height(),
            rotation: turn,
            timings: t,
        };
        Ok((output, layout))
    }
}
