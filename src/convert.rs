//! Python values ↔ supervisor types.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyAttributeError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString};
use vram_orch_supervisor::{
    AnalyzeRequest, DeviceChoice, GpuConfig, GpuSource, InputKind, Line, OcrOptions, PageLayout,
    PoolConfig, Profile, TaskInput, TaskSuccess, TextCell,
};

use crate::errors::InvalidInput;

fn get<'py, T>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py>,
    for<'a> <T as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
{
    let item = d
        .get_item(key)?
        .ok_or_else(|| PyKeyError::new_err(format!("analysis request lacks {key:?}")))?;
    item.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        PyValueError::new_err(format!("analysis request {key:?}: {e}"))
    })
}

/// Longest time limit the pool takes (about 31 years): `inf` and any larger value mean
/// "no limit" and are held to this, so that deadlines (`Instant` + limit) cannot overflow.
const MAX_SECONDS: f64 = 1e9;

/// Seconds as a `Duration`: negative and NaN are 0, `inf` and huge values `MAX_SECONDS`.
pub fn seconds(s: f64) -> Duration {
    if s.is_nan() {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(s.clamp(0.0, MAX_SECONDS))
}

fn duration(obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    Ok(seconds(obj.extract()?))
}

fn optional_duration(obj: &Bound<'_, PyAny>) -> PyResult<Option<Duration>> {
    Ok(obj.extract::<Option<f64>>()?.map(seconds))
}

/// "cpu" as no GPU indices, else the NVML indices of the GPUs workers may use.
fn device_choice(obj: &Bound<'_, PyAny>) -> PyResult<DeviceChoice> {
    let gpus: Vec<u32> = obj.extract()?;
    Ok(if gpus.is_empty() {
        DeviceChoice::Cpu
    } else {
        DeviceChoice::Cuda(gpus)
    })
}

/// A scripted GPU file, or None for NVML.
fn gpu_source(obj: &Bound<'_, PyAny>) -> PyResult<GpuSource> {
    let scripted: Option<PathBuf> = obj.extract()?;
    Ok(scripted.map_or(GpuSource::Nvml, GpuSource::Scripted))
}

fn profile(obj: &Bound<'_, PyAny>) -> PyResult<Profile> {
    match obj.extract::<String>()?.as_str() {
        "default" => Ok(Profile::Default),
        "reference" => Ok(Profile::Reference),
        other => Err(PyValueError::new_err(format!(
            "profile {other:?}: expected 'default' or 'reference'"
        ))),
    }
}

// The pool's configuration as `vram_orchestrator._native_config` builds it (validated
// there). The derive reads each field as the Python attribute of the same name, so Python
// and Rust share one name per setting, and a missing or mistyped attribute fails naming it.
// The fields are those of the supervisor's `PoolConfig`, `GpuConfig` and `OcrOptions`, named
// as the settings are, except that durations drop the settings' `_s` (seconds in Python, a
// `Duration` here).

/// `OcrOptions`: a task's profile and input limits.
#[derive(FromPyObject)]
pub struct NativeOcrOptions {
    #[pyo3(from_py_with = profile)]
    profile: Profile,
    max_input_bytes: u64,
    max_pixels: u64,
    max_det_pixels: u64,
}

impl From<NativeOcrOptions> for OcrOptions {
    fn from(o: NativeOcrOptions) -> OcrOptions {
        OcrOptions {
            profile: o.profile,
            max_input_bytes: o.max_input_bytes,
            max_pixels: o.max_pixels,
            max_det_pixels: o.max_det_pixels,
        }
    }
}

/// `GpuConfig`: GPU memory settings (durations in seconds).
#[derive(FromPyObject)]
struct NativeGpuConfig {
    #[pyo3(from_py_with = gpu_source)]
    source: GpuSource,
    vram_margin_mb: f64,
    #[pyo3(from_py_with = duration)]
    admission_timeout: Duration,
    worker_vram_growth_mb: f64,
    peaks_dir: Option<PathBuf>,
}

impl From<NativeGpuConfig> for GpuConfig {
    fn from(g: NativeGpuConfig) -> GpuConfig {
        GpuConfig {
            source: g.source,
            vram_margin_mb: g.vram_margin_mb,
            admission_timeout: g.admission_timeout,
            worker_vram_growth_mb: g.worker_vram_growth_mb,
            peaks_dir: g.peaks_dir,
        }
    }
}

/// `PoolConfig` (durations in seconds; `device` as NVML indices, none for the CPU).
#[derive(FromPyObject)]
struct NativePoolConfig {
    worker_bin: PathBuf,
    model_set: String,
    model_dir: PathBuf,
    ort_dylib: PathBuf,
    #[pyo3(from_py_with = device_choice)]
    device: DeviceChoice,
    worker_env: Vec<(String, String)>,
    max_workers: usize,
    queue_max: usize,
    #[pyo3(from_py_with = optional_duration)]
    idle_timeout: Option<Duration>,
    #[pyo3(from_py_with = duration)]
    task_timeout: Duration,
    #[pyo3(from_py_with = duration)]
    kill_grace: Duration,
    #[pyo3(from_py_with = duration)]
    startup_timeout: Duration,
    max_tasks_per_worker: u64,
    worker_rss_limit_mb: u64,
    max_retries: u32,
    threads: usize,
    worker_vram_limit_mb: Option<u64>,
    graph_cache_dir: Option<PathBuf>,
    cudnn_conv_algo: String,
    cuda_defaults: Vec<String>,
    gpu: NativeGpuConfig,
    standby: bool,
    default_options: NativeOcrOptions,
    max_frame_bytes: usize,
}

impl From<NativePoolConfig> for PoolConfig {
    fn from(c: NativePoolConfig) -> PoolConfig {
        PoolConfig {
            worker_bin: c.worker_bin,
            model_set: c.model_set,
            model_dir: c.model_dir,
            ort_dylib: c.ort_dylib,
            device: c.device,
            worker_env: c.worker_env,
            max_workers: c.max_workers,
            queue_max: c.queue_max,
            idle_timeout: c.idle_timeout,
            task_timeout: c.task_timeout,
            kill_grace: c.kill_grace,
            startup_timeout: c.startup_timeout,
            max_tasks_per_worker: c.max_tasks_per_worker,
            worker_rss_limit_mb: c.worker_rss_limit_mb,
            max_retries: c.max_retries,
            threads: c.threads,
            worker_vram_limit_mb: c.worker_vram_limit_mb,
            graph_cache_dir: c.graph_cache_dir,
            cudnn_conv_algo: c.cudnn_conv_algo,
            cuda_defaults: c.cuda_defaults,
            gpu: c.gpu.into(),
            standby: c.standby,
            default_options: c.default_options.into(),
            max_frame_bytes: c.max_frame_bytes,
        }
    }
}

/// The supervisor's config from a `NativePoolConfig`. A bad field fails with the path to it
/// and the reason in the message (pyo3 keeps the inner reasons as causes, which a
/// traceback shows but `str(error)` does not).
pub fn pool_config(obj: &Bound<'_, PyAny>) -> PyResult<PoolConfig> {
    let py = obj.py();
    obj.extract::<NativePoolConfig>()
        .map(Into::into)
        .map_err(|e| {
            if e.get_type(py).is(py.get_type::<PyAttributeError>()) {
                return e; // a missing field: the message names it
            }
            let mut reasons = vec![e.value(py).to_string()];
            let mut cause = e.cause(py);
            while let Some(inner) = cause {
                reasons.push(inner.value(py).to_string());
                cause = inner.cause(py);
            }
            let error = PyTypeError::new_err(reasons.join(": "));
            error.set_cause(py, Some(e));
            error
        })
}

/// An input as taken from Python under the GIL. Bytearrays and arrays are copied then
/// (another thread could change them); immutable bytes are only borrowed, to be copied by
/// [`Image::to_input`] without the GIL.
pub enum Image<'a> {
    Ready(TaskInput),
    Bytes(&'a [u8]),
}

impl Image<'_> {
    /// The task input (for bytes, the copy into the frame buffer).
    pub fn to_input(&self) -> TaskInput {
        match self {
            Image::Ready(input) => input.clone(),
            Image::Bytes(bytes) => encoded(bytes.to_vec()),
        }
    }
}

