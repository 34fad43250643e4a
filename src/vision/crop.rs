//! Rotated-ROI crop into a model's input tensor, reproducing MediaPipe's CPU `ImageToTensorCalculator`:
//! `cv::warpPerspective` of the 8-bit image with OpenCV 4's fixed-point bilinear remap (coordinates rounded
//! to 1/32 px, 15-bit integer weights, result rounded to 8 bits), then `convertTo` into the float range.

use crate::vision::image::RgbImage;
use crate::vision::roi::Roi;

/// OpenCV's `INTER_BITS`: sub-pixel coordinates are rounded to 1/32 px.
const INTER_BITS: i32 = 5;
const INTER_TAB_SIZE: i32 = 1 << INTER_BITS;
/// OpenCV's `INTER_REMAP_COEF_BITS`: bilinear weights are integers summing to 2^15.
const REMAP_COEF_BITS: i32 = 15;

/// What pixels outside the image read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Border {
    /// `BORDER_CONSTANT` with 0 (the detectors).
    Zero,
    /// `BORDER_REPLICATE` (the landmark models).
    Replicate,
}

/// How a model wants its input tensor made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropSpec {
    pub width: u32,
    pub height: u32,
    pub border: Border,
    /// Pixel value 0 maps to `range.0`, 255 to `range.1`.
    pub range: (f32, f32),
    /// Grow the ROI to the tensor's aspect ratio instead of stretching (and report the letterbox).
    pub keep_aspect_ratio: bool,
}

/// Letterbox padding as fractions of the tensor: left, top, right, bottom.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Letterbox {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl Letterbox {
    /// Maps a point from letterboxed tensor units (0..1) to ROI units (0..1).
    pub fn remove(&self, pos_in_tensor: [f32; 2]) -> [f32; 2] {
        [
            (pos_in_tensor[0] - self.left) / (1.0 - self.left - self.right),
            (pos_in_tensor[1] - self.top) / (1.0 - self.top - self.bottom),
        ]
    }

    /// Scales a length along x from tensor units to ROI units.
    pub fn scale_x(&self, len: f32) -> f32 {
        len / (1.0 - self.left - self.right)
    }

    /// Scales a length along y from tensor units to ROI units.
    pub fn scale_y(&self, len: f32) -> f32 {
        len / (1.0 - self.top - self.bottom)
    }
}

/// The ROI actually sampled (after aspect padding) and the letterbox it implies; model outputs map back
/// through `letterbox.remove` and then the *requested* ROI's `image_from_roi`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropGeometry {
    pub roi: Roi,
    pub letterbox: Letterbox,
}

/// MediaPipe's `PadRoi`: grow the ROI to the tensor aspect ratio, returning the letterbox fractions.
pub fn pad_roi(roi: Roi, spec: &CropSpec) -> CropGeometry {
    if !spec.keep_aspect_ratio {
        return CropGeometry {
            roi,
            letterbox: Letterbox::default(),
        };
    }
    let tensor_aspect = spec.height as f32 / spec.width as f32;
    let [w, h] = roi.size_in_image;
    let roi_aspect = h / w;
    let mut padded = roi;
    let mut letterbox = Letterbox::default();
    if tensor_aspect > roi_aspect {
        padded.size_in_image = [w, w * tensor_aspect];
        let v = (1.0 - roi_aspect / tensor_aspect) / 2.0;
        letterbox.top = v;
        letterbox.bottom = v;
    } else {
        padded.size_in_image = [h / tensor_aspect, h];
        let hpad = (1.0 - tensor_aspect / roi_aspect) / 2.0;
        letterbox.left = hpad;
        letterbox.right = hpad;
    }
    CropGeometry {
        roi: padded,
        letterbox,
    }
}

/// The affine map from tensor pixel (u, v) to source pixel, as `warpPerspective` builds it from
/// `cv::boxPoints` (single precision) mapped onto the tensor corners.
fn source_from_tensor(roi: &Roi, width: u32, height: u32) -> [f64; 6] {
    // cv::RotatedRect::points, in f32 as OpenCV computes it.
    let angle_deg = roi.rotation * 180.0 / std::f32::consts::PI;
    let angle = f64::from(angle_deg) * std::f64::consts::PI / 180.0;
    let b = angle.cos() as f32 * 0.5;
    let a = angle.sin() as f32 * 0.5;
    let [cx, cy] = roi.center_in_image;
    let [w, h] = roi.size_in_image;
    let p0 = [cx - a * h - b * w, cy + b * h - a * w];
    let p1 = [cx + a * h - b * w, cy - b * h - a * w];
    let p2 = [2.0 * cx - p0[0], 2.0 * cy - p0[1]];
    // Tensor corners: p1 → (0, 0), p2 → (W, 0), p0 → (0, H).
    let (wd, hd) = (f64::from(width), f64::from(height));
    let f = |v: f32| f64::from(v);
    [
        (f(p2[0]) - f(p1[0])) / wd,
        (f(p0[0]) - f(p1[0])) / hd,
        f(p1[0]),
        (f(p2[1]) - f(p1[1])) / wd,
        (f(p0[1]) - f(p1[1])) / hd,
        f(p1[1]),
    ]
}

