//! What a large, highly compressed page costs before the models run: a 6000 x 6000 PNG
//! that is mostly white (tens of KB). Ignored by default (it measures, it asserts little);
//! run it alone, so the process's RSS is its own:
//!
//! ```text
//! cargo test --release --manifest-path crates/worker/Cargo.toml --target-dir target/worker \
//!     -p vram-orch-ocr --lib decode::large -- --ignored --nocapture --test-threads=1
//! ```
//!
//! It times decoding and the default profile's model-free steps on the decoded page (the
//! orientation model's Lanczos resize, det's resize and input tensor), and the RSS before,
//! at the peak, after everything is dropped, and after `malloc_trim(0)`.

use std::time::Instant;

use image::imageops::{self, FilterType};
use image::RgbImage;

use super::decode;
use crate::det::border_colour;
use crate::geometry::resize_bilinear;
use crate::normalize::{det_luts, write_chw};
use crate::sizing::default_det;
use crate::{ImageInput, Limits, Profile};

const SIDE: u32 = 6000;

/// A white page with a few dark "lines of text".
fn page_png(color: png::ColorType) -> Vec<u8> {
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("no {other:?} page"),
    };
    let (w, h) = (SIDE as usize, SIDE as usize);
    let mut data = vec![255u8; w * h * channels];
    for line in 0..40 {
        let y0 = 400 + line * 120;
        for y in y0..y0 + 40 {
            for x in 500..5500 {
                if (x / 30) % 7 != 6 {
                    let p = &mut data[(y * w + x) * channels..][..channels];
                    p[..channels.min(3)].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, SIDE, SIDE);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&data).unwrap();
    writer.finish().unwrap();
    out
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_mb() -> u64 {
    status_kb("VmRSS:") / 1024
}

fn peak_mb() -> u64 {
    status_kb("VmHWM:") / 1024
}

/// Resets the peak RSS (VmHWM) to the current RSS.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[test]
#[ignore = "measurement: run by hand, alone (see the module's doc)"]
fn large_page_costs() {
    for (name, color) in [
        ("gray", png::ColorType::Grayscale),
        ("rgb", png::ColorType::Rgb),
        ("rgba", png::ColorType::Rgba),
    ] {
        let bytes = page_png(color);
        // SAFETY: malloc_trim only returns free memory of the allocator to the system.
        unsafe { libc::malloc_trim(0) };
        let base = rss_mb();
        reset_peak();

        let t = Instant::now();
        let img = decode(
            ImageInput::Encoded(&bytes),
            Profile::Default,
            &Limits::default(),
        )
        .unwrap();
        let decode_ms = ms(t);
        let decode_peak = peak_mb();
        let (w, h) = (img.width() as usize, img.height() as usize);

        // Orientation (orientation::classify): short side to 256, Lanczos3, centre crop.
        let t = Instant::now();
        let short = 256.0 / w.min(h) as f64;
        let (rw, rh) = (
            ((w as f64 * short).round() as u32).max(224),
            ((h as f64 * short).round() as u32).max(224),
        );
        let small = imageops::resize(&img, rw, rh, FilterType::Lanczos3);
        let crop: RgbImage =
            imageops::crop_imm(&small, (rw - 224) / 2, (rh - 224) / 2, 224, 224).to_image();
        let orient_ms = ms(t);
        assert_eq!(crop.dimensions(), (224, 224));
        // A cheaper way to the same size, for comparison: area-averaging thumbnail.
        let t = Instant::now();
        let thumb = imageops::thumbnail(&img, rw, rh);
        let thumb_ms = ms(t);
        assert_eq!(thumb.dimensions(), (rw, rh));
        drop(thumb);

        // Det input (pipeline::detect_at and det::detect) at the 4 MP default budget.
        let t = Instant::now();
        let plan = default_det(w, h, Limits::default().max_det_pixels);
        let fill = border_colour(&img);
        let resized = resize_bilinear(&img, plan.rw as u32, plan.rh as u32);
        let resize_ms = ms(t);
        let t = Instant::now();
        let luts = det_luts([0.5; 3], [0.5; 3]);
        let plane = plan.w * plan.h;
        let mut buf: Vec<f32> = Vec::with_capacity(3 * plane);
        for (c, lut) in luts.iter().enumerate() {
            buf.extend(std::iter::repeat_n(lut[fill[c] as usize], plane));
        }
        write_chw(
            &resized, &luts, &mut buf, plan.w, plan.h, plan.pad, plan.pad,
        );
        let tensor_ms = ms(t);
        let peak = peak_mb();

        drop((img, small, crop, resized, buf));
        let dropped = rss_mb();
        // SAFETY: as above.
        unsafe { libc::malloc_trim(0) };
        let trimmed = rss_mb();
        println!(
            "{name:>4} PNG {w}x{h}, {} KB: decode {decode_ms:.0} ms (peak +{} MB), \
             orientation resize {orient_ms:.0} ms (thumbnail {thumb_ms:.0} ms), det resize {resize_ms:.0} ms to {}x{}, \
             det tensor {tensor_ms:.0} ms; RSS {base} MB before, peak +{} MB, \
             +{} MB after drop, +{} MB after malloc_trim",
            bytes.len() / 1024,
            decode_peak.saturating_sub(base),
            plan.w,
            plan.h,
            peak.saturating_sub(base),
            dropped as i64 - base as i64,
            trimmed as i64 - base as i64,
        );
    }
}

/// The truncation check on a large JPEG (a photo-like 24 MP, several MB): a walk over its
/// bytes, small next to decoding it.
#[test]
#[ignore = "measurement: run by hand, alone (see the module's doc)"]
fn large_jpeg_check_cost() {
    let (w, h) = (6000u32, 4000u32);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let img = RgbImage::from_fn(w, h, |px, py| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 64) as u8;
        image::Rgb([
            (px / 24) as u8 ^ n,
            (py / 16) as u8 ^ n,
            ((px + py) / 40) as u8,
        ])
    });
    let bytes = super::tests::encode("jpeg", img.as_raw(), w, h, image::ExtendedColorType::Rgb8);
    drop(img);
    let t = Instant::now();
    super::check_complete(image::ImageFormat::Jpeg, &bytes).unwrap();
    let check_ms = ms(t);
    let t = Instant::now();
    let out = decode(
        ImageInput::Encoded(&bytes),
        Profile::Default,
        &Limits::default(),
    )
    .unwrap();
    let decode_ms = ms(t);
    assert_eq!(out.dimensions(), (w, h));
    println!(
        "JPEG {w}x{h}, {} KB: truncation check {check_ms:.1} ms, whole decode {decode_ms:.0} ms",
        bytes.len() / 1024
    );
}
