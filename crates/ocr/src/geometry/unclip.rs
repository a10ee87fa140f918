//! RapidOCR `DBPostProcess.unclip`: grow the box by `area * ratio / perimeter` with
//! pyclipper's `PyclipperOffset` (Clipper 6.4: integer coordinates, JT_ROUND,
//! ET_CLOSEDPOLYGON, ArcTolerance 0.25, MiterLimit 2).
//!
//! The offset polygon is built as `ClipperOffset::DoOffset` builds it (unit normals,
//! round joins stepped by a fixed rotation, `Round` = half away from zero). Clipper
//! then unions it with itself; for the convex-ish polygons that an offset box gives,
//! that union only drops repeated and collinear vertices and fixes the start: the
//! result is positively oriented (shoelace in x, y > 0) and ends at its top-most,
//! then right-most vertex.

use super::Quad;

type Pt = [i64; 2];

/// Clipper's `Round`: half away from zero, then truncation to cInt.
fn cround(v: f64) -> i64 {
    if v < 0.0 {
        (v - 0.5) as i64
    } else {
        (v + 0.5) as i64
    }
}

fn unit_normal(a: Pt, b: Pt) -> [f64; 2] {
    let dx = (b[0] - a[0]) as f64;
    let dy = (b[1] - a[1]) as f64;
    if dx == 0.0 && dy == 0.0 {
        return [0.0, 0.0];
    }
    let f = 1.0 / (dx * dx + dy * dy).sqrt();
    [dy * f, -dx * f]
}

fn area2(p: &[Pt]) -> f64 {
    let n = p.len();
    let mut a = 0.0;
    for i in 0..n {
        let j = if i == 0 { n - 1 } else { i - 1 };
        a += (p[j][0] as f64 + p[i][0] as f64) * (p[j][1] as f64 - p[i][1] as f64);
    }
    -a
}

/// `ClipperOffset::DoOffset` for one closed polygon with round joins.
fn offset_round(src: &[Pt], delta: f64) -> Vec<Pt> {
    let len = src.len();
    let arc_tol = if 0.25 > delta.abs() * 0.25 {
        delta.abs() * 0.25
    } else {
        0.25
    };
    let mut steps = std::f64::consts::PI / (1.0 - arc_tol / delta.abs()).acos();
    if steps > delta.abs() * std::f64::consts::PI {
        steps = delta.abs() * std::f64::consts::PI;
    }
    let two_pi = 2.0 * std::f64::consts::PI;
    let mut sin = (two_pi / steps).sin();
    let cos = (two_pi / steps).cos();
    let steps_per_rad = steps / two_pi;
    if delta < 0.0 {
        sin = -sin;
    }
    let normals: Vec<[f64; 2]> = (0..len)
        .map(|j| unit_normal(src[j], src[(j + 1) % len]))
        .collect();
    let mut out = Vec::with_capacity(len * 8);
    let mut k = len - 1;
    for j in 0..len {
        let (nk, nj) = (normals[k], normals[j]);
        let mut sin_a = nk[0] * nj[1] - nj[0] * nk[1];
        let p = src[j];
        let at = |n: [f64; 2]| {
            [
                cround(p[0] as f64 + n[0] * delta),
                cround(p[1] as f64 + n[1] * delta),
            ]
        };
        let mut done = false;
        if (sin_a * delta).abs() < 1.0 {
            let cos_a = nk[0] * nj[0] + nj[1] * nk[1];
            if cos_a > 0.0 {
                out.push(at(nk));
                done = true;
            }
        } else {
            sin_a = sin_a.clamp(-1.0, 1.0);
        }
        if !done {
            if sin_a * delta < 0.0 {
                out.push(at(nk));
                out.push(p);
                out.push(at(nj));
            } else {
                // round join
                let a = sin_a.atan2(nk[0] * nj[0] + nk[1] * nj[1]);
                let n = cround(steps_per_rad * a.abs()).max(1);
                let (mut x, mut y) = (nk[0], nk[1]);
                for _ in 0..n {
                    out.push([
                        cround(p[0] as f64 + x * delta),
                        cround(p[1] as f64 + y * delta),
                    ]);
                    let x2 = x;
                    x = x * cos - sin * y;
                    y = x2 * sin + y * cos;
                }
                out.push(at(nj));
            }
        }
        k = j;
    }
    out
}

