//! The two flows (reference and default) over the three models.

use std::time::Instant;

use image::RgbImage;

use crate::cls::{classify, order_by_ratio};
use crate::ctc::Charset;
use crate::det::{border_colour, detect, Canvas, Detector};
use crate::geometry::{
    crop_perspective, order_points_clockwise, resize_bilinear, rotate180, round_half_even, Quad,
};
use crate::normalize::{crop_luts, det_luts, Luts};
use crate::orientation::{self, Turn};
use crate::rec::{recognize, Plan};
use crate::runtime::Model;
use crate::sizing::{
    default_det, reference_det, reference_global, reference_letterbox, scaled_pixels, DetPlan,
};
use crate::{
    ClsSettings, DetSettings, Dictionary, Limits, ModelSet, OcrError, OrientationSettings,
    RecFallbackSettings, RecSettings, StageTimings, TextLine,
};

/// Lines below this recognition score are dropped (reference `text_score`).
const TEXT_SCORE: f32 = 0.5;
/// The reference refuses nothing; we refuse det inputs this many times the default budget.
const REFERENCE_DET_BUDGET_FACTOR: u64 = 4;
/// Default profile, first det pass: at most this many det pixels. A 150 dpi page (1241 x
/// 1754) is read at 0.66 of its size, where its text boxes are ~17 px high (text ~7 px);
/// recall on pages held down to ~11 px boxes (see docs/profiles.md).
const FIRST_PASS_DET_PIXELS: u64 = 1_000_000;
/// ... but never smaller than this scale: text that was already small would merge into
/// blobs that look like large text (then no second pass would follow).
const FIRST_PASS_MIN_SCALE: f64 = 0.5;
/// When the median text found (box height without the unclip margin) is lower than this, in
/// det pixels, det runs again larger ... On the 29 tuning and held-out pages at 1 MP it was
/// 5.8-8.3 px; where it is lower, lines start to merge into blobs (which also look taller).
const SMALL_TEXT_PX: f32 = 5.5;
/// ... at the scale that makes it about this high (within max_det_pixels).
const TEXT_PX: f32 = 7.0;
/// Default profile: a doubtful line whose upright reading scores below this is also read
/// rotated 180°. Upright lines of the test set score >= 0.947, upside-down ones <= 0.87.
const REREAD_BELOW: f32 = 0.9;

/// The page orientation model with what it needs to run.
pub(crate) struct Orienter {
    model: Model,
    settings: OrientationSettings,
    labels: Vec<Turn>,
    luts: Luts,
}

impl Orienter {
    pub fn new(
        model: Model,
        settings: &OrientationSettings,
        set: &ModelSet,
    ) -> Result<Orienter, OcrError> {
        let text = match &settings.labels {
            Dictionary::Metadata(key) => model.metadata(key),
            Dictionary::File(_) => None,
        };
        let labels = text
            .ok_or_else(|| format!("the {} set's orientation model has no labels", set.name))
            .and_then(|t| orientation::parse_labels(&t))
            .map_err(OcrError::Setup)?;
        Ok(Orienter {
            model,
            settings: settings.clone(),
            labels,
            luts: det_luts(settings.mean, settings.std),
        })
    }
}

/// One rec session with its input buffer. CPU engines with two or more threads have two,
/// each with half the threads, and read a page's lines on both at once (see `Reader::read`).
pub(crate) struct RecLane {
    pub model: Model,
    buf: Vec<f32>,
}

impl RecLane {
    pub fn new(model: Model) -> RecLane {
        RecLane {
            model,
            buf: Vec::new(),
        }
    }
}

/// A rec model with its dictionary: its lanes and its default-profile plan.
pub(crate) struct Reader {
    /// At least one.
    pub lanes: Vec<RecLane>,
    pub charset: Charset,
    plan: Plan,
}

impl Reader {
    pub fn new(lanes: Vec<RecLane>, charset: Charset, settings: &RecSettings) -> Reader {
        Reader {
            lanes,
            charset,
            plan: Plan::default_for(settings),
        }
    }

