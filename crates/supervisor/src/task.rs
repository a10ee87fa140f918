use std::sync::Arc;
use std::time::{Duration, Instant};

use vram_orch_protocol::{AnalyzeRequest, InputKind, OcrOptions, OcrResult, Request};

use crate::error::TaskError;

/// The image of one task, as it travels to the worker.
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub kind: InputKind,
    /// Shared so a retry after a crash needs no copy.
    pub payload: Arc<Vec<u8>>,
    /// A page analysis (layout, tables) rather than OCR alone.
    pub analyze: Option<Arc<AnalyzeRequest>>,
}

impl TaskInput {
    /// A cheap identity for "this input crashed a worker before" (not a security hash).
    /// Width x height from the image header (path or bytes) or the raw shape, without
    /// decoding; None when the header cannot be read (the worker reports why).
    pub(crate) fn pixels(&self) -> Option<u64> {
        let size = match &self.kind {
            InputKind::Raw { width, height, .. } => return Some(*width as u64 * *height as u64),
            InputKind::Encoded => imagesize::blob_size(&self.payload).ok()?,
            InputKind::Path { path } => imagesize::size(path).ok()?,
        };
        Some(size.width as u64 * size.height as u64)
    }

    /// The size of the frame that carries this input to a worker with `options`: the
    /// request's JSON header (counted, not kept) and the payload.
    pub(crate) fn frame_len(&self, options: &OcrOptions) -> usize {
        let request = Request::Ocr {
            id: u64::MAX,
            input: self.kind.clone(),
            options: *options,
            analyze: None,
        };
        let mut counter = ByteCounter(0);
        let _ = serde_json::to_writer(&mut counter, &request);
        if let Some(analyze) = &self.analyze {
            let _ = serde_json::to_writer(&mut counter, analyze.as_ref());
            counter.0 += r#","analyze":"#.len();
        }
        8 + counter.0 + self.payload.len()
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", self.kind).hash(&mut h);
        format!("{:?}", self.analyze).hash(&mut h);
        self.payload.as_slice().hash(&mut h);
        h.finish()
    }
}

pub(crate) struct Task {
    pub id: u64,
    pub input: TaskInput,
    pub options: OcrOptions,
    pub timeout: Duration,
    pub submitted: Instant,
    /// Attempts started so far (crash retries add one each).
    pub attempts: u32,
    pub fingerprint: u64,
    /// Input width x height when the header tells it (GPU admission buckets by size).
    pub pixels: Option<u64>,
    /// Since when it waits for GPU memory, and the numbers of the last refusal
    /// (required MB, available MB, device).
    pub vram_wait: Option<(Instant, f64, f64, u32)>,
    /// After a crash, the task runs only on a worker started since (ids from this one): a
    /// warm worker may hold what the crash left behind, and an input that kills one worker
    /// must not take a second warm one with it.
    pub fresh_worker_from: Option<u64>,
}

impl Task {
    /// Whether worker `id` may run this task.
    pub fn may_run_on(&self, worker: u64) -> bool {
        self.fresh_worker_from.is_none_or(|first| worker >= first)
    }
}

/// Which worker served a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStamp {
    pub pid: u32,
    pub device: String,
    pub tasks_served: u64,
}

#[derive(Debug, Clone)]
pub struct TaskSuccess {
    pub result: OcrResult,
    pub queue_ms: f64,
    /// From submission to result, as the caller sees it.
    pub total_ms: f64,
    pub worker: WorkerStamp,
    pub attempts: u32,
    /// The worker's GPU memory peak during the task (NVML samples), GPU workers only.
    pub vram_peak_mb: Option<f64>,
}

pub type TaskOutcome = Result<TaskSuccess, TaskError>;

/// One finished task, sent exactly once per accepted task.
#[derive(Debug)]
pub struct Completed {
    pub id: u64,
    pub outcome: TaskOutcome,
}

/// Counts the bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
