//! BlazePose: person detection → ROI → 33 landmarks (+ world landmarks), as MediaPipe 0.10.21's
//! `pose_detection_cpu` and `pose_landmark_by_roi_cpu` graphs.

use std::time::Instant;

use crate::vision::crop::{Border, CropSpec, crop_to_tensor};
use crate::vision::detection::{
    DecodeOptions, Detection, NMS_IOU_THRESHOLD, POSE_DETECTION_ANCHORS, decode_detections,
    sigmoid, ssd_anchors, weighted_nms,
};
use crate::vision::error::ModelError;
use crate::vision::image::RgbImage;
use crate::vision::landmarks::{
    ImageLandmark, POSE_LANDMARK_COUNT, POSE_MODEL_LANDMARK_COUNT, WorldLandmark,
};
use crate::vision::model::OnnxModel;
use crate::vision::people::{Appearance, BodyInImage, Candidate, add_tile_candidates};
use crate::vision::roi::{Roi, rotation_from_points};
use crate::vision::timings::{Stage, StageTimings};

const DETECTOR_CROP: CropSpec = CropSpec {
    width: 224,
    height: 224,
    border: Border::Zero,
    range: (-1.0, 1.0),
    keep_aspect_ratio: true,
};
const LANDMARK_CROP: CropSpec = CropSpec {
    width: 256,
    height: 256,
    border: Border::Replicate,
    range: (0.0, 1.0),
    keep_aspect_ratio: true,
};
/// Heatmap resolution of the pose landmark model.
const HEATMAP_SIZE: usize = 64;
/// The ROI is the detection's (or aux points') size × 1.25, squared.
const ROI_SCALE: f32 = 1.25;
/// A heatmap window is used only when its peak confidence reaches this.
const MIN_CONFIDENCE_TO_REFINE: f32 = 0.5;

/// The heatmap refinement window: 7 is MediaPipe's graph (C++ and Tasks API), 9 what the legacy
/// `mp.solutions.pose` Python API effectively uses.
pub const DEFAULT_REFINE_KERNEL: usize = 7;
/// The kernel that reproduces the legacy Python API (and the reference files).
pub const LEGACY_REFINE_KERNEL: usize = 9;

/// Runs the pose detector on the whole frame and keeps the best person.
pub struct PoseDetector {
    model: OnnxModel,
    anchors: Vec<[f32; 2]>,
    tensor: Vec<f32>,
    detections: Vec<Detection>,
    pub min_score: f32,
}

impl PoseDetector {
    pub fn new(model: OnnxModel, min_score: f32) -> Self {
        let tensor = vec![0.0; model.input_len()];
        Self {
            model,
            anchors: ssd_anchors(&POSE_DETECTION_ANCHORS),
            tensor,
            detections: Vec::new(),
            min_score,
        }
    }

    /// The ROI around the highest-scoring person, or `None` when nobody scores above `min_score`
    /// (MediaPipe's legacy graph: only the first detection is used).
    pub fn detect(
        &mut self,
        image: &RgbImage,
        timings: &mut StageTimings,
    ) -> Result<Option<Roi>, ModelError> {
        Ok(self
            .detect_all(image, timings)?
            .into_iter()
            .next()
            .map(|c| c.roi))
    }

    /// Every person scoring above `min_score`, after weighted non-max suppression, best first: each
    /// with the region the landmark model would look at and the body keypoints (hip centre, shoulder
    /// centre) the multi-person tracker associates by.
    pub fn detect_all(
        &mut self,
        image: &RgbImage,
        timings: &mut StageTimings,
    ) -> Result<Vec<Candidate>, ModelError> {
        self.detect_in(image, None, timings)
    }

    /// The whole image, then `tile` if any, whose candidates are added where the whole image found
    /// nobody and nobody `tracked` is near ([`add_tile_candidates`]).
    pub fn detect_with_tile(
        &mut self,
        image: &RgbImage,
        tile: Option<Roi>,
        tracked: &[BodyInImage],
        timings: &mut StageTimings,
    ) -> Result<Vec<Candidate>, ModelError> {
        let mut found = self.detect_in(image, None, timings)?;
        if let Some(tile) = tile {
            let in_tile = self.detect_in(image, Some(tile), timings)?;
            add_tile_candidates(&mut found, in_tile, tracked);
        }
        Ok(found)
    }

