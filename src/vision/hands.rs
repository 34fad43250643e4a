//! Hands: palm detection → hand ROI → 21 landmarks + world landmarks + handedness, and the next frame's
//! ROI from the landmarks, as MediaPipe 0.10.21's `palm_detection_cpu`, `hand_landmark_cpu` and
//! `hand_landmark_landmarks_to_roi` graphs.

use std::time::Instant;

use crate::vision::crop::{Border, CropSpec, crop_to_tensor};
use crate::vision::detection::{
    DecodeOptions, Detection, NMS_IOU_THRESHOLD, PALM_DETECTION_ANCHORS, decode_detections,
    ssd_anchors, weighted_nms,
};
use crate::vision::error::ModelError;
use crate::vision::image::RgbImage;
use crate::vision::landmarks::{
    HAND_LANDMARK_COUNT, Hand, Handedness, ImageLandmark, WorldLandmark,
};
use crate::vision::model::OnnxModel;
use crate::vision::roi::{Roi, rotation_from_points};
use crate::vision::timings::{Stage, StageTimings};

const DETECTOR_CROP: CropSpec = CropSpec {
    width: 192,
    height: 192,
    border: Border::Zero,
    range: (0.0, 1.0),
    keep_aspect_ratio: true,
};
const LANDMARK_CROP: CropSpec = CropSpec {
    width: 224,
    height: 224,
    border: Border::Replicate,
    range: (0.0, 1.0),
    keep_aspect_ratio: true,
};
/// Hand model z is divided by the input size and then by this (`normalize_z`).
const HAND_Z_NORMALIZATION: f32 = 0.4;
/// Palm box → hand ROI: shift up by half the box, square, × 2.6.
const PALM_ROI_SHIFT_Y: f32 = -0.5;
const PALM_ROI_SCALE: f32 = 2.6;
/// Landmarks → next ROI: shift up by 0.1, square, × 2.0.
const TRACKING_ROI_SHIFT_Y: f32 = -0.1;
const TRACKING_ROI_SCALE: f32 = 2.0;
/// A hand region from pose landmarks: MediaPipe Holistic's box (twice the wrist to middle-knuckle
/// distance, about the hand's length, centred on the knuckles). Holistic scales it by 2.7 for its hand
/// re-crop model, which then finds the hand's own box; livepose has no re-crop model and hands the box
/// straight to the landmark model with MediaPipe's tracking transform (scale 2.0, shifted −0.1 toward
/// the fingers), the region that model sees while it tracks a hand.
const POSE_HAND_ROI_SHIFT_Y: f32 = -0.1;
const POSE_HAND_ROI_SCALE: f32 = 2.0;
/// Holistic's gate: the pose's wrist must be this visible for its hand to be looked for.
pub const POSE_HAND_MIN_WRIST_VISIBILITY: f32 = 0.1;

/// One side of one person's pose, as the hand branch needs it to find that hand: the previous frame's
/// wrist, pinky and index landmarks in image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HandFromPose {
    pub wrist_in_image: [f32; 2],
    pub pinky_in_image: [f32; 2],
    pub index_in_image: [f32; 2],
    pub wrist_visibility: f32,
}

impl HandFromPose {
    /// Both sides of every person whose pose has its 33 landmarks.
    pub fn of_people(people: &[(crate::vision::PersonId, crate::vision::Pose)]) -> Vec<Self> {
        use crate::vision::landmarks::pose_index::{LEFT_INDEX, LEFT_PINKY, LEFT_WRIST};
        let mut out = Vec::with_capacity(2 * people.len());
        for (_, pose) in people {
            for side in 0..2 {
                let (Some(wrist), Some(pinky), Some(index)) = (
                    pose.landmarks.get(LEFT_WRIST + side),
                    pose.landmarks.get(LEFT_PINKY + side),
                    pose.landmarks.get(LEFT_INDEX + side),
                ) else {
                    continue;
                };
                out.push(Self {
                    wrist_in_image: wrist.pos_in_image,
                    pinky_in_image: pinky.pos_in_image,
                    index_in_image: index.pos_in_image,
                    wrist_visibility: wrist.visibility,
                });
            }
        }
        out
    }

    /// Where the knuckles are: Holistic's estimate of the middle finger, (2 index + pinky) / 3.
    pub fn knuckles_in_image(&self) -> [f32; 2] {
        let [i, p] = [self.index_in_image, self.pinky_in_image];
        [(2.0 * i[0] + p[0]) / 3.0, (2.0 * i[1] + p[1]) / 3.0]
    }