/// A path (str), encoded bytes, or a numpy uint8 array (HxW, HxWx1/3/4). Arrays are read
/// in place (one copy, into the frame buffer); nothing is copied on the Python side.
pub fn image<'a>(image: &'a Bound<'_, PyAny>) -> PyResult<Image<'a>> {
    if image.cast::<PyString>().is_ok() {
        return Ok(Image::Ready(TaskInput {
            kind: InputKind::Path {
                path: image.extract::<String>()?,
            },
            payload: Arc::new(Vec::new()),
            analyze: None,
        }));
    }
    if let Ok(bytes) = image.cast::<PyBytes>() {
        return Ok(Image::Bytes(bytes.as_bytes()));
    }
    if let Ok(bytes) = image.cast::<PyByteArray>() {
        return Ok(Image::Ready(encoded(bytes.to_vec())));
    }
    if let Ok(array) = image.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        return raw(&array).map(Image::Ready);
    }
    let type_name = image.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "cannot OCR a {type_name}: pass a path, encoded image bytes or a numpy uint8 array"
    )))
}

fn encoded(bytes: Vec<u8>) -> TaskInput {
    TaskInput {
        kind: InputKind::Encoded,
        payload: Arc::new(bytes),
        analyze: None,
    }
}

fn raw(array: &PyReadonlyArrayDyn<'_, u8>) -> PyResult<TaskInput> {
    let shape = array.shape();
    let (height, width, channels) = match *shape {
        [h, w] => (h, w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (h, w, c),
        _ => {
            return Err(InvalidInput::new_err(format!(
                "array of shape {shape:?}: expected HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA)"
            )))
        }
    };
    let (width, height) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(InvalidInput::new_err(format!(
                "array of shape {shape:?} is too large"
            )))
        }
    };
    // `as_slice` also takes Fortran-ordered memory as it lies, which is not row-major.
    let data = match array.as_slice() {
        Ok(contiguous) if array.is_c_contiguous() => contiguous.to_vec(),
        // Strided views (crops, transposes) and Fortran order are gathered in row-major
        // order, still one copy.
        _ => array.as_array().iter().copied().collect(),
    };
    Ok(TaskInput {
        kind: InputKind::Raw {
            width,
            height,
            channels: channels as u8,
        },
        payload: Arc::new(data),
        analyze: None,
    })
}

