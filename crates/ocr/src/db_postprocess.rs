//! DB post-processing: probability map → text quads (in prob-map pixels).

use crate::geometry::{box_score_fast, dilate_2x2, find_contours, mini_box, unclip, Quad};
use crate::DetSettings;

const MIN_SIZE: f32 = 3.0;

/// Quads (second min-area rectangle, points as `get_mini_boxes` orders them) with their
/// mean-probability score, in contour order, by the set's thresholds.
pub(crate) fn boxes_from_map(
    pred: &[f32],
    w: usize,
    h: usize,
    s: &DetSettings,
) -> Vec<(Quad, f32)> {
    let mask: Vec<u8> = pred
        .iter()
        .map(|&p| if p > s.thresh { 255 } else { 0 })
        .collect();
    let mask = dilate_2x2(&mask, w, h);
    let contours = find_contours(&mask, w, h);
    drop(mask);
    let mut out = Vec::new();
    let mut pts: Vec<[f32; 2]> = Vec::new();
    for contour in contours.iter().take(s.max_candidates) {
        pts.clear();
        pts.extend(contour.iter().map(|p| [p[0] as f32, p[1] as f32]));
        if pts.is_empty() {
            continue;
        }
        let (quad, sside) = mini_box(&pts);
        if sside < MIN_SIZE {
            continue;
        }
        let score = box_score_fast(pred, w, h, &quad);
        if s.box_thresh > score {
            continue;
        }
        let grown = unclip(&quad, s.unclip_ratio);
        if grown.is_empty() {
            continue;
        }
        pts.clear();
        pts.extend(grown.iter().map(|p| [p[0] as f32, p[1] as f32]));
        let (quad, sside) = mini_box(&pts);
        if sside < MIN_SIZE + 2.0 {
            continue;
        }
        out.push((quad, score));
    }
    out
}
