//! Where a body is in the image, for association: the hip and shoulder centres (and how much of the
//! legs the landmark model saw).

use crate::vision::landmarks::ImageLandmark;
use crate::vision::landmarks::pose_index::{
    LEFT_ANKLE, LEFT_HIP, LEFT_KNEE, LEFT_SHOULDER, RIGHT_ANKLE, RIGHT_HIP, RIGHT_KNEE,
    RIGHT_SHOULDER,
};

/// Where a body is in the image: the hip centre and the shoulder centre, in px.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BodyInImage {
    pub hips_in_image: [f32; 2],
    pub shoulders_in_image: [f32; 2],
    /// The mean visibility of the knees and ankles (0 to 1) as the landmark model gave it; `None` for a
    /// detection, which has no visibility. Low for a body cut by a desk, an edge or someone in front.
    pub legs_visibility: Option<f32>,
}

impl BodyInImage {
    /// From 33 pose landmarks.
    pub fn from_landmarks(landmarks: &[ImageLandmark]) -> Option<Self> {
        let mid = |a: usize, b: usize| -> Option<[f32; 2]> {
            let (pa, pb) = (
                landmarks.get(a)?.pos_in_image,
                landmarks.get(b)?.pos_in_image,
            );
            Some([(pa[0] + pb[0]) * 0.5, (pa[1] + pb[1]) * 0.5])
        };
        let mut legs = 0.0;
        for i in [LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE] {
            legs += landmarks.get(i)?.visibility;
        }
        let body = Self {
            hips_in_image: mid(LEFT_HIP, RIGHT_HIP)?,
            shoulders_in_image: mid(LEFT_SHOULDER, RIGHT_SHOULDER)?,
            legs_visibility: Some(legs * 0.25),
        };
        body.is_finite().then_some(body)
    }

    pub fn is_finite(&self) -> bool {
        self.hips_in_image
            .iter()
            .chain(&self.shoulders_in_image)
            .all(|v| v.is_finite())
    }

    /// Hip centre to shoulder centre, px (at least 1).
    pub fn torso_px(&self) -> f32 {
        dist(self.hips_in_image, self.shoulders_in_image).max(1.0)
    }

    /// The middle of the torso.
    pub fn centre_in_image(&self) -> [f32; 2] {
        [
            (self.hips_in_image[0] + self.shoulders_in_image[0]) * 0.5,
            (self.hips_in_image[1] + self.shoulders_in_image[1]) * 0.5,
        ]
    }

    /// How far `other` is from this body: the mean distance of the hip and shoulder centres, in this
    /// body's torso lengths.
    pub fn distance_in_torsos(&self, other: &BodyInImage) -> f32 {
        let d = (dist(self.hips_in_image, other.hips_in_image)
            + dist(self.shoulders_in_image, other.shoulders_in_image))
            * 0.5;
        d / self.torso_px()
    }

    /// The ratio of the larger torso length to the smaller (≥ 1).
    pub fn scale_ratio(&self, other: &BodyInImage) -> f32 {
        let (a, b) = (self.torso_px(), other.torso_px());
        a.max(b) / a.min(b)
    }

    pub(super) fn moved(&self, by: [f32; 2]) -> Self {
        let add = |p: [f32; 2]| [p[0] + by[0], p[1] + by[1]];
        Self {
            hips_in_image: add(self.hips_in_image),
            shoulders_in_image: add(self.shoulders_in_image),
            legs_visibility: self.legs_visibility,
        }
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}
