//! OCR files from the command line, one JSON line per file (text, boxes, timings).
//!
//! ```text
//! VRAM_ORCH_MODEL_DIR=.models VRAM_ORCH_ORT_DYLIB=/path/libonnxruntime.so.1.31.1 \
//!   cargo run --release --example ocr_files -- [--profile default|reference] \
//!   [--threads N] [--repeat N] FILE...
//! ```
//! `--models NAME` picks the model set (VRAM_ORCH_MODEL_DIR must hold its files; default:
//! the catalogue's default set). CUDA: `--device cuda:N`, `--conv-algo heuristic|exhaustive|default`, `--arena-shrink`
//! (shrink the arena after every run), `--small-workspace` (no max cuDNN workspace).
//!
//! `--repeat` runs each file N times (after one warm-up run when N > 1) and reports the last
//! run's output with every run's total time and their median; `--summary` prints only the
//! file, line count, times and stage timings (no text). The peak RSS (VmHWM) is printed at
//! the end. `--stdin` reads one file name per line from stdin and answers each with a
//! summary line (for side-by-side timing drivers).

use std::path::PathBuf;
use std::time::Instant;

use vram_orch_ocr::{Device, Engine, EngineOptions, ImageInput, ModelSet, Profile, TaskOptions};

fn main() {
    let mut profile = Profile::Default;
    let mut threads = 0usize;
    let mut repeat = 1usize;
    let mut summary = false;
    let mut stdin = false;
    let mut device = Device::Cpu;
    let mut cuda = vram_orch_ocr::CudaOptions::default();
    let mut model_set = ModelSet::default_name().to_string();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => {
                profile = match args.next().as_deref() {
                    Some("reference") => Profile::Reference,
                    Some("default") => Profile::Default,
                    other => fail(&format!("--profile default|reference, not {other:?}")),
                }
            }
            "--threads" => threads = parse(args.next()),
            "--repeat" => repeat = parse::<usize>(args.next()).max(1),
            "--summary" => summary = true,
            "--stdin" => stdin = true,
            "--device" => {
                device = match args.next().as_deref().and_then(|d| d.strip_prefix("cuda:")) {
                    Some(n) => Device::Cuda(parse(Some(n.to_string()))),
                    None => Device::Cpu,
                }
            }
            "--conv-algo" => {
                let algo = args.next().unwrap_or_default().parse();
                cuda.conv_algo = Some(algo.unwrap_or_else(|e: String| fail(&e)))
            }
            "--models" => model_set = args.next().unwrap_or_default(),
            "--small-workspace" => cuda.conv_max_workspace = Some(false),
            "--cuda-defaults" => {
                let names = args.next().unwrap_or_default();
                let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
                cuda = cuda
                    .with_onnxruntime_defaults(&names)
                    .unwrap_or_else(|e| fail(&e));
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() && !stdin {
        fail("usage: ocr_files [--profile default|reference] [--threads N] [--repeat N] [--summary] FILE...");
    }
    let env = |k: &str| std::env::var_os(k).unwrap_or_else(|| fail(&format!("set {k}")));
    let opts = EngineOptions {
        model_set: ModelSet::named(&model_set).unwrap_or_else(|e| fail(&e.to_string())),
        model_dir: env("VRAM_ORCH_MODEL_DIR").into(),
        ort_dylib: env("VRAM_ORCH_ORT_DYLIB").into(),
        device,
        intra_threads: threads,
        graph_cache: None,
        cuda,
    };
    let t0 = Instant::now();
    let mut engine = Engine::new(&opts).unwrap_or_else(|e| fail(&e.to_string()));
    eprintln!(
        "engine ready in {:.0} ms: {:?}",
        t0.elapsed().as_secs_f64() * 1e3,
        engine.info()
    );
    let task = TaskOptions {
        profile,
        ..Default::default()
    };
    if stdin {
        use std::io::{BufRead, Write};
        for name in std::io::stdin().lock().lines().map_while(Result::ok) {
            let t = Instant::now();
            let res = std::fs::read(&name)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    engine
                        .run(ImageInput::Encoded(&b), &task)
                        .map_err(|e| e.to_string())
                });
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let line = match res {
                Ok(out) => serde_json::json!({
                    "file": name, "ms": ms, "lines": out.lines.len(),
                    "text": out.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
                    "timings_ms": out.timings, "rec_runs": engine.last_trace().rec.len(),
                    "rec_fallback_runs": engine.last_trace().rec_fallback.len(),
                }),
                Err(e) => serde_json::json!({"file": name, "error": e}),
            };
            println!("{line}");
            std::io::stdout().flush().ok();
        }
        return;
    }
    let start = Instant::now();
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                println!("{}", serde_json::json!({"file": f, "error": e.to_string()}));
                continue;
            }
        };
        if repeat > 1 {
            let _ = engine.run(ImageInput::Encoded(&bytes), &task);
        }
        let mut res = None;
        let mut runs = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            res = Some(engine.run(ImageInput::Encoded(&bytes), &task));
            runs.push((t.elapsed().as_secs_f64() * 1e3).round());
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let line = match res.unwrap() {
            Ok(out) if summary => serde_json::json!({
                "engine": "rs",
                "file": f.file_name().map(|n| n.to_string_lossy().into_owned()),
                "median_ms": median,
                "lines": out.lines.len(),
                "runs": runs,
                "timings_ms": out.timings,
                "rec_batches": engine.last_trace().rec.len(),
            }),
            Ok(out) => serde_json::json!({
                "file": f,
                "width": out.width,
                "height": out.height,
                "lines": out.lines,
                "timings_ms": out.timings,
                "runs_ms": runs,
                "median_ms": median,
                "shapes": engine.last_trace(),
            }),
            Err(e) => serde_json::json!({"file": f, "error": e.to_string()}),
        };
        println!("{line}");
    }
    eprintln!(
        "{} files x {repeat} in {:.0} ms",
        files.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({"engine": "rs", "peak_rss_mb": (hwm / 1024.0).round()})
    );
}

fn parse<T: std::str::FromStr>(v: Option<String>) -> T {
    v.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fail("expected a number"))
}

fn fail(msg: &str) -> ! {
    eprintln!("ocr_files: {msg}");
    std::process::exit(2)
}
