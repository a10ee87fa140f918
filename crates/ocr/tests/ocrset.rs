//! End-to-end tests on tests/data/ocrset: parity with RapidOCR 1.4.4 (reference profile),
//! accuracy (default profile), bad inputs, on the ppocr-v4 set (the reference's). Need its
//! models and ONNX Runtime: VRAM_ORCH_MODEL_DIR and VRAM_ORCH_ORT_DYLIB. The other sets are
//! tested end to end through the Python package.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use vram_orch_ocr::{
    CudaOptions, Device, Engine, EngineOptions, ImageInput, Limits, ModelSet, OcrError, OcrOutput,
    Profile, TaskOptions,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ocrset")
}

/// CPU engine options from `VRAM_ORCH_MODEL_DIR` and `VRAM_ORCH_ORT_DYLIB`. Without them
/// the tests fail (a test that cannot run must not pass): `make test-rust` sets both.
fn cpu_options() -> EngineOptions {
    let var = |name: &str| {
        std::env::var_os(name).unwrap_or_else(|| {
            panic!(
                "set {name} (VRAM_ORCH_MODEL_DIR: the ppocr-v4 model folder, \
                 VRAM_ORCH_ORT_DYLIB: libonnxruntime.so), or run `make test-rust`"
            )
        })
    };
    let (models, dylib) = (var("VRAM_ORCH_MODEL_DIR"), var("VRAM_ORCH_ORT_DYLIB"));
    EngineOptions {
        model_set: ModelSet::named("ppocr-v4").unwrap(),
        model_dir: models.into(),
        ort_dylib: dylib.into(),
        device: Device::Cpu,
        intra_threads: 0,
        graph_cache: None,
        cuda: Default::default(),
    }
}

fn engine() -> Engine {
    Engine::new(&cpu_options()).expect("engine builds")
}

fn task(profile: Profile) -> TaskOptions {
    TaskOptions {
        profile,
        limits: Limits::default(),
    }
}

