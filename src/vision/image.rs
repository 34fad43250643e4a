//! RGB frames and decoding: JPEG through libjpeg-turbo (the decoder MediaPipe's references used), PNG and
//! WebP through the `image` crate, and a marker-aware MJPEG splitter.

use std::path::Path;

use crate::vision::error::DecodeError;

/// Largest image accepted by the decoders, in pixels (a 8K frame is 33 Mpx). Bigger inputs are rejected from
/// their header, before any pixel memory is allocated.
pub const MAX_DECODE_PIXELS: u64 = 40_000_000;

/// An 8-bit RGB image, rows packed without padding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, R G B interleaved, row-major.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps an existing buffer; `None` when the buffer length does not match the size.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (width > 0 && height > 0 && data.len() == width as usize * height as usize * 3).then_some(
            Self {
                width,
                height,
                data,
            },
        )
    }

    /// True when the buffer holds exactly `width × height` RGB pixels.
    pub fn is_valid(&self) -> bool {
        self.width > 0
            && self.height > 0
            && self.data.len() == self.width as usize * self.height as usize * 3
    }
}

/// Reads and decodes an image file.
pub fn rgb_image_from_path(path: &Path) -> Result<RgbImage, DecodeError> {
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Io {
        path: path.to_owned(),
        source,
    })?;
    rgb_image_from_bytes(&bytes)
}

/// True when the bytes start like a JPEG (SOI marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
}

/// Decodes JPEG (libjpeg-turbo, islow IDCT and fancy upsampling, as OpenCV's `imdecode`), PNG or WebP
/// into RGB. Greyscale becomes R = G = B; alpha is dropped; ICC profiles are ignored (as OpenCV does).
pub fn rgb_image_from_bytes(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    if is_jpeg(bytes) {
        return rgb_image_from_jpeg(bytes);
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnknownFormat)?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::WebP) {
        return Err(DecodeError::UnknownFormat);
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_PIXELS * 4);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            DecodeError::Image(format!("image exceeds the {MAX_DECODE_PIXELS}-pixel limit"))
        }
        other => DecodeError::Image(other.to_string()),
    })?;
    let rgb = decoded.into_rgb8();
    let (width, height) = rgb.dimensions();
    check_size(width, height)?;
    Ok(RgbImage {
        width,
        height,
        data: rgb.into_raw(),
    })
}

fn check_size(width: u32, height: u32) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Image("image has no pixels".into()));
    }
    if u64::from(width) * u64::from(height) > MAX_DECODE_PIXELS {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_pixels: MAX_DECODE_PIXELS,
        });
    }
    Ok(())
}

/// Reads only the size of a JPEG from its header (cheap; used to reject decompression bombs).
pub fn jpeg_dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    let header = turbojpeg::read_header(bytes).map_err(|e| DecodeError::Jpeg(e.to_string()))?;
    let width =
        u32::try_from(header.width).map_err(|_| DecodeError::Jpeg("width out of range".into()))?;
    let height = u32::try_from(header.height)
        .map_err(|_| DecodeError::Jpeg("height out of range".into()))?;
    Ok((width, height))
}

/// Decodes a JPEG with libjpeg-turbo's defaults into RGB (a decompressor and a buffer of its own; a
/// stream of frames should use a [`FrameDecoder`]).
pub fn rgb_image_from_jpeg(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let mut decompressor =
        turbojpeg::Decompressor::new().map_err(|e| DecodeError::Jpeg(e.to_string()))?;
    let mut image = RgbImage::default();
    decode_jpeg_into(&mut decompressor, bytes, &mut image)?;
    Ok(image)
}