    /// Default-profile recognition of `crops` (one line per run, see `Plan::default_for`),
    /// spread over the lanes, widest lines first to the least loaded lane; each lane runs
    /// on its own thread. `model_ms` grows by the busiest lane's time in `run`.
    fn read(
        &mut self,
        luts: &Luts,
        crops: &[&RgbImage],
        model_ms: &mut f64,
    ) -> Result<Vec<(String, f32)>, OcrError> {
        let (charset, plan) = (&self.charset, self.plan);
        if self.lanes.len() == 1 || crops.len() < 2 {
            let lane = &mut self.lanes[0];
            return recognize(
                &mut lane.model,
                charset,
                crops,
                plan,
                &mut lane.buf,
                luts,
                model_ms,
            );
        }
        let shares = share_by_width(crops, self.lanes.len());
        let results = std::thread::scope(|s| {
            let running: Vec<_> = self
                .lanes
                .iter_mut()
                .zip(&shares)
                .map(|(lane, idx)| {
                    let mine: Vec<&RgbImage> = idx.iter().map(|&i| crops[i]).collect();
                    s.spawn(move || {
                        let mut ms = 0.0;
                        let r = recognize(
                            &mut lane.model,
                            charset,
                            &mine,
                            plan,
                            &mut lane.buf,
                            luts,
                            &mut ms,
                        );
                        r.map(|texts| (texts, ms))
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(OcrError::Inference("rec: a lane panicked".into())))
                })
                .collect::<Vec<_>>()
        });
        let mut out = vec![(String::new(), 0.0f32); crops.len()];
        let mut busiest = 0.0f64;
        for (idx, result) in shares.iter().zip(results) {
            let (texts, ms) = result?;
            busiest = busiest.max(ms);
            for (&i, text) in idx.iter().zip(texts) {
                out[i] = text;
            }
        }
        *model_ms += busiest;
        Ok(out)
    }
}

/// A set's second, larger rec model: it reads again the lines the first one reads with a
/// score below `below_score`, and its reading replaces the first (docs/profiles.md,
/// section 10). It runs on as many lanes as the first.
pub(crate) struct Fallback {
    pub reader: Reader,
    below_score: f32,
}

impl Fallback {
    pub fn new(lanes: Vec<RecLane>, charset: Charset, settings: &RecFallbackSettings) -> Fallback {
        Fallback {
            reader: Reader::new(lanes, charset, &settings.rec),
            below_score: settings.below_score,
        }
    }
}

pub(crate) struct Pipeline {
    pub det: Model,
    pub cls: Model,
    pub rec: Reader,
    /// Reads again what `rec` reads unsure (default profile), when the set has it.
    pub fallback: Option<Fallback>,
    /// Turns pages upright before det (default profile), when the set has the model.
    orienter: Option<Orienter>,
    /// The clockwise turn of the content found in the last task (0 when not turned).
    pub last_turn: Turn,
    orient_buf: Vec<f32>,
    det_settings: DetSettings,
    cls_settings: ClsSettings,
    /// Rec batching and sizes of the reference profile (the default's is `rec`'s).
    reference_plan: Plan,
    det_buf: Vec<f32>,
    cls_buf: Vec<f32>,
    det_luts: Luts,
    crop_luts: Luts,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// The reference's `sorted_boxes`: by (top y, top x), then neighbours whose top y differ by
/// less than 10 px are put in x order. `tl` holds each box's first point.
fn reading_order(tl: &[[f32; 2]]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..tl.len()).collect();
    idx.sort_by(|&a, &b| {
        tl[a][1]
            .total_cmp(&tl[b][1])
            .then(tl[a][0].total_cmp(&tl[b][0]))
    });
    for i in 0..idx.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (tl[idx[j]], tl[idx[j + 1]]);
            if (b[1] - a[1]).abs() < 10.0 && b[0] < a[0] {
                idx.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
    idx
}

/// Copies `img` with `top` black rows above and below.
fn pad_vertical(img: &RgbImage, top: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut v = vec![0u8; w * (h + 2 * top) * 3];
    v[top * w * 3..(top + h) * w * 3].copy_from_slice(img.as_raw());
    RgbImage::from_raw(w as u32, (h + 2 * top) as u32, v).expect("sized")
}

fn valid_crop(img: &RgbImage) -> bool {
    img.width() > 0 && img.height() > 0
}

impl Pipeline {
    pub fn new(
        det: Model,
        cls: Model,
        rec: Reader,
        fallback: Option<Fallback>,
        orienter: Option<Orienter>,
        set: &ModelSet,
    ) -> Pipeline {
        Pipeline {
            det,
            cls,
            rec,
            fallback,
            orienter,
            last_turn: 0,
            orient_buf: Vec::new(),
            det_settings: set.det,
            cls_settings: set.cls,
            reference_plan: Plan::reference(&set.rec),
            det_buf: Vec::new(),
            cls_buf: Vec::new(),
            det_luts: det_luts(set.det.mean, set.det.std),
            crop_luts: crop_luts(),
        }
    }

