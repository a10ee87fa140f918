//! Input bytes → a 3-channel image in **BGR** order (the models' order), checked against the
//! task's limits before anything large is allocated.
//!
//! The pixel buffer is an `image::RgbImage` whose channels hold B, G, R: the geometry code
//! is channel-agnostic, and this saves a conversion.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::{ImageInput, Limits, OcrError, Profile};

fn invalid(msg: impl Into<String>) -> OcrError {
    OcrError::InvalidInput(msg.into())
}

fn check_dims(w: u64, h: u64, limits: &Limits) -> Result<(), OcrError> {
    if w == 0 || h == 0 {
        return Err(invalid(format!("image has no pixels ({w}x{h})")));
    }
    if w.saturating_mul(h) > limits.max_pixels {
        return Err(invalid(format!(
            "image is {w}x{h} = {} pixels, more than the limit of {} (max_pixels)",
            w.saturating_mul(h),
            limits.max_pixels
        )));
    }
    Ok(())
}

pub(crate) fn decode(
    input: ImageInput<'_>,
    profile: Profile,
    limits: &Limits,
) -> Result<RgbImage, OcrError> {
    match input {
        ImageInput::Encoded(bytes) => decode_encoded(bytes, profile, limits),
        ImageInput::Raw {
            width,
            height,
            channels,
            data,
        } => decode_raw(width, height, channels, data, profile, limits),
    }
}

fn decode_raw(
    w: u32,
    h: u32,
    channels: u8,
    data: &[u8],
    profile: Profile,
    limits: &Limits,
) -> Result<RgbImage, OcrError> {
    if data.len() > limits.max_input_bytes {
        return Err(invalid(format!(
            "raw input is {} bytes, more than the limit of {} (max_input_bytes)",
            data.len(),
            limits.max_input_bytes
        )));
    }
    check_dims(w as u64, h as u64, limits)?;
    if !matches!(channels, 1 | 3 | 4) {
        return Err(invalid(format!(
            "raw input has {channels} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)"
        )));
    }
    let need = w as u64 * h as u64 * channels as u64;
    if data.len() as u64 != need {
        return Err(invalid(format!(
            "raw input is {} bytes but {w}x{h}x{channels} needs {need}",
            data.len()
        )));
    }
    Ok(match channels {
        1 => gray_to_bgr(w, h, data),
        3 => rgb_to_bgr(w, h, data),
        _ => rgba_to_bgr(w, h, data, profile),
    })
}

fn decode_encoded(bytes: &[u8], profile: Profile, limits: &Limits) -> Result<RgbImage, OcrError> {
    if bytes.is_empty() {
        return Err(invalid("empty input (0 bytes)"));
    }
    if bytes.len() > limits.max_input_bytes {
        return Err(invalid(format!(
            "input is {} bytes, more than the limit of {} (max_input_bytes)",
            bytes.len(),
            limits.max_input_bytes
        )));
    }
    let format = image::guess_format(bytes).map_err(|_| {
        invalid("unrecognised image data (expected PNG, JPEG, TIFF, BMP or WebP, or raw pixels)")
    })?;
    if !matches!(
        format,
        ImageFormat::Png
            | ImageFormat::Jpeg
            | ImageFormat::Tiff
            | ImageFormat::Bmp
            | ImageFormat::WebP
    ) {
        return Err(invalid(format!(
            "unsupported image format {format:?} (expected PNG, JPEG, TIFF, BMP or WebP)"
        )));
    }
    if profile == Profile::Reference && format == ImageFormat::Png {
        // Pillow hands palette PNGs over as their indices; the reference OCRs those.
        if let Some(img) = png_palette_indices(bytes, limits)? {
            return Ok(img);
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut il = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    il.max_image_width = Some(side);
    il.max_image_height = Some(side);
    // Room for the largest decoded layout (RGBA f32) of an image within max_pixels.
    il.max_alloc = Some(limits.max_pixels.saturating_mul(16).saturating_add(1 << 24));
    reader.limits(il);
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(format, e))?;
    let (w, h) = decoder.dimensions();
    check_dims(w as u64, h as u64, limits)?;
    let orientation = if profile == Profile::Default {
        decoder.orientation().ok()
    } else {
        None // the reference ignores EXIF orientation
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(format, e))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let (w, h) = (img.width(), img.height());
    Ok(match img {
        DynamicImage::ImageLuma8(g) => gray_to_bgr(w, h, g.as_raw()),
        DynamicImage::ImageLumaA8(ga) => graya_to_bgr(w, h, ga.as_raw(), profile),
        DynamicImage::ImageRgb8(rgb) => {
            // In place: no second full-size buffer.
            let mut v = rgb.into_raw();
            for p in v.chunks_exact_mut(3) {
                p.swap(0, 2);
            }
            from_vec(w, h, v)
        }
        DynamicImage::ImageRgba8(rgba) => rgba_to_bgr(w, h, rgba.as_raw(), profile),
        // 16-bit and float images: reduced to 8 bits per channel first.
        DynamicImage::ImageLuma16(_) => gray_to_bgr(w, h, img.to_luma8().as_raw()),
        DynamicImage::ImageLumaA16(_) => graya_to_bgr(w, h, img.to_luma_alpha8().as_raw(), profile),
        other if other.color().has_alpha() => rgba_to_bgr(w, h, other.to_rgba8().as_raw(), profile),
        other => rgb_to_bgr(w, h, other.to_rgb8().as_raw()),
    })
}

fn decode_error(format: ImageFormat, e: image::ImageError) -> OcrError {
    match e {
        image::ImageError::Limits(l) => {
            invalid(format!("{format:?} image exceeds the decode limits: {l}"))
        }
        image::ImageError::Unsupported(u) => invalid(format!("unsupported {format:?} image: {u}")),
        other => invalid(format!(
            "cannot decode {format:?} image (corrupt or truncated?): {other}"
        )),
    }
}

/// Reference only: a palette PNG as Pillow's `np.array` sees it (indices, gray).
/// `None` when the PNG has no palette.
fn png_palette_indices(bytes: &[u8], limits: &Limits) -> Result<Option<RgbImage>, OcrError> {
    let bytes_limit = limits.max_pixels.saturating_mul(8).saturating_add(1 << 24);
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(bytes_limit).unwrap_or(usize::MAX),
        },
    );
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut reader = match dec.read_info() {
        Ok(r) => r,
        // Let the general path report the error.
        Err(_) => return Ok(None),
    };
    let (w, h, ct, depth) = {
        let info = reader.info();
        (
            info.width,
            info.height,
            info.color_type,
            info.bit_depth as u8,
        )
    };
    if ct != png::ColorType::Indexed || !matches!(depth, 1 | 2 | 4 | 8) {
        return Ok(None);
    }
    check_dims(w as u64, h as u64, limits)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| invalid("PNG too large"))?;
    let mut buf = vec![0u8; size];
    let out = reader.next_frame(&mut buf).map_err(|e| {
        invalid(format!(
            "cannot decode Png image (corrupt or truncated?): {e}"
        ))
    })?;
    let stride = out.line_size;
    let mut idx = Vec::with_capacity(w as usize * h as usize);
    let per_byte = 8 / depth as usize;
    let mask = ((1u16 << depth) - 1) as u8;
    for y in 0..h as usize {
        let row = &buf[y * stride..(y + 1) * stride];
        for x in 0..w as usize {
            let v = if depth == 8 {
                row[x]
            } else {
                let byte = row[x / per_byte];
                let shift = 8 - depth as usize * (x % per_byte + 1);
                (byte >> shift) & mask
            };
            idx.push(v);
        }
    }
    Ok(Some(gray_to_bgr(w, h, &idx)))
}