    /// The region to run the hand landmark model on, if the wrist is visible enough and the points
    /// give a box.
    pub fn roi(&self) -> Option<Roi> {
        if self.wrist_visibility.is_nan() || self.wrist_visibility < POSE_HAND_MIN_WRIST_VISIBILITY
        {
            return None;
        }
        let middle = self.knuckles_in_image();
        let [dx, dy] = [
            middle[0] - self.wrist_in_image[0],
            middle[1] - self.wrist_in_image[1],
        ];
        let side = 2.0 * (dx * dx + dy * dy).sqrt();
        if !side.is_finite() || side < 1.0 || !middle.iter().all(|v| v.is_finite()) {
            return None;
        }
        let roi = Roi {
            center_in_image: middle,
            size_in_image: [side, side],
            rotation: rotation_from_points(self.wrist_in_image, middle),
        };
        Some(roi.transformed([0.0, POSE_HAND_ROI_SHIFT_Y], true, POSE_HAND_ROI_SCALE))
    }
}

/// Landmarks used for the tracking ROI: wrist, and the two lowest joints of each finger.
const TRACKING_SUBSET: [usize; 12] = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18];

/// Runs the palm detector on the whole frame.
pub struct PalmDetector {
    model: OnnxModel,
    anchors: Vec<[f32; 2]>,
    tensor: Vec<f32>,
    detections: Vec<Detection>,
    pub min_score: f32,
}

impl PalmDetector {
    pub fn new(model: OnnxModel, min_score: f32) -> Self {
        let tensor = vec![0.0; model.input_len()];
        Self {
            model,
            anchors: ssd_anchors(&PALM_DETECTION_ANCHORS),
            tensor,
            detections: Vec::new(),
            min_score,
        }
    }

    /// Hand ROIs of the best `max_hands` palms, in score order.
    pub fn detect(
        &mut self,
        image: &RgbImage,
        max_hands: usize,
        timings: &mut StageTimings,
    ) -> Result<Vec<Roi>, ModelError> {
        let start = Instant::now();
        let geometry = crop_to_tensor(
            image,
            Roi::full_image(image.width, image.height),
            &DETECTOR_CROP,
            &mut self.tensor,
        );
        timings.add(Stage::PalmDetectionCrop, start.elapsed());

        let start = Instant::now();
        let options = DecodeOptions {
            num_keypoints: 7,
            coords_per_anchor: 18,
            scale: 192.0,
            min_score: self.min_score,
        };
        let anchors = &self.anchors;
        let detections = &mut self.detections;
        self.model
            .run(&self.tensor, |out| -> Result<(), ModelError> {
                decode_detections(
                    out.get("Identity")?,
                    out.get("Identity_1")?,
                    anchors,
                    &options,
                    detections,
                );
                Ok(())
            })??;
        timings.add(Stage::PalmDetectionInfer, start.elapsed());

        let start = Instant::now();
        let (w, h) = (image.width as f32, image.height as f32);
        let lb = geometry.letterbox;
        let rois = weighted_nms(std::mem::take(&mut self.detections), NMS_IOU_THRESHOLD)
            .into_iter()
            .take(max_hands)
            .filter_map(|d| {
                let [xmin, ymin] = lb.remove([d.bbox[0], d.bbox[1]]);
                let (bw, bh) = (lb.scale_x(d.bbox[2]), lb.scale_y(d.bbox[3]));
                let to_image = |kp: [f32; 2]| {
                    let [x, y] = lb.remove(kp);
                    [x * w, y * h]
                };
                let wrist = to_image(*d.keypoints.first()?);
                let middle_mcp = to_image(*d.keypoints.get(2)?);
                let roi = Roi {
                    center_in_image: [(xmin + bw / 2.0) * w, (ymin + bh / 2.0) * h],
                    size_in_image: [bw * w, bh * h],
                    rotation: rotation_from_points(wrist, middle_mcp),
                };
                Some(roi.transformed([0.0, PALM_ROI_SHIFT_Y], true, PALM_ROI_SCALE))
            })
            .collect();
        timings.add(Stage::PalmDetectionDecode, start.elapsed());
        Ok(rois)
    }
}

/// Runs the hand landmark model in a ROI.
pub struct HandLandmarker {
    model: OnnxModel,
    tensor: Vec<f32>,
    /// The landmarks are accepted when the hand presence is above this (strictly, as MediaPipe).
    pub min_presence: f32,
    /// Whether frames are mirrored (selfie view); decides `Hand::handedness`.
    pub input_is_mirrored: bool,
}

impl HandLandmarker {
    pub fn new(model: OnnxModel, min_presence: f32, input_is_mirrored: bool) -> Self {
        let tensor = vec![0.0; model.input_len()];
        Self {
            model,
            tensor,
            min_presence,
            input_is_mirrored,
        }
    }