    /// Frees the large input buffers after a big task, so a worker's RSS follows its
    /// current work rather than its largest task.
    pub fn trim(&mut self) {
        const KEEP: usize = 8 << 20; // floats
        let lanes = self
            .rec
            .lanes
            .iter_mut()
            .chain(
                self.fallback
                    .iter_mut()
                    .flat_map(|f| f.reader.lanes.iter_mut()),
            )
            .map(|l| &mut l.buf);
        for b in [&mut self.det_buf, &mut self.cls_buf, &mut self.orient_buf]
            .into_iter()
            .chain(lanes)
        {
            if b.capacity() > KEEP {
                *b = Vec::new();
            }
        }
    }

    /// RapidOCR 1.4.4, default config, steps 2–10.
    pub fn run_reference(
        &mut self,
        img: &RgbImage,
        limits: &Limits,
        t: &mut StageTimings,
    ) -> Result<Vec<TextLine>, OcrError> {
        let t0 = Instant::now();
        let (raw_w, raw_h) = (img.width() as usize, img.height() as usize);
        // Step 2: global resize; the reference keeps the ratio of its last resize only.
        let Ok(steps) = reference_global(raw_w, raw_h) else {
            return Ok(Vec::new()); // a side would be 0: the reference raises, we read nothing
        };
        let mut owned: Option<RgbImage> = None;
        let (mut ratio_w, mut ratio_h) = (1.0f64, 1.0f64);
        for (nw, nh) in steps {
            let cur = owned.as_ref().unwrap_or(img);
            ratio_w = cur.width() as f64 / nw as f64;
            ratio_h = cur.height() as f64 / nh as f64;
            owned = Some(resize_bilinear(cur, nw as u32, nh as u32));
        }
        let cur = owned.as_ref().unwrap_or(img);
        let top = reference_letterbox(cur.width() as usize, cur.height() as usize);
        let padded;
        let cur = if top > 0 {
            padded = pad_vertical(cur, top);
            &padded
        } else {
            cur
        };
        let (cw, ch) = (cur.width() as usize, cur.height() as usize);
        // Step 3: det resize (min side 736).
        let Some((dw, dh)) = reference_det(cw, ch) else {
            return Ok(Vec::new());
        };
        let budget = limits
            .max_det_pixels
            .saturating_mul(REFERENCE_DET_BUDGET_FACTOR);
        if (dw as u64) * (dh as u64) > budget {
            return Err(OcrError::InvalidInput(format!(
                "the reference profile would run det on {dw}x{dh} pixels, more than \
                 {REFERENCE_DET_BUDGET_FACTOR} x max_det_pixels ({budget}); use the default profile"
            )));
        }
        let det_in = resize_bilinear(cur, dw as u32, dh as u32);
        let canvas = Canvas {
            w: dw,
            h: dh,
            x0: 0,
            y0: 0,
            fill: [0; 3],
        };
        let detector = Detector {
            luts: &self.det_luts,
            settings: &self.det_settings,
        };
        let quads = detect(
            &mut self.det,
            &det_in,
            &canvas,
            &mut self.det_buf,
            &detector,
            &mut t.model_ms,
        )?;
        drop(det_in);
        // Step 5 end: back to `cur` pixels, rounded half-to-even in f32, then integers.
        let mut boxes: Vec<Quad> = Vec::new();
        for (q, _) in quads {
            let mut b = q;
            for p in b.iter_mut() {
                let x =
                    round_half_even((p[0] / dw as f32 * cw as f32) as f64).clamp(0.0, cw as f64);
                let y =
                    round_half_even((p[1] / dh as f32 * ch as f32) as f64).clamp(0.0, ch as f64);
                *p = [x as i32 as f32, y as i32 as f32];
            }
            // Step 6: clockwise, clipped to the image, tiny boxes dropped.
            let mut b = order_points_clockwise(&b);
            for p in b.iter_mut() {
                p[0] = p[0].clamp(0.0, (cw - 1) as f32).trunc();
                p[1] = p[1].clamp(0.0, (ch - 1) as f32).trunc();
            }
            if dist(b[0], b[1]) as i32 <= 3 || dist(b[0], b[3]) as i32 <= 3 {
                continue;
            }
            boxes.push(b);
        }
        let tl: Vec<[f32; 2]> = boxes.iter().map(|b| b[0]).collect();
        let boxes: Vec<Quad> = reading_order(&tl).into_iter().map(|i| boxes[i]).collect();
        // Step 7: crops.
        let mut crops: Vec<RgbImage> = boxes.iter().map(|b| crop_perspective(cur, b)).collect();
        t.det_ms += ms(t0);

        // Step 8: cls, rotate "180" > 0.9.
        let t1 = Instant::now();
        let keep: Vec<usize> = (0..crops.len())
            .filter(|&i| valid_crop(&crops[i]))
            .collect();
        if !keep.is_empty() {
            let refs: Vec<&RgbImage> = keep.iter().map(|&i| &crops[i]).collect();
            let dirs = self.classify_lines(&refs, &mut t.model_ms)?;
            for (k, &i) in keep.iter().enumerate() {
                if dirs[k].0 && dirs[k].1 > self.cls_settings.thresh {
                    crops[i] = rotate180(&crops[i]);
                }
            }
        }
        t.cls_ms += ms(t1);

        // Step 9: rec.
        let t2 = Instant::now();
        let refs: Vec<&RgbImage> = keep.iter().map(|&i| &crops[i]).collect();
        let texts = if refs.is_empty() {
            Vec::new()
        } else {
            let lane = &mut self.rec.lanes[0];
            recognize(
                &mut lane.model,
                &self.rec.charset,
                &refs,
                self.reference_plan,
                &mut lane.buf,
                &self.crop_luts,
                &mut t.model_ms,
            )?
        };
        t.rec_ms += ms(t2);

        // Step 10: back to input pixels (undo padding, then the last global resize).
        let (rw32, rh32) = (ratio_w as f32, ratio_h as f32);
        let mut lines = Vec::new();
        for (k, &i) in keep.iter().enumerate() {
            let (text, score) = &texts[k];
            if *score < TEXT_SCORE {
                continue;
            }
            let mut b = boxes[i];
            for p in b.iter_mut() {
                let x = p[0] * rw32;
                let y = (p[1] - top as f32) * rh32;
                *p = [x.clamp(0.0, raw_w as f32), y.clamp(0.0, raw_h as f32)];
            }
            lines.push(TextLine {
                text: text.clone(),
                score: *score,
                bbox: b,
            });
        }
        Ok(lines)
    }

