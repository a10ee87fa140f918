//! `cv2.minAreaRect`, `cv2.boxPoints` and RapidOCR's `get_mini_boxes`.
//!
//! The rectangle search is OpenCV's rotating calipers in f32 (rotcalipers.cpp, the
//! 4.5.1+ version whose angles lie in (0, 90]), run on a convex hull that starts where
//! OpenCV's `convexHull(points, clockwise=false)` starts, because on ties (e.g. an
//! axis-aligned box, where 0 and 90 degrees give the same area) the last edge tried
//! wins and that decides between (w, h, 90) and (h, w, 0).

use super::Quad;

/// `cv::RotatedRect`: centre, (width, height) and angle in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RotatedRect {
    pub center: [f32; 2],
    pub size: [f32; 2],
    pub angle: f32,
}

fn cross(o: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f64 {
    (a[0] as f64 - o[0] as f64) * (b[1] as f64 - o[1] as f64)
        - (a[1] as f64 - o[1] as f64) * (b[0] as f64 - o[0] as f64)
}

/// Convex hull (indices into `pts`), positively oriented in (x, y), without collinear
/// or repeated points, started as OpenCV starts it: at the largest (x, y) point, or,
/// when the input indices run monotonically around the hull (as for a contour), at the
/// smallest (ascending) or largest (descending) index.
fn convex_hull(pts: &[[f32; 2]]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..pts.len()).collect();
    idx.sort_by(|&a, &b| {
        let (p, q) = (pts[a], pts[b]);
        p[0].total_cmp(&q[0])
            .then(p[1].total_cmp(&q[1]))
            .then(a.cmp(&b))
    });
    idx.dedup_by(|a, b| pts[*a] == pts[*b]);
    if idx.len() < 3 {
        return idx;
    }
    // Andrew's monotone chain: lower then upper, counter-clockwise for y-up.
    let mut hull: Vec<usize> = Vec::with_capacity(idx.len() * 2);
    for &i in idx.iter() {
        while hull.len() >= 2
            && cross(pts[hull[hull.len() - 2]], pts[hull[hull.len() - 1]], pts[i]) <= 0.0
        {
            hull.pop();
        }
        hull.push(i);
    }
    let lower_len = hull.len() + 1;
    for &i in idx.iter().rev().skip(1) {
        while hull.len() >= lower_len
            && cross(pts[hull[hull.len() - 2]], pts[hull[hull.len() - 1]], pts[i]) <= 0.0
        {
            hull.pop();
        }
        hull.push(i);
    }
    hull.pop();
    if hull.len() < 3 {
        // all points collinear: keep the two extremes
        let (a, b) = (idx[0], idx[idx.len() - 1]);
        return vec![b, a];
    }
    let n = hull.len();
    // start at the largest (x, y) point (the last one in sorted order)
    let last = idx[idx.len() - 1];
    let start = hull.iter().position(|&i| i == last).unwrap_or(0);
    hull.rotate_left(start);
    // OpenCV's cyclic shift towards an ascending/descending index sequence
    let descents = (0..n).filter(|&k| hull[(k + 1) % n] < hull[k]).count();
    if descents <= 1 {
        let m = (0..n).min_by_key(|&k| hull[k]).unwrap_or(0);
        hull.rotate_left(m);
    } else if descents >= n - 1 {
        let m = (0..n).max_by_key(|&k| hull[k]).unwrap_or(0);
        hull.rotate_left(m);
    }
    hull
}

