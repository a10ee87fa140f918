//! Image geometry matching OpenCV / Clipper semantics where it changes results.
//!
//! Every public function reproduces one step of the RapidOCR 1.4.4 reference pipeline
//! (OpenCV 5.0, pyclipper 1.x = Clipper 6.4, shapely) closely enough that detection
//! boxes and crops come out the same. None of them panics: degenerate inputs (empty
//! images, zero-area quads) give empty or degenerate outputs.

mod box_score;
mod contours;
mod min_area_rect;
mod morphology;
mod quad;
mod resize;
mod rotate;
mod unclip;
mod warp;

pub use box_score::box_score_fast;
pub use contours::find_contours;
pub use min_area_rect::{box_points, min_area_rect, mini_box, RotatedRect};
pub use morphology::dilate_2x2;
pub use quad::order_points_clockwise;
pub use resize::{resize_bilinear, resize_bilinear_gray, resize_bilinear_raw};
pub use rotate::{rotate180, rotate90_ccw};
pub use unclip::unclip;
pub use warp::{crop_perspective, perspective_transform};

/// Four points; the order is given by the function that produces or expects them.
pub type Quad = [[f32; 2]; 4];

/// Round half to even, like numpy's `np.round` and Python 3's `round()`.
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// Area of a box (l, t, r, b); 0 when it is empty.
pub(crate) fn rect_area([l, t, r, b]: [f32; 4]) -> f32 {
    (r - l).max(0.0) * (b - t).max(0.0)
}

/// Area two boxes (l, t, r, b) share.
pub(crate) fn rect_intersection(a: [f32; 4], b: [f32; 4]) -> f32 {
    rect_area([
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ])
}

/// Groups boxes (l, t, r, b) into rows of text, top to bottom, each left to right: a box
/// joins the row of the box before it (by top) when their vertical overlap with the row's
/// first box is more than half the smaller height. A total order whatever the boxes (sorting
/// on "overlapping, so by x, else by y" is not one).
pub(crate) fn text_rows<T: Copy>(ids: &[T], rect: impl Fn(T) -> [f32; 4]) -> Vec<Vec<T>> {
    let mut ids = ids.to_vec();
    ids.sort_by(|&a, &b| {
        let (ra, rb) = (rect(a), rect(b));
        ra[1].total_cmp(&rb[1]).then(ra[0].total_cmp(&rb[0]))
    });
    let mut rows: Vec<Vec<T>> = Vec::new();
    for i in ids {
        let r = rect(i);
        let joins = rows.last().is_some_and(|row| {
            let first = rect(row[0]);
            let overlap = r[3].min(first[3]) - r[1].max(first[1]);
            overlap > 0.5 * (r[3] - r[1]).min(first[3] - first[1])
        });
        match rows.last_mut() {
            Some(row) if joins => row.push(i),
            _ => rows.push(vec![i]),
        }
    }
    for row in &mut rows {
        row.sort_by(|&a, &b| rect(a)[0].total_cmp(&rect(b)[0]));
    }
    rows
}

/// Orders boxes as text is read: [`text_rows`], flattened.
pub(crate) fn reading_order<T: Copy>(ids: &mut Vec<T>, rect: impl Fn(T) -> [f32; 4]) {
    *ids = text_rows(ids, rect).concat();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(-0.5), 0.0);
        assert_eq!(round_half_even(-1.5), -2.0);
        assert_eq!(round_half_even(1.2), 1.0);
    }
}
