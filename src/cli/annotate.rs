//! Draws results over frames (for `--annotate`): body in pink, hands in teal, as the prototype; joints as
//! dots, low-visibility body parts faded.

use crate::vision::FrameResult;
use crate::vision::image::RgbImage;
use crate::vision::landmarks::{HAND_CONNECTIONS, POSE_CONNECTIONS};

pub const BODY_COLOR: [u8; 3] = [255, 64, 160];
pub const HAND_COLOR: [u8; 3] = [0, 200, 190];
/// Body landmarks below this visibility are drawn faded.
const VISIBLE: f32 = 0.5;

/// Draws `result` onto `image` in place.
pub fn draw_result(image: &mut RgbImage, result: &FrameResult) {
    let thickness = (image.width.max(image.height) as f32 / 320.0).clamp(1.0, 4.0);
    if let Some(pose) = &result.pose {
        for &(a, b) in &POSE_CONNECTIONS {
            let (la, lb) = (&pose.landmarks[a], &pose.landmarks[b]);
            let alpha = if la.visibility.min(lb.visibility) >= VISIBLE {
                1.0
            } else {
                0.35
            };
            draw_line(
                image,
                la.pos_in_image,
                lb.pos_in_image,
                thickness,
                BODY_COLOR,
                alpha,
            );
        }
        for l in &pose.landmarks {
            let alpha = if l.visibility >= VISIBLE { 1.0 } else { 0.35 };
            draw_disc(
                image,
                l.pos_in_image,
                thickness * 1.8,
                [255, 255, 255],
                alpha,
            );
            draw_disc(image, l.pos_in_image, thickness * 1.2, BODY_COLOR, alpha);
        }
    }
    for hand in &result.hands {
        for &(a, b) in &HAND_CONNECTIONS {
            draw_line(
                image,
                hand.landmarks[a].pos_in_image,
                hand.landmarks[b].pos_in_image,
                thickness * 0.8,
                HAND_COLOR,
                1.0,
            );
        }
        for l in &hand.landmarks {
            draw_disc(image, l.pos_in_image, thickness * 1.2, HAND_COLOR, 1.0);
        }
    }
}

fn blend(image: &mut RgbImage, x: i64, y: i64, color: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= i64::from(image.width) || y >= i64::from(image.height) {
        return;
    }
    let i = (y as usize * image.width as usize + x as usize) * 3;
    for (value, target) in image.data[i..i + 3].iter_mut().zip(color) {
        let old = f32::from(*value);
        *value = (old + (f32::from(target) - old) * alpha).round() as u8;
    }
}

fn draw_disc(image: &mut RgbImage, center: [f32; 2], radius: f32, color: [u8; 3], alpha: f32) {
    if !center[0].is_finite() || !center[1].is_finite() {
        return;
    }
    let r = radius.ceil() as i64;
    let (cx, cy) = (center[0].round() as i64, center[1].round() as i64);
    for dy in -r..=r {
        for dx in -r..=r {
            if ((dx * dx + dy * dy) as f32) <= radius * radius {
                blend(image, cx + dx, cy + dy, color, alpha);
            }
        }
    }
}

fn draw_line(
    image: &mut RgbImage,
    a: [f32; 2],
    b: [f32; 2],
    thickness: f32,
    color: [u8; 3],
    alpha: f32,
) {
    if !(a[0].is_finite() && a[1].is_finite() && b[0].is_finite() && b[1].is_finite()) {
        return;
    }
    // Clip absurdly long lines (points far outside the image) to a sane number of steps.
    let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2))
        .sqrt()
        .min(8192.0);
    let steps = len.ceil().max(1.0) as usize;
    let half = thickness / 2.0;
    let r = half.ceil() as i64;
    let mut last = None;
    for s in 0..=steps {
        let t = s as f32 / steps as f32;
        let (x, y) = (
            (a[0] + (b[0] - a[0]) * t).round() as i64,
            (a[1] + (b[1] - a[1]) * t).round() as i64,
        );
        if last == Some((x, y)) {
            continue;
        }
        last = Some((x, y));
        for dy in -r..=r {
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f32) <= half * half + 0.5 {
                    blend(image, x + dx, y + dy, color, alpha);
                }
            }
        }
    }
}

/// Saves an RGB image as PNG.
pub fn save_png(image: &RgbImage, path: &std::path::Path) -> Result<(), image::ImageError> {
    image::save_buffer(
        path,
        &image.data,
        image.width,
        image.height,
        image::ExtendedColorType::Rgb8,
    )
}