/// Decodes `bytes` into `image`, reusing its buffer when it is large enough.
fn decode_jpeg_into(
    decompressor: &mut turbojpeg::Decompressor,
    bytes: &[u8],
    image: &mut RgbImage,
) -> Result<(), DecodeError> {
    let header = decompressor
        .read_header(bytes)
        .map_err(|e| DecodeError::Jpeg(e.to_string()))?;
    let width =
        u32::try_from(header.width).map_err(|_| DecodeError::Jpeg("width out of range".into()))?;
    let height = u32::try_from(header.height)
        .map_err(|_| DecodeError::Jpeg("height out of range".into()))?;
    check_size(width, height)?;
    image.data.resize(header.width * header.height * 3, 0);
    // Invalid until the decode succeeds, so a failed decode never leaves a half-written frame that
    // claims to be whole.
    (image.width, image.height) = (0, 0);
    let output = turbojpeg::Image {
        pixels: image.data.as_mut_slice(),
        width: header.width,
        pitch: header.width * 3,
        height: header.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor
        .decompress(bytes, output)
        .map_err(|e| DecodeError::Jpeg(e.to_string()))?;
    (image.width, image.height) = (width, height);
    Ok(())
}

/// Output buffers a [`FrameDecoder`] keeps for reuse.
const DECODER_POOL: usize = 4;

/// Decodes a stream's frames with one libjpeg-turbo decompressor and a small pool of output buffers,
/// so a steady stream of same-sized frames allocates nothing. A buffer is reused once nobody else holds
/// its `Arc` (the frame went off screen and out of every result); while all are held, a new one is made.
#[derive(Default)]
pub struct FrameDecoder {
    decompressor: Option<turbojpeg::Decompressor>,
    pool: Vec<std::sync::Arc<RgbImage>>,
    /// Buffers allocated so far (for tests and statistics).
    allocations: u64,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes JPEG (pooled), PNG or WebP (the `image` crate allocates) into RGB.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<std::sync::Arc<RgbImage>, DecodeError> {
        if !is_jpeg(bytes) {
            self.allocations += 1;
            return rgb_image_from_bytes(bytes).map(std::sync::Arc::new);
        }
        if self.decompressor.is_none() {
            self.decompressor =
                Some(turbojpeg::Decompressor::new().map_err(|e| DecodeError::Jpeg(e.to_string()))?);
        }
        let Some(decompressor) = self.decompressor.as_mut() else {
            return Err(DecodeError::Jpeg("no decompressor".into()));
        };
        let free = self
            .pool
            .iter_mut()
            .position(|buffer| std::sync::Arc::get_mut(buffer).is_some());
        let index = match free {
            Some(index) => index,
            None => {
                self.allocations += 1;
                self.pool.push(std::sync::Arc::new(RgbImage::default()));
                self.pool.len() - 1
            }
        };
        let decoded = match std::sync::Arc::get_mut(&mut self.pool[index]) {
            Some(image) => decode_jpeg_into(decompressor, bytes, image),
            None => Err(DecodeError::Jpeg("output buffer in use".into())),
        };
        let image = std::sync::Arc::clone(&self.pool[index]);
        if self.pool.len() > DECODER_POOL {
            // Every buffer was in use: this one is not kept, so the pool stays bounded.
            self.pool.swap_remove(index);
        }
        decoded.map(|()| image)
    }

    /// Output buffers allocated since the decoder was made.
    pub fn allocations(&self) -> u64 {
        self.allocations
    }
}

/// Splits a byte stream of concatenated JPEG images (an `.mjpeg` file) into frames, walking the marker
/// segments so that `FF D9` bytes inside headers do not cut a frame short.
pub struct MjpegFrames<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> MjpegFrames<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }
}

impl<'a> Iterator for MjpegFrames<'a> {
    type Item = Result<&'a [u8], DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Tolerate padding between frames.
        while self.offset < self.bytes.len() && self.bytes[self.offset] != 0xFF {
            self.offset += 1;
        }
        if self.offset >= self.bytes.len() {
            return None;
        }
        let start = self.offset;
        match jpeg_end(self.bytes, start) {
            Ok(end) => {
                self.offset = end;
                Some(Ok(&self.bytes[start..end]))
            }
            Err(e) => {
                self.offset = self.bytes.len();
                Some(Err(e))
            }
        }
    }
}