/// A page analysis request from `{"tables": bool, "text_cells": None | [(text, (l, t, r,
/// b)), ...]}`. A box must be finite in f32 (NaN, inf and values past f32's range are
/// `InvalidInput`): the frame header is JSON, which has no such numbers.
pub fn analyze_request(d: &Bound<'_, PyDict>) -> PyResult<AnalyzeRequest> {
    let cells: Option<Vec<(String, [f32; 4])>> = get(d, "text_cells")?;
    if let Some(cells) = &cells {
        if let Some((i, (_, bbox))) = cells
            .iter()
            .enumerate()
            .find(|(_, (_, b))| !b.iter().all(|v| v.is_finite()))
        {
            return Err(InvalidInput::new_err(format!(
                "text_cells[{i}] has the box {bbox:?}: every coordinate must be a finite \
                 number of pixels"
            )));
        }
    }
    Ok(AnalyzeRequest {
        tables: get(d, "tables")?,
        text_cells: cells.map(|cells| {
            cells
                .into_iter()
                .map(|(text, bbox)| TextCell { text, bbox })
                .collect()
        }),
    })
}

/// The result dict (its keys: docs/usage.md, "Results").
pub fn result_dict<'py>(py: Python<'py>, s: &TaskSuccess) -> PyResult<Bound<'py, PyDict>> {
    let line_dicts = s
        .result
        .lines
        .iter()
        .map(|line| line_dict(py, line))
        .collect::<PyResult<Vec<_>>>()?;
    let t = &s.result.timings;
    let timings = PyDict::new(py);
    timings.set_item("queue", s.queue_ms)?;
    timings.set_item("decode", t.decode_ms)?;
    timings.set_item("det", t.det_ms)?;
    timings.set_item("cls", t.cls_ms)?;
    timings.set_item("rec", t.rec_ms)?;
    timings.set_item("model", t.model_ms)?;
    timings.set_item("activate", t.activate_ms)?;
    timings.set_item("worker", t.total_ms)?;
    if let Some(layout) = &s.result.layout {
        timings.set_item("layout", layout.layout_ms)?;
        timings.set_item("table", layout.table_ms)?;
    }
    timings.set_item("total", s.total_ms)?;
    let worker = PyDict::new(py);
    worker.set_item("pid", s.worker.pid)?;
    worker.set_item("device", &s.worker.device)?;
    worker.set_item("tasks_served", s.worker.tasks_served)?;
    let d = PyDict::new(py);
    if let Some(layout) = &s.result.layout {
        d.set_item("regions", regions(py, layout, &line_dicts)?)?;
    }
    d.set_item("lines", PyList::new(py, line_dicts)?)?;
    d.set_item("width", s.result.width)?;
    d.set_item("height", s.result.height)?;
    d.set_item("rotation", s.result.rotation)?;
    d.set_item("timings_ms", timings)?;
    d.set_item("worker", worker)?;
    d.set_item("attempts", s.attempts)?;
    // The worker's NVML peak during the task (GPU workers only).
    d.set_item("vram_peak_mb", s.vram_peak_mb)?;
    Ok(d)
}

