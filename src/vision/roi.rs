//! Rotated regions of interest in image pixels, and MediaPipe's rect transformations.

/// A rotated rectangle in image pixels: the region a landmark model looks at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roi {
    /// Centre, in image pixels (x right, y down).
    pub center_in_image: [f32; 2],
    /// Width and height in image pixels, before rotation.
    pub size_in_image: [f32; 2],
    /// Rotation in radians, clockwise on screen (y points down), as MediaPipe's `NormalizedRect.rotation`.
    pub rotation: f32,
}

impl Roi {
    /// The whole image, unrotated.
    pub fn full_image(width: u32, height: u32) -> Self {
        Self {
            center_in_image: [width as f32 * 0.5, height as f32 * 0.5],
            size_in_image: [width as f32, height as f32],
            rotation: 0.0,
        }
    }

    /// MediaPipe's `RectTransformationCalculator`: shift in the rotated frame (in units of the rect's size),
    /// then optionally make it square on its long side, then scale.
    pub fn transformed(self, shift: [f32; 2], square_long: bool, scale: f32) -> Self {
        let [w, h] = self.size_in_image;
        let (sin, cos) = self.rotation.sin_cos();
        let [sx, sy] = [w * shift[0], h * shift[1]];
        let center_in_image = if self.rotation == 0.0 {
            [self.center_in_image[0] + sx, self.center_in_image[1] + sy]
        } else {
            [
                self.center_in_image[0] + sx * cos - sy * sin,
                self.center_in_image[1] + sx * sin + sy * cos,
            ]
        };
        let [w, h] = if square_long {
            let long = w.max(h);
            [long, long]
        } else {
            [w, h]
        };
        Self {
            center_in_image,
            size_in_image: [w * scale, h * scale],
            rotation: self.rotation,
        }
    }

    /// Maps a point in ROI units (0..1 across width and height, before rotation) to image pixels:
    /// MediaPipe's `LandmarkProjectionCalculator`.
    pub fn image_from_roi(&self, pos_in_roi: [f32; 2]) -> [f32; 2] {
        let x = pos_in_roi[0] - 0.5;
        let y = pos_in_roi[1] - 0.5;
        let (sin, cos) = self.rotation.sin_cos();
        let [w, h] = self.size_in_image;
        [
            (cos * x * w - sin * y * h) + self.center_in_image[0],
            (sin * x * w + cos * y * h) + self.center_in_image[1],
        ]
    }

    /// Whether a point (image pixels) lies inside the rotated rectangle.
    pub fn contains(&self, pos_in_image: [f32; 2]) -> bool {
        let [dx, dy] = [
            pos_in_image[0] - self.center_in_image[0],
            pos_in_image[1] - self.center_in_image[1],
        ];
        let (sin, cos) = self.rotation.sin_cos();
        // Into the rectangle's own frame (the inverse of `image_from_roi`'s rotation).
        let (x, y) = (cos * dx + sin * dy, -sin * dx + cos * dy);
        x.abs() <= 0.5 * self.size_in_image[0] && y.abs() <= 0.5 * self.size_in_image[1]
    }

    /// Axis-aligned IoU of the unrotated boxes, as MediaPipe's association calculator computes it.
    pub fn iou_ignoring_rotation(&self, other: &Roi) -> f32 {
        let bounds = |r: &Roi| {
            let [cx, cy] = r.center_in_image;
            let [w, h] = r.size_in_image;
            [cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5]
        };
        iou(bounds(self), bounds(other))
    }
}

/// Intersection over union of two `[xmin, ymin, xmax, ymax]` boxes; 0 when they do not overlap.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    if inter <= 0.0 {
        return 0.0;
    }
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let union = area_a + area_b - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Wraps an angle into [-π, π), as MediaPipe's `NormalizeRadians`.
pub fn normalize_radians(angle: f32) -> f32 {
    use std::f32::consts::PI;
    angle - 2.0 * PI * ((angle + PI) / (2.0 * PI)).floor()
}

/// Rotation that turns the vector `from → to` (image pixels) to point up: MediaPipe's
/// `target_angle − atan2(−dy, dx)` with a target of 90°.
pub fn rotation_from_points(from_in_image: [f32; 2], to_in_image: [f32; 2]) -> f32 {
    let dx = to_in_image[0] - from_in_image[0];
    let dy = to_in_image[1] - from_in_image[1];
    normalize_radians(std::f32::consts::FRAC_PI_2 - (-dy).atan2(dx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_wraps_into_half_open_range() {
        use std::f32::consts::PI;
        assert!((normalize_radians(3.0 * PI) + PI).abs() < 1e-5);
        assert!((normalize_radians(0.5) - 0.5).abs() < 1e-7);
        assert!((normalize_radians(-2.5 * PI) + 0.5 * PI).abs() < 1e-5);
    }

    #[test]
    fn upright_vector_has_no_rotation() {
        // Hip below shoulders (y down): the vector hip→shoulder points up, rotation 0.
        assert!(rotation_from_points([100.0, 200.0], [100.0, 50.0]).abs() < 1e-6);
        // Pointing right: the person lies on their side; rotating by +90° makes it upright.
        assert!(
            (rotation_from_points([0.0, 0.0], [10.0, 0.0]) - std::f32::consts::FRAC_PI_2).abs()
                < 1e-6
        );
    }

    #[test]
    fn shift_follows_rotation() {
        let roi = Roi {
            center_in_image: [100.0, 100.0],
            size_in_image: [20.0, 40.0],
            rotation: std::f32::consts::FRAC_PI_2,
        };
        let t = roi.transformed([0.0, -0.5], true, 2.0);
        // Shifting "up" by half the height in a frame rotated 90° clockwise moves the centre right.
        assert!(
            (t.center_in_image[0] - 120.0).abs() < 1e-4
                && (t.center_in_image[1] - 100.0).abs() < 1e-4
        );
        assert_eq!(t.size_in_image, [80.0, 80.0]);
    }

    #[test]
    fn contains_follows_rotation() {
        // 40 × 10, turned a quarter: 10 wide and 40 tall on screen.
        let roi = Roi {
            center_in_image: [50.0, 50.0],
            size_in_image: [40.0, 10.0],
            rotation: std::f32::consts::FRAC_PI_2,
        };
        assert!(roi.contains([50.0, 68.0]));
        assert!(!roi.contains([68.0, 50.0]));
        assert!(!roi.contains([50.0, 71.0]));
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
        assert!((iou([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
    }
}
