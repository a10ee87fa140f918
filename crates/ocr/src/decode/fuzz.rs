//! Property tests ("fuzzing", bounded for CI) of image decoding: arbitrary bytes, valid PNGs
//! and JPEGs cut anywhere or with bytes flipped, raw arrays of the wrong shape. Every input
//! decodes or fails as `InvalidInput`; none panics (a panic ends the worker).

use image::ExtendedColorType;
use proptest::prelude::*;
use proptest::sample::Index;

use super::decode;
use super::tests::{encode, page};
use crate::{ImageInput, Limits, OcrError, Profile};

/// Cases per property: each property runs in well under a few seconds in release mode.
const CASES: u32 = 4096;

/// `cases`, or `PROPTEST_CASES` when set (a longer run by hand).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Failures are reported, not written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Small limits: a flipped byte in a header can claim a huge image, which must be refused
/// before it is allocated.
fn limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 1 << 20,
        max_det_pixels: 1 << 20,
    }
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![Just(Profile::Default), Just(Profile::Reference)]
}

/// Decodes and checks the outcome: an image within the limits, or `InvalidInput`.
fn check(
    input: ImageInput<'_>,
    profile: Profile,
    limits: &Limits,
) -> Result<Option<(u32, u32)>, TestCaseError> {
    match decode(input, profile, limits) {
        Ok(img) => {
            let (w, h) = img.dimensions();
            prop_assert!(w > 0 && h > 0);
            prop_assert!(w as u64 * h as u64 <= limits.max_pixels);
            prop_assert_eq!(img.as_raw().len(), w as usize * h as usize * 3);
            Ok(Some((w, h)))
        }
        Err(OcrError::InvalidInput(msg)) => {
            prop_assert!(!msg.is_empty());
            Ok(None)
        }
        Err(e) => Err(TestCaseError::fail(format!("not InvalidInput: {e}"))),
    }
}

/// The leading bytes of each format the engine reads, so arbitrary bytes reach the
/// decoders and not only the format check.
const MAGICS: [&[u8]; 7] = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xFF\xD8\xFF",
    b"II*\0",
    b"MM\0*",
    b"BM",
    b"RIFF\0\0\0\0WEBPVP8 ",
];

/// A valid image: PNG (gray, gray+alpha, RGB, RGBA, 16-bit gray) or JPEG (gray, RGB) of a
/// random size; with the colour type and the size it encodes.
fn valid_image() -> impl Strategy<Value = (Vec<u8>, (u32, u32))> {
    (1u32..160, 1u32..160, 0usize..7).prop_map(|(w, h, kind)| {
        let rgb = page(w, h);
        let gray: Vec<u8> = rgb.pixels().map(|p| p.0[1]).collect();
        let alpha = |i: usize| (i * 37 % 256) as u8;
        let bytes = match kind {
            0 => encode("png", &gray, w, h, ExtendedColorType::L8),
            1 => {
                let la: Vec<u8> = gray
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &g)| [g, alpha(i)])
                    .collect();
                encode("png", &la, w, h, ExtendedColorType::La8)
            }
            2 => encode("png", rgb.as_raw(), w, h, ExtendedColorType::Rgb8),
            3 => {
                let rgba: Vec<u8> = rgb
                    .pixels()
                    .enumerate()
                    .flat_map(|(i, p)| [p.0[0], p.0[1], p.0[2], alpha(i)])
                    .collect();
                encode("png", &rgba, w, h, ExtendedColorType::Rgba8)
            }
            4 => {
                let l16: Vec<u8> = gray.iter().flat_map(|&g| [g, g ^ 0x5A]).collect();
                encode("png", &l16, w, h, ExtendedColorType::L16)
            }
            5 => encode("jpeg", &gray, w, h, ExtendedColorType::L8),
            _ => encode("jpeg", rgb.as_raw(), w, h, ExtendedColorType::Rgb8),
        };
        (bytes, (w, h))
    })
}

