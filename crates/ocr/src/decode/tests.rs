//! Decoding of complete and truncated images (no models needed).

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::decode;
use crate::{ImageInput, Limits, OcrError, Profile};

const PROFILES: [Profile; 2] = [Profile::Default, Profile::Reference];

/// A small "page": light background, dark bars (lines of text), a colour gradient.
pub(super) fn page(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        if (y / 6) % 3 == 1 && (x / 9) % 5 != 4 && x > 8 && x + 8 < w {
            image::Rgb([20, 20, 30])
        } else {
            image::Rgb([
                230 + (x * 25 / w.max(1)) as u8,
                235,
                225 + (y * 30 / h.max(1)) as u8,
            ])
        }
    })
}

pub(super) fn encode(
    format: &str,
    data: &[u8],
    w: u32,
    h: u32,
    color: ExtendedColorType,
) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        "jpeg" => JpegEncoder::new_with_quality(&mut out, 85)
            .write_image(data, w, h, color)
            .unwrap(),
        "png" => PngEncoder::new(&mut out)
            .write_image(data, w, h, color)
            .unwrap(),
        other => panic!("no encoder for {other}"),
    }
    out
}

fn jpeg() -> Vec<u8> {
    let img = page(320, 240);
    encode("jpeg", img.as_raw(), 320, 240, ExtendedColorType::Rgb8)
}

fn png() -> Vec<u8> {
    let img = page(320, 240);
    encode("png", img.as_raw(), 320, 240, ExtendedColorType::Rgb8)
}

/// A 4-colour palette PNG (the reference profile decodes those on a path of its own).
fn palette_png() -> Vec<u8> {
    let (w, h) = (320u32, 240u32);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(vec![255, 255, 255, 0, 0, 0, 200, 30, 30, 30, 30, 200]);
    let mut writer = enc.write_header().unwrap();
    let idx: Vec<u8> = (0..w * h).map(|i| ((i / 7 + i / w) % 4) as u8).collect();
    writer.write_image_data(&idx).unwrap();
    writer.finish().unwrap();
    out
}

fn run(bytes: &[u8], profile: Profile) -> Result<RgbImage, OcrError> {
    decode(ImageInput::Encoded(bytes), profile, &Limits::default())
}

fn assert_ends_early(result: Result<RgbImage, OcrError>, what: &str, format: &str) {
    match result {
        Err(OcrError::InvalidInput(msg)) => {
            assert!(msg.contains("ends early"), "{what}: {msg}");
            assert!(
                msg.contains(&format!("truncated {format}?")),
                "{what}: {msg}"
            );
        }
        Err(e) => panic!("{what}: not InvalidInput: {e}"),
        Ok(img) => panic!(
            "{what}: decoded into a {}x{} image",
            img.width(),
            img.height()
        ),
    }
}

#[test]
fn complete_images_decode() {
    for profile in PROFILES {
        for (name, bytes) in [("jpeg", jpeg()), ("png", png()), ("palette", palette_png())] {
            let img = run(&bytes, profile).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(img.dimensions(), (320, 240), "{name}");
        }
    }
}

/// The decoder pads a JPEG that ends early with grey and reports success; the engine then
/// read garbage. Cut at 30%, 60% and 99%, and just before its end-of-image marker.
#[test]
fn truncated_jpeg_is_invalid_input() {
    let bytes = jpeg();
    let n = bytes.len();
    for cut in [n * 30 / 100, n * 60 / 100, n * 99 / 100, n - 2, n - 1] {
        for profile in PROFILES {
            assert_ends_early(
                run(&bytes[..cut], profile),
                &format!("JPEG cut at {cut} of {n} ({profile:?})"),
                "JPEG",
            );
        }
    }
}

#[test]
fn truncated_png_is_invalid_input() {
    for (name, bytes) in [("png", png()), ("palette png", palette_png())] {
        let n = bytes.len();
        for cut in [n * 30 / 100, n * 60 / 100, n * 99 / 100, n - 12, n - 1] {
            for profile in PROFILES {
                assert_ends_early(
                    run(&bytes[..cut], profile),
                    &format!("{name} cut at {cut} of {n} ({profile:?})"),
                    "PNG",
                );
            }
        }
    }
}

/// Cut inside the headers, before any pixel data: also a truncation.
#[test]
fn jpeg_and_png_cut_in_their_headers() {
    let (j, p) = (jpeg(), png());
    assert_ends_early(run(&j[..40], Profile::Default), "JPEG cut at 40", "JPEG");
    assert_ends_early(run(&p[..20], Profile::Default), "PNG cut at 20", "PNG");
    assert_ends_early(run(&p[..20], Profile::Reference), "PNG cut at 20", "PNG");
}

/// What follows the end marker (zero padding of a fixed-size buffer, a camera's extra
/// data) is not a truncation.
#[test]
fn bytes_after_the_end_marker_are_fine() {
    for (name, bytes) in [("jpeg", jpeg()), ("png", png()), ("palette", palette_png())] {
        for tail in [&[0u8; 4096][..], b"\xFF\xD8garbage\x89PNG"] {
            let mut padded = bytes.clone();
            padded.extend_from_slice(tail);
            for profile in PROFILES {
                let img = run(&padded, profile).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(img.dimensions(), (320, 240), "{name}");
            }
        }
    }
}

/// End-of-image bytes inside a segment (a comment here, an EXIF thumbnail in photos) are
/// not the image's end: the JPEG is read segment by segment.
#[test]
fn end_marker_inside_a_segment_is_not_the_end() {
    let bytes = jpeg();
    let comment = [0xFF, 0xFE, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9];
    let mut with = bytes[..2].to_vec();
    with.extend_from_slice(&comment);
    with.extend_from_slice(&bytes[2..]);
    assert_eq!(
        run(&with, Profile::Default).unwrap().dimensions(),
        (320, 240)
    );
    let cut = with.len() / 2;
    assert_ends_early(
        run(&with[..cut], Profile::Default),
        "JPEG with comment",
        "JPEG",
    );
}

#[test]
fn jpeg_scan_is_read_to_its_marker() {
    // Only the structure is checked: SOI, a segment, SOS, entropy data with a stuffed
    // 0xFF 0x00 and a restart marker, then EOI (or not).
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 1, 2];
    b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 9]);
    b.extend_from_slice(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4, 0xFF, 0xFF, 0xD9]);
    assert!(!super::jpeg_ends_early(&b));
    for cut in 0..b.len() {
        assert!(super::jpeg_ends_early(&b[..cut]), "cut at {cut}");
    }
    // A second scan after tables, as in progressive JPEGs.
    let mut p = b[..b.len() - 3].to_vec();
    p.extend_from_slice(&[
        0xFF, 0xC4, 0x00, 0x03, 0xD9, 0xFF, 0xDA, 0x00, 0x02, 7, 0xFF, 0xD9,
    ]);
    assert!(!super::jpeg_ends_early(&p));
    assert!(super::jpeg_ends_early(&p[..p.len() - 2]));
}
