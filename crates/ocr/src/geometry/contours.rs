//! `cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)`.
//!
//! Suzuki-Abe border following as OpenCV implements it: the mask is padded with one
//! zero pixel on each side, scanned row by row; an outer border starts at a 0 -> 1
//! transition, a hole border at a 1 -> 0 transition whose left pixel was not already
//! visited as a right edge. Visited border pixels are tagged 2, or -126 when the
//! pixel to their right was examined and found empty (which stops the hole test from
//! firing again there). CHAIN_APPROX_SIMPLE keeps only the points where the chain
//! direction changes. OpenCV returns the list last-found first.

/// Neighbour offsets (dx, dy) for chain codes 0..7: right, up-right, up, up-left, left,
/// down-left, down, down-right (y grows downwards).
const CODE: [(i32, i32); 8] = [
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// Tag for a border pixel whose right neighbour is background (`2 | -128` as i8).
const RIGHT_EDGE: i8 = -126;

/// Contours of the non-zero pixels of a `width` x `height` mask (row-major), as
/// OpenCV's RETR_LIST + CHAIN_APPROX_SIMPLE returns them: outer borders and hole
/// borders, each starting at its first pixel in raster order, in the same point order,
/// and the contour list ordered bottom-most (last found) first.
pub fn find_contours(mask: &[u8], width: usize, height: usize) -> Vec<Vec<[i32; 2]>> {
    if width == 0 || height == 0 || mask.len() < width.saturating_mul(height) {
        return Vec::new();
    }
    let w = width + 2;
    let h = height + 2;
    let mut img = vec![0i8; w * h];
    for y in 0..height {
        let src = &mask[y * width..(y + 1) * width];
        let dst = &mut img[(y + 1) * w + 1..(y + 1) * w + 1 + width];
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = (s != 0) as i8;
        }
    }
    let step = w as isize;
    let deltas: [isize; 8] = [1, 1 - step, -step, -step - 1, -1, step - 1, step, step + 1];
    let mut found = Vec::new();
    for y in 1..h - 1 {
        let row = y * w;
        let mut prev: i8 = 0;
        for x in 1..w {
            let p = img[row + x];
            if p == prev {
                continue;
            }
            let outer = prev == 0 && p == 1;
            let hole = !outer && p == 0 && prev >= 1;
            if outer || hole {
                let sx = if hole { x - 1 } else { x };
                found.push(follow_border(&mut img, &deltas, row + sx, sx, y, hole));
            }
            prev = img[row + x];
        }
    }
    found.reverse();
    found
}

/// Traces one border starting at pixel index `i0` (= (x0, y0) in the padded image),
/// tagging the visited pixels, and returns its CHAIN_APPROX_SIMPLE points in mask
/// coordinates.
fn follow_border(
    img: &mut [i8],
    deltas: &[isize; 8],
    i0: usize,
    x0: usize,
    y0: usize,
    hole: bool,
) -> Vec<[i32; 2]> {
    let at = |i: usize, s: usize| (i as isize + deltas[s & 7]) as usize;
    let mut pt = [x0 as i32 - 1, y0 as i32 - 1];
    let mut out = Vec::new();
    // Find the first neighbour clockwise, starting next to the background pixel that
    // triggered the border (left of an outer border start, right of a hole start).
    let s_end = if hole { 0usize } else { 4usize };
    let mut s = s_end;
    let mut i1;
    loop {
        s = (s + 7) & 7;
        i1 = at(i0, s);
        if img[i1] != 0 || s == s_end {
            break;
        }
    }
    if s == s_end && img[i1] == 0 {
        img[i0] = RIGHT_EDGE; // isolated pixel
        out.push(pt);
        return out;
    }
    let mut i3 = i0;
    let mut prev_s = s ^ 4;
    loop {
        // Search counter-clockwise from the direction after the one we came from.
        let s_end = s;
        let mut k = s;
        let mut i4;
        loop {
            k += 1;
            i4 = at(i3, k);
            if img[i4] != 0 || k >= 15 {
                break;
            }
        }
        s = k & 7;
        // Wrapped past direction 0: the right neighbour is background.
        if s >= 1 && s - 1 < s_end {
            img[i3] = RIGHT_EDGE;
        } else if img[i3] == 1 {
            img[i3] = 2;
        }
        if s != prev_s {
            out.push(pt);
            prev_s = s;
        }
        pt[0] += CODE[s].0;
        pt[1] += CODE[s].1;
        if i4 == i0 && i3 == i1 {
            break;
        }
        i3 = i4;
        s = (s + 4) & 7;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_cases() {
        assert!(find_contours(&[], 0, 0).is_empty());
        assert!(find_contours(&[0; 12], 4, 3).is_empty());
        assert!(find_contours(&[1, 1], 4, 3).is_empty()); // short buffer
        assert_eq!(find_contours(&[1], 1, 1), vec![vec![[0, 0]]]);
        let full = find_contours(&[255; 12], 4, 3);
        assert_eq!(full, vec![vec![[0, 0], [0, 2], [3, 2], [3, 0]]]);
        // ring: outer + hole
        let ring = [1, 1, 1, 1, 0, 1, 1, 1, 1];
        let c = find_contours(&ring, 3, 3);
        assert_eq!(c.len(), 2);
    }
}
