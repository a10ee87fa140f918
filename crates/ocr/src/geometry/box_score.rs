//! RapidOCR `DBPostProcess.box_score_fast`: mean probability under the filled box.
//!
//! The box is rasterised as `cv2.fillPoly(mask, box.astype(int32), 1)` does with
//! LINE_8 and shift 0: every edge is drawn with OpenCV's 8-connected line (clipped to
//! the mask like `LineIterator`), and the interior is filled scanline by scanline with
//! 16.16 fixed-point edge walkers whose spans run from `ceil(x_left)` to
//! `floor(x_right)`; the bottom-most row of each edge is left to the line drawing.

use super::Quad;

const XY_SHIFT: i64 = 16;
/// Spans cover the pixels from ceil(x_left) to floor(x_right) (checked against cv2.fillPoly).
const ONE_MINUS: i64 = (1 << XY_SHIFT) - 1;

/// `cv::clipLine` for a `w` x `h` image; false when the segment misses the image.
fn clip_line(w: i64, h: i64, p1: &mut [i64; 2], p2: &mut [i64; 2]) -> bool {
    if w <= 0 || h <= 0 {
        return false;
    }
    let (right, bottom) = (w - 1, h - 1);
    let code = |p: &[i64; 2]| {
        (p[0] < 0) as i32
            + (p[0] > right) as i32 * 2
            + (p[1] < 0) as i32 * 4
            + (p[1] > bottom) as i32 * 8
    };
    let (mut c1, mut c2) = (code(p1), code(p2));
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            p1[0] += ((a - p1[1]) as f64 * (p2[0] - p1[0]) as f64 / (p2[1] - p1[1]) as f64) as i64;
            p1[1] = a;
            c1 = (p1[0] < 0) as i32 + (p1[0] > right) as i32 * 2;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            p2[0] += ((a - p2[1]) as f64 * (p2[0] - p1[0]) as f64 / (p2[1] - p1[1]) as f64) as i64;
            p2[1] = a;
            c2 = (p2[0] < 0) as i32 + (p2[0] > right) as i32 * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                p1[1] +=
                    ((a - p1[0]) as f64 * (p2[1] - p1[1]) as f64 / (p2[0] - p1[0]) as f64) as i64;
                p1[0] = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                p2[1] +=
                    ((a - p2[0]) as f64 * (p2[1] - p1[1]) as f64 / (p2[0] - p1[0]) as f64) as i64;
                p2[0] = a;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// OpenCV's 8-connected Bresenham line (LineIterator, left to right), clipped.
fn draw_line(mask: &mut [u8], w: usize, h: usize, a: [i64; 2], b: [i64; 2]) {
    let (mut p1, mut p2) = (a, b);
    let inside = |p: &[i64; 2]| p[0] >= 0 && p[1] >= 0 && p[0] < w as i64 && p[1] < h as i64;
    if (!inside(&p1) || !inside(&p2)) && !clip_line(w as i64, h as i64, &mut p1, &mut p2) {
        return;
    }
    if p2[0] < p1[0] {
        std::mem::swap(&mut p1, &mut p2);
    }
    let dx = p2[0] - p1[0];
    let dy0 = p2[1] - p1[1];
    let ystep: i64 = if dy0 < 0 { -1 } else { 1 };
    let dy = dy0.abs();
    // major axis: x unless dy > dx
    let steep = dy > dx;
    let (major, minor) = if steep { (dy, dx) } else { (dx, dy) };
    let mut err = major - 2 * minor;
    let plus = 2 * major;
    let minus = -2 * minor;
    let (mut x, mut y) = (p1[0], p1[1]);
    for _ in 0..=major {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            mask[y as usize * w + x as usize] = 1;
        }
        let diag = err < 0;
        err += minus + if diag { plus } else { 0 };
        // the "minus" step moves along the major axis, the "plus" step along the minor
        if steep {
            y += ystep;
            if diag {
                x += 1;
            }
        } else {
            x += 1;
            if diag {
                y += ystep;
            }
        }
    }
}