    /// Landmarks in `roi`, or `None` when the model finds no hand there.
    pub fn landmarks(
        &mut self,
        image: &RgbImage,
        roi: Roi,
        timings: &mut StageTimings,
    ) -> Result<Option<Hand>, ModelError> {
        let start = Instant::now();
        let geometry = crop_to_tensor(image, roi, &LANDMARK_CROP, &mut self.tensor);
        timings.add(Stage::HandLandmarkCrop, start.elapsed());

        let start = Instant::now();
        let (presence, handedness_p, raw, world) =
            self.model
                .run(&self.tensor, |out| -> Result<_, ModelError> {
                    let presence = out.get("Identity_1")?.first().copied().unwrap_or(0.0);
                    let handedness = out.get("Identity_2")?.first().copied().unwrap_or(0.5);
                    let mut raw = [[0.0_f32; 3]; HAND_LANDMARK_COUNT];
                    let mut world = [[0.0_f32; 3]; HAND_LANDMARK_COUNT];
                    for (dst, src) in raw.iter_mut().zip(out.get("Identity")?.chunks_exact(3)) {
                        *dst = [src[0], src[1], src[2]];
                    }
                    for (dst, src) in world.iter_mut().zip(out.get("Identity_3")?.chunks_exact(3)) {
                        *dst = [src[0], src[1], src[2]];
                    }
                    Ok((presence, handedness, raw, world))
                })??;
        timings.add(Stage::HandLandmarkInfer, start.elapsed());

        let start = Instant::now();
        // Strictly above, as MediaPipe's ThresholdingCalculator.
        if presence.is_nan() || presence <= self.min_presence {
            timings.add(Stage::HandLandmarkDecode, start.elapsed());
            return Ok(None);
        }
        let lb = geometry.letterbox;
        let size = LANDMARK_CROP.width as f32;
        let landmarks = raw
            .iter()
            .map(|&[x, y, z]| ImageLandmark {
                pos_in_image: roi.image_from_roi(lb.remove([x / size, y / size])),
                depth: lb.scale_x(z / size / HAND_Z_NORMALIZATION) * roi.size_in_image[0]
                    / image.width as f32,
                visibility: 1.0,
                presence: 1.0,
            })
            .collect();
        let (sin, cos) = roi.rotation.sin_cos();
        let world_landmarks = world
            .iter()
            .map(|&[x, y, z]| WorldLandmark {
                pos_in_world: [cos * x - sin * y, sin * x + cos * y, z],
                visibility: 1.0,
            })
            .collect();
        // MediaPipe's binary classifier: "Left" with score p when p ≥ 0.5, else "Right" with 1 − p.
        let (handedness_mediapipe, handedness_score) = if handedness_p >= 0.5 {
            (Handedness::Left, handedness_p)
        } else {
            (Handedness::Right, 1.0 - handedness_p)
        };
        let handedness = if self.input_is_mirrored {
            handedness_mediapipe
        } else {
            handedness_mediapipe.other()
        };
        timings.add(Stage::HandLandmarkDecode, start.elapsed());
        Ok(Some(Hand {
            landmarks,
            world_landmarks,
            handedness_mediapipe,
            handedness_score,
            handedness,
            presence,
            roi,
        }))
    }
}