/// Rotating calipers over a convex polygon (n > 2) exactly as OpenCV does it in f32.
/// Returns (corner, edge vector 1, edge vector 2).
fn calipers(p: &[[f32; 2]]) -> Option<([f32; 2], [f32; 2], [f32; 2])> {
    let n = p.len();
    let mut vect = vec![[0f32; 2]; n];
    let mut inv_len = vec![0f32; n];
    let (mut left, mut bottom, mut right, mut top) = (0usize, 0usize, 0usize, 0usize);
    let mut pt0 = p[0];
    let (mut left_x, mut right_x, mut top_y, mut bottom_y) = (pt0[0], pt0[0], pt0[1], pt0[1]);
    for i in 0..n {
        if pt0[0] < left_x {
            left_x = pt0[0];
            left = i;
        }
        if pt0[0] > right_x {
            right_x = pt0[0];
            right = i;
        }
        if pt0[1] > top_y {
            top_y = pt0[1];
            top = i;
        }
        if pt0[1] < bottom_y {
            bottom_y = pt0[1];
            bottom = i;
        }
        let pt = p[if i + 1 < n { i + 1 } else { 0 }];
        let dx = pt[0] as f64 - pt0[0] as f64;
        let dy = pt[1] as f64 - pt0[1] as f64;
        vect[i] = [dx as f32, dy as f32];
        inv_len[i] = (1.0 / (dx * dx + dy * dy).sqrt()) as f32;
        pt0 = pt;
    }
    if inv_len.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut orientation = 0f32;
    {
        let (mut ax, mut ay) = (vect[n - 1][0] as f64, vect[n - 1][1] as f64);
        for v in vect.iter() {
            let (bx, by) = (v[0] as f64, v[1] as f64);
            let c = ax * by - ay * bx;
            if c != 0.0 {
                orientation = if c > 0.0 { 1.0 } else { -1.0 };
                break;
            }
            ax = bx;
            ay = by;
        }
    }
    if orientation == 0.0 {
        return None;
    }
    let mut base_a = orientation;
    let mut base_b = 0f32;
    let mut seq = [bottom, right, top, left];
    let mut minarea = f32::MAX;
    let mut best: Option<(usize, f32, f32, f32, f32, usize)> = None;
    for _ in 0..n {
        let dp = [
            base_a * vect[seq[0]][0] + base_b * vect[seq[0]][1],
            -base_b * vect[seq[1]][0] + base_a * vect[seq[1]][1],
            -base_a * vect[seq[2]][0] - base_b * vect[seq[2]][1],
            base_b * vect[seq[3]][0] - base_a * vect[seq[3]][1],
        ];
        let mut maxcos = dp[0] * inv_len[seq[0]];
        let mut main = 0;
        for i in 1..4 {
            let c = dp[i] * inv_len[seq[i]];
            if c > maxcos {
                main = i;
                maxcos = c;
            }
        }
        let pi = seq[main];
        let lx = vect[pi][0] * inv_len[pi];
        let ly = vect[pi][1] * inv_len[pi];
        match main {
            0 => {
                base_a = lx;
                base_b = ly;
            }
            1 => {
                base_a = ly;
                base_b = -lx;
            }
            2 => {
                base_a = -lx;
                base_b = -ly;
            }
            _ => {
                base_a = -ly;
                base_b = lx;
            }
        }
        seq[main] = if seq[main] + 1 == n { 0 } else { seq[main] + 1 };
        let dx = p[seq[1]][0] - p[seq[3]][0];
        let dy = p[seq[1]][1] - p[seq[3]][1];
        let width = dx * base_a + dy * base_b;
        let dx = p[seq[2]][0] - p[seq[0]][0];
        let dy = p[seq[2]][1] - p[seq[0]][1];
        let height = -dx * base_b + dy * base_a;
        let area = width * height;
        if area <= minarea {
            minarea = area;
            best = Some((seq[3], base_a, width, base_b, height, seq[0]));
        }
    }
    let (li, a1, width, b1, height, bi) = best?;
    let (a2, b2) = (-b1, a1);
    let c1 = a1 * p[li][0] + p[li][1] * b1;
    let c2 = a2 * p[bi][0] + p[bi][1] * b2;
    let idet = 1.0f32 / (a1 * b2 - a2 * b1);
    let px = (c1 * b2 - c2 * b1) * idet;
    let py = (a1 * c2 - a2 * c1) * idet;
    Some((
        [px, py],
        [a1 * width, b1 * width],
        [a2 * height, b2 * height],
    ))
}

