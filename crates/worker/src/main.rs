//! `vram-orch-worker`: one OCR worker process.
//!
//! Started by the supervisor with its own process group and a parent-death signal. Loads
//! ONNX Runtime and the models once, says hello, then answers frames from stdin on stdout
//! until stdin closes, a `shutdown` arrives or the parent dies. With `--standby` the model
//! sessions (and so the CUDA context) are created on the first OCR task instead. Logs go to
//! stderr, which the supervisor forwards to Python's `logging`.

mod args;
mod lazy_engine;
mod logger;
mod serve;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let started = Instant::now();
    limit_malloc_arenas();
    no_telemetry();
    logger::init();
    if std::env::args().nth(1).as_deref() == Some("--cuda-report") {
        return cuda_report(std::env::args().skip(2));
    }
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            log::error!("{message}");
            return ExitCode::from(2);
        }
    };
    map_large_blocks_for(&args.model_set);
    if let Err(message) = serve::guard_parent(args.parent_pid) {
        log::error!("{message}");
        return ExitCode::from(2);
    }
    serve::default_fault_signals();
    serve::run(&args, started)
}

/// `--cuda-report --ort-dylib PATH`: what a CUDA worker would load, as JSON on stdout, with
/// no CUDA call made (`vram-orchestrator info` runs it with the workers' environment).
fn cuda_report(mut rest: impl Iterator<Item = String>) -> ExitCode {
    let dylib = match (rest.next().as_deref(), rest.next()) {
        (Some("--ort-dylib"), Some(path)) => path,
        _ => {
            log::error!("usage: vram-orch-worker --cuda-report --ort-dylib PATH");
            return ExitCode::from(2);
        }
    };
    let report = vram_orch_ocr::cuda_report(std::path::Path::new(&dylib));
    match serde_json::to_string(&report) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("cannot write the CUDA report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// At most two glibc malloc arenas. Rec reads a page's lines on two threads (and ONNX
/// Runtime has its own), and each thread's arena kept what it freed: a page worker peaked
/// 80-140 MB higher with glibc's default (8 per core), at the same speed (docs/profiles.md).
/// Called first, before any thread exists.
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// For a set with a fallback rec, blocks of 4 MiB or more always come from mmap, so the
/// large activations of its second rec model go back to the system when freed. glibc's
/// default threshold rises with every large block freed (up to 32 MiB), after which such
/// blocks stay in the heap, fragmented: a `ppocr-v6-tiny` worker peaked at 380-490 MB
/// over the tuning pages, and at 370-385 MB with the fixed threshold. Not for the other
/// sets: `ppocr-v4`'s rec took 1.6-2.2x as long with it (docs/profiles.md, section 10).
fn map_large_blocks_for(set: &vram_orch_ocr::ModelSet) {
    const THRESHOLD: libc::c_int = 4 << 20;
    if set.rec_fallback.is_some() {
        // SAFETY: mallopt only sets an allocator parameter (it takes glibc's own lock).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        }
    }
}

/// ONNX Runtime's Microsoft builds start their telemetry (a device id and an event store
/// under ~/.cache/Microsoft/DeveloperTools, and uploads) when the library loads, before any
/// API call could turn it off; only this variable, set before, stops it. Set here, first,
/// while the process has one thread.
fn no_telemetry() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}
