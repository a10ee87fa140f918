//! Layout and table structure against their reference packages (rapid-layout 1.2.1 and
//! rapid-table 0.3.0, outputs in tests/fixtures/document, made by
//! make_document_fixtures.py there). Need the models and ONNX Runtime: VRAM_ORCH_MODEL_DIR
//! (a folder with layout_cdla.onnx and slanet-plus.onnx, e.g. the ppocr-v4 set's) and
//! VRAM_ORCH_ORT_DYLIB. Without them these tests fail: parity is not optional.

use std::path::PathBuf;
use std::time::Instant;

use image::RgbImage;
use serde_json::Value;
use vram_orch_ocr::{
    fill_cells, Device, EngineOptions, Layout, ModelSet, TableGrid, TableRecognizer,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Value {
    let path = root().join("crates/ocr/tests/fixtures/document").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn options(threads: usize) -> EngineOptions {
    let var = |name: &str| {
        std::env::var_os(name).unwrap_or_else(|| {
            panic!("set {name}: VRAM_ORCH_MODEL_DIR to a folder with layout_cdla.onnx and slanet-plus.onnx, VRAM_ORCH_ORT_DYLIB to libonnxruntime.so")
        })
    };
    EngineOptions {
        model_set: ModelSet::named("ppocr-v4").unwrap(),
        model_dir: var("VRAM_ORCH_MODEL_DIR").into(),
        ort_dylib: var("VRAM_ORCH_ORT_DYLIB").into(),
        device: Device::Cpu,
        intra_threads: threads,
        graph_cache: None,
        cuda: Default::default(),
    }
}

/// The image at `rel` (from the repository root) in the engine's channel order, BGR.
fn bgr(rel: &str) -> RgbImage {
    let mut img = image::open(root().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .to_rgb8();
    for p in img.pixels_mut() {
        p.0.swap(0, 2);
    }
    img
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn layout_matches_rapid_layout() {
    let mut layout = Layout::open(&options(0)).expect("layout model");
    let fx = fixture("layout.json");
    let (mut checked, mut dscore, mut dbox) = (0, 0.0f32, 0.0f32);
    for case in fx["images"].as_array().unwrap() {
        let name = case["image"].as_str().unwrap();
        let img = bgr(name);
        assert_eq!(
            (img.width() as u64, img.height() as u64),
            (
                case["width"].as_u64().unwrap(),
                case["height"].as_u64().unwrap()
            )
        );
        let mut ms = 0.0;
        let got = layout.detect(&img, &mut ms).unwrap();
        let want = case["boxes"].as_array().unwrap();
        let show = |b: &[vram_orch_ocr::LayoutBox]| {
            b.iter()
                .map(|b| format!("{} {:.3} {:?}", b.label, b.score, b.bbox))
                .collect::<Vec<_>>()
        };
        assert_eq!(got.len(), want.len(), "{name}: {:#?}", show(&got));
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.label, w["label"].as_str().unwrap(), "{name}");
            let score = w["score"].as_f64().unwrap() as f32;
            assert!(
                (g.score - score).abs() < 0.01,
                "{name}: {} vs {score}",
                g.score
            );
            dscore = dscore.max((g.score - score).abs());
            let bbox = floats(&w["bbox"]);
            for k in 0..4 {
                assert!(
                    (g.bbox[k] - bbox[k]).abs() <= 2.0,
                    "{name} {}: {:?} vs {bbox:?}",
                    g.label,
                    g.bbox
                );
                dbox = dbox.max((g.bbox[k] - bbox[k]).abs());
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} boxes compared");
    println!("layout: {checked} boxes, largest differences: score {dscore:.2e}, box {dbox:.3} px");
}

#[test]
fn tables_match_rapid_table() {
    let mut rec = TableRecognizer::open(&options(0)).expect("table model");
    let fx = fixture("tables.json");
    let (mut cells, mut dbox) = (0, 0.0f32);
    for case in fx["tables"].as_array().unwrap() {
        let name = case["image"].as_str().unwrap();
        let crop = bgr(name);
        let mut ms = 0.0;
        let s = rec.recognize(&crop, &mut ms).unwrap();
        let tokens: Vec<&str> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(s.tokens, tokens, "{name}");
        let boxes = case["boxes"].as_array().unwrap();
        assert_eq!(s.boxes.len(), boxes.len(), "{name}");
        for (k, (g, w)) in s.boxes.iter().zip(boxes).enumerate() {
            let w = floats(w);
            for i in 0..8 {
                assert!(
                    (g[i] - w[i]).abs() <= 2.0,
                    "{name} cell {k}: {g:?} vs {w:?}"
                );
                dbox = dbox.max((g[i] - w[i]).abs());
            }
        }

        // The grid: the package's logical cells (row start, row end, col start, col end).
        let mut grid = rec.structure(&crop, &mut ms).unwrap();
        let logic: Vec<[u32; 4]> = case["logic_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p: Vec<u32> = p
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                [p[0], p[1], p[2], p[3]]
            })
            .collect();
        let ours: Vec<[u32; 4]> = grid
            .cells
            .iter()
            .map(|c| [c.row, c.row + c.row_span - 1, c.col, c.col + c.col_span - 1])
            .collect();
        assert_eq!(ours, logic, "{name}");
        assert_eq!(grid.rows, logic.iter().map(|p| p[1] + 1).max().unwrap());
        assert_eq!(grid.cols, logic.iter().map(|p| p[3] + 1).max().unwrap());

        // Cell texts: the package's matcher put the same lines in the same cells.
        let lines: Vec<(String, [f32; 4])> = case["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let b = floats(&l["box"]);
                (
                    l["text"].as_str().unwrap().to_string(),
                    [b[0], b[1], b[2], b[3]],
                )
            })
            .collect();
        fill_cells(&mut grid, &lines);
        let texts: Vec<&str> = grid.cells.iter().map(|c| c.text.as_str()).collect();
        let want: Vec<&str> = case["cell_texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(texts, want, "{name}");
        cells += texts.len();
    }
    println!("tables: {cells} cells, largest box difference {dbox:.3} px");
}

#[test]
fn grid_of_a_page_table_in_page_pixels() {
    let mut rec = TableRecognizer::open(&options(0)).expect("table model");
    let crop = bgr("crates/ocr/tests/fixtures/document/page_report_table.png");
    let mut ms = 0.0;
    let mut grid: TableGrid = rec.structure(&crop, &mut ms).unwrap();
    assert!(ms > 0.0);
    assert_eq!((grid.rows, grid.cols), (5, 4));
    // "Sales" spans the two year columns, "Region" and "Growth" the two header rows.
    let sales = &grid.cells[1];
    assert_eq!((sales.row, sales.col, sales.col_span), (0, 1, 2));
    assert_eq!((grid.cells[0].row_span, grid.cells[2].row_span), (2, 2));
    // To page pixels: by the crop's origin on the page.
    let before = grid.cells[0].bbox;
    grid.translate(64.0, 349.0);
    assert_eq!(grid.cells[0].bbox[0], before[0] + 64.0);
    assert_eq!(grid.cells[0].bbox[3], before[3] + 349.0);
    let json = serde_json::to_value(&grid).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), 17);
    assert_eq!(json["rows"], 5);
}

#[test]
fn empty_and_tiny_inputs() {
    let opts = options(0);
    let mut layout = Layout::open(&opts).unwrap();
    let mut rec = TableRecognizer::open(&opts).unwrap();
    let mut ms = 0.0;
    assert!(layout.detect(&RgbImage::new(0, 10), &mut ms).is_err());
    assert!(rec.structure(&RgbImage::new(10, 0), &mut ms).is_err());
    // A blank page has no regions; a one-pixel-high crop still runs.
    let blank = RgbImage::from_pixel(600, 800, image::Rgb([255, 255, 255]));
    assert!(layout.detect(&blank, &mut ms).unwrap().is_empty());
    let thin = RgbImage::from_pixel(900, 1, image::Rgb([255, 255, 255]));
    rec.structure(&thin, &mut ms).unwrap();
}

#[test]
fn models_missing_from_the_set_or_folder_are_setup_errors() {
    let mut opts = options(0);
    opts.model_set.files.layout = None;
    assert!(matches!(
        Layout::open(&opts),
        Err(vram_orch_ocr::OcrError::Setup(_))
    ));
    let mut opts = options(0);
    opts.model_dir = std::env::temp_dir().join("vram-orch-no-such-folder");
    match TableRecognizer::open(&opts) {
        Err(vram_orch_ocr::OcrError::Setup(e)) => assert!(e.contains("slanet-plus.onnx"), "{e}"),
        Err(e) => panic!("a missing model must be a Setup error, got {e:?}"),
        Ok(_) => panic!("a table model from a missing folder"),
    }
}

/// Per-call times on CPU with two intra-op threads (printed; run with --nocapture).
#[test]
fn timings_on_cpu_with_two_threads() {
    let opts = options(2);
    let mut layout = Layout::open(&opts).unwrap();
    let mut rec = TableRecognizer::open(&opts).unwrap();
    let page = bgr("crates/ocr/tests/fixtures/document/page_report.png");
    let crop = bgr("crates/ocr/tests/fixtures/document/page_report_table.png");
    let runs = 5;
    let time = |f: &mut dyn FnMut(&mut f64)| {
        let mut model = 0.0;
        f(&mut model); // warm-up
        let (mut model, t) = (0.0, Instant::now());
        for _ in 0..runs {
            f(&mut model);
        }
        (
            t.elapsed().as_secs_f64() * 1e3 / runs as f64,
            model / runs as f64,
        )
    };
    let (l_all, l_model) = time(&mut |ms| {
        layout.detect(&page, ms).unwrap();
    });
    let (t_all, t_model) = time(&mut |ms| {
        rec.structure(&crop, ms).unwrap();
    });
    println!(
        "layout {}x{}: {l_all:.1} ms per call ({l_model:.1} ms in the model); \
         table {}x{}: {t_all:.1} ms per call ({t_model:.1} ms in the model)",
        page.width(),
        page.height(),
        crop.width(),
        crop.height()
    );
}