/// Returns the offset just past the EOI of the JPEG starting at `start`.
fn jpeg_end(bytes: &[u8], start: usize) -> Result<usize, DecodeError> {
    let err = |offset, reason| DecodeError::Mjpeg { offset, reason };
    if bytes.get(start..start + 2) != Some(&[0xFF, 0xD8]) {
        return Err(err(start, "frame does not start with a JPEG SOI marker"));
    }
    let mut i = start + 2;
    // Header segments up to and including SOS.
    loop {
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return Err(err(i, "expected a marker in the JPEG header"));
        };
        i += 2;
        match marker {
            0xD9 => return Ok(i),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i), bytes.get(i + 1)) else {
                    return Err(err(i, "segment length runs past the end"));
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 || i + len > bytes.len() {
                    return Err(err(i, "segment length runs past the end"));
                }
                i += len;
                if marker == 0xDA {
                    break;
                }
            }
        }
    }
    // Entropy-coded data: stop at a marker that is not stuffing or a restart marker.
    loop {
        let Some(pos) = bytes[i..].iter().position(|&b| b == 0xFF) else {
            return Err(err(bytes.len(), "scan data ends without an EOI marker"));
        };
        i += pos;
        match bytes.get(i + 1) {
            None => return Err(err(i, "scan data ends without an EOI marker")),
            Some(0x00 | 0xD0..=0xD7 | 0xFF) => i += 1,
            Some(0xD9) => return Ok(i + 2),
            Some(_) => {
                // Another segment (e.g. a second scan of a progressive JPEG): skip it and keep going.
                let (Some(&hi), Some(&lo)) = (bytes.get(i + 2), bytes.get(i + 3)) else {
                    return Err(err(i, "segment length runs past the end"));
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 || i + 2 + len > bytes.len() {
                    return Err(err(i, "segment length runs past the end"));
                }
                i += 2 + len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg(w: usize, h: usize, shade: u8) -> Vec<u8> {
        let pixels = vec![shade; w * h * 3];
        let img = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        turbojpeg::compress(img, 90, turbojpeg::Subsamp::None)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn mjpeg_splits_concatenated_frames() {
        let a = tiny_jpeg(16, 8, 10);
        let b = tiny_jpeg(8, 16, 200);
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let frames: Vec<_> = MjpegFrames::new(&stream).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames, vec![a.as_slice(), b.as_slice()]);
        let second = rgb_image_from_bytes(frames[1]).unwrap();
        assert_eq!((second.width, second.height), (8, 16));
        assert!(second.data.iter().all(|&v| v.abs_diff(200) <= 2));
    }

    #[test]
    fn truncated_mjpeg_is_an_error_not_a_panic() {
        let a = tiny_jpeg(16, 16, 50);
        let cut = &a[..a.len() - 10];
        let frames: Vec<_> = MjpegFrames::new(cut).collect();
        assert_eq!(frames.len(), 1);
        assert!(frames[0].is_err());
    }

    #[test]
    fn the_frame_decoder_reuses_its_buffers() {
        let a = tiny_jpeg(16, 8, 10);
        let b = tiny_jpeg(16, 8, 200);
        let mut decoder = FrameDecoder::new();
        for _ in 0..10 {
            let first = decoder.decode(&a).unwrap();
            assert_eq!(*first, rgb_image_from_bytes(&a).unwrap());
            drop(first);
            let second = decoder.decode(&b).unwrap();
            assert!(second.data.iter().all(|&v| v.abs_diff(200) <= 2));
        }
        assert_eq!(decoder.allocations(), 1, "one buffer, reused every frame");
        // Frames still held elsewhere are never overwritten: each gets its own buffer, and the pool
        // stays bounded.
        let held: Vec<_> = (0..8).map(|_| decoder.decode(&a).unwrap()).collect();
        assert!(held.iter().all(|f| f.width == 16));
        assert!(decoder.pool.len() <= DECODER_POOL);
        assert!(decoder.decode(b"not an image").is_err());
        let mut bad = a.clone();
        bad.truncate(a.len() / 2);
        assert!(decoder.decode(&bad).is_err());
        drop(held);
        assert_eq!(
            *decoder.decode(&a).unwrap(),
            rgb_image_from_bytes(&a).unwrap()
        );
    }

    #[test]
    fn corrupt_bytes_give_clear_errors() {
        assert!(matches!(
            rgb_image_from_bytes(b"hello world"),
            Err(DecodeError::UnknownFormat)
        ));
        let mut jpeg = tiny_jpeg(32, 32, 90);
        jpeg.truncate(jpeg.len() / 2);
        assert!(rgb_image_from_bytes(&jpeg).is_err());
        assert!(rgb_image_from_bytes(&[0xFF, 0xD8, 0xFF, 0x00]).is_err());
    }
}
