//! PP-OCR (det → cls → rec) on ONNX Runtime through `ort`, for the worker process.
//!
//! Pure Rust, no pyo3. The models and their settings come from a [`ModelSet`]. Two profiles: [`Profile::Reference`] reproduces RapidOCR 1.4.4
//! (including its known defects, for parity), [`Profile::Default`] keeps the models and
//! fixes those defects (see `docs/profiles.md`).

mod analysis;
mod cls;
mod ctc;
mod cuda_libs;
mod db_postprocess;
mod decode;
mod det;
mod engine;
mod error;
pub mod geometry;
mod graph_cache;
pub mod layout;
mod model_set;
mod normalize;
mod orientation;
mod pipeline;
mod rec;
mod runtime;
mod sizing;
mod standby;
pub mod table;
mod types;

pub use analysis::{AnalyzeOptions, PageLayout, PageRegion, RegionCell, RegionTable};
pub use cuda_libs::{cuda_report, CudaReport, LibraryReport};
pub use engine::{Engine, TaskTrace};
pub use error::OcrError;
pub use layout::{Layout, LayoutBox, LayoutLabel};
pub use model_set::{
    ClsSettings, DetSettings, Dictionary, LayoutSettings, ModelSet, OrientationSettings,
    RecFallbackSettings, RecSettings, TableSettings,
};
pub use standby::Standby;
pub use table::{fill_cells, TableCell, TableGrid, TableRecognizer, TableStructure};
pub use types::*;
