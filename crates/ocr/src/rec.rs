//! Text recognition: batches of crops sorted by aspect ratio, CTC decoded.

use image::RgbImage;

use crate::cls::{order_by_ratio, resized_width};
use crate::ctc::Charset;
use crate::geometry::resize_bilinear;
use crate::normalize::{write_chw, Luts};
use crate::runtime::Model;
use crate::{OcrError, RecSettings};

/// Default profile: a short crop is padded to this width only (twice the height). With one
/// line per run the padding is pure cost (rec time is linear in the width); short page
/// cells ("$", "\\c", "C") cost a third and read as well or better (see docs/profiles.md).
const DEFAULT_MIN_W: usize = 96;
/// Reference batch size (RapidOCR `rec_batch_num`).
const BATCH: usize = 6;
/// Default profile: one line per run. On CPU the per-line cost of the rec model grows with
/// the batch (a 12x48x1200 batch costs ~2x per line what a single 48x1200 line does: the
/// activations leave the caches), and a line of its own needs no padding to its batch's
/// widest line (see docs/profiles.md).
const DEFAULT_BATCH: usize = 1;
/// Default profile: widest rec input (a ratio of ~166); wider lines are squeezed to it so a
/// hair-thin box across a huge image cannot make a gigabyte tensor.
const DEFAULT_MAX_W: usize = 8000;

/// How crops are batched and sized.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Input height (the set's).
    pub height: usize,
    /// Narrowest input width (short crops are zero-padded to it).
    pub min_w: usize,
    /// Widest input width (wider crops are squeezed to it).
    pub max_w: usize,
    /// Lines per run.
    pub batch: usize,
}

impl Plan {
    /// The reference's batching: 6 per run, at least the set's width (320), unbounded.
    pub fn reference(set: &RecSettings) -> Plan {
        Plan {
            height: set.height,
            min_w: set.width,
            max_w: usize::MAX,
            batch: BATCH,
        }
    }

    /// The default profile's: one line per run, at least 96 wide, at most 8000.
    pub fn default_for(set: &RecSettings) -> Plan {
        Plan {
            height: set.height,
            min_w: DEFAULT_MIN_W,
            max_w: DEFAULT_MAX_W,
            batch: DEFAULT_BATCH,
        }
    }
}

/// (text, score) per crop.
pub(crate) fn recognize(
    model: &mut Model,
    charset: &Charset,
    crops: &[&RgbImage],
    plan: Plan,
    buf: &mut Vec<f32>,
    luts: &Luts,
    model_ms: &mut f64,
) -> Result<Vec<(String, f32)>, OcrError> {
    let order = order_by_ratio(crops);
    let mut out = vec![(String::new(), 0.0f32); crops.len()];
    let h = plan.height;
    for chunk in order.chunks(plan.batch.max(1)) {
        let mut max_ratio = plan.min_w as f64 / h as f64;
        for &i in chunk {
            max_ratio = max_ratio.max(crops[i].width() as f64 / crops[i].height().max(1) as f64);
        }
        let w = ((h as f64 * max_ratio) as usize).min(plan.max_w);
        let slot = 3 * h * w;
        buf.clear();
        buf.resize(chunk.len() * slot, 0.0);
        for (k, &i) in chunk.iter().enumerate() {
            let rw = resized_width(crops[i], h, w);
            let r = resize_bilinear(crops[i], rw as u32, h as u32);
            write_chw(&r, luts, &mut buf[k * slot..(k + 1) * slot], w, h, 0, 0);
        }
        model.run([chunk.len(), 3, h, w], buf, model_ms, |shape, probs| {
            if shape.len() != 3 || shape[0] as usize != chunk.len() {
                return Err(OcrError::Inference(format!(
                    "rec: unexpected output shape {shape:?}"
                )));
            }
            let (steps, classes) = (shape[1] as usize, shape[2] as usize);
            if classes != charset.classes() {
                return Err(OcrError::Inference(format!(
                    "rec: model has {classes} classes, dictionary {}",
                    charset.classes()
                )));
            }
            let per = steps * classes;
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = charset.decode(&probs[k * per..(k + 1) * per], classes);
            }
            Ok(())
        })?;
    }
    Ok(out)
}
