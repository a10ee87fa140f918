//! Python values ↔ supervisor types.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
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
        .ok_or_else(|| PyKeyError::new_err(format!("native config lacks {key:?}")))?;
    item.extract::<T>().map_err(|e| {
        let e: PyErr = e.into();
        PyValueError::new_err(format!("native config {key:?}: {e}"))
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

pub fn profile(text: &str) -> PyResult<Profile> {
    match text {
        "default" => Ok(Profile::Default),
        "reference" => Ok(Profile::Reference),
        other => Err(PyValueError::new_err(format!(
            "profile {other:?}: expected 'default' or 'reference'"
        ))),
    }
}

/// Task options from a dict with `profile`, `max_input_bytes`, `max_pixels`,
/// `max_det_pixels`.
pub fn ocr_options(d: &Bound<'_, PyDict>) -> PyResult<OcrOptions> {
    Ok(OcrOptions {
        profile: profile(&get::<String>(d, "profile")?)?,
        max_input_bytes: get(d, "max_input_bytes")?,
        max_pixels: get(d, "max_pixels")?,
        max_det_pixels: get(d, "max_det_pixels")?,
    })
}

/// The pool config from the dict the Python layer built (already validated there).
pub fn pool_config(d: &Bound<'_, PyDict>) -> PyResult<PoolConfig> {
    // "cpu", or the NVML indices of the GPUs workers may use.
    let gpus: Vec<u32> = get(d, "gpus")?;
    let device = if gpus.is_empty() {
        DeviceChoice::Cpu
    } else {
        DeviceChoice::Cuda(gpus)
    };
    let scripted: Option<PathBuf> = get(d, "scripted_gpu")?;
    let gpu = GpuConfig {
        source: scripted.map_or(GpuSource::Nvml, GpuSource::Scripted),
        margin_mb: get(d, "vram_margin_mb")?,
        admission_timeout: seconds(get(d, "admission_timeout_s")?),
        worker_vram_growth_mb: get(d, "vram_growth_mb")?,
        peaks_dir: get(d, "profile_dir")?,
    };
    let idle_timeout_s: Option<f64> = get(d, "idle_timeout_s")?;
    let vram_limit_mb: Option<u64> = get(d, "vram_limit_mb")?;
    Ok(PoolConfig {
        worker_bin: get::<PathBuf>(d, "worker_bin")?,
        model_set: get(d, "model_set")?,
        model_dir: get::<PathBuf>(d, "model_dir")?,
        ort_dylib: get::<PathBuf>(d, "ort_dylib")?,
        device,
        worker_env: get(d, "worker_env")?,
        max_workers: get(d, "max_workers")?,
        queue_max: get(d, "queue_max")?,
        idle_timeout: idle_timeout_s.map(seconds),
        task_timeout: seconds(get(d, "task_timeout_s")?),
        kill_grace: seconds(get(d, "kill_grace_s")?),
        startup_timeout: seconds(get(d, "startup_timeout_s")?),
        max_tasks_per_worker: get(d, "max_tasks_per_worker")?,
        worker_rss_limit_mb: get(d, "worker_rss_limit_mb")?,
        max_retries: get(d, "max_retries")?,
        threads_per_worker: get(d, "threads_per_worker")?,
        vram_limit_mb,
        graph_cache: get(d, "graph_cache")?,
        cudnn_conv_algo: get(d, "cudnn_conv_algo")?,
        cuda_defaults: get(d, "cuda_defaults")?,
        gpu,
        standby: get(d, "standby")?,
        default_options: ocr_options(d)?,
        max_frame_bytes: get(d, "max_frame_bytes")?,
    })
}

/// A path (str), encoded bytes, or a numpy uint8 array (HxW, HxWx1/3/4). Arrays are read
/// in place (one copy, into the frame buffer); nothing is copied on the Python side.
pub fn task_input(image: &Bound<'_, PyAny>) -> PyResult<TaskInput> {
    if image.cast::<PyString>().is_ok() {
        return Ok(TaskInput {
            kind: InputKind::Path {
                path: image.extract::<String>()?,
            },
            payload: Arc::new(Vec::new()),
            analyze: None,
        });
    }
    if let Ok(bytes) = image.cast::<PyBytes>() {
        return Ok(encoded(bytes.as_bytes().to_vec()));
    }
    if let Ok(bytes) = image.cast::<PyByteArray>() {
        return Ok(encoded(bytes.to_vec()));
    }
    if let Ok(array) = image.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        return raw(&array);
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

/// The result dict of DESIGN.md.
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