fn images() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(data_dir())
        .expect("ocrset folder")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert_eq!(v.len(), 22, "test set incomplete");
    v
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(data_dir().join(name)).unwrap()).unwrap()
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn joined(out: &OcrOutput) -> String {
    out.lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn levenshtein_counts_edits() {
    let c = |s: &str| s.chars().collect::<Vec<_>>();
    assert_eq!(levenshtein(&c("kitten"), &c("sitting")), 3);
    assert_eq!(levenshtein(&c(""), &c("abc")), 3);
    assert_eq!(levenshtein(&c("abc"), &c("abc")), 0);
}

#[test]
fn parity_with_reference() {
    let mut eng = engine();
    let reference = json("rapidocr_1.4.4_outputs.json");
    let mut same_text = 0;
    let mut must_match = 0;
    let mut max_dev = 0.0f32;
    let mut failures = Vec::new();
    for (name, bytes) in images() {
        let r = &reference["images"][&name];
        let out = eng
            .run(ImageInput::Encoded(&bytes), &task(Profile::Reference))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let trace = eng.last_trace().clone();
        let ref_lines: Vec<&Value> = r["result"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let ref_text: Vec<&str> = ref_lines.iter().map(|l| l[1].as_str().unwrap()).collect();
        let our_text: Vec<&str> = out.lines.iter().map(|l| l.text.as_str()).collect();
        let gt: Vec<&str> = r["gt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let shape = |v: &Value| -> Vec<Vec<usize>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    s.as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect()
                })
                .collect()
        };
        let det_ref = shape(&r["det_input_shape"]);
        let det_ours: Vec<Vec<usize>> = trace.det.iter().map(|s| s.to_vec()).collect();
        if det_ref != det_ours {
            failures.push(format!(
                "{name}: det input {det_ours:?} != reference {det_ref:?}"
            ));
        }
        let cls_ours: Vec<Vec<usize>> = trace.cls.iter().map(|s| s.to_vec()).collect();
        let rec_ours: Vec<Vec<usize>> = trace.rec.iter().map(|s| s.to_vec()).collect();
        let batches_same =
            cls_ours == shape(&r["cls_batches"]) && rec_ours == shape(&r["rec_batches"]);
        let text_same = ref_text == our_text;
        let mut dev = 0.0f32;
        if ref_lines.len() == out.lines.len() {
            for (l, rl) in out.lines.iter().zip(&ref_lines) {
                for (k, p) in l.bbox.iter().enumerate() {
                    for c in 0..2 {
                        let rv = rl[0][k][c].as_f64().unwrap() as f32;
                        dev = dev.max((p[c] - rv).abs());
                    }
                }
            }
            max_dev = max_dev.max(dev);
        }
        println!(
            "{name}: text {} ({} lines), max box dev {dev:.2} px, batches {}, {:.0} ms",
            if text_same { "same" } else { "DIFFERS" },
            out.lines.len(),
            if batches_same { "same" } else { "differ" },
            out.timings.total_ms
        );
        if !text_same {
            println!("   ours: {our_text:?}\n   ref:  {ref_text:?}");
        }
        if text_same {
            same_text += 1;
            if dev > 2.0 {
                failures.push(format!("{name}: box deviation {dev} px > 2"));
            }
        }
        if ref_text == gt {
            must_match += 1;
            if !text_same {
                failures.push(format!(
                    "{name}: text {our_text:?} != reference {ref_text:?}"
                ));
            }
        }
    }
    println!(
        "parity: {same_text}/22 images with identical text ({must_match} where the reference equals the ground truth), max box deviation {max_dev:.2} px"
    );
    assert!(
        failures.is_empty(),
        "parity failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn default_profile_accuracy() {
    let mut eng = engine();
    let gt = json("ground_truth.json");
    let (mut edits, mut chars) = (0usize, 0usize);
    let mut total_ms = 0.0;
    let mut per: BTreeMap<String, f64> = BTreeMap::new();
    for (name, bytes) in images() {
        let want: String = gt[&name]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let out = eng
            .run(ImageInput::Encoded(&bytes), &task(Profile::Default))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = joined(&out);
        let w: Vec<char> = want.chars().collect();
        let g: Vec<char> = got.chars().collect();
        let d = levenshtein(&g, &w);
        edits += d;
        chars += w.len();
        total_ms += out.timings.total_ms;
        let cer = if w.is_empty() {
            d as f64
        } else {
            d as f64 / w.len() as f64
        };
        per.insert(name.clone(), cer);
        let t = out.timings;
        println!(
            "{name}: CER {cer:.3}  {:.0} ms (det {:.0}, cls {:.0}, rec {:.0}, model {:.0})",
            t.total_ms, t.det_ms, t.cls_ms, t.rec_ms, t.model_ms
        );
        if d > 0 {
            println!("   got:  {got:?}\n   want: {want:?}");
        }
    }
    let cer = edits as f64 / chars as f64;
    println!("default profile: micro CER {cer:.4} ({edits} edits / {chars} chars), {total_ms:.0} ms for 22 images");
    assert!(cer <= 0.03, "micro CER {cer:.4} > 0.03");
}

fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn is_invalid(r: &Result<OcrOutput, OcrError>) -> bool {
    matches!(r, Err(OcrError::InvalidInput(_)))
}

#[test]
fn bad_inputs_are_refused_and_engine_survives() {
    let mut eng = engine();
    let good = std::fs::read(data_dir().join("02_line_pangram.png")).unwrap();
    let pangram = "The quick brown fox jumps over the lazy dog.";
    for profile in [Profile::Default, Profile::Reference] {
        let t = task(profile);
        // Refused with InvalidInput.
        let random: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        // Signature + an IHDR claiming 100000x100000 (valid CRC), then the real data.
        let mut huge = good[..33].to_vec();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&huge[12..29]);
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        huge.extend_from_slice(&good[33..]);
        let cases: Vec<(&str, ImageInput)> = vec![
            ("empty", ImageInput::Encoded(&[])),
            ("random", ImageInput::Encoded(&random)),
            (
                "truncated png",
                ImageInput::Encoded(&good[..good.len() / 2]),
            ),
            ("png header only", ImageInput::Encoded(&good[..40])),
            ("100000x100000 png", ImageInput::Encoded(&huge)),
            (
                "raw wrong length",
                ImageInput::Raw {
                    width: 10,
                    height: 10,
                    channels: 3,
                    data: &[0; 299],
                },
            ),
            (
                "raw 2 channels",
                ImageInput::Raw {
                    width: 2,
                    height: 2,
                    channels: 2,
                    data: &[0; 8],
                },
            ),
            (
                "raw 0x0",
                ImageInput::Raw {
                    width: 0,
                    height: 0,
                    channels: 1,
                    data: &[],
                },
            ),
        ];
        for (what, input) in cases {
            let t0 = Instant::now();
            let r = eng.run(input, &t);
            assert!(
                is_invalid(&r),
                "{profile:?} {what}: expected InvalidInput, got {r:?}"
            );
            assert!(t0.elapsed().as_secs_f64() < 1.0, "{what}: too slow");
            let msg = r.unwrap_err().to_string();
            println!("{profile:?} {what}: {msg}");
            if what.starts_with("100000") {
                assert!(
                    msg.contains("max_pixels"),
                    "{what}: refused for the wrong reason: {msg}"
                );
            }
        }
        // Tiny, blank and strip images: a result (empty or sane) in bounded time.
        let white = vec![255u8; 40 * 4000];
        let mut strip = white.clone();
        for y in 1000..1020 {
            for x in 5..35 {
                strip[y * 40 + x] = 0;
            }
        }
        let ok_cases: Vec<(&str, ImageInput)> = vec![
            (
                "raw 1x1",
                ImageInput::Raw {
                    width: 1,
                    height: 1,
                    channels: 1,
                    data: &[0],
                },
            ),
            (
                "raw 5x5 rgba",
                ImageInput::Raw {
                    width: 5,
                    height: 5,
                    channels: 4,
                    data: &[7; 100],
                },
            ),
            (
                "40x4000 strip",
                ImageInput::Raw {
                    width: 40,
                    height: 4000,
                    channels: 1,
                    data: &strip,
                },
            ),
            (
                "4000x40 strip",
                ImageInput::Raw {
                    width: 4000,
                    height: 40,
                    channels: 1,
                    data: &white,
                },
            ),
            (
                "1x4000",
                ImageInput::Raw {
                    width: 1,
                    height: 4000,
                    channels: 1,
                    data: &white[..4000],
                },
            ),
        ];
        for (what, input) in ok_cases {
            let t0 = Instant::now();
            let r = eng.run(input, &t);
            let secs = t0.elapsed().as_secs_f64();
            let r = match r {
                Ok(o) => format!("{} lines", o.lines.len()),
                Err(OcrError::InvalidInput(e)) => format!("refused: {e}"),
                Err(e) => panic!("{profile:?} {what}: {e}"),
            };
            println!("{profile:?} {what}: {r} in {secs:.2} s");
            assert!(secs < 10.0, "{profile:?} {what}: {secs:.1} s");
        }
        // Still works.
        let out = eng.run(ImageInput::Encoded(&good), &t).unwrap();
        assert_eq!(joined(&out), pangram, "{profile:?} after bad inputs");
    }
}

