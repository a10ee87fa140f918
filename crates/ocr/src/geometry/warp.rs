//! RapidOCR `get_rotate_crop_image`: perspective crop with OpenCV's bicubic warp.
//!
//! Follows `cv2.getPerspectiveTransform` (8x8 system, f32 products, LU with partial
//! pivoting in f64), the 3x3 inverse by cofactors as `cv::invert(DECOMP_LU)` does for
//! 3x3, and OpenCV 5.0's bicubic warp (A = -0.75, exact source coordinates, BORDER_REPLICATE).

use super::rotate::rotate90_ccw;
use super::Quad;
use image::RgbImage;

/// Solves A x = b (n = 8) by Gaussian elimination with partial pivoting (cv::LU).
fn lu_solve(a: &mut [[f64; 8]; 8], b: &mut [f64; 8]) -> bool {
    let m = 8;
    for i in 0..m {
        let mut k = i;
        for j in i + 1..m {
            if a[j][i].abs() > a[k][i].abs() {
                k = j;
            }
        }
        if a[k][i].abs() < f64::EPSILON * 100.0 {
            return false;
        }
        if k != i {
            a.swap(i, k);
            b.swap(i, k);
        }
        let d = -1.0 / a[i][i];
        for j in i + 1..m {
            let alpha = a[j][i] * d;
            let pivot_row = a[i];
            for (dst, &src) in a[j][i + 1..].iter_mut().zip(&pivot_row[i + 1..]) {
                *dst += alpha * src;
            }
            b[j] += alpha * b[i];
        }
    }
    for i in (0..m).rev() {
        let mut s = b[i];
        for c in i + 1..m {
            s -= a[i][c] * b[c];
        }
        b[i] = s / a[i][i];
    }
    true
}

/// `cv2.getPerspectiveTransform(src, dst)` as a row-major 3x3 matrix (None if singular).
pub fn perspective_transform(src: &Quad, dst: &Quad) -> Option<[f64; 9]> {
    let mut a = [[0f64; 8]; 8];
    let mut b = [0f64; 8];
    for i in 0..4 {
        let (sx, sy) = (src[i][0], src[i][1]);
        let (dx, dy) = (dst[i][0], dst[i][1]);
        a[i] = [
            sx as f64,
            sy as f64,
            1.0,
            0.0,
            0.0,
            0.0,
            (-sx * dx) as f64,
            (-sy * dx) as f64,
        ];
        a[i + 4] = [
            0.0,
            0.0,
            0.0,
            sx as f64,
            sy as f64,
            1.0,
            (-sx * dy) as f64,
            (-sy * dy) as f64,
        ];
        b[i] = dx as f64;
        b[i + 4] = dy as f64;
    }
    if !lu_solve(&mut a, &mut b) {
        return None;
    }
    Some([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], 1.0])
}

/// 3x3 inverse by cofactors (cv::invert with DECOMP_LU for n = 3).
fn invert3(m: &[f64; 9]) -> Option<[f64; 9]> {
    let s = |r: usize, c: usize| m[r * 3 + c];
    let d = s(0, 0) * (s(1, 1) * s(2, 2) - s(1, 2) * s(2, 1))
        - s(0, 1) * (s(1, 0) * s(2, 2) - s(1, 2) * s(2, 0))
        + s(0, 2) * (s(1, 0) * s(2, 1) - s(1, 1) * s(2, 0));
    if d == 0.0 || !d.is_finite() {
        return None;
    }
    let d = 1.0 / d;
    Some([
        (s(1, 1) * s(2, 2) - s(1, 2) * s(2, 1)) * d,
        (s(0, 2) * s(2, 1) - s(0, 1) * s(2, 2)) * d,
        (s(0, 1) * s(1, 2) - s(0, 2) * s(1, 1)) * d,
        (s(1, 2) * s(2, 0) - s(1, 0) * s(2, 2)) * d,
        (s(0, 0) * s(2, 2) - s(0, 2) * s(2, 0)) * d,
        (s(0, 2) * s(1, 0) - s(0, 0) * s(1, 2)) * d,
        (s(1, 0) * s(2, 1) - s(1, 1) * s(2, 0)) * d,
        (s(0, 1) * s(2, 0) - s(0, 0) * s(2, 1)) * d,
        (s(0, 0) * s(1, 1) - s(0, 1) * s(1, 0)) * d,
    ])
}

