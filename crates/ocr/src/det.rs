//! Text detection: image → DB probability map → quads in det-input pixels.

use image::RgbImage;

use crate::db_postprocess::boxes_from_map;
use crate::geometry::Quad;
use crate::normalize::{write_chw, Luts};
use crate::runtime::Model;
use crate::{DetSettings, OcrError};

/// Where the (already resized) image sits in the det input.
pub(crate) struct Canvas {
    pub w: usize,
    pub h: usize,
    pub x0: usize,
    pub y0: usize,
    /// Padding colour (BGR).
    pub fill: [u8; 3],
}

/// Runs det on `img` placed on `canvas`; quads in canvas pixels with their scores.
pub(crate) struct Detector<'a> {
    pub luts: &'a Luts,
    pub settings: &'a DetSettings,
}

pub(crate) fn detect(
    model: &mut Model,
    img: &RgbImage,
    canvas: &Canvas,
    buf: &mut Vec<f32>,
    det: &Detector<'_>,
    model_ms: &mut f64,
) -> Result<Vec<(Quad, f32)>, OcrError> {
    let (w, h) = (canvas.w, canvas.h);
    let plane = w * h;
    buf.clear();
    let covers =
        canvas.x0 == 0 && canvas.y0 == 0 && img.width() as usize == w && img.height() as usize == h;
    if covers {
        buf.resize(3 * plane, 0.0);
    } else {
        buf.reserve(3 * plane);
        for c in 0..3 {
            buf.extend(std::iter::repeat_n(
                det.luts[c][canvas.fill[c] as usize],
                plane,
            ));
        }
    }
    write_chw(img, det.luts, buf, w, h, canvas.x0, canvas.y0);
    model.run([1, 3, h, w], buf, model_ms, |shape, pred| {
        if shape.len() != 4 || shape[2] as usize != h || shape[3] as usize != w {
            return Err(OcrError::Inference(format!(
                "det: output shape {shape:?} for input {w}x{h}"
            )));
        }
        Ok(boxes_from_map(&pred[..plane], w, h, det.settings))
    })
}

/// Mean colour of the image's outermost pixels: the padding that looks like background.
pub(crate) fn border_colour(img: &RgbImage) -> [u8; 3] {
    let (w, h) = (img.width(), img.height());
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    let mut add = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        for c in 0..3 {
            sum[c] += p[c] as u64;
        }
        n += 1;
    };
    for x in 0..w {
        add(x, 0);
        add(x, h - 1);
    }
    for y in 0..h {
        add(0, y);
        add(w - 1, y);
    }
    let n = n.max(1);
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}