#[test]
fn cuda_request_never_falls_back_silently() {
    let opts = EngineOptions {
        device: Device::Cuda(0),
        intra_threads: 1,
        cuda: CudaOptions {
            mem_limit_mb: Some(512),
            ..Default::default()
        },
        ..cpu_options()
    };
    match Engine::new(&opts) {
        // A machine with onnxruntime-gpu and a GPU: it must then actually run.
        Ok(mut eng) => {
            let good = std::fs::read(data_dir().join("02_line_pangram.png")).unwrap();
            let out = eng
                .run(ImageInput::Encoded(&good), &task(Profile::Default))
                .unwrap();
            assert_eq!(eng.info().device, "cuda:0");
            assert!(!out.lines.is_empty());
        }
        Err(OcrError::Setup(msg)) => {
            println!("CUDA unavailable, as expected here: {msg}");
            assert!(msg.contains("CUDA"), "{msg}");
            let cuda_lib = opts
                .ort_dylib
                .with_file_name("libonnxruntime_providers_cuda.so");
            if !cuda_lib.exists() {
                // Found at preload, before any session, with the fix.
                assert!(msg.contains("libonnxruntime_providers_cuda.so"), "{msg}");
                assert!(msg.contains("onnxruntime-gpu"), "{msg}");
                assert!(matches!(Engine::preload(&opts), Err(OcrError::Setup(_))));
            }
        }
        Err(e) => panic!("CUDA failure must be a Setup error, got {e:?}"),
    }
}