/// 1.5·2⁵²: adding and subtracting it rounds a double to an integer, ties to even, in the default
/// rounding mode (exact for |x| < 2⁵¹).
const ROUNDING_MAGIC: f64 = 6_755_399_441_055_744.0;

/// `cvRound` for the warp: round half to even, saturating to `i32`. Written with the magic-number trick
/// because `round_ties_even` is a libm call on baseline x86-64 (no SSE4.1), and this runs per pixel.
fn round_to_i32(x: f64) -> i32 {
    let clamped = x.clamp(f64::from(i32::MIN), f64::from(i32::MAX));
    ((clamped + ROUNDING_MAGIC) - ROUNDING_MAGIC) as i32
}

/// Crops `roi` out of `image` into `tensor` (NHWC, `spec.width × spec.height × 3` floats), returning the
/// geometry needed to map model outputs back to the image. `tensor` must have the right length.
pub fn crop_to_tensor(
    image: &RgbImage,
    roi: Roi,
    spec: &CropSpec,
    tensor: &mut [f32],
) -> CropGeometry {
    let geometry = pad_roi(roi, spec);
    let m = source_from_tensor(&geometry.roi, spec.width, spec.height);
    let (iw, ih) = (image.width as i32, image.height as i32);
    let stride = image.width as usize * 3;
    let src = &image.data;
    let scale = (spec.range.1 - spec.range.0) / 255.0;
    let offset = spec.range.0;
    let replicate = spec.border == Border::Replicate;
    let round_shift = 1 << (REMAP_COEF_BITS - 1);
    let out_width = spec.width as usize;
    debug_assert_eq!(tensor.len(), out_width * spec.height as usize * 3);

    for v in 0..spec.height as usize {
        let row_x = m[1] * v as f64 + m[2];
        let row_y = m[4] * v as f64 + m[5];
        let out_row = &mut tensor[v * out_width * 3..(v + 1) * out_width * 3];
        for (u, out) in out_row.chunks_exact_mut(3).enumerate() {
            let fx = (row_x + m[0] * u as f64) * f64::from(INTER_TAB_SIZE);
            let fy = (row_y + m[3] * u as f64) * f64::from(INTER_TAB_SIZE);
            let xi = round_to_i32(fx);
            let yi = round_to_i32(fy);
            let sx = xi >> INTER_BITS;
            let sy = yi >> INTER_BITS;
            let ax = xi & (INTER_TAB_SIZE - 1);
            let ay = yi & (INTER_TAB_SIZE - 1);
            // Fixed-point weights: exact products of the 1/32 fractions, scaled to 2^15.
            let w00 = (INTER_TAB_SIZE - ax) * (INTER_TAB_SIZE - ay) * 32;
            let w01 = ax * (INTER_TAB_SIZE - ay) * 32;
            let w10 = (INTER_TAB_SIZE - ax) * ay * 32;
            let w11 = ax * ay * 32;
            if sx >= 0 && sy >= 0 && sx < iw - 1 && sy < ih - 1 {
                let i00 = sy as usize * stride + sx as usize * 3;
                let i10 = i00 + stride;
                for c in 0..3 {
                    let p = w00 * i32::from(src[i00 + c])
                        + w01 * i32::from(src[i00 + 3 + c])
                        + w10 * i32::from(src[i10 + c])
                        + w11 * i32::from(src[i10 + 3 + c]);
                    out[c] = ((p + round_shift) >> REMAP_COEF_BITS) as f32 * scale + offset;
                }
            } else if !replicate && (sx >= iw || sx + 1 < 0 || sy >= ih || sy + 1 < 0) {
                out.fill(offset);
            } else {
                let fetch = |x: i32, y: i32, c: usize| -> i32 {
                    if replicate {
                        let xc = x.clamp(0, iw - 1) as usize;
                        let yc = y.clamp(0, ih - 1) as usize;
                        i32::from(src[yc * stride + xc * 3 + c])
                    } else if x >= 0 && y >= 0 && x < iw && y < ih {
                        i32::from(src[y as usize * stride + x as usize * 3 + c])
                    } else {
                        0
                    }
                };
                for (c, o) in out.iter_mut().enumerate() {
                    let p = w00 * fetch(sx, sy, c)
                        + w01 * fetch(sx + 1, sy, c)
                        + w10 * fetch(sx, sy + 1, c)
                        + w11 * fetch(sx + 1, sy + 1, c);
                    *o = ((p + round_shift) >> REMAP_COEF_BITS) as f32 * scale + offset;
                }
            }
        }
    }
    geometry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_image(w: u32, h: u32) -> RgbImage {
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]);
            }
        }
        RgbImage::from_raw(w, h, data).unwrap()
    }

    const SPEC: CropSpec = CropSpec {
        width: 64,
        height: 64,
        border: Border::Zero,
        range: (0.0, 255.0),
        keep_aspect_ratio: true,
    };

    #[test]
    fn rounding_matches_round_ties_even() {
        for x in [
            0.5_f64,
            1.5,
            2.5,
            -0.5,
            -1.5,
            3.4999,
            3.5001,
            -7.5,
            1e9 + 0.5,
            123456.75,
            -2e10,
            2e10,
        ] {
            let expected = x
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX))
                .round_ties_even() as i32;
            assert_eq!(round_to_i32(x), expected, "{x}");
        }
    }

    #[test]
    fn identity_crop_copies_pixels() {
        // An unrotated ROI whose pixel grid coincides with the tensor grid copies pixels exactly.
        let image = gradient_image(64, 64);
        let roi = Roi::full_image(64, 64);
        let mut tensor = vec![0.0; 64 * 64 * 3];
        let g = crop_to_tensor(&image, roi, &SPEC, &mut tensor);
        assert_eq!(g.letterbox, Letterbox::default());
        let as_u8: Vec<u8> = tensor.iter().map(|&v| v as u8).collect();
        assert_eq!(as_u8, image.data);
    }

    #[test]
    fn crop_mapping_round_trip() {
        // The pixel a tensor sample reads is where `image_from_roi` says it is, for a rotated ROI.
        let image = gradient_image(200, 150);
        let roi = Roi {
            center_in_image: [90.0, 70.0],
            size_in_image: [60.0, 60.0],
            rotation: 0.4,
        };
        let mut tensor = vec![0.0; 64 * 64 * 3];
        let g = crop_to_tensor(&image, roi, &SPEC, &mut tensor);
        for &(u, v) in &[(0usize, 0usize), (10, 50), (32, 32), (63, 5)] {
            let p = g.roi.image_from_roi([u as f32 / 64.0, v as f32 / 64.0]);
            let expected_r = p[0]; // red channel holds x
            let expected_g = p[1]; // green channel holds y
            let got = &tensor[(v * 64 + u) * 3..(v * 64 + u) * 3 + 3];
            assert!(
                (got[0] - expected_r).abs() <= 1.0,
                "x at ({u},{v}): {} vs {}",
                got[0],
                expected_r
            );
            assert!(
                (got[1] - expected_g).abs() <= 1.0,
                "y at ({u},{v}): {} vs {}",
                got[1],
                expected_g
            );
        }
    }

    #[test]
    fn letterbox_pads_the_short_side_with_the_border() {
        let image = gradient_image(100, 50);
        let spec = CropSpec {
            range: (-1.0, 1.0),
            ..SPEC
        };
        let mut tensor = vec![0.0; 64 * 64 * 3];
        let g = crop_to_tensor(&image, Roi::full_image(100, 50), &spec, &mut tensor);
        assert!((g.letterbox.top - 0.25).abs() < 1e-6 && (g.letterbox.bottom - 0.25).abs() < 1e-6);
        assert_eq!(g.letterbox.left, 0.0);
        // The first rows are outside the image: BORDER_ZERO reads 0, which maps to -1.
        assert!(tensor[..64 * 3 * 10].iter().all(|&v| v == -1.0));
        // Removing the letterbox maps the tensor centre to the ROI centre.
        assert_eq!(g.letterbox.remove([0.5, 0.5]), [0.5, 0.5]);
        assert!((g.letterbox.remove([0.0, 0.25])[1]).abs() < 1e-6);
    }

    #[test]
    fn replicate_border_repeats_edge_pixels() {
        let image = gradient_image(10, 10);
        let spec = CropSpec {
            border: Border::Replicate,
            width: 8,
            height: 8,
            ..SPEC
        };
        let roi = Roi {
            center_in_image: [0.0, 0.0],
            size_in_image: [8.0, 8.0],
            rotation: 0.0,
        };
        let mut tensor = vec![0.0; 8 * 8 * 3];
        crop_to_tensor(&image, roi, &spec, &mut tensor);
        // Top-left tensor pixel samples (-4, -4) → clamped to pixel (0, 0).
        assert_eq!(&tensor[..3], &[0.0, 0.0, 0.0]);
        // Tensor (7, 0) samples (3, -4) → pixel (3, 0).
        assert_eq!(&tensor[7 * 3..7 * 3 + 3], &[3.0, 0.0, 3.0]);
    }
}
