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