    /// Orientation of `crops` from the cls model: (is "180", score) each.
    fn classify_lines(
        &mut self,
        crops: &[&RgbImage],
        model_ms: &mut f64,
    ) -> Result<Vec<(bool, f32)>, OcrError> {
        classify(
            &mut self.cls,
            &self.cls_settings,
            crops,
            &mut self.cls_buf,
            &self.crop_luts,
            model_ms,
        )
    }

    /// The models with the reference's defects fixed (see docs/profiles.md); a page turned
    /// by 90, 180 or 270 degrees is read upright and its boxes mapped back.
    pub fn run_default(
        &mut self,
        input: &RgbImage,
        limits: &Limits,
        t: &mut StageTimings,
    ) -> Result<Vec<TextLine>, OcrError> {
        let t0 = Instant::now();
        self.last_turn = 0;
        let turned;
        let mut img = input;
        if let Some(o) = self.orienter.as_mut() {
            let (turn, score) = orientation::classify(
                &mut o.model,
                &o.settings,
                &o.labels,
                input,
                &o.luts,
                &mut self.orient_buf,
                &mut t.model_ms,
            )?;
            if turn != 0 && score >= orientation::MIN_SCORE {
                turned = orientation::upright(input, turn);
                img = &turned;
                self.last_turn = turn;
            }
        }
        let mut lines = self.read_upright(img, limits, t, t0)?;
        if self.last_turn != 0 {
            let (w, h) = (input.width() as f32, input.height() as f32);
            for line in &mut lines {
                line.bbox = orientation::box_to_input(&line.bbox, self.last_turn, w, h);
            }
        }
        Ok(lines)
    }

