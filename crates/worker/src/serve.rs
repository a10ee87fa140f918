//! The worker's life: load, hello, serve frames, exit.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Instant;

use vram_orch_ocr::{
    AnalyzeOptions, Engine, EngineOptions, ImageInput, Limits, OcrError, OcrOutput, TaskOptions,
};
use vram_orch_protocol::{
    read_frame, write_frame, AnalyzeRequest, Cell, ErrorKind, FrameError, Hello, InputKind, Line,
    OcrOptions, OcrResult, PageLayout, Profile, Region, Request, Response, Table, Timings,
    PROTOCOL_VERSION,
};

use crate::args::Args;
use crate::lazy_engine::LazyEngine;

/// Exit codes the supervisor reads (beside signals).
const EXIT_SETUP_FAILED: u8 = 3;
const EXIT_PROTOCOL_ERROR: u8 = 4;
const EXIT_PANIC: u8 = 5;

/// Dies with the parent: PR_SET_PDEATHSIG covers a parent that dies later, the pid check a
/// parent that died between fork and this line. (The supervisor also sets the signal before
/// exec; doing it again here keeps a hand-started worker safe too.)
pub fn guard_parent(expected_parent: Option<u32>) -> Result<(), String> {
    use nix::sys::{prctl, signal::Signal};
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    if let Some(expected) = expected_parent {
        let parent = nix::unistd::getppid().as_raw() as u32;
        if parent != expected {
            return Err(format!("parent {expected} is gone (now {parent}); exiting"));
        }
    }
    Ok(())
}

