//! Point ordering used by RapidOCR after detection.

use super::Quad;

/// Stable argsort of 4 values (numpy's default sort is stable for such short inputs).
fn argsort(v: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    idx
}

/// RapidOCR `TextDetector.order_points_clockwise`: the two smallest-x points are the
/// left pair, split into TL/BL by y; the other two are TR/BR. Returns (TL, TR, BR, BL).
pub fn order_points_clockwise(quad: &Quad) -> Quad {
    let xs: Vec<f32> = quad.iter().map(|p| p[0]).collect();
    let by_x = argsort(&xs);
    let left = [quad[by_x[0]], quad[by_x[1]]];
    let right = [quad[by_x[2]], quad[by_x[3]]];
    let l = argsort(&[left[0][1], left[1][1]]);
    let r = argsort(&[right[0][1], right[1][1]]);
    [left[l[0]], right[r[0]], right[r[1]], left[l[1]]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders() {
        let q = [[10.0, 0.0], [0.0, 5.0], [0.0, 0.0], [10.0, 5.0]];
        assert_eq!(
            order_points_clockwise(&q),
            [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
        );
        let d = [[1.0, 1.0]; 4];
        assert_eq!(order_points_clockwise(&d), d);
    }
}