/// `cv2.minAreaRect(points)`. Empty input gives an all-zero rect; one point a zero-size
/// rect at that point; collinear points a zero-height rect along the segment.
pub fn min_area_rect(points: &[[f32; 2]]) -> RotatedRect {
    let mut r = RotatedRect {
        center: [0.0; 2],
        size: [0.0; 2],
        angle: 0.0,
    };
    let pts: Vec<[f32; 2]> = points
        .iter()
        .copied()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect();
    let hull_idx = convex_hull(&pts);
    let hull: Vec<[f32; 2]> = hull_idx.iter().map(|&i| pts[i]).collect();
    let mut angle = 0f64;
    if hull.len() > 2 {
        if let Some((o, e1, e2)) = calipers(&hull) {
            r.center = [o[0] + (e1[0] + e2[0]) * 0.5, o[1] + (e1[1] + e2[1]) * 0.5];
            r.size = [
                ((e1[0] as f64).powi(2) + (e1[1] as f64).powi(2)).sqrt() as f32,
                ((e2[0] as f64).powi(2) + (e2[1] as f64).powi(2)).sqrt() as f32,
            ];
            angle = (e1[1] as f64).atan2(e1[0] as f64);
        }
    } else if hull.len() == 2 {
        let (a, b) = (hull[0], hull[1]);
        r.center = [(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5];
        let dx = b[0] as f64 - a[0] as f64;
        let dy = b[1] as f64 - a[1] as f64;
        r.size = [(dx * dx + dy * dy).sqrt() as f32, 0.0];
        angle = dy.atan2(dx);
    } else if hull.len() == 1 {
        r.center = hull[0];
    }
    // OpenCV: (float)(angle_f32 * 180 / CV_PI), the product taken in f32
    r.angle = (((angle as f32) * 180.0) as f64 / std::f64::consts::PI) as f32;
    // OpenCV 5.0 reports angles in [-90, 0): a non-negative angle is turned back by a
    // quarter turn, which swaps width and height (same rectangle).
    while r.angle >= 0.0 {
        r.angle -= 90.0;
        r.size.swap(0, 1);
    }
    r
}

/// `cv2.boxPoints(rect)`: corners in OpenCV's order (bottom-left first for angle 0,
/// then clockwise on screen).
pub fn box_points(rect: &RotatedRect) -> Quad {
    let ang = rect.angle as f64 * std::f64::consts::PI / 180.0;
    let b = ang.cos() as f32 * 0.5;
    let a = ang.sin() as f32 * 0.5;
    let [cx, cy] = rect.center;
    let [w, h] = rect.size;
    let p0 = [cx - a * h - b * w, cy + b * h - a * w];
    let p1 = [cx + a * h - b * w, cy - b * h - a * w];
    [
        p0,
        p1,
        [2.0 * cx - p0[0], 2.0 * cy - p0[1]],
        [2.0 * cx - p1[0], 2.0 * cy - p1[1]],
    ]
}

/// RapidOCR `DBPostProcess.get_mini_boxes`: the min-area rectangle's corners, sorted by
/// x (stable), then picked as (TL, TR, BR, BL) by comparing y within the left and the
/// right pair; returns the box and the rectangle's shorter side.
pub fn mini_box(points: &[[f32; 2]]) -> (Quad, f32) {
    let rect = min_area_rect(points);
    let mut p = box_points(&rect).to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    ([p[i1], p[i2], p[i3], p[i4]], rect.size[0].min(rect.size[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_inputs() {
        assert_eq!(min_area_rect(&[]).size, [0.0, 0.0]);
        let r = min_area_rect(&[[3.0, 4.0]]);
        assert_eq!(r.center, [3.0, 4.0]);
        // cv2: ((2, 0), (0, 4), -90)
        let r = min_area_rect(&[[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]]);
        assert_eq!((r.center, r.size, r.angle), ([2.0, 0.0], [0.0, 4.0], -90.0));
        let r = min_area_rect(&[[1.0, 1.0]; 5]);
        assert_eq!(r.size, [0.0, 0.0]);
        let (_, s) = mini_box(&[]);
        assert_eq!(s, 0.0);
    }

    #[test]
    fn axis_aligned_square() {
        // cv2: ((2, 1), (2, 4), -90)
        let r = min_area_rect(&[[0.0, 0.0], [0.0, 2.0], [4.0, 2.0], [4.0, 0.0]]);
        assert_eq!((r.center, r.size, r.angle), ([2.0, 1.0], [2.0, 4.0], -90.0));
        let (b, s) = mini_box(&[[0.0, 0.0], [0.0, 2.0], [4.0, 2.0], [4.0, 0.0]]);
        assert_eq!(s, 2.0);
        let want = [[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]];
        for (p, q) in b.iter().zip(&want) {
            assert!(
                (p[0] - q[0]).abs() < 1e-5 && (p[1] - q[1]).abs() < 1e-5,
                "{b:?}"
            );
        }
    }
}