/// Lets SIGSEGV and SIGBUS end the process whoever sends them. Rust's runtime catches them
/// to report stack overflows and, for a signal that is not a guard-page fault (one sent by
/// `kill`), returns as if nothing happened; a real fault still kills us either way.
pub fn default_fault_signals() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [Signal::SIGSEGV, Signal::SIGBUS] {
        // SAFETY: installing the default disposition runs no code of ours in the handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

/// Moves the frame channel off fd 1: returns a private handle to the real stdout and points
/// fd 1 at stderr, so stray prints from any library can never corrupt a frame.
fn private_stdout() -> std::io::Result<File> {
    let stdout = std::io::stdout();
    let saved: OwnedFd = stdout.as_fd().try_clone_to_owned()?;
    let mut fd1 = unsafe { OwnedFd::from_raw_fd(1) };
    nix::unistd::dup2(std::io::stderr().as_fd(), &mut fd1).map_err(std::io::Error::from)?;
    // fd 1 stays open (now stderr); never close it.
    std::mem::forget(fd1);
    Ok(File::from(saved))
}

pub fn run(args: &Args, started: Instant) -> ExitCode {
    let mut out = match private_stdout() {
        Ok(file) => BufWriter::new(file),
        Err(e) => {
            log::error!("cannot set up the frame channel: {e}");
            return ExitCode::from(EXIT_SETUP_FAILED);
        }
    };
    let mut input = BufReader::new(std::io::stdin().lock());

    let options = EngineOptions {
        model_set: args.model_set.clone(),
        model_dir: args.model_dir.clone(),
        ort_dylib: args.ort_dylib.clone(),
        device: args.device,
        intra_threads: args.threads,
        graph_cache: args.graph_cache.clone(),
        cuda: args.cuda.clone(),
    };
    let mut engine = match LazyEngine::start(&options, args.standby) {
        Ok(engine) => engine,
        Err(e) => {
            return fatal(
                &mut out,
                None,
                ErrorKind::Setup,
                e.to_string(),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let info = engine.info().clone();
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        ort_version: info.ort_version,
        providers_available: info.providers_available,
        device: info.device,
        models: info.models,
        load_ms: started.elapsed().as_secs_f64() * 1e3,
        standby: args.standby,
    };
    if hello.standby {
        log::info!("standby on {} in {:.0} ms", hello.device, hello.load_ms);
    } else {
        log::info!("ready on {} in {:.0} ms", hello.device, hello.load_ms);
    }
    if write_frame(&mut out, &Response::Hello(hello), &[]).is_err() {
        return ExitCode::SUCCESS; // the supervisor is gone
    }

    let mut tasks_served = 0u64;
    loop {
        let frame = match read_frame::<Request>(&mut input, args.max_frame_bytes) {
            Ok(frame) => frame,
            Err(FrameError::Eof) => return ExitCode::SUCCESS,
            Err(e) => {
                return fatal(
                    &mut out,
                    None,
                    ErrorKind::Protocol,
                    e.to_string(),
                    EXIT_PROTOCOL_ERROR,
                )
            }
        };
        let response = match frame.header {
            Request::Shutdown => return ExitCode::SUCCESS,
            Request::Ping { id } => Response::Pong { id },
            Request::Info { id } => Response::Info {
                id,
                tasks_served,
                rss_bytes: rss_bytes().unwrap_or(0),
            },
            Request::Ocr {
                id,
                input,
                options,
                analyze,
            } => {
                tasks_served += 1;
                // A standby worker that cannot activate is as broken as one that cannot start.
                let (engine, activate_ms) = match engine.get() {
                    Ok(active) => active,
                    Err(e) => {
                        return fatal(
                            &mut out,
                            Some(id),
                            ErrorKind::Setup,
                            error_message(e),
                            EXIT_SETUP_FAILED,
                        )
                    }
                };
                let page = Page {
                    input: &input,
                    payload: &frame.payload,
                    options: &options,
                };
                // A panic is a defect of ours: the task fails with its message and the
                // worker exits (its state is unknown), rather than dying without a word.
                let done = std::panic::catch_unwind(AssertUnwindSafe(|| match &analyze {
                    None => ocr(engine, &page, activate_ms),
                    Some(request) => analyze_page(engine, &page, request, activate_ms),
                }));
                if let Ok(Ok(result)) = &done {
                    trim_after_large_input(result);
                }
                let done = match done {
                    Ok(done) => done,
                    Err(panic) => {
                        return fatal(
                            &mut out,
                            Some(id),
                            ErrorKind::Inference,
                            format!("internal error in the worker: {}", panic_message(&panic)),
                            EXIT_PANIC,
                        )
                    }
                };
                match done {
                    Ok(result) => Response::OcrDone { id, result },
                    Err(e) => Response::Error {
                        id: Some(id),
                        kind: error_kind(&e),
                        message: error_message(e),
                    },
                }
            }
        };
        if write_frame(&mut out, &response, &[]).is_err() {
            return ExitCode::SUCCESS;
        }
    }
}

/// Logs a fatal error, tells the supervisor and exits with `code`. The frame carries the
/// task's id when a task triggered the failure (so that task fails), else none.
fn fatal(
    out: &mut impl Write,
    id: Option<u64>,
    kind: ErrorKind,
    message: String,
    code: u8,
) -> ExitCode {
    log::error!("{message}");
    let response = Response::Error { id, kind, message };
    let _ = write_frame(out, &response, &[]);
    ExitCode::from(code)
}

/// One task's image and bounds, as the request gave them.
struct Page<'a> {
    input: &'a InputKind,
    payload: &'a [u8],
    options: &'a OcrOptions,
}

impl Page<'_> {
    fn task(&self) -> TaskOptions {
        let o = self.options;
        TaskOptions {
            profile: match o.profile {
                Profile::Default => vram_orch_ocr::Profile::Default,
                Profile::Reference => vram_orch_ocr::Profile::Reference,
            },
            limits: Limits {
                max_input_bytes: o.max_input_bytes as usize,
                max_pixels: o.max_pixels,
                max_det_pixels: o.max_det_pixels,
            },
        }
    }

    /// The image, read from its file first for `Path` inputs (into `file_bytes`).
    fn image<'b>(&'b self, file_bytes: &'b mut Vec<u8>) -> Result<ImageInput<'b>, OcrError> {
        Ok(match self.input {
            InputKind::Encoded => ImageInput::Encoded(self.payload),
            InputKind::Path { path } => {
                *file_bytes = read_bounded(path, self.options.max_input_bytes)?;
                ImageInput::Encoded(file_bytes)
            }
            InputKind::Raw {
                width,
                height,
                channels,
            } => ImageInput::Raw {
                width: *width,
                height: *height,
                channels: *channels,
                data: self.payload,
            },
        })
    }
}

fn ocr(engine: &mut Engine, page: &Page<'_>, activate_ms: f64) -> Result<OcrResult, OcrError> {
    let mut file_bytes = Vec::new();
    let out = engine.run(page.image(&mut file_bytes)?, &page.task())?;
    Ok(result(out, activate_ms, None))
}

fn analyze_page(
    engine: &mut Engine,
    page: &Page<'_>,
    request: &AnalyzeRequest,
    activate_ms: f64,
) -> Result<OcrResult, OcrError> {
    let opts = AnalyzeOptions {
        tables: request.tables,
        text_cells: request
            .text_cells
            .as_ref()
            .map(|cells| cells.iter().map(|c| (c.text.clone(), c.bbox)).collect()),
    };
    let mut file_bytes = Vec::new();
    let (out, layout) = engine.analyze(page.image(&mut file_bytes)?, &page.task(), &opts)?;
    let layout = PageLayout {
        layout_ms: layout.layout_ms,
        table_ms: layout.table_ms,
        regions: layout
            .regions
            .into_iter()
            .map(|r| Region {
                label: r.label,
                score: r.score,
                bbox: r.bbox,
                lines: r.lines,
                table: r.table.map(|t| Table {
                    rows: t.rows,
                    cols: t.cols,
                    cells: t
                        .cells
                        .into_iter()
                        .map(|c| Cell {
                            row: c.row,
                            col: c.col,
                            row_span: c.row_span,
                            col_span: c.col_span,
                            bbox: c.bbox,
                            text: c.text,
                        })
                        .collect(),
                }),
            })
            .collect(),
    };
    Ok(result(out, activate_ms, Some(layout)))
}

fn result(out: OcrOutput, activate_ms: f64, layout: Option<PageLayout>) -> OcrResult {
    OcrResult {
        width: out.width,
        height: out.height,
        rotation: out.rotation,
        lines: out
            .lines
            .into_iter()
            .map(|l| Line {
                text: l.text,
                score: l.score,
                bbox: l.bbox,
            })
            .collect(),
        timings: Timings {
            decode_ms: out.timings.decode_ms,
            det_ms: out.timings.det_ms,
            cls_ms: out.timings.cls_ms,
            rec_ms: out.timings.rec_ms,
            model_ms: out.timings.model_ms,
            activate_ms,
            total_ms: out.timings.total_ms + activate_ms,
        },
        layout,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Reads a regular file no larger than `limit` bytes. Its size is checked before reading
/// and the read is bounded anyway (the file may grow); FIFOs, devices and folders are
/// refused, not read (a FIFO would block the worker, /dev/zero never ends).
fn read_bounded(path: &str, limit: u64) -> Result<Vec<u8>, OcrError> {
    use std::io::Read;
    let invalid = |e: std::io::Error| OcrError::InvalidInput(format!("cannot read {path}: {e}"));
    let meta = std::fs::metadata(path).map_err(invalid)?;
    if !meta.is_file() {
        return Err(OcrError::InvalidInput(format!(
            "{path} is not a regular file (a folder, FIFO, socket or device); pass an image file"
        )));
    }
    let too_large = |size: u64| {
        OcrError::InvalidInput(format!(
            "{path} has {size} bytes, over the limit of {limit} (max_input_bytes)"
        ))
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // O_NONBLOCK: a path swapped for a FIFO after the check still cannot block the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(invalid)?;
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(invalid)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The reason alone: the supervisor's error types add their own "invalid input: " prefix.
fn error_message(e: OcrError) -> String {
    match e {
        OcrError::InvalidInput(m) | OcrError::Setup(m) | OcrError::Inference(m) => m,
    }
}

fn error_kind(e: &OcrError) -> ErrorKind {
    match e {
        OcrError::InvalidInput(_) => ErrorKind::InvalidInput,
        OcrError::Setup(_) => ErrorKind::Setup,
        OcrError::Inference(_) => ErrorKind::Inference,
    }
}

/// Inputs of more pixels than this are large: an A4 page at 400 dpi is 15.5 MP.
const LARGE_INPUT_PIXELS: u64 = 16_000_000;

/// After a large input, gives the memory the task freed back to the system. glibc keeps
/// freed blocks below its mmap threshold (up to 32 MB each: ONNX Runtime's intermediate
/// tensors, resize buffers) in its heaps, so a worker stayed ~190 MB bigger after one 36 MP
/// page. Ordinary pages are left alone: the next page reuses that memory, and giving it
/// back after each would cost every page its page faults again. Done before the answer,
/// so the supervisor's RSS check after the task (worker_rss_limit_mb) sees the real size.
fn trim_after_large_input(result: &OcrResult) {
    if u64::from(result.width) * u64::from(result.height) > LARGE_INPUT_PIXELS {
        // SAFETY: malloc_trim only returns the allocator's free memory to the system.
        #[cfg(target_env = "gnu")]
        unsafe {
            libc::malloc_trim(0)
        };
    }
}

/// Resident set size from /proc (the supervisor also reads it from outside).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