    /// Det on `img` laid out as `plan` says: quads in det pixels.
    fn detect_at(
        &mut self,
        img: &RgbImage,
        plan: &DetPlan,
        model_ms: &mut f64,
    ) -> Result<Vec<(Quad, f32)>, OcrError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let resized;
        let det_img = if plan.rw == w && plan.rh == h {
            img
        } else {
            resized = resize_bilinear(img, plan.rw as u32, plan.rh as u32);
            &resized
        };
        let canvas = Canvas {
            w: plan.w,
            h: plan.h,
            x0: plan.pad,
            y0: plan.pad,
            fill: border_colour(img),
        };
        let detector = Detector {
            luts: &self.det_luts,
            settings: &self.det_settings,
        };
        detect(
            &mut self.det,
            det_img,
            &canvas,
            &mut self.det_buf,
            &detector,
            model_ms,
        )
    }

    /// The default profile on an upright image; det time counts from `t0`.
    fn read_upright(
        &mut self,
        img: &RgbImage,
        limits: &Limits,
        t: &mut StageTimings,
        t0: Instant,
    ) -> Result<Vec<TextLine>, OcrError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        // First at a size that suits text of ordinary size on a page; again, larger, when
        // the text found is too small to have been read well at that size (or none was).
        let full = default_det(w, h, limits.max_det_pixels);
        let first = FIRST_PASS_DET_PIXELS.max(scaled_pixels(w, h, FIRST_PASS_MIN_SCALE));
        let mut plan = default_det(w, h, limits.max_det_pixels.min(first));
        let mut quads = self.detect_at(img, &plan, &mut t.model_ms)?;
        if plan.scale < full.scale {
            // DB boxes are the text grown by the unclip ratio: a box of height H holds text
            // about H / (1 + ratio) high.
            let grown = 1.0 + self.det_settings.unclip_ratio;
            let heights: Vec<f32> = quads.iter().map(|(q, _)| quad_height(q) / grown).collect();
            let wanted = match median(&heights) {
                Some(m) if m < SMALL_TEXT_PX => plan.scale * (TEXT_PX / m) as f64,
                Some(_) => plan.scale,
                None => full.scale,
            };
            if wanted > plan.scale * 1.1 {
                let budget = limits.max_det_pixels.min(scaled_pixels(w, h, wanted));
                plan = default_det(w, h, budget);
                quads = self.detect_at(img, &plan, &mut t.model_ms)?;
            }
        }
        let (sx, sy) = (plan.rw as f32 / w as f32, plan.rh as f32 / h as f32);
        let pad = plan.pad as f32;
        let mut boxes: Vec<Quad> = Vec::new();
        for (q, _) in quads {
            let mut b = q;
            // Whole pixels, as the reference: a box on pixel boundaries makes the crop a
            // copy of the page's pixels, where fractional corners would resample them
            // (bicubic) and blur the gaps between words, which rec then drops.
            for p in b.iter_mut() {
                let x = round_half_even(((p[0] - pad) / sx) as f64);
                let y = round_half_even(((p[1] - pad) / sy) as f64);
                p[0] = x.clamp(0.0, w as f64) as f32;
                p[1] = y.clamp(0.0, h as f64) as f32;
            }
            let b = order_points_clockwise(&b);
            if dist(b[0], b[1]) <= 3.0 || dist(b[0], b[3]) <= 3.0 {
                continue;
            }
            boxes.push(b);
        }
        let tl: Vec<[f32; 2]> = boxes.iter().map(|b| b[0]).collect();
        let mut boxes: Vec<Quad> = reading_order(&tl).into_iter().map(|i| boxes[i]).collect();
        let mut crops: Vec<RgbImage> = boxes.iter().map(|b| crop_perspective(img, b)).collect();
        let keep: Vec<bool> = crops.iter().map(valid_crop).collect();
        let mut n = 0;
        for (i, &k) in keep.iter().enumerate() {
            if k {
                crops.swap(n, i);
                boxes.swap(n, i);
                n += 1;
            }
        }
        crops.truncate(n);
        boxes.truncate(n);
        t.det_ms += ms(t0);
        if crops.is_empty() {
            return Ok(Vec::new());
        }