/// `cv2.fillPoly(mask, [pts], 1)` with LINE_8 on a `w` x `h` u8 mask.
pub(crate) fn fill_poly(mask: &mut [u8], w: usize, h: usize, pts: &[[i64; 2]]) {
    let n = pts.len();
    if n == 0 || w == 0 || h == 0 {
        return;
    }
    // edges: (y0, y1, x at y0 in 16.16, dx per row)
    let mut edges: Vec<(i64, i64, i64, i64)> = Vec::with_capacity(n);
    let mut p0 = pts[n - 1];
    for &p1 in pts {
        draw_line(mask, w, h, p0, p1);
        if p0[1] != p1[1] {
            let (a, b) = if p0[1] < p1[1] { (p0, p1) } else { (p1, p0) };
            let dx = ((p1[0] - p0[0]) << XY_SHIFT) / (p1[1] - p0[1]);
            edges.push((a[1], b[1], a[0] << XY_SHIFT, dx));
        }
        p0 = p1;
    }
    if edges.len() < 2 {
        return;
    }
    let y_min = edges.iter().map(|e| e.0).min().unwrap_or(0);
    let y_max = edges.iter().map(|e| e.1).max().unwrap_or(0).min(h as i64);
    let mut xs: Vec<i64> = Vec::with_capacity(edges.len());
    for y in y_min.max(0)..y_max {
        xs.clear();
        for e in &edges {
            if e.0 <= y && y < e.1 {
                xs.push(e.2 + (y - e.0) * e.3);
            }
        }
        xs.sort_unstable();
        for pair in xs.chunks_exact(2) {
            let x1 = (pair[0] + ONE_MINUS) >> XY_SHIFT;
            let x2 = pair[1] >> XY_SHIFT;
            if x1 < w as i64 && x2 >= 0 {
                let (x1, x2) = (x1.max(0) as usize, x2.min(w as i64 - 1) as usize);
                mask[y as usize * w + x1..=y as usize * w + x2].fill(1);
            }
        }
    }
}

/// Mean of `prob` (row-major `width` x `height`) under the quad, as RapidOCR's
/// `box_score_fast` computes it: bounding box by floor/ceil clipped to the map, the
/// quad shifted into it and truncated to int, `cv2.fillPoly`, `cv2.mean` (f64 sum).
/// Returns 0 for an empty map or an empty mask.
pub fn box_score_fast(prob: &[f32], width: usize, height: usize, quad: &Quad) -> f32 {
    if width == 0 || height == 0 || prob.len() < width.saturating_mul(height) {
        return 0.0;
    }
    let clip = |v: f32, hi: usize| -> i64 {
        let v = if v.is_finite() { v as f64 } else { 0.0 };
        (v as i64).clamp(0, hi as i64 - 1)
    };
    let fmin = |k: usize| quad.iter().map(|p| p[k]).fold(f32::INFINITY, f32::min);
    let fmax = |k: usize| quad.iter().map(|p| p[k]).fold(f32::NEG_INFINITY, f32::max);
    let xmin = clip(fmin(0).floor(), width);
    let xmax = clip(fmax(0).ceil(), width);
    let ymin = clip(fmin(1).floor(), height);
    let ymax = clip(fmax(1).ceil(), height);
    let mw = (xmax - xmin + 1) as usize;
    let mh = (ymax - ymin + 1) as usize;
    let mut mask = vec![0u8; mw * mh];
    // numpy: box[:, 0] - xmin in float32, then astype(int32) truncates toward zero
    let pts: Vec<[i64; 2]> = quad
        .iter()
        .map(|p| {
            let x = p[0] - xmin as f32;
            let y = p[1] - ymin as f32;
            let t = |v: f32| {
                if v.is_finite() {
                    (v as f64).trunc().clamp(-1e9, 1e9) as i64
                } else {
                    0
                }
            };
            [t(x), t(y)]
        })
        .collect();
    fill_poly(&mut mask, mw, mh, &pts);
    let mut sum = 0f64;
    let mut cnt = 0usize;
    for y in 0..mh {
        let prow = &prob[(ymin as usize + y) * width + xmin as usize..][..mw];
        let mrow = &mask[y * mw..(y + 1) * mw];
        for (&p, &m) in prow.iter().zip(mrow) {
            if m != 0 {
                sum += p as f64;
                cnt += 1;
            }
        }
    }
    if cnt == 0 {
        0.0
    } else {
        (sum / cnt as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate() {
        let prob = vec![0.5f32; 20];
        let q = [[1.0, 1.0]; 4];
        assert_eq!(box_score_fast(&prob, 5, 4, &q), 0.5);
        let q = [
            [-10.0, -10.0],
            [100.0, -10.0],
            [100.0, 100.0],
            [-10.0, 100.0],
        ];
        assert_eq!(box_score_fast(&prob, 5, 4, &q), 0.5);
        assert_eq!(box_score_fast(&[], 0, 0, &q), 0.0);
        let q = [
            [f32::NAN, 1.0],
            [2.0, f32::INFINITY],
            [1.0, 1.0],
            [0.0, 0.0],
        ];
        let _ = box_score_fast(&prob, 5, 4, &q);
    }
}
