//! Text recognition: batches of crops sorted by aspect ratio, CTC decoded.

use image::RgbImage;

use crate::cls::{order_by_ratio, resized_width};
use crate::ctc::Charset;
use crate::geometry::resize_bilinear;
use crate::normalize::write_chw;
use crate::runtime::Model;
use crate::OcrError;

const H: usize = 48;
const BASE_W: usize = 320;
pub(crate) const BATCH: usize = 6;
/// Default profile: widest rec input (a ratio of ~166); wider lines are squeezed to it so a
/// hair-thin box across a huge image cannot make a gigabyte tensor.
pub(crate) const DEFAULT_MAX_W: usize = 8000;

/// (text, score) per crop.
pub(crate) fn recognize(
    model: &mut Model,
    charset: &Charset,
    crops: &[&RgbImage],
    max_w: usize,
    buf: &mut Vec<f32>,
    lut: &[f32; 256],
    model_ms: &mut f64,
) -> Result<Vec<(String, f32)>, OcrError> {
    let order = order_by_ratio(crops);
    let mut out = vec![(String::new(), 0.0f32); crops.len()];
    for chunk in order.chunks(BATCH) {
        let mut max_ratio = BASE_W as f64 / H as f64;
        for &i in chunk {
            max_ratio = max_ratio.max(crops[i].width() as f64 / crops[i].height().max(1) as f64);
        }
        let w = ((H as f64 * max_ratio) as usize).min(max_w);
        let slot = 3 * H * w;
        buf.clear();
        buf.resize(chunk.len() * slot, 0.0);
        for (k, &i) in chunk.iter().enumerate() {
            let rw = resized_width(crops[i], H, w);
            let r = resize_bilinear(crops[i], rw as u32, H as u32);
            write_chw(&r, lut, &mut buf[k * slot..(k + 1) * slot], w, H, 0, 0);
        }
        model.run([chunk.len(), 3, H, w], buf, model_ms, |shape, probs| {
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
