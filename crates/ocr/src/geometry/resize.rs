//! `cv2.resize(..., interpolation=INTER_LINEAR)` for 8-bit images, bit-exact with OpenCV 5.0.
//!
//! OpenCV's 8U path: 11-bit fixed-point weights (`INTER_RESIZE_COEF_SCALE` = 2048),
//! horizontal pass in exact i32, vertical pass as its SIMD kernel computes it:
//! `((h0 >> 4) * b0 >> 16) + ((h1 >> 4) * b1 >> 16)`, then `(v + 2) >> 2`. Horizontally an
//! out-of-range source position is clamped together with its weight; vertically only the
//! row index is clamped and the weights are kept (this is what OpenCV 5.0 returns,
//! checked against cv2 on many sizes).

use image::{GrayImage, RgbImage};

/// Fixed-point taps along one axis: for each destination index, the two source indices
/// (already clamped) and their 11-bit weights.
struct Taps {
    i0: Vec<usize>,
    i1: Vec<usize>,
    w0: Vec<i32>,
    w1: Vec<i32>,
}

fn taps(src: usize, dst: usize, clamp_weight: bool) -> Taps {
    let inv_scale = dst as f64 / src as f64;
    let scale = 1.0 / inv_scale;
    let mut t = Taps {
        i0: Vec::with_capacity(dst),
        i1: Vec::with_capacity(dst),
        w0: Vec::with_capacity(dst),
        w1: Vec::with_capacity(dst),
    };
    let last = src as i64 - 1;
    for d in 0..dst {
        let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let mut s = f.floor() as i64;
        let mut f = f - s as f32;
        if clamp_weight {
            if s < 0 {
                s = 0;
                f = 0.0;
            }
            if s >= last {
                s = last;
                f = 0.0;
            }
        }
        let a0 = ((1.0f32 - f) * 2048.0).round_ties_even() as i32;
        let a1 = (f * 2048.0).round_ties_even() as i32;
        t.i0.push(s.clamp(0, last) as usize);
        t.i1.push((s + 1).clamp(0, last) as usize);
        t.w0.push(a0);
        t.w1.push(a1);
    }
    t
}

/// Bilinear resize of a packed 8-bit image with `cn` interleaved channels.
/// Returns `dw * dh * cn` bytes (empty when any size is zero or `src` is too short).
pub fn resize_bilinear_raw(
    src: &[u8],
    w: usize,
    h: usize,
    cn: usize,
    dw: usize,
    dh: usize,
) -> Vec<u8> {
    if w == 0 || h == 0 || cn == 0 || src.len() < w * h * cn {
        return vec![0; dw * dh * cn];
    }
    if dw == 0 || dh == 0 {
        return Vec::new();
    }
    let xt = taps(w, dw, true);
    let yt = taps(h, dh, false);
    // Per destination column and channel: byte offsets and weights, so the inner loop is flat.
    let n = dw * cn;
    let mut xo0 = Vec::with_capacity(n);
    let mut xo1 = Vec::with_capacity(n);
    let mut xa0 = Vec::with_capacity(n);
    let mut xa1 = Vec::with_capacity(n);
    for d in 0..dw {
        for c in 0..cn {
            xo0.push(xt.i0[d] * cn + c);
            xo1.push(xt.i1[d] * cn + c);
            xa0.push(xt.w0[d]);
            xa1.push(xt.w1[d]);
        }
    }
    let hpass = |row: &[u8], out: &mut [i32]| {
        let row = &row[..w * cn];
        for ((((o, &i0), &i1), &a0), &a1) in out.iter_mut().zip(&xo0).zip(&xo1).zip(&xa0).zip(&xa1)
        {
            // indices are < w*cn by construction; get() keeps this panic-free without cost
            let p0 = *row.get(i0).unwrap_or(&0) as i32;
            let p1 = *row.get(i1).unwrap_or(&0) as i32;
            *o = p0 * a0 + p1 * a1;
        }
    };
    let stride = w * cn;
    let mut out = vec![0u8; dh * n];
    // two cached horizontal rows, tagged by source row index
    let mut bufs = [vec![0i32; n], vec![0i32; n]];
    let mut tags = [usize::MAX, usize::MAX];
    for (dy, orow) in out.chunks_exact_mut(n).enumerate() {
        let (r0, r1) = (yt.i0[dy], yt.i1[dy]);
        for &r in &[r0, r1] {
            if tags[0] != r && tags[1] != r {
                // replace the slot not holding the other needed row
                let other = if r == r0 { r1 } else { r0 };
                let slot = if tags[0] == other { 1 } else { 0 };
                hpass(&src[r * stride..(r + 1) * stride], &mut bufs[slot]);
                tags[slot] = r;
            }
        }
        let s0 = if tags[0] == r0 { 0 } else { 1 };
        let s1 = if tags[0] == r1 { 0 } else { 1 };
        let (b0, b1) = (yt.w0[dy], yt.w1[dy]);
        let (h0, h1) = (&bufs[s0], &bufs[s1]);
        for ((o, &v0), &v1) in orow.iter_mut().zip(h0.iter()).zip(h1.iter()) {
            let v = (((v0 >> 4) * b0) >> 16) + (((v1 >> 4) * b1) >> 16);
            *o = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// `cv2.resize(src, (width, height))` (INTER_LINEAR) on a 3-channel 8-bit image.
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let data = resize_bilinear_raw(
        src.as_raw(),
        src.width() as usize,
        src.height() as usize,
        3,
        width as usize,
        height as usize,
    );
    RgbImage::from_raw(width, height, data).unwrap_or_else(|| RgbImage::new(width, height))
}

/// Single-channel variant of [`resize_bilinear`].
pub fn resize_bilinear_gray(src: &GrayImage, width: u32, height: u32) -> GrayImage {
    let data = resize_bilinear_raw(
        src.as_raw(),
        src.width() as usize,
        src.height() as usize,
        1,
        width as usize,
        height as usize,
    );
    GrayImage::from_raw(width, height, data).unwrap_or_else(|| GrayImage::new(width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_sizes() {
        let e = RgbImage::new(0, 0);
        assert_eq!(resize_bilinear(&e, 4, 3).dimensions(), (4, 3));
        let one = RgbImage::from_pixel(1, 1, image::Rgb([7, 8, 9]));
        let r = resize_bilinear(&one, 5, 2);
        assert!(r.pixels().all(|p| p.0 == [7, 8, 9]));
        assert_eq!(resize_bilinear(&one, 0, 0).dimensions(), (0, 0));
    }

    #[test]
    fn identity() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 3]));
        assert_eq!(resize_bilinear(&img, 7, 5), img);
    }
}
