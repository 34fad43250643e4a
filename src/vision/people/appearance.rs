//! What a person looks like, to tell people apart where motion alone cannot: a colour histogram of their
//! torso (the band between the shoulder centre and the hip centre, as wide as 0.6 of its length; the
//! clothes, which neither the pose nor the camera's motion changes much). Compared with the
//! Bhattacharyya coefficient (1: the same colours, 0: none in common).
//!
//! Used by the tracker to give a lost person their id back only if the body found looks like them, to
//! notice a tracked person's region sliding onto someone else (in a crossing, the person behind is
//! replaced by the person in front), and to decide which of two people on one body keeps it.

use crate::vision::image::RgbImage;
use crate::vision::people::BodyInImage;

/// Levels per colour channel (4 × 4 × 4 bins).
const LEVELS: usize = 4;
const BINS: usize = LEVELS * LEVELS * LEVELS;
/// Samples along and across the torso band.
const SAMPLES_ALONG: usize = 24;
const SAMPLES_ACROSS: usize = 12;
/// The band's width, in torso lengths.
const BAND_WIDTH: f32 = 0.6;
/// A histogram from fewer samples inside the image than this is not trusted.
const MIN_SAMPLES: usize = 48;

/// A normalised colour histogram of a torso.
#[derive(Clone, Debug, PartialEq)]
pub struct Appearance {
    bins: [f32; BINS],
}

impl Appearance {
    /// The torso of `body` in `image`, or `None` when too little of it is in the image.
    pub fn of(image: &RgbImage, body: &BodyInImage) -> Option<Self> {
        let [sx, sy] = body.shoulders_in_image;
        let [hx, hy] = body.hips_in_image;
        let (dx, dy) = (hx - sx, hy - sy);
        let length = (dx * dx + dy * dy).sqrt();
        if !(length.is_finite() && length >= 4.0) {
            return None;
        }
        // Across the torso: perpendicular to shoulders → hips.
        let (ax, ay) = (-dy / length, dx / length);
        let half_width = 0.5 * BAND_WIDTH * length;
        let mut bins = [0.0_f32; BINS];
        let mut count = 0;
        for i in 0..SAMPLES_ALONG {
            // From just below the shoulders to just above the hips.
            let t = 0.1 + 0.8 * (i as f32 + 0.5) / SAMPLES_ALONG as f32;
            for j in 0..SAMPLES_ACROSS {
                let u = -1.0 + 2.0 * (j as f32 + 0.5) / SAMPLES_ACROSS as f32;
                let x = sx + dx * t + ax * u * half_width;
                let y = sy + dy * t + ay * u * half_width;
                if !(x >= 0.0 && y >= 0.0 && x < image.width as f32 && y < image.height as f32) {
                    continue;
                }
                let at = (y as usize * image.width as usize + x as usize) * 3;
                let Some(rgb) = image.data.get(at..at + 3) else {
                    continue;
                };
                let q = |v: u8| usize::from(v) * LEVELS / 256;
                bins[(q(rgb[0]) * LEVELS + q(rgb[1])) * LEVELS + q(rgb[2])] += 1.0;
                count += 1;
            }
        }
        if count < MIN_SAMPLES {
            return None;
        }
        for b in &mut bins {
            *b /= count as f32;
        }
        Some(Self { bins })
    }

    /// The Bhattacharyya coefficient of the two histograms: 1 the same, 0 nothing in common.
    pub fn similarity(&self, other: &Appearance) -> f32 {
        self.bins
            .iter()
            .zip(&other.bins)
            .map(|(a, b)| (a * b).sqrt())
            .sum::<f32>()
            .min(1.0)
    }

    /// Moves towards `new` by `gain` (a slowly updated model of the person).
    pub fn blend(&mut self, new: &Appearance, gain: f32) {
        for (a, b) in self.bins.iter_mut().zip(&new.bins) {
            *a += (b - *a) * gain;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image with a torso of one colour at x 80..160 and another at x 280..360 (y 50..150).
    fn two_torsos() -> RgbImage {
        let (w, h) = (400_u32, 200_u32);
        let mut data = vec![128_u8; (w * h * 3) as usize];
        for y in 50..150 {
            for (x0, colour) in [(80, [200, 30, 30]), (280, [30, 30, 200])] {
                for x in x0..x0 + 80 {
                    let at = ((y * w + x) * 3) as usize;
                    data[at..at + 3].copy_from_slice(&colour);
                }
            }
        }
        RgbImage::from_raw(w, h, data).unwrap()
    }

    fn torso(x: f32) -> BodyInImage {
        BodyInImage {
            shoulders_in_image: [x, 50.0],
            hips_in_image: [x, 150.0],
            legs_visibility: None,
        }
    }

    #[test]
    fn the_same_torso_is_similar_and_another_colour_is_not() {
        let image = two_torsos();
        let red = Appearance::of(&image, &torso(120.0)).unwrap();
        let red_again = Appearance::of(&image, &torso(121.0)).unwrap();
        let blue = Appearance::of(&image, &torso(320.0)).unwrap();
        assert!(red.similarity(&red_again) > 0.95);
        assert!(red.similarity(&blue) < 0.2, "{}", red.similarity(&blue));
        let mut model = red.clone();
        model.blend(&blue, 0.5);
        assert!(model.similarity(&blue) > red.similarity(&blue));
    }

    #[test]
    fn a_torso_out_of_the_image_has_no_appearance() {
        let image = two_torsos();
        assert!(Appearance::of(&image, &torso(-200.0)).is_none());
        let degenerate = BodyInImage {
            shoulders_in_image: [10.0, 10.0],
            hips_in_image: [10.0, 11.0],
            legs_visibility: None,
        };
        assert!(Appearance::of(&image, &degenerate).is_none());
    }
}