fn from_vec(w: u32, h: u32, v: Vec<u8>) -> RgbImage {
    RgbImage::from_raw(w, h, v).expect("buffer sized for w*h*3")
}

fn gray_to_bgr(w: u32, h: u32, g: &[u8]) -> RgbImage {
    let mut v = Vec::with_capacity(g.len() * 3);
    for &p in g {
        v.extend_from_slice(&[p, p, p]);
    }
    from_vec(w, h, v)
}

fn rgb_to_bgr(w: u32, h: u32, rgb: &[u8]) -> RgbImage {
    let mut v = Vec::with_capacity(rgb.len());
    for p in rgb.chunks_exact(3) {
        v.extend_from_slice(&[p[2], p[1], p[0]]);
    }
    from_vec(w, h, v)
}

/// Alpha compositing on white, rounded.
#[inline]
fn on_white(c: u8, a: u8) -> u8 {
    ((c as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8
}

fn graya_to_bgr(w: u32, h: u32, ga: &[u8], profile: Profile) -> RgbImage {
    let mut v = Vec::with_capacity(ga.len() / 2 * 3);
    for p in ga.chunks_exact(2) {
        let (g, a) = (p[0], p[1]);
        let o = match profile {
            // Reference: keep gray where alpha != 0, then add (255 - alpha), saturating.
            Profile::Reference => (if a != 0 { g } else { 0 }).saturating_add(255 - a),
            Profile::Default => on_white(g, a),
        };
        v.extend_from_slice(&[o, o, o]);
    }
    from_vec(w, h, v)
}

fn rgba_to_bgr(w: u32, h: u32, rgba: &[u8], profile: Profile) -> RgbImage {
    let mut v = Vec::with_capacity(rgba.len() / 4 * 3);
    match profile {
        Profile::Default => {
            for p in rgba.chunks_exact(4) {
                let a = p[3];
                v.extend_from_slice(&[on_white(p[2], a), on_white(p[1], a), on_white(p[0], a)]);
            }
        }
        Profile::Reference => {
            // Masked BGR; if any colour survives the mask, the whole image is inverted
            // (the reference's defect), else the inverse alpha is added.
            let mut any = false;
            for p in rgba.chunks_exact(4) {
                let a = p[3];
                let (b, g, r) = if a != 0 {
                    (p[2], p[1], p[0])
                } else {
                    (0, 0, 0)
                };
                any |= (b | g | r) != 0;
                v.extend_from_slice(&[b, g, r]);
            }
            if any {
                for x in v.iter_mut() {
                    *x = !*x;
                }
            } else {
                for (o, p) in v.chunks_exact_mut(3).zip(rgba.chunks_exact(4)) {
                    let na = 255 - p[3];
                    for c in o {
                        *c = c.saturating_add(na);
                    }
                }
            }
        }
    }
    from_vec(w, h, v)
}
