//! Lossless quarter/half turns (np.rot90 and cv2.rotate equivalents).

use image::RgbImage;

/// Rotates by 180 degrees (cv2.ROTATE_180, i.e. `img[::-1, ::-1]`).
pub fn rotate180(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let src = img.as_raw();
    let mut out = Vec::with_capacity(src.len());
    for px in src.chunks_exact(3).rev() {
        out.extend_from_slice(px);
    }
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// Rotates by 90 degrees counter-clockwise, as `np.rot90(img)` does (k=1):
/// output row r, column c = input row c, column (W-1-r).
pub fn rotate90_ccw(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let mut out = vec![0u8; w * h * 3];
    // output is h wide and w high
    for r in 0..w {
        let sx = w - 1 - r;
        let orow = &mut out[r * h * 3..(r + 1) * h * 3];
        for (c, o) in orow.chunks_exact_mut(3).enumerate() {
            let i = (c * w + sx) * 3;
            o.copy_from_slice(&src[i..i + 3]);
        }
    }
    RgbImage::from_raw(h as u32, w as u32, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations() {
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let r = rotate90_ccw(&img);
        assert_eq!(r.dimensions(), (2, 3));
        // np.rot90: top-left of result is the top-right of the input
        assert_eq!(r.get_pixel(0, 0).0, [2, 0, 0]);
        assert_eq!(r.get_pixel(1, 0).0, [2, 1, 0]);
        assert_eq!(r.get_pixel(0, 2).0, [0, 0, 0]);
        let r = rotate180(&img);
        assert_eq!(r.get_pixel(0, 0).0, [2, 1, 0]);
        let e = RgbImage::new(0, 5);
        assert_eq!(rotate90_ccw(&e).dimensions(), (5, 0));
        assert_eq!(rotate180(&e).dimensions(), (0, 5));
    }
}