/// MediaPipe's `HandLandmarksToRectCalculator` + `RectTransformationCalculator`: the next frame's ROI from
/// this frame's landmarks (image pixels).
pub fn tracking_roi_from_landmarks(landmarks: &[ImageLandmark]) -> Option<Roi> {
    if landmarks.len() < HAND_LANDMARK_COUNT {
        return None;
    }
    let p = |i: usize| landmarks[i].pos_in_image;
    let mid = |a: [f32; 2], b: [f32; 2]| [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let rotation = rotation_from_points(p(0), mid(mid(p(5), p(13)), p(9)));
    let points = TRACKING_SUBSET.map(p);
    let (min, max) = bounds(points.iter().copied());
    let center_aa = mid(min, max);
    let (sin_rev, cos_rev) = (-rotation).sin_cos();
    let projected = points.map(|[x, y]| {
        let (dx, dy) = (x - center_aa[0], y - center_aa[1]);
        [dx * cos_rev - dy * sin_rev, dx * sin_rev + dy * cos_rev]
    });
    let (pmin, pmax) = bounds(projected.iter().copied());
    let pc = mid(pmin, pmax);
    let (sin, cos) = rotation.sin_cos();
    let roi = Roi {
        center_in_image: [
            pc[0] * cos - pc[1] * sin + center_aa[0],
            pc[0] * sin + pc[1] * cos + center_aa[1],
        ],
        size_in_image: [pmax[0] - pmin[0], pmax[1] - pmin[1]],
        rotation,
    };
    roi.center_in_image
        .iter()
        .chain(&roi.size_in_image)
        .all(|v| v.is_finite())
        .then(|| roi.transformed([0.0, TRACKING_ROI_SHIFT_Y], true, TRACKING_ROI_SCALE))
}

fn bounds(points: impl Iterator<Item = [f32; 2]>) -> ([f32; 2], [f32; 2]) {
    points.fold(
        ([f32::MAX, f32::MAX], [f32::MIN, f32::MIN]),
        |(min, max), [x, y]| {
            (
                [min[0].min(x), min[1].min(y)],
                [max[0].max(x), max[1].max(y)],
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lm(x: f32, y: f32) -> ImageLandmark {
        ImageLandmark {
            pos_in_image: [x, y],
            ..Default::default()
        }
    }

    fn hand_from_pose(wrist: [f32; 2], knuckles: [f32; 2], visibility: f32) -> HandFromPose {
        // index and pinky either side of the knuckles, so that (2 index + pinky) / 3 = knuckles.
        HandFromPose {
            wrist_in_image: wrist,
            pinky_in_image: [knuckles[0] - 20.0, knuckles[1]],
            index_in_image: [knuckles[0] + 10.0, knuckles[1]],
            wrist_visibility: visibility,
        }
    }

    #[test]
    fn a_hand_region_from_the_pose_covers_the_hand_and_turns_with_it() {
        // Fingers up: wrist below the knuckles, 30 px apart.
        let up = hand_from_pose([100.0, 230.0], [100.0, 200.0], 0.9);
        assert_eq!(up.knuckles_in_image(), [100.0, 200.0]);
        let roi = up.roi().expect("a visible wrist gives a region");
        assert!(roi.rotation.abs() < 1e-6, "{roi:?}");
        // Box 2 × 30 px, shifted 0.1 of it toward the fingers, scaled 2.0.
        assert!((roi.size_in_image[0] - 120.0).abs() < 1e-3, "{roi:?}");
        assert!((roi.center_in_image[1] - 194.0).abs() < 1e-3, "{roi:?}");
        assert!(roi.contains([100.0, 230.0]) && roi.contains([100.0, 150.0]));
        // Fingers pointing right: the region turns a quarter clockwise (wrist → knuckles points up in it).
        let right = hand_from_pose([70.0, 200.0], [100.0, 200.0], 0.9);
        let roi = right.roi().expect("a region");
        assert!(
            (roi.rotation - std::f32::consts::FRAC_PI_2).abs() < 1e-5,
            "{roi:?}"
        );
        assert!((roi.center_in_image[0] - 106.0).abs() < 1e-3, "{roi:?}");
    }

    #[test]
    fn no_hand_region_from_a_hidden_wrist_or_broken_points() {
        assert!(
            hand_from_pose([100.0, 230.0], [100.0, 200.0], 0.05)
                .roi()
                .is_none()
        );
        assert!(
            hand_from_pose([100.0, 230.0], [100.0, 200.0], f32::NAN)
                .roi()
                .is_none()
        );
        assert!(
            hand_from_pose([f32::NAN, 230.0], [100.0, 200.0], 0.9)
                .roi()
                .is_none()
        );
        // All three points on one spot: no size.
        let mut flat = hand_from_pose([100.0, 200.0], [100.0, 200.0], 0.9);
        flat.index_in_image = [100.0, 200.0];
        flat.pinky_in_image = [100.0, 200.0];
        assert!(flat.roi().is_none());
    }

    #[test]
    fn tracking_roi_of_an_upright_hand() {
        // Wrist at the bottom, fingers up: rotation 0, box around the subset, shifted up, doubled, squared.
        let mut lms = vec![lm(100.0, 100.0); HAND_LANDMARK_COUNT];
        lms[0] = lm(100.0, 200.0);
        for (i, x) in [(5, 80.0), (9, 100.0), (13, 120.0), (17, 130.0)] {
            lms[i] = lm(x, 120.0);
            lms[i + 1] = lm(x, 100.0);
        }
        for i in [1, 2, 3] {
            lms[i] = lm(70.0, 180.0 - 20.0 * i as f32);
        }
        let roi = tracking_roi_from_landmarks(&lms).unwrap();
        assert!(roi.rotation.abs() < 1e-6);
        // Subset box: x 70..130, y 100..200 → 60×100, centre (100, 150); shift −0.1·100; square 100; ×2.
        assert!(
            (roi.center_in_image[0] - 100.0).abs() < 1e-3
                && (roi.center_in_image[1] - 140.0).abs() < 1e-3,
            "{roi:?}"
        );
        assert!(
            (roi.size_in_image[0] - 200.0).abs() < 1e-3
                && (roi.size_in_image[1] - 200.0).abs() < 1e-3
        );
    }
}
