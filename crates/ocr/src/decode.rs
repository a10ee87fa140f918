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
    let need = w as u128 * h as u128 * channels as u128;
    if data.len() as u128 != need {
        return Err(invalid(format!(
            "raw input is {} bytes but {w}x{h}x{channels} needs {need}",
            data.len()
        )));
    }
    Ok(match channels {
        1 => to_bgr(w, h, data, &gray),
        3 => to_bgr(w, h, data, &rgb),
        _ => {
            let any = profile == Profile::Reference && rgba_any_colour(data);
            to_bgr(w, h, data, &rgba(profile, any))
        }
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
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut il = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    il.max_image_width = Some(side);
    il.max_image_height = Some(side);
    // Room for the largest decoded layout (RGBA f32) of an image within max_pixels.
    il.max_alloc = Some(limits.max_pixels.saturating_mul(16).saturating_add(1 << 24));
    reader.limits(il);
    let mut decoder = match reader.into_decoder() {
        Ok(decoder) => decoder,
        Err(e) => {
            // A header cut short reads better as "ends early" than as the decoder's complaint.
            check_complete(format, bytes)?;
            return Err(decode_error(format, e));
        }
    };
    let (w, h) = decoder.dimensions();
    check_dims(w as u64, h as u64, limits)?;
    // After the size check: a bomb's header alone is refused for its size, not as truncated.
    check_complete(format, bytes)?;
    if profile == Profile::Reference && format == ImageFormat::Png {
        // Pillow hands palette PNGs over as their indices; the reference OCRs those.
        if let Some(img) = png_palette_indices(bytes, limits)? {
            return Ok(img);
        }
    }
    let orientation = if profile == Profile::Default {
        decoder.orientation().ok()
    } else {
        None // the reference ignores EXIF orientation
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(format, e))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    // 16-bit and float images: reduced to 8 bits per channel first (and freed).
    let img = match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => img,
        other => match (other.color().has_color(), other.color().has_alpha()) {
            (false, false) => DynamicImage::ImageLuma8(other.to_luma8()),
            (false, true) => DynamicImage::ImageLumaA8(other.to_luma_alpha8()),
            (true, true) => DynamicImage::ImageRgba8(other.to_rgba8()),
            (true, false) => DynamicImage::ImageRgb8(other.to_rgb8()),
        },
    };
    let (w, h) = (img.width(), img.height());
    // In the decoder's buffer: no second full-size image.
    Ok(match img {
        DynamicImage::ImageLuma8(g) => to_bgr_in_place(w, h, g.into_raw(), &gray),
        DynamicImage::ImageLumaA8(ga) => to_bgr_in_place(w, h, ga.into_raw(), &graya(profile)),
        DynamicImage::ImageRgba8(px) => {
            let any = profile == Profile::Reference && rgba_any_colour(px.as_raw());
            to_bgr_in_place(w, h, px.into_raw(), &rgba(profile, any))
        }
        other => {
            let mut v = other.into_rgb8().into_raw();
            for p in v.chunks_exact_mut(3) {
                p.swap(0, 2);
            }
            from_vec(w, h, v)
        }
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
    Ok(Some(to_bgr_in_place(w, h, idx, &gray)))
}

fn from_vec(w: u32, h: u32, v: Vec<u8>) -> RgbImage {
    RgbImage::from_raw(w, h, v).expect("buffer sized for w*h*3")
}

fn gray(p: &[u8; 1]) -> [u8; 3] {
    [p[0]; 3]
}

fn rgb(p: &[u8; 3]) -> [u8; 3] {
    [p[2], p[1], p[0]]
}

/// Alpha compositing on white, rounded.
#[inline]
fn on_white(c: u8, a: u8) -> u8 {
    ((c as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8
}

fn graya(profile: Profile) -> impl Fn(&[u8; 2]) -> [u8; 3] {
    move |&[g, a]| {
        let o = match profile {
            // Reference: keep gray where alpha != 0, then add (255 - alpha), saturating.
            Profile::Reference => (if a != 0 { g } else { 0 }).saturating_add(255 - a),
            Profile::Default => on_white(g, a),
        };
        [o; 3]
    }
}

/// RGBA to BGR. The reference masks the colour by alpha; if any colour survives the mask,
/// it inverts the whole image (its defect), else it adds the inverse alpha (white where
/// transparent): whether any survives is `rgba_any_colour` of the whole image.
fn rgba(profile: Profile, any_colour: bool) -> impl Fn(&[u8; 4]) -> [u8; 3] {
    move |&[r, g, b, a]| match profile {
        Profile::Default => [on_white(b, a), on_white(g, a), on_white(r, a)],
        Profile::Reference if a == 0 => [255; 3],
        Profile::Reference if any_colour => [!b, !g, !r],
        Profile::Reference => [255 - a; 3],
    }
}

fn rgba_any_colour(rgba: &[u8]) -> bool {
    rgba.chunks_exact(4)
        .any(|p| p[3] != 0 && (p[0] | p[1] | p[2]) != 0)
}

/// Pixels of `N` bytes (gray, gray + alpha, RGB or RGBA) to BGR, by `f`.
fn convert_row<const N: usize>(src: &[u8], dst: &mut [u8], f: &impl Fn(&[u8; N]) -> [u8; 3]) {
    for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(N)) {
        d.copy_from_slice(&f(s.try_into().expect("N bytes")));
    }
}

/// Borrowed pixels (`N` bytes each) to a new BGR image.
fn to_bgr<const N: usize>(
    w: u32,
    h: u32,
    src: &[u8],
    f: &impl Fn(&[u8; N]) -> [u8; 3],
) -> RgbImage {
    let mut v = vec![0u8; w as usize * h as usize * 3];
    convert_row(src, &mut v, f);
    from_vec(w, h, v)
}

/// Decoded pixels (`N` bytes each) to BGR in their own buffer: a 36 MP page needs no second
/// full-size image (for a gray page, 108 MB instead of 36 + 108 MB). Gray buffers grow and
/// are converted from the last row back, RGBA ones from the first row on, so no row's
/// output overwrites a row not yet read; the first rows, whose output overlaps their own
/// input, are read from a copy.
fn to_bgr_in_place<const N: usize>(
    w: u32,
    h: u32,
    mut v: Vec<u8>,
    f: &impl Fn(&[u8; N]) -> [u8; 3],
) -> RgbImage {
    debug_assert!(N != 3, "RGB is swapped in place");
    let (src_row, dst_row, rows) = (w as usize * N, w as usize * 3, h as usize);
    v.truncate(rows * src_row);
    let row = |r: usize| r * src_row..(r + 1) * src_row;
    let out = |r: usize| r * dst_row..(r + 1) * dst_row;
    if N < 3 {
        v.resize(rows * dst_row, 0);
        for r in (0..rows).rev() {
            if row(r).end <= out(r).start {
                let (head, tail) = v.split_at_mut(out(r).start);
                convert_row(&head[row(r)], &mut tail[..dst_row], f);
            } else {
                let src = v[row(r)].to_vec();
                convert_row(&src, &mut v[out(r)], f);
            }
        }
    } else {
        for r in 0..rows {
            if out(r).end <= row(r).start {
                let (head, tail) = v.split_at_mut(row(r).start);
                convert_row(&tail[..src_row], &mut head[out(r)], f);
            } else {
                let src = v[row(r)].to_vec();
                convert_row(&src, &mut v[out(r)], f);
            }
        }
        v.truncate(rows * dst_row);
        v.shrink_to_fit();
    }
    from_vec(w, h, v)
}

/// `Err` naming the truncation when a JPEG or PNG stops before its end-of-image marker.
///
/// The decoders do not say so: zune-jpeg fills the rows it could not read with grey and
/// reports success (the engine then read garbage text), and the PNG decoder's error is a
/// bare "unexpected end of file". Both formats end with a marker that cannot occur earlier
/// in the stream's own structure (JPEG EOI, PNG IEND), so walking that structure (segment
/// and chunk lengths, no pixel decoding) tells a complete image from a cut one; what follows
/// the marker (padding, a camera's trailer) is ignored.
fn check_complete(format: ImageFormat, bytes: &[u8]) -> Result<(), OcrError> {
    let (cut, name) = match format {
        ImageFormat::Jpeg => (jpeg_ends_early(bytes), "JPEG"),
        ImageFormat::Png => (png_ends_early(bytes), "PNG"),
        _ => return Ok(()),
    };
    if cut {
        return Err(invalid(format!(
            "the image data ends early ({} bytes, no end-of-image marker): truncated {name}?",
            bytes.len()
        )));
    }
    Ok(())
}

/// Whether the JPEG's marker structure runs out before its EOI (FF D9): segments are
/// skipped by their length, and after each SOS the entropy-coded data up to the next marker
/// (a 0xFF followed by anything but 0x00, which makes it a data byte, or RST0-7).
/// Thumbnails and comments inside segments are skipped with them. A structure that is
/// corrupt rather than short (a segment length below 2) is left to the decoder.
fn jpeg_ends_early(b: &[u8]) -> bool {
    if b.len() < 2 {
        return true;
    }
    if b[..2] != [0xFF, 0xD8] {
        return false; // not a JPEG: not ours to judge
    }
    let mut i = 2;
    loop {
        // The next marker; bytes before it that are not 0xFF are garbage decoders skip.
        let Some(k) = b[i..].iter().position(|&x| x == 0xFF) else {
            return true;
        };
        i += k;
        while i < b.len() && b[i] == 0xFF {
            i += 1; // fill bytes
        }
        let Some(&marker) = b.get(i) else {
            return true;
        };
        i += 1;
        match marker {
            0xD9 => return false, // EOI
            // Markers without a length (a stray stuffed byte, TEM, RSTn, SOI).
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = b.get(i..i + 2) else {
            return true;
        };
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        if len < 2 {
            return false;
        }
        i += len;
        if i > b.len() {
            return true;
        }
        if marker == 0xDA {
            // Entropy-coded data: up to a 0xFF that starts a marker.
            loop {
                let Some(k) = b[i..].iter().position(|&x| x == 0xFF) else {
                    return true;
                };
                i += k;
                match b.get(i + 1) {
                    None => return true,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Whether the PNG's chunks run out before a whole IEND chunk (length, type, CRC). A chunk
/// length beyond 2^31 - 1 (corrupt, not short) is left to the decoder.
fn png_ends_early(b: &[u8]) -> bool {
    const SIGNATURE: usize = 8;
    if b.len() < SIGNATURE {
        return true;
    }
    let mut i = SIGNATURE;
    loop {
        let Some(head) = b.get(i..i + 8) else {
            return true;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len > i32::MAX as u32 {
            return false;
        }
        let end = i + 12 + len as usize; // length, type, data, CRC
        if end > b.len() {
            return true;
        }
        if &head[4..8] == b"IEND" {
            return false;
        }
        i = end;
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod large;
#[cfg(test)]
mod tests;
