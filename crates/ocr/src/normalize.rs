//! u8 pixels → normalised f32 written straight into NCHW input tensors, through a 256-entry
//! table (exact, and one load per sample).

use image::RgbImage;

/// Det: the reference computes `f32(px) * f32(1/255)` then `(x - 0.5) / 0.5` in f64.
pub(crate) fn det_lut() -> [f32; 256] {
    let scale = (1.0f64 / 255.0) as f32;
    std::array::from_fn(|i| ((((i as f32) * scale) as f64 - 0.5) / 0.5) as f32)
}

/// Cls and rec: `(f32(px) / 255 - 0.5) / 0.5`, all in f32.
pub(crate) fn crop_lut() -> [f32; 256] {
    std::array::from_fn(|i| ((i as f32) / 255.0 - 0.5) / 0.5)
}

/// Writes `img` into one CHW slot of `plane_w` x `plane_h` planes at (`x0`, `y0`). The slot
/// must already hold the padding values.
pub(crate) fn write_chw(
    img: &RgbImage,
    lut: &[f32; 256],
    slot: &mut [f32],
    plane_w: usize,
    plane_h: usize,
    x0: usize,
    y0: usize,
) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = plane_w * plane_h;
    let (c0, rest) = slot.split_at_mut(plane);
    let (c1, c2) = rest.split_at_mut(plane);
    let raw = img.as_raw();
    for y in 0..h.min(plane_h.saturating_sub(y0)) {
        let row = &raw[y * w * 3..(y + 1) * w * 3];
        let o = (y0 + y) * plane_w + x0;
        let n = w.min(plane_w.saturating_sub(x0));
        let (d0, d1, d2) = (&mut c0[o..o + n], &mut c1[o..o + n], &mut c2[o..o + n]);
        for (x, px) in row.chunks_exact(3).take(n).enumerate() {
            d0[x] = lut[px[0] as usize];
            d1[x] = lut[px[1] as usize];
            d2[x] = lut[px[2] as usize];
        }
    }
}