    /// Like [`Self::detect_all`], in `region` of the image only (`None`: the whole image): the detector
    /// sees the region scaled to its 224 px input, so a person small in the whole frame is larger there.
    pub fn detect_in(
        &mut self,
        image: &RgbImage,
        region: Option<Roi>,
        timings: &mut StageTimings,
    ) -> Result<Vec<Candidate>, ModelError> {
        let start = Instant::now();
        let full = Roi::full_image(image.width, image.height);
        let geometry = crop_to_tensor(
            image,
            region.unwrap_or(full),
            &DETECTOR_CROP,
            &mut self.tensor,
        );
        timings.add(Stage::PoseDetectionCrop, start.elapsed());

        let start = Instant::now();
        let options = DecodeOptions {
            num_keypoints: 4,
            coords_per_anchor: 12,
            scale: 224.0,
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
        timings.add(Stage::PoseDetectionInfer, start.elapsed());

        let start = Instant::now();
        let to_image = |kp: [f32; 2]| {
            let [x, y] = geometry.letterbox.remove(kp);
            match region {
                // The whole image: MediaPipe's own arithmetic (exact to the references).
                None => [x * image.width as f32, y * image.height as f32],
                Some(region) => region.image_from_roi([x, y]),
            }
        };
        let candidates = weighted_nms(std::mem::take(&mut self.detections), NMS_IOU_THRESHOLD)
            .into_iter()
            .filter_map(|d| {
                let hips = to_image(*d.keypoints.first()?);
                let scale_point = to_image(*d.keypoints.get(DETECTION_SCALE_POINT)?);
                let shoulders = to_image(*d.keypoints.get(DETECTION_SHOULDER_CENTRE)?);
                let body = BodyInImage {
                    hips_in_image: hips,
                    shoulders_in_image: shoulders,
                    legs_visibility: None,
                };
                Some(Candidate {
                    roi: roi_from_alignment_points(hips, scale_point),
                    appearance: Appearance::of(image, &body),
                    body,
                    score: d.score,
                })
            })
            .collect();
        timings.add(Stage::PoseDetectionDecode, start.elapsed());
        Ok(candidates)
    }
}

/// The detector's keypoints: 0 the hip centre, 1 the full body's size and rotation point, 2 the
/// shoulder centre, 3 the upper body's size and rotation point.
const DETECTION_SCALE_POINT: usize = 1;
const DETECTION_SHOULDER_CENTRE: usize = 2;

/// MediaPipe's `AlignmentPointsRectsCalculator` + `RectTransformationCalculator` for pose: centred on
/// `center`, twice the distance to `scale_point` wide, rotated so `center → scale_point` points up, then
/// squared and scaled by 1.25.
pub fn roi_from_alignment_points(center_in_image: [f32; 2], scale_point_in_image: [f32; 2]) -> Roi {
    let dx = scale_point_in_image[0] - center_in_image[0];
    let dy = scale_point_in_image[1] - center_in_image[1];
    let size = (dx * dx + dy * dy).sqrt() * 2.0;
    Roi {
        center_in_image,
        size_in_image: [size, size],
        rotation: rotation_from_points(center_in_image, scale_point_in_image),
    }
    .transformed([0.0, 0.0], true, ROI_SCALE)
}

/// Landmarks as the model gives them, projected into the image; before smoothing.
#[derive(Clone, Debug, PartialEq)]
pub struct RawPose {
    /// 33 body + 2 auxiliary landmarks.
    pub landmarks: Vec<ImageLandmark>,
    pub world_landmarks: Vec<WorldLandmark>,
    pub presence: f32,
    pub roi: Roi,
}

impl RawPose {
    /// The two auxiliary points (hip centre and body scale point) that give the next frame's ROI.
    pub fn aux_in_image(&self) -> [[f32; 2]; 2] {
        [
            self.landmarks[POSE_LANDMARK_COUNT].pos_in_image,
            self.landmarks[POSE_LANDMARK_COUNT + 1].pos_in_image,
        ]
    }
}

/// Runs the pose landmark model in a ROI.
pub struct PoseLandmarker {
    model: OnnxModel,
    tensor: Vec<f32>,
    /// Heatmap refinement window (odd); see [`DEFAULT_REFINE_KERNEL`].
    pub refine_kernel: usize,
    /// The landmarks are accepted when the pose presence is above this (strictly, as MediaPipe).
    pub min_presence: f32,
}

impl PoseLandmarker {
    pub fn new(model: OnnxModel, refine_kernel: usize, min_presence: f32) -> Self {
        let tensor = vec![0.0; model.input_len()];
        Self {
            model,
            tensor,
            refine_kernel,
            min_presence,
        }
    }