proptest! {
    #![proptest_config(config(CASES))]

    /// Arbitrary bytes, plain or behind a format's magic bytes.
    #[test]
    fn arbitrary_bytes(
        magic in proptest::sample::select(&MAGICS[..]),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        profile in profile(),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&body);
        check(ImageInput::Encoded(&bytes), profile, &limits())?;
    }

    /// A valid image decodes to its size; cut anywhere it is `InvalidInput` (PNG and JPEG
    /// name the truncation).
    #[test]
    fn valid_images_cut_anywhere(
        (bytes, size) in valid_image(),
        cut in any::<Index>(),
        profile in profile(),
    ) {
        prop_assert_eq!(check(ImageInput::Encoded(&bytes), profile, &limits())?, Some(size));
        let cut = cut.index(bytes.len());
        let result = decode(ImageInput::Encoded(&bytes[..cut]), profile, &limits());
        match result {
            Err(OcrError::InvalidInput(msg)) => prop_assert!(
                cut < 8 || msg.contains("ends early"), "cut at {}: {}", cut, msg
            ),
            Err(e) => prop_assert!(false, "cut at {}: not InvalidInput: {}", cut, e),
            Ok(img) => prop_assert!(false, "cut at {}: decoded {:?}", cut, img.dimensions()),
        }
    }

    /// A valid image with bytes flipped: an image within the limits, or `InvalidInput`.
    #[test]
    fn valid_images_with_flipped_bytes(
        (bytes, _) in valid_image(),
        flips in proptest::collection::vec((any::<Index>(), 1u8..=255), 1..8),
        profile in profile(),
    ) {
        let mut bytes = bytes;
        let n = bytes.len();
        for (at, mask) in flips {
            bytes[at.index(n)] ^= mask;
        }
        check(ImageInput::Encoded(&bytes), profile, &limits())?;
    }

    /// Raw pixels of any shape, channel count and length: decoded exactly when the length
    /// is width x height x channels (1, 3 or 4) within the limits, else `InvalidInput`.
    #[test]
    fn raw_arrays_of_any_shape(
        width in prop_oneof![0u32..40, any::<u32>()],
        height in prop_oneof![0u32..40, any::<u32>()],
        channels in prop_oneof![0u8..6, any::<u8>()],
        len_delta in prop_oneof![Just(0i64), -3i64..4, any::<i32>().prop_map(i64::from)],
        max_pixels in prop_oneof![Just(1u64 << 20), Just(u64::MAX), 0u64..2000],
        profile in profile(),
    ) {
        let limits = Limits { max_pixels, ..limits() };
        let need = width as u128 * height as u128 * channels as u128;
        let len = (need as i128 + len_delta as i128).clamp(0, 1 << 16) as usize;
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let input = ImageInput::Raw { width, height, channels, data: &data };
        let decoded = check(input, profile, &limits)?;
        let valid = matches!(channels, 1 | 3 | 4)
            && width > 0
            && height > 0
            && width as u64 * height as u64 <= max_pixels
            && len as u128 == need;
        prop_assert_eq!(decoded.is_some(), valid);
        if let Some(size) = decoded {
            prop_assert_eq!(size, (width, height));
        }
    }
}

proptest! {
    #![proptest_config(config(CASES / 4))]

    /// Converting the decoder's buffer in place gives what converting a copy gives, for
    /// every pixel layout and any size (the first rows overlap their own output).
    #[test]
    fn in_place_conversion_matches_copy(
        w in 1u32..64,
        h in 1u32..12,
        seed in any::<u64>(),
        profile in profile(),
    ) {
        use super::{graya, gray, rgba, rgba_any_colour, to_bgr, to_bgr_in_place};
        let bytes = |n: usize| -> Vec<u8> {
            let mut x = seed | 1;
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Often 0 or 255, so alpha is often fully transparent or opaque.
                    match x % 5 { 0 => 0, 1 => 255, _ => (x >> 8) as u8 }
                })
                .collect()
        };
        let n = (w * h) as usize;
        let g = bytes(n);
        prop_assert_eq!(to_bgr_in_place(w, h, g.clone(), &gray), to_bgr(w, h, &g, &gray));
        let ga = bytes(2 * n);
        let f = graya(profile);
        prop_assert_eq!(to_bgr_in_place(w, h, ga.clone(), &f), to_bgr(w, h, &ga, &f));
        let px = bytes(4 * n);
        let f = rgba(profile, profile == Profile::Reference && rgba_any_colour(&px));
        prop_assert_eq!(to_bgr_in_place(w, h, px.clone(), &f), to_bgr(w, h, &px, &f));
    }
}