/// OpenCV's cubic kernel weights (A = -0.75) at fractional offset `x`.
fn cubic_coeffs(x: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// `cv2.warpPerspective(img, M, (w, h), flags=INTER_CUBIC, borderMode=BORDER_REPLICATE)`
/// where `inv` already maps destination to source pixels. OpenCV 5.0 samples at the
/// exact (unquantised) source position with floating-point cubic weights and rounds
/// the result to nearest, which this reproduces (checked against cv2).
fn warp_cubic(img: &RgbImage, inv: &[f64; 9], w: usize, h: usize) -> RgbImage {
    let (sw, sh) = (img.width() as i64, img.height() as i64);
    let src = img.as_raw();
    let mut out = vec![0u8; w * h * 3];
    let m = inv;
    for (y, orow) in out.chunks_exact_mut(w * 3).enumerate() {
        let yf = y as f64;
        for (x, o) in orow.chunks_exact_mut(3).enumerate() {
            let xf = x as f64;
            let zz = m[6] * xf + m[7] * yf + m[8];
            let zz = if zz != 0.0 { 1.0 / zz } else { 0.0 };
            let fx = (m[0] * xf + m[1] * yf + m[2]) * zz;
            let fy = (m[3] * xf + m[4] * yf + m[5]) * zz;
            // far outside positions only ever see the replicated border
            let fx = if fx.is_finite() {
                fx.clamp(-1e7, 1e7)
            } else {
                0.0
            };
            let fy = if fy.is_finite() {
                fy.clamp(-1e7, 1e7)
            } else {
                0.0
            };
            let (ix, iy) = (fx.floor(), fy.floor());
            let cx = cubic_coeffs(fx - ix);
            let cy = cubic_coeffs(fy - iy);
            let (ix, iy) = (ix as i64 - 1, iy as i64 - 1);
            let xs: [usize; 4] = std::array::from_fn(|k| (ix + k as i64).clamp(0, sw - 1) as usize);
            let mut acc = [0f64; 3];
            for (r, wy) in cy.iter().enumerate() {
                let row = (iy + r as i64).clamp(0, sh - 1) as usize * sw as usize;
                let mut racc = [0f64; 3];
                for (c, wx) in cx.iter().enumerate() {
                    let p = &src[(row + xs[c]) * 3..(row + xs[c]) * 3 + 3];
                    let k = wy * wx;
                    racc[0] += p[0] as f64 * k;
                    racc[1] += p[1] as f64 * k;
                    racc[2] += p[2] as f64 * k;
                }
                acc[0] += racc[0];
                acc[1] += racc[1];
                acc[2] += racc[2];
            }
            for (d, v) in o.iter_mut().zip(acc) {
                *d = v.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// RapidOCR `get_rotate_crop_image(img, quad)` with quad = (TL, TR, BR, BL): crop size
/// from the longer opposite sides (f32 norms, truncated), perspective warp to that
/// rectangle, then `np.rot90` when height / width >= 1.5. A degenerate quad (zero width
/// or height, singular transform) or an empty image gives an empty image.
pub fn crop_perspective(img: &RgbImage, quad: &Quad) -> RgbImage {
    let norm = |a: [f32; 2], b: [f32; 2]| {
        let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
        (dx * dx + dy * dy).sqrt()
    };
    let fw = norm(quad[0], quad[1]).max(norm(quad[2], quad[3]));
    let fh = norm(quad[0], quad[3]).max(norm(quad[1], quad[2]));
    if !fw.is_finite() || !fh.is_finite() || img.width() == 0 || img.height() == 0 {
        return RgbImage::new(0, 0);
    }
    let (w, h) = (fw as usize, fh as usize);
    if w == 0 || h == 0 || w > 1 << 15 || h > 1 << 15 {
        return RgbImage::new(0, 0);
    }
    let dst: Quad = [
        [0.0, 0.0],
        [w as f32, 0.0],
        [w as f32, h as f32],
        [0.0, h as f32],
    ];
    let Some(m) = perspective_transform(quad, &dst) else {
        return RgbImage::new(0, 0);
    };
    let Some(inv) = invert3(&m) else {
        return RgbImage::new(0, 0);
    };
    let out = warp_cubic(img, &inv, w, h);
    if h as f64 / w as f64 >= 1.5 {
        rotate90_ccw(&out)
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate() {
        let img = RgbImage::from_pixel(10, 8, image::Rgb([9, 9, 9]));
        assert_eq!(
            crop_perspective(&img, &[[1.0, 1.0]; 4]).dimensions(),
            (0, 0)
        );
        let line = [[0.0, 0.0], [5.0, 0.0], [5.0, 0.0], [0.0, 0.0]];
        assert_eq!(crop_perspective(&img, &line).dimensions(), (0, 0));
        let q = [[0.0, 0.0], [5.0, 0.0], [5.0, 3.0], [0.0, 3.0]];
        let c = crop_perspective(&img, &q);
        assert_eq!(c.dimensions(), (5, 3));
        assert!(c.pixels().all(|p| p.0 == [9, 9, 9]));
        assert_eq!(
            crop_perspective(&RgbImage::new(0, 0), &q).dimensions(),
            (0, 0)
        );
        // far outside the image: replicated border, no panic
        let q = [
            [-500.0, -500.0],
            [-400.0, -500.0],
            [-400.0, -450.0],
            [-500.0, -450.0],
        ];
        assert_eq!(crop_perspective(&img, &q).dimensions(), (100, 50));
    }
}