    /// Landmarks in `roi`, or `None` when the model says no person is there.
    pub fn landmarks(
        &mut self,
        image: &RgbImage,
        roi: Roi,
        timings: &mut StageTimings,
    ) -> Result<Option<RawPose>, ModelError> {
        let start = Instant::now();
        let geometry = crop_to_tensor(image, roi, &LANDMARK_CROP, &mut self.tensor);
        timings.add(Stage::PoseLandmarkCrop, start.elapsed());

        let start = Instant::now();
        let kernel = self.refine_kernel;
        let mut decoded = self
            .model
            .run(&self.tensor, |out| -> Result<_, ModelError> {
                let presence = out.get("Identity_1")?.first().copied().unwrap_or(0.0);
                let raw = out.get("Identity")?;
                let heatmap = out.get("Identity_3")?;
                let world = out.get("Identity_4")?;
                // Decoding is cheap next to the model; it is done here so the output tensors need no copy.
                let decode_start = Instant::now();
                let mut in_crop = [[0.0_f32; 5]; POSE_MODEL_LANDMARK_COUNT];
                for (i, lm) in in_crop.iter_mut().enumerate() {
                    let r = &raw[i * 5..i * 5 + 5];
                    *lm = [
                        r[0] / 256.0,
                        r[1] / 256.0,
                        r[2] / 256.0,
                        sigmoid(r[3]),
                        sigmoid(r[4]),
                    ];
                }
                refine_from_heatmap(&mut in_crop, heatmap, kernel);
                let world: Vec<[f32; 3]> = world
                    .chunks_exact(3)
                    .take(POSE_LANDMARK_COUNT)
                    .map(|c| [c[0], c[1], c[2]])
                    .collect();
                Ok((presence, in_crop, world, decode_start))
            })??;
        let decode_start = decoded.3;
        timings.add(
            Stage::PoseLandmarkInfer,
            decode_start.saturating_duration_since(start),
        );

        // MediaPipe's ThresholdingCalculator accepts only a score strictly above the threshold.
        if decoded.0.is_nan() || decoded.0 <= self.min_presence {
            timings.add(Stage::PoseLandmarkDecode, decode_start.elapsed());
            return Ok(None);
        }
        let lb = geometry.letterbox;
        let (sin, cos) = roi.rotation.sin_cos();
        let landmarks = decoded.1[..POSE_LANDMARK_COUNT + 2]
            .iter()
            .map(|&[x, y, z, visibility, presence]| ImageLandmark {
                pos_in_image: roi.image_from_roi(lb.remove([x, y])),
                depth: lb.scale_x(z) * roi.size_in_image[0] / image.width as f32,
                visibility,
                presence,
            })
            .collect::<Vec<_>>();
        let world_landmarks = std::mem::take(&mut decoded.2)
            .into_iter()
            .zip(&landmarks)
            .map(|([x, y, z], lm)| WorldLandmark {
                pos_in_world: [cos * x - sin * y, sin * x + cos * y, z],
                visibility: lm.visibility,
            })
            .collect();
        timings.add(Stage::PoseLandmarkDecode, decode_start.elapsed());
        Ok(Some(RawPose {
            landmarks,
            world_landmarks,
            presence: decoded.0,
            roi,
        }))
    }
}

/// MediaPipe's `RefineLandmarksFromHeatmapCalculator`: replace x, y (crop units) by the confidence-weighted
/// centre of a `kernel × kernel` window of `sigmoid(heatmap)` around the point, when the window's peak
/// reaches [`MIN_CONFIDENCE_TO_REFINE`]. Points outside the heatmap are left alone.
pub fn refine_from_heatmap(landmarks: &mut [[f32; 5]], heatmap: &[f32], kernel: usize) {
    let (hm_w, hm_h) = (HEATMAP_SIZE as i32, HEATMAP_SIZE as i32);
    let channels = landmarks.len();
    if heatmap.len() < HEATMAP_SIZE * HEATMAP_SIZE * channels {
        return;
    }
    let offset = (kernel as i32 - 1) / 2;
    for (index, lm) in landmarks.iter_mut().enumerate() {
        // Truncation toward zero, as C++'s float → int conversion.
        let center_col = (lm[0] * hm_w as f32) as i32;
        let center_row = (lm[1] * hm_h as f32) as i32;
        if center_col < 0 || center_col >= hm_w || center_row < 0 || center_row >= hm_h {
            continue;
        }
        let (begin_col, end_col) = (
            (center_col - offset).max(0),
            (center_col + offset + 1).min(hm_w),
        );
        let (begin_row, end_row) = (
            (center_row - offset).max(0),
            (center_row + offset + 1).min(hm_h),
        );
        let (mut sum, mut weighted_col, mut weighted_row, mut max_confidence) =
            (0.0_f32, 0.0_f32, 0.0_f32, 0.0_f32);
        for row in begin_row..end_row {
            for col in begin_col..end_col {
                let idx = (row as usize * HEATMAP_SIZE + col as usize) * channels + index;
                let confidence = sigmoid(heatmap[idx]);
                sum += confidence;
                max_confidence = max_confidence.max(confidence);
                weighted_col += col as f32 * confidence;
                weighted_row += row as f32 * confidence;
            }
        }
        if max_confidence >= MIN_CONFIDENCE_TO_REFINE && sum > 0.0 {
            lm[0] = weighted_col / hm_w as f32 / sum;
            lm[1] = weighted_row / hm_h as f32 / sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_refinement_moves_to_the_weighted_peak() {
        let channels = 2;
        let mut heatmap = vec![-20.0_f32; HEATMAP_SIZE * HEATMAP_SIZE * channels];
        // Channel 0: a confident blob at (col 10, row 20) and (11, 20) → centre at col 10.5.
        heatmap[(20 * HEATMAP_SIZE + 10) * channels] = 20.0;
        heatmap[(20 * HEATMAP_SIZE + 11) * channels] = 20.0;
        let mut lms = [
            [12.0 / 64.0, 21.0 / 64.0, 0.0, 1.0, 1.0],
            [0.5, 0.5, 0.0, 1.0, 1.0],
        ];
        refine_from_heatmap(&mut lms, &heatmap, 7);
        assert!((lms[0][0] - 10.5 / 64.0).abs() < 1e-4, "{:?}", lms[0]);
        assert!((lms[0][1] - 20.0 / 64.0).abs() < 1e-4);
        // Channel 1 has no confident cell: unchanged.
        assert_eq!(lms[1][..2], [0.5, 0.5]);
        // A window too small to reach the blob leaves the point alone.
        let mut far = [
            [30.0 / 64.0, 21.0 / 64.0, 0.0, 1.0, 1.0],
            [0.5, 0.5, 0.0, 1.0, 1.0],
        ];
        refine_from_heatmap(&mut far, &heatmap, 7);
        assert_eq!(far[0][0], 30.0 / 64.0);
    }

    #[test]
    fn roi_from_upright_person() {
        let roi = roi_from_alignment_points([100.0, 200.0], [100.0, 120.0]);
        assert_eq!(roi.center_in_image, [100.0, 200.0]);
        assert!((roi.size_in_image[0] - 200.0).abs() < 1e-4);
        assert!(roi.rotation.abs() < 1e-6);
    }
}
