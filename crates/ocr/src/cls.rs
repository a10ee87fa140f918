//! Text direction classifier (labels "0" and "180").

use image::RgbImage;

use crate::geometry::resize_bilinear;
use crate::normalize::{write_chw, Luts};
use crate::runtime::Model;
use crate::{ClsSettings, OcrError};

pub(crate) const BATCH: usize = 6;

/// Crop indices sorted by width/height (stable), as both cls and rec batch them.
pub(crate) fn order_by_ratio(crops: &[&RgbImage]) -> Vec<usize> {
    let ratio = |i: usize| crops[i].width() as f64 / crops[i].height().max(1) as f64;
    let mut idx: Vec<usize> = (0..crops.len()).collect();
    idx.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
    idx
}

/// Width after resizing to `height`: `ceil(height * w / h)`, at most `max_w`.
pub(crate) fn resized_width(img: &RgbImage, height: usize, max_w: usize) -> usize {
    let ratio = img.width() as f64 / img.height().max(1) as f64;
    let w = (height as f64 * ratio).ceil();
    if w > max_w as f64 {
        max_w
    } else {
        (w as usize).max(1)
    }
}

/// For each crop: (is "180", score of the winning label).
pub(crate) fn classify(
    model: &mut Model,
    settings: &ClsSettings,
    crops: &[&RgbImage],
    buf: &mut Vec<f32>,
    luts: &Luts,
    model_ms: &mut f64,
) -> Result<Vec<(bool, f32)>, OcrError> {
    let order = order_by_ratio(crops);
    let mut out = vec![(false, 0.0f32); crops.len()];
    let (h, w) = (settings.height, settings.width);
    let slot = 3 * h * w;
    for chunk in order.chunks(BATCH) {
        buf.clear();
        buf.resize(chunk.len() * slot, 0.0);
        for (k, &i) in chunk.iter().enumerate() {
            let rw = resized_width(crops[i], h, w);
            let r = resize_bilinear(crops[i], rw as u32, h as u32);
            write_chw(&r, luts, &mut buf[k * slot..(k + 1) * slot], w, h, 0, 0);
        }
        model.run([chunk.len(), 3, h, w], buf, model_ms, |shape, probs| {
            let classes = shape.last().copied().unwrap_or(0) as usize;
            if classes < 2 || probs.len() < chunk.len() * classes {
                return Err(OcrError::Inference(format!(
                    "cls: unexpected output shape {shape:?}"
                )));
            }
            for (k, &i) in chunk.iter().enumerate() {
                let p = &probs[k * classes..(k + 1) * classes];
                // argmax, first maximum wins as numpy's
                let mut best = 0;
                for c in 1..classes {
                    if p[c] > p[best] {
                        best = c;
                    }
                }
                out[i] = (best == 1, p[best]);
            }
            Ok(())
        })?;
    }
    Ok(out)
}
