//! Size rules: the reference's (global resize, letterbox, det resize) and the default
//! profile's bounded det plan.

use crate::geometry::round_half_even;

/// `int(round(int(side * ratio) / 32) * 32)` with Python's float semantics.
fn snap32(side: usize, ratio: f64) -> usize {
    let r = (side as f64 * ratio).trunc();
    (round_half_even(r / 32.0) * 32.0).max(0.0) as usize
}

/// Reference step 2 (`preprocess`): new (w, h) and the ratios (old / new) it records, or
/// `None` when the image is untouched. `Err(())` when a side would become 0 (the
/// reference raises).
#[allow(clippy::result_unit_err)]
pub(crate) fn reference_global(w: usize, h: usize) -> Result<Vec<(usize, usize)>, ()> {
    const MAX_SIDE: usize = 2000;
    const MIN_SIDE: usize = 30;
    let mut steps = Vec::new();
    let (mut w, mut h) = (w, h);
    if w.max(h) > MAX_SIDE {
        let ratio = if h > w {
            MAX_SIDE as f64 / h as f64
        } else {
            MAX_SIDE as f64 / w as f64
        };
        let (nw, nh) = (snap32(w, ratio), snap32(h, ratio));
        if nw == 0 || nh == 0 {
            return Err(());
        }
        steps.push((nw, nh));
        (w, h) = (nw, nh);
    }
    if w.min(h) < MIN_SIDE {
        let ratio = if h < w {
            MIN_SIDE as f64 / h as f64
        } else {
            MIN_SIDE as f64 / w as f64
        };
        let (nw, nh) = (snap32(w, ratio), snap32(h, ratio));
        if nw == 0 || nh == 0 {
            return Err(());
        }
        steps.push((nw, nh));
    }
    Ok(steps)
}

/// Reference letterbox: black rows added above and below (each side), or 0.
pub(crate) fn reference_letterbox(w: usize, h: usize) -> usize {
    const MIN_HEIGHT: usize = 30;
    const RATIO: f64 = 8.0;
    if h <= MIN_HEIGHT || w as f64 / h as f64 > RATIO {
        let new_h = ((w as f64 / RATIO).trunc() as usize).max(MIN_HEIGHT) * 2;
        (new_h.abs_diff(h) as f64 / 2.0).trunc() as usize
    } else {
        0
    }
}

/// Reference det resize (limit type min, 736): (w, h), or `None` when a side is 0.
pub(crate) fn reference_det(w: usize, h: usize) -> Option<(usize, usize)> {
    const LIMIT: f64 = 736.0;
    let ratio = if (w.min(h) as f64) < LIMIT {
        if h < w {
            LIMIT / h as f64
        } else {
            LIMIT / w as f64
        }
    } else {
        1.0
    };
    let (nw, nh) = (snap32(w, ratio), snap32(h, ratio));
    (nw > 0 && nh > 0).then_some((nw, nh))
}

/// Default profile: the image scaled by `scale` to `rw` x `rh`, placed at (`pad`, `pad`) on
/// a `w` x `h` canvas (multiples of 32) filled with the image's border colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DetPlan {
    pub scale: f64,
    pub rw: usize,
    pub rh: usize,
    pub pad: usize,
    pub w: usize,
    pub h: usize,
}

/// Short side the det input aims for when the image is small: single lines are read at
/// their own size instead of the reference's 736 (see docs/profiles.md).
pub(crate) const DEFAULT_MIN_SHORT: f64 = 64.0;
/// Most a small image is enlarged.
pub(crate) const DEFAULT_MAX_UPSCALE: f64 = 4.0;
/// Largest det side (before the pixel budget).
pub(crate) const DEFAULT_MAX_LONG: f64 = 2560.0;
/// Border added on each side, in det pixels: text touching the edge still gets context.
pub(crate) const DEFAULT_PAD: usize = 16;

/// Det pixels (padded canvas) of `w` x `h` scaled by `scale`: a budget that gives that scale.
pub(crate) fn scaled_pixels(w: usize, h: usize, scale: f64) -> u64 {
    let side = |v: usize| ceil32((v as f64 * scale).round() as usize + 2 * DEFAULT_PAD);
    (side(w) * side(h)) as u64
}

fn ceil32(v: usize) -> usize {
    v.div_ceil(32) * 32
}

pub(crate) fn default_det(w: usize, h: usize, max_det_pixels: u64) -> DetPlan {
    let (short, long) = (w.min(h) as f64, w.max(h) as f64);
    let mut scale = if short < DEFAULT_MIN_SHORT {
        (DEFAULT_MIN_SHORT / short).min(DEFAULT_MAX_UPSCALE)
    } else {
        1.0
    };
    // Strips: never let the enlargement make the long side exceed the bound.
    scale = scale.min(DEFAULT_MAX_LONG / long);
    let budget = max_det_pixels.max(64 * 64) as f64;
    loop {
        let rw = ((w as f64 * scale).round() as usize).max(1);
        let rh = ((h as f64 * scale).round() as usize).max(1);
        let pad = DEFAULT_PAD;
        let (cw, ch) = (ceil32(rw + 2 * pad), ceil32(rh + 2 * pad));
        if (cw * ch) as f64 <= budget || (rw <= 1 && rh <= 1) {
            return DetPlan {
                scale,
                rw,
                rh,
                pad,
                w: cw,
                h: ch,
            };
        }
        // Shrink towards the budget; the loop ends because the sizes fall each pass.
        scale *= ((budget / (cw * ch) as f64).sqrt()).min(0.97);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_rules_match_recorded_shapes() {
        // 678x73 → letterbox none (ratio 9.3 > 8 → padded), det 2976x736 per the reference.
        let top = reference_letterbox(678, 73);
        let h = 73 + 2 * top;
        assert_eq!(reference_det(678, h), Some((2976, 736)));
        assert_eq!(reference_det(1000, 1400), Some((992, 1408)));
        assert_eq!(reference_global(5, 5), Ok(vec![(32, 32)]));
    }

    #[test]
    fn default_plan_is_bounded() {
        let p = default_det(40, 4000, 4_000_000);
        assert!(p.w * p.h <= 4_000_000 && p.w.is_multiple_of(32) && p.h.is_multiple_of(32));
        let p = default_det(100_000, 100_000, 4_000_000);
        assert!(p.w * p.h <= 4_000_000);
        let p = default_det(1, 1, 4_000_000);
        assert!(p.w >= 32 && p.h >= 32);
    }
}