#[test]
fn other_layouts_decode_as_seen() {
    let mut eng = engine();
    let good = std::fs::read(data_dir().join("02_line_pangram.png")).unwrap();
    let pangram = "The quick brown fox jumps over the lazy dog.";
    let img = image::load_from_memory(&good).unwrap();
    let t = task(Profile::Default);
    let read =
        |eng: &mut Engine, bytes: &[u8]| joined(&eng.run(ImageInput::Encoded(bytes), &t).unwrap());

    // 16-bit gray PNG.
    let g16 = image::DynamicImage::ImageLuma16(img.to_luma16());
    assert_eq!(read(&mut eng, &png_bytes(&g16)), pangram, "16-bit gray");
    // RGBA: dark text on a transparent background (alpha = darkness) reads as on white.
    let mut rgba = image::RgbaImage::new(img.width(), img.height());
    for (x, y, p) in img.to_luma8().enumerate_pixels() {
        rgba.put_pixel(x, y, image::Rgba([0, 0, 0, 255 - p[0]]));
    }
    let rgba_png = png_bytes(&image::DynamicImage::ImageRgba8(rgba));
    assert_eq!(read(&mut eng, &rgba_png), pangram, "RGBA on transparent");
    // Palette PNG, 2 colours: index 0 = white, 1 = black.
    let gray = img.to_luma8();
    let mut pal = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut pal, gray.width(), gray.height());
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 255, 255, 0, 0, 0]);
        let mut wr = enc.write_header().unwrap();
        let idx: Vec<u8> = gray.as_raw().iter().map(|&v| u8::from(v < 128)).collect();
        wr.write_image_data(&idx).unwrap();
    }
    assert_eq!(read(&mut eng, &pal), pangram, "palette PNG");
    // The reference reads the indices (0/1: black), so finds nothing there.
    let r = eng
        .run(ImageInput::Encoded(&pal), &task(Profile::Reference))
        .unwrap();
    assert!(
        r.lines.is_empty(),
        "reference on palette indices: {:?}",
        joined(&r)
    );
    // JPEG and raw RGB.
    let mut jpg = std::io::Cursor::new(Vec::new());
    img.to_rgb8()
        .write_to(&mut jpg, image::ImageFormat::Jpeg)
        .unwrap();
    assert_eq!(read(&mut eng, jpg.get_ref()), pangram, "jpeg");
    let rgb = img.to_rgb8();
    let raw = ImageInput::Raw {
        width: rgb.width(),
        height: rgb.height(),
        channels: 3,
        data: rgb.as_raw(),
    };
    assert_eq!(joined(&eng.run(raw, &t).unwrap()), pangram, "raw rgb");
}

#[test]
fn standby_activates_into_the_same_engine() {
    let mut eng = engine();
    let opts = cpu_options();
    let standby = Engine::preload(&opts).expect("standby");
    let info = serde_json::to_value(standby.info()).unwrap();
    assert_eq!(info, serde_json::to_value(eng.info()).unwrap());
    let mut active = standby.activate().expect("activation");
    assert_eq!(serde_json::to_value(active.info()).unwrap(), info);
    let page = std::fs::read(data_dir().join("13_page_paragraph.png")).unwrap();
    for profile in [Profile::Default, Profile::Reference] {
        let a = eng.run(ImageInput::Encoded(&page), &task(profile)).unwrap();
        let b = active
            .run(ImageInput::Encoded(&page), &task(profile))
            .unwrap();
        assert!(!a.lines.is_empty());
        assert_eq!(a.lines, b.lines, "{profile:?}");
    }

    // A missing model file is named at preload.
    let empty = std::env::temp_dir().join(format!("vram-orch-no-models-{}", std::process::id()));
    let missing = EngineOptions {
        model_dir: empty,
        ..opts
    };
    match Engine::preload(&missing) {
        Err(OcrError::Setup(msg)) => {
            assert!(msg.contains("ch_PP-OCRv4_det_infer.onnx"), "{msg}");
            assert!(msg.contains("VRAM_ORCH_MODEL_DIR"), "{msg}");
        }
        Err(e) => panic!("a missing model must be a Setup error, got {e:?}"),
        Ok(_) => panic!("preload without models succeeded"),
    }
}

