//! OCR files from the command line, one JSON line per file (text, boxes, timings).
//!
//! ```text
//! VRAM_ORCH_MODEL_DIR=.models VRAM_ORCH_ORT_DYLIB=/path/libonnxruntime.so.1.31.1 \
//!   cargo run --release --example ocr_files -- [--profile default|reference] \
//!   [--threads N] [--repeat N] FILE...
//! ```
//! `--repeat` runs each file N times and reports the last run (warm timings).

use std::path::PathBuf;
use std::time::Instant;

use vram_orch_ocr::{Device, Engine, EngineOptions, ImageInput, Profile, TaskOptions};

fn main() {
    let mut profile = Profile::Default;
    let mut threads = 0usize;
    let mut repeat = 1usize;
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
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        fail("usage: ocr_files [--profile default|reference] [--threads N] [--repeat N] FILE...");
    }
    let env = |k: &str| std::env::var_os(k).unwrap_or_else(|| fail(&format!("set {k}")));
    let opts = EngineOptions {
        model_dir: env("VRAM_ORCH_MODEL_DIR").into(),
        ort_dylib: env("VRAM_ORCH_ORT_DYLIB").into(),
        device: Device::Cpu,
        intra_threads: threads,
        vram_limit_mb: None,
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
    let start = Instant::now();
    for f in &files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                println!("{}", serde_json::json!({"file": f, "error": e.to_string()}));
                continue;
            }
        };
        let mut res = None;
        for _ in 0..repeat {
            res = Some(engine.run(ImageInput::Encoded(&bytes), &task));
        }
        let line = match res.unwrap() {
            Ok(out) => serde_json::json!({
                "file": f,
                "width": out.width,
                "height": out.height,
                "lines": out.lines,
                "timings_ms": out.timings,
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
}

fn parse<T: std::str::FromStr>(v: Option<String>) -> T {
    v.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fail("expected a number"))
}

fn fail(msg: &str) -> ! {
    eprintln!("ocr_files: {msg}");
    std::process::exit(2)
}
