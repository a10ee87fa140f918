//! The fallback rec of `ppocr-v6-tiny`: lines its tiny rec reads with a score under the
//! set's `below_score` are read again by the small rec, whose reading replaces the first.
//! Needs the set's models and ONNX Runtime: VRAM_ORCH_TINY_MODEL_DIR and
//! VRAM_ORCH_ORT_DYLIB (`make test-rust` sets both).

use std::path::PathBuf;

use vram_orch_ocr::{
    Device, Engine, EngineOptions, ImageInput, ModelSet, OcrOutput, Profile, TaskOptions,
};

const SET: &str = "ppocr-v6-tiny";

/// A page of prose (tiny reads every line sure) and a report with a table and small print.
const PROSE: &str = "../../tests/data/ocrset/13_page_paragraph.png";
const REPORT: &str = "tests/fixtures/document/page_report.png";

fn page(path: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Without the folder the tests fail: a test that cannot run must not pass.
fn options(model_set: ModelSet) -> EngineOptions {
    let var = |name: &str| {
        std::env::var_os(name).unwrap_or_else(|| {
            panic!("set {name} (the {SET} model folder), or run `make test-rust`")
        })
    };
    EngineOptions {
        model_set,
        model_dir: var("VRAM_ORCH_TINY_MODEL_DIR").into(),
        ort_dylib: var("VRAM_ORCH_ORT_DYLIB").into(),
        device: Device::Cpu,
        intra_threads: 2,
        graph_cache: None,
        cuda: Default::default(),
    }
}

/// The tiny set with the fallback's threshold set to `below_score`.
fn tiny_reading_again_below(below_score: f32) -> ModelSet {
    let mut set = ModelSet::named(SET).unwrap();
    set.rec_fallback
        .as_mut()
        .expect("the set has a fallback rec")
        .below_score = below_score;
    set
}

fn read(engine: &mut Engine, path: &str) -> OcrOutput {
    let task = TaskOptions {
        profile: Profile::Default,
        ..Default::default()
    };
    engine
        .run(ImageInput::Encoded(&page(path)), &task)
        .expect("the page reads")
}

#[test]
fn only_lines_read_unsure_are_read_again() {
    let set = ModelSet::named(SET).unwrap();
    let fallback = set.rec_fallback.clone().unwrap();
    let mut engine = Engine::new(&options(set)).unwrap();
    let out = read(&mut engine, REPORT);
    let trace = engine.last_trace();
    assert!(out.lines.len() > 20, "{} lines", out.lines.len());
    // Some lines but not most (measured: 4 of 36).
    let again = trace.rec_fallback.len();
    assert!(
        again > 0 && again < trace.rec.len() / 2,
        "{again} of {}",
        trace.rec.len()
    );
    // One line per run, at the small rec's height.
    let height = fallback.rec.height;
    assert!(trace
        .rec_fallback
        .iter()
        .all(|s| s[0] == 1 && s[2] == height));
    assert!((0.5..1.0).contains(&fallback.below_score));
}

#[test]
fn a_threshold_of_zero_reads_nothing_again_and_one_reads_everything_with_the_small_rec() {
    let mut never = Engine::new(&options(tiny_reading_again_below(0.0))).unwrap();
    let tiny = read(&mut never, PROSE);
    assert!(never.last_trace().rec_fallback.is_empty());

    let mut always = Engine::new(&options(tiny_reading_again_below(1.01))).unwrap();
    let both = read(&mut always, PROSE);
    assert_eq!(
        always.last_trace().rec_fallback.len(),
        always.last_trace().rec.len()
    );

    // The tiny det and cls with the small rec as the only rec: the same lines, read alike.
    let mut small_rec = ModelSet::named(SET).unwrap();
    let fallback = small_rec.rec_fallback.take().unwrap();
    small_rec.files.rec = small_rec.files.rec_fallback.take().unwrap();
    small_rec.files.dict = None;
    small_rec.rec = fallback.rec;
    let mut plain = Engine::new(&options(small_rec)).unwrap();
    let small = read(&mut plain, PROSE);
    assert_eq!(both.lines, small.lines);
    // ... and not what tiny reads alone (else this test could not tell them apart).
    assert_ne!(
        tiny.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
        small.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
    );
}