fn line_dict<'py>(py: Python<'py>, line: &Line) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("text", &line.text)?;
    d.set_item("score", line.score)?;
    let points: Vec<Vec<f32>> = line.bbox.iter().map(|p| p.to_vec()).collect();
    d.set_item("box", points)?;
    Ok(d)
}

/// The regions of an analysis; each region lists its lines as the same dicts as the page's.
fn regions<'py>(
    py: Python<'py>,
    layout: &PageLayout,
    lines: &[Bound<'py, PyDict>],
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for region in &layout.regions {
        let d = PyDict::new(py);
        d.set_item("label", &region.label)?;
        d.set_item("score", region.score)?;
        d.set_item("box", region.bbox.to_vec())?;
        let held = PyList::empty(py);
        for &i in &region.lines {
            if let Some(line) = lines.get(i as usize) {
                held.append(line)?;
            }
        }
        d.set_item("lines", held)?;
        match &region.table {
            None => d.set_item("table", py.None())?,
            Some(table) => {
                let cells = PyList::empty(py);
                for cell in &table.cells {
                    let c = PyDict::new(py);
                    c.set_item("row", cell.row)?;
                    c.set_item("col", cell.col)?;
                    c.set_item("row_span", cell.row_span)?;
                    c.set_item("col_span", cell.col_span)?;
                    c.set_item("box", cell.bbox.to_vec())?;
                    c.set_item("text", &cell.text)?;
                    cells.append(c)?;
                }
                let t = PyDict::new(py);
                t.set_item("rows", table.rows)?;
                t.set_item("cols", table.cols)?;
                t.set_item("cells", cells)?;
                d.set_item("table", t)?;
            }
        }
        out.append(d)?;
    }
    Ok(out)
}