/// Removes repeated vertices and vertices on a straight line between their neighbours
/// (Clipper without PreserveCollinear), cyclically.
fn clean(mut p: Vec<Pt>) -> Vec<Pt> {
    let collinear = |a: Pt, b: Pt, c: Pt| {
        (a[1] - b[1]) as i128 * (b[0] - c[0]) as i128
            == (a[0] - b[0]) as i128 * (b[1] - c[1]) as i128
    };
    let mut changed = true;
    while changed && p.len() >= 3 {
        changed = false;
        let n = p.len();
        for i in 0..n {
            let (a, b, c) = (p[(i + n - 1) % n], p[i], p[(i + 1) % n]);
            if b == a || b == c || collinear(a, b, c) {
                p.remove(i);
                changed = true;
                break;
            }
        }
    }
    if p.len() < 3 {
        p.clear();
    }
    p
}

/// Offsets a closed integer polygon by `delta` like `PyclipperOffset` (JT_ROUND,
/// ET_CLOSEDPOLYGON) and returns the first result polygon (empty when none).
pub fn offset_polygon(path: &[Pt], delta: f64) -> Vec<Pt> {
    // AddPath: drop consecutive duplicates (and a closing duplicate)
    let mut src: Vec<Pt> = Vec::with_capacity(path.len());
    let mut hi = path.len();
    while hi > 1 && path[0] == path[hi - 1] {
        hi -= 1;
    }
    for &q in &path[..hi] {
        if src.last() != Some(&q) {
            src.push(q);
        }
    }
    if src.len() < 3 || !delta.is_finite() {
        return Vec::new();
    }
    // FixOrientations
    if area2(&src) < 0.0 {
        src.reverse();
    }
    let raw = if delta.abs() < 1e-20 {
        src
    } else if delta < 0.0 {
        return Vec::new();
    } else {
        offset_round(&src, delta)
    };
    let mut poly = clean(raw);
    if poly.is_empty() {
        return poly;
    }
    if area2(&poly) < 0.0 {
        poly.reverse();
    }
    // end at the top-most, then right-most vertex
    let last = (0..poly.len())
        .min_by(|&a, &b| {
            poly[a][1]
                .cmp(&poly[b][1])
                .then(poly[b][0].cmp(&poly[a][0]))
        })
        .unwrap_or(0);
    let n = poly.len();
    poly.rotate_left((last + 1) % n);
    poly
}

/// `DBPostProcess.unclip(box)` with `unclip_ratio`: distance from shapely's area and
/// length of the float box, the path truncated to integers as pyclipper does.
pub fn unclip(quad: &Quad, unclip_ratio: f32) -> Vec<[i64; 2]> {
    let q: Vec<[f64; 2]> = quad.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
    if q.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return Vec::new();
    }
    let mut area = 0.0;
    let mut length = 0.0;
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        area += a[0] * b[1] - b[0] * a[1];
        length += ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    }
    let area = area.abs() * 0.5;
    if length <= 0.0 {
        return Vec::new();
    }
    let distance = area * unclip_ratio as f64 / length;
    let path: Vec<Pt> = q
        .iter()
        .map(|p| [p[0].trunc() as i64, p[1].trunc() as i64])
        .collect();
    offset_polygon(&path, distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate() {
        assert!(unclip(&[[1.0, 1.0]; 4], 1.5).is_empty());
        assert!(unclip(&[[0.0, 0.0], [5.0, 0.0], [10.0, 0.0], [2.0, 0.0]], 1.5).is_empty());
        let r = unclip(&[[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 4.0]], 1.5);
        assert!(r.len() >= 4);
        assert!(unclip(
            &[[f32::NAN, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 4.0]],
            1.5
        )
        .is_empty());
    }
}