        // Cls only nominates: a line it does not call upright with > 0.9 whose upright
        // reading also scores < REREAD_BELOW is read again rotated; the higher rec score
        // wins (see docs/profiles.md).
        let t1 = Instant::now();
        let refs: Vec<&RgbImage> = crops.iter().collect();
        let dirs = self.classify_lines(&refs, &mut t.model_ms)?;
        t.cls_ms += ms(t1);

        let t2 = Instant::now();
        let luts = &self.crop_luts;
        let mut chosen = self.rec.read(luts, &refs, &mut t.model_ms)?;
        let doubtful: Vec<usize> = (0..n)
            .filter(|&i| {
                (dirs[i].0 || dirs[i].1 <= self.cls_settings.thresh) && chosen[i].1 < REREAD_BELOW
            })
            .collect();
        if !doubtful.is_empty() {
            let flipped: Vec<RgbImage> = doubtful.iter().map(|&i| rotate180(&crops[i])).collect();
            let refs: Vec<&RgbImage> = flipped.iter().collect();
            let again = self.rec.read(luts, &refs, &mut t.model_ms)?;
            for ((&i, reading), turned) in doubtful.iter().zip(again).zip(flipped) {
                if reading.1 > chosen[i].1 {
                    chosen[i] = reading;
                    crops[i] = turned; // the way it reads, for the fallback below
                }
            }
        }
        if let Some(fallback) = &mut self.fallback {
            let unsure: Vec<usize> = (0..n)
                .filter(|&i| chosen[i].1 < fallback.below_score)
                .collect();
            if !unsure.is_empty() {
                let refs: Vec<&RgbImage> = unsure.iter().map(|&i| &crops[i]).collect();
                let again = fallback.reader.read(luts, &refs, &mut t.model_ms)?;
                for (&i, reading) in unsure.iter().zip(again) {
                    chosen[i] = reading;
                }
            }
        }
        t.rec_ms += ms(t2);

        // Lines stay in image order (top to bottom), also on upside-down pages, as the
        // test set's ground truth lists them.
        let order: Vec<usize> = (0..n).filter(|&i| chosen[i].1 >= TEXT_SCORE).collect();
        Ok(order
            .into_iter()
            .map(|i| TextLine {
                text: std::mem::take(&mut chosen[i].0),
                score: chosen[i].1,
                bbox: boxes[i],
            })
            .collect())
    }
}

/// A quad's height: its shorter side (text boxes are wider than high).
fn quad_height(q: &Quad) -> f32 {
    dist(q[0], q[1]).min(dist(q[0], q[3]))
}

fn median(v: &[f32]) -> Option<f32> {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Crop indices for each of `lanes` lanes: widest (at rec height) first, each to the lane
/// with the least width so far, so the lanes finish together.
fn share_by_width(crops: &[&RgbImage], lanes: usize) -> Vec<Vec<usize>> {
    let width = |i: usize| crops[i].width() as f64 / crops[i].height().max(1) as f64;
    let mut order = order_by_ratio(crops);
    order.reverse();
    let mut shares = vec![Vec::new(); lanes];
    let mut load = vec![0.0f64; lanes];
    for i in order {
        let lane = (0..lanes).fold(0, |m, k| if load[k] < load[m] { k } else { m });
        load[lane] += width(i).max(2.0); // short crops are padded to twice the height
        shares[lane].push(i);
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_get_balanced_widths_and_every_crop_once() {
        let crops: Vec<RgbImage> = [10u32, 90, 40, 50, 30, 60]
            .iter()
            .map(|&w| RgbImage::new(w, 10))
            .collect();
        let refs: Vec<&RgbImage> = crops.iter().collect();
        let shares = share_by_width(&refs, 2);
        let mut all: Vec<usize> = shares.concat();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
        let sum = |s: &Vec<usize>| s.iter().map(|&i| crops[i].width()).sum::<u32>();
        assert_eq!((sum(&shares[0]), sum(&shares[1])), (140, 140));
    }
}
