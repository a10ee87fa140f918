//! u8 pixels → normalised f32 written straight into NCHW input tensors, through a 256-entry
//! table (exact, and one load per sample).

use image::RgbImage;

/// One table per channel (B, G, R).
pub(crate) type Luts = [[f32; 256]; 3];

/// Det: `f32(px) * f32(1/255)`, then `(x - mean) / std` in f64, per channel (the
/// reference's arithmetic, exact for its mean = std = 0.5).
pub(crate) fn det_luts(mean: [f64; 3], std: [f64; 3]) -> Luts {
    let scale = (1.0f64 / 255.0) as f32;
    std::array::from_fn(|c| {
        std::array::from_fn(|i| ((((i as f32) * scale) as f64 - mean[c]) / std[c]) as f32)
    })
}

/// Cls and rec: `(f32(px) / 255 - 0.5) / 0.5`, all in f32, every channel.
pub(crate) fn crop_luts() -> Luts {
    [std::array::from_fn(|i| ((i as f32) / 255.0 - 0.5) / 0.5); 3]
}

/// Writes `img` into one CHW slot of `plane_w` x `plane_h` planes at (`x0`, `y0`). The slot
/// must already hold the padding values.
pub(crate) fn write_chw(
    img: &RgbImage,
    luts: &Luts,
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
            d0[x] = luts[0][px[0] as usize];
            d1[x] = luts[1][px[1] as usize];
            d2[x] = luts[2][px[2] as usize];
        }
    }
}
