//! Binary dilation as used by DBPostProcess(use_dilation=True).

/// `cv2.dilate(mask, np.ones((2, 2)))`: OpenCV puts the anchor of a 2x2 kernel at (1, 1),
/// so each output pixel is the max of itself and its left, upper and upper-left
/// neighbours, i.e. blobs grow one pixel right and down. Outside pixels count as 0.
/// Non-zero input values are kept as they are (the max is taken), as OpenCV does.
pub fn dilate_2x2(mask: &[u8], width: usize, height: usize) -> Vec<u8> {
    let n = width.saturating_mul(height);
    if n == 0 || mask.len() < n {
        return vec![0; n.min(mask.len())];
    }
    let mut out = vec![0u8; n];
    for y in 0..height {
        let row = &mask[y * width..(y + 1) * width];
        let up = if y > 0 {
            Some(&mask[(y - 1) * width..y * width])
        } else {
            None
        };
        let orow = &mut out[y * width..(y + 1) * width];
        let mut prev_col = 0u8; // max of (x-1, y) and (x-1, y-1)
        for x in 0..width {
            let cur = match up {
                Some(u) => row[x].max(u[x]),
                None => row[x],
            };
            orow[x] = cur.max(prev_col);
            prev_col = cur;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_right_down() {
        let m = [0, 0, 0, 0, 1, 0, 0, 0, 0];
        let d = dilate_2x2(&m, 3, 3);
        assert_eq!(d, vec![0, 0, 0, 0, 1, 1, 0, 1, 1]);
        assert!(dilate_2x2(&[], 0, 0).is_empty());
        assert_eq!(dilate_2x2(&[1], 1, 1), vec![1]);
        assert_eq!(dilate_2x2(&[1, 0], 5, 5).len(), 2); // short buffer: no panic
    }
}