#[test]
fn graph_cache_gives_the_same_results() {
    let mut plain = engine();
    let dir = std::env::temp_dir().join(format!("vram-orch-graphs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = EngineOptions {
        graph_cache: Some(dir.clone()),
        ..cpu_options()
    };
    let saved = || -> Vec<(String, u64)> {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        files.sort();
        files
    };
    // A page with the default profile; the reference profile (slow on pages) on a line.
    let cases: Vec<(Vec<u8>, Profile)> = [
        ("13_page_paragraph.png", Profile::Default),
        ("02_line_pangram.png", Profile::Default),
        ("02_line_pangram.png", Profile::Reference),
    ]
    .iter()
    .map(|&(f, p)| (std::fs::read(data_dir().join(f)).unwrap(), p))
    .collect();
    let mut same_as_plain = |eng: &mut Engine, when: &str| {
        for (img, profile) in &cases {
            let a = plain
                .run(ImageInput::Encoded(img), &task(*profile))
                .unwrap();
            let b = eng.run(ImageInput::Encoded(img), &task(*profile)).unwrap();
            assert!(!a.lines.is_empty());
            assert_eq!(a.lines, b.lines, "{when}, {profile:?}");
        }
    };

    // A miss optimises and saves one graph per OCR model, nothing else (no temp files); the
    // layout and table models load on the first page analysis.
    let mut first = Engine::new(&opts).expect("engine with an empty cache");
    let files = saved();
    let f = &opts.model_set.files;
    let lazy = [&f.layout, &f.table].map(|r| r.as_ref().map(|r| r.name.clone()));
    let models: Vec<String> = opts
        .model_set
        .file_names()
        .into_iter()
        .filter(|n| !lazy.contains(&Some(n.clone())))
        .collect();
    let onnx = models.iter().filter(|n| n.ends_with(".onnx")).count();
    assert_eq!(files.len(), onnx, "{files:?} for {models:?}");
    for (name, len) in &files {
        assert!(
            name.ends_with(".onnx") && *len > 100_000,
            "{name}: {len} bytes"
        );
    }
    same_as_plain(&mut first, "cache miss");

    // A hit loads them and leaves them as they are.
    let mut second = Engine::new(&opts).expect("engine from the cache");
    assert_eq!(saved(), files);
    same_as_plain(&mut second, "cache hit");

    // A damaged graph is dropped, the model optimised again and a good graph saved.
    let rec = files.iter().find(|(n, _)| n.starts_with("rec-")).unwrap();
    std::fs::write(dir.join(&rec.0), b"not a model").unwrap();
    let mut third = Engine::new(&opts).expect("engine past a damaged graph");
    assert_eq!(saved(), files);
    same_as_plain(&mut third, "after a damaged graph");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_rec_lanes_read_as_one() {
    // intra_threads 2 gives two rec sessions of one thread each, reading lines at once;
    // intra_threads 1 one session reading them in turn. Same lines, same text, same boxes.
    let base = cpu_options();
    let with = |threads| {
        Engine::new(&EngineOptions {
            intra_threads: threads,
            ..base.clone()
        })
        .unwrap()
    };
    let (mut one, mut two) = (with(1), with(2));
    let page = std::fs::read(data_dir().join("13_page_paragraph.png")).unwrap();
    let a = one
        .run(ImageInput::Encoded(&page), &task(Profile::Default))
        .unwrap();
    let b = two
        .run(ImageInput::Encoded(&page), &task(Profile::Default))
        .unwrap();
    assert!(a.lines.len() > 20, "{}", a.lines.len());
    assert_eq!(a.lines, b.lines);
    assert_eq!(one.last_trace().rec.len(), two.last_trace().rec.len());
}

#[test]
fn small_text_on_a_large_image_gets_a_second_larger_det_pass() {
    // The paragraph page at 0.6 of its size in the middle of a 3000 x 3000 sheet: the first
    // det pass (at half size) finds text too small, so det runs again larger (the budget
    // allows 9.5 MP here), with text ~7 px high, and the page reads well.
    let mut eng = engine();
    let page = image::open(data_dir().join("13_page_paragraph.png")).unwrap();
    let small = page.resize(600, 840, image::imageops::FilterType::Triangle);
    let mut sheet = image::RgbImage::from_pixel(3000, 3000, image::Rgb([255, 255, 255]));
    image::imageops::overlay(&mut sheet, &small.to_rgb8(), 1200, 1000);
    let opts = TaskOptions {
        profile: Profile::Default,
        limits: Limits {
            max_det_pixels: 9_500_000,
            ..Limits::default()
        },
    };
    let sheet_bytes = png_bytes(&image::DynamicImage::ImageRgb8(sheet));
    let big = eng.run(ImageInput::Encoded(&sheet_bytes), &opts).unwrap();
    let det = eng.last_trace().det.clone();
    assert_eq!(det.len(), 2, "{det:?}");
    assert!(
        2 * det[1][2] * det[1][3] > 3 * det[0][2] * det[0][3],
        "{det:?}"
    );
    // Read well: within 3 % of the page's ground truth (its 34 lines, in order).
    let truth: Vec<String> = json("ground_truth.json")["13_page_paragraph.png"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let (t, b) = (
        truth.join("\n").chars().collect::<Vec<_>>(),
        joined(&big).chars().collect::<Vec<_>>(),
    );
    let edits = levenshtein(&t, &b);
    assert!(
        edits * 100 <= 3 * t.len(),
        "{edits} edits:\n{}",
        joined(&big)
    );
}
