//! SSD anchors, detection decoding and weighted non-maximum suppression, as MediaPipe's
//! `SsdAnchorsCalculator`, `TensorsToDetectionsCalculator` and `NonMaxSuppressionCalculator` (WEIGHTED).

use crate::vision::roi::iou;

/// Anchor layout of an SSD detector with `fixed_anchor_size` (every anchor is 1×1, only centres differ).
#[derive(Clone, Debug, PartialEq)]
pub struct AnchorOptions {
    pub input_size: u32,
    /// One stride per layer; consecutive equal strides share a grid.
    pub strides: &'static [u32],
    /// Centre offset inside a cell (0.5 = cell centre).
    pub offset: f32,
}

/// BlazePose detector: 224 px, 2254 anchors.
pub const POSE_DETECTION_ANCHORS: AnchorOptions = AnchorOptions {
    input_size: 224,
    strides: &[8, 16, 32, 32, 32],
    offset: 0.5,
};
/// Palm detector: 192 px, 2016 anchors.
pub const PALM_DETECTION_ANCHORS: AnchorOptions = AnchorOptions {
    input_size: 192,
    strides: &[8, 16, 16, 16],
    offset: 0.5,
};

/// Anchors per layer and cell: one for aspect ratio 1.0 plus MediaPipe's interpolated-scale anchor.
const ANCHORS_PER_LAYER: usize = 2;

/// Anchor centres in tensor units (0..1), in the order the model's outputs use: layer group, then y, x, anchor.
pub fn ssd_anchors(options: &AnchorOptions) -> Vec<[f32; 2]> {
    let mut anchors = Vec::new();
    let mut layer = 0;
    while layer < options.strides.len() {
        let stride = options.strides[layer];
        let mut last = layer;
        while last < options.strides.len() && options.strides[last] == stride {
            last += 1;
        }
        let per_cell = ANCHORS_PER_LAYER * (last - layer);
        let size = options.input_size.div_ceil(stride);
        for y in 0..size {
            for x in 0..size {
                let center = [
                    (x as f32 + options.offset) / size as f32,
                    (y as f32 + options.offset) / size as f32,
                ];
                anchors.extend(std::iter::repeat_n(center, per_cell));
            }
        }
        layer = last;
    }
    anchors
}

/// One detection in tensor units (0..1 of the letterboxed input).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub score: f32,
    /// `[xmin, ymin, width, height]`.
    pub bbox: [f32; 4],
    pub keypoints: Vec<[f32; 2]>,
}

impl Detection {
    fn corners(&self) -> [f32; 4] {
        [
            self.bbox[0],
            self.bbox[1],
            self.bbox[0] + self.bbox[2],
            self.bbox[1] + self.bbox[3],
        ]
    }
}

/// Logits are clipped to ±100 before the sigmoid (MediaPipe's `score_clipping_thresh`).
const SCORE_CLIP: f32 = 100.0;

/// Decoding parameters of an SSD head.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    pub num_keypoints: usize,
    pub coords_per_anchor: usize,
    /// Raw box values are in pixels of this input size.
    pub scale: f32,
    pub min_score: f32,
}

/// Decodes raw boxes `[anchors × coords]` and score logits `[anchors]` into detections above `min_score`
/// (reverse output order: x centre, y centre, w, h, then keypoint x, y pairs).
pub fn decode_detections(
    raw_boxes: &[f32],
    raw_scores: &[f32],
    anchors: &[[f32; 2]],
    options: &DecodeOptions,
    out: &mut Vec<Detection>,
) {
    out.clear();
    let n = options.coords_per_anchor;
    for (i, (anchor, &logit)) in anchors.iter().zip(raw_scores).enumerate() {
        let score = sigmoid(logit.clamp(-SCORE_CLIP, SCORE_CLIP));
        if score < options.min_score {
            continue;
        }
        let Some(raw) = raw_boxes.get(i * n..(i + 1) * n) else {
            break;
        };
        let s = options.scale;
        let xc = raw[0] / s + anchor[0];
        let yc = raw[1] / s + anchor[1];
        let w = raw[2] / s;
        let h = raw[3] / s;
        let keypoints = (0..options.num_keypoints)
            .map(|k| {
                [
                    raw[4 + 2 * k] / s + anchor[0],
                    raw[5 + 2 * k] / s + anchor[1],
                ]
            })
            .collect();
        out.push(Detection {
            score,
            bbox: [xc - w / 2.0, yc - h / 2.0, w, h],
            keypoints,
        });
    }
}

/// IoU above which detections are merged.
pub const NMS_IOU_THRESHOLD: f32 = 0.3;

/// Weighted NMS: repeatedly take the best remaining detection, average the box and keypoints of every
/// remaining detection overlapping it by more than `iou_threshold` (itself included) weighted by score,
/// keep the best score. Output is in score order.
pub fn weighted_nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut output = Vec::new();
    let mut remaining = detections;
    while let Some(best) = remaining.first() {
        let best_corners = best.corners();
        let (candidates, rest): (Vec<Detection>, Vec<Detection>) = remaining
            .into_iter()
            .partition(|d| iou(d.corners(), best_corners) > iou_threshold);
        let Some(top) = candidates.first() else {
            // Unreachable for finite boxes (a box overlaps itself), but a NaN box must not loop forever.
            break;
        };
        let mut merged = top.clone();
        let total: f32 = candidates.iter().map(|d| d.score).sum();
        let mut corners = [0.0_f32; 4];
        let mut keypoints = vec![[0.0_f32; 2]; top.keypoints.len()];
        for d in &candidates {
            for (acc, v) in corners.iter_mut().zip(d.corners()) {
                *acc += v * d.score;
            }
            for (acc, kp) in keypoints.iter_mut().zip(&d.keypoints) {
                acc[0] += kp[0] * d.score;
                acc[1] += kp[1] * d.score;
            }
        }
        let [x0, y0, x1, y1] = corners.map(|v| v / total);
        merged.bbox = [x0, y0, x1 - x0, y1 - y0];
        merged.keypoints = keypoints
            .into_iter()
            .map(|[x, y]| [x / total, y / total])
            .collect();
        output.push(merged);
        remaining = rest;
    }
    output
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_counts_and_ends() {
        let pose = ssd_anchors(&POSE_DETECTION_ANCHORS);
        assert_eq!(pose.len(), 2254);
        assert_eq!(pose[0], [0.5 / 28.0, 0.5 / 28.0]);
        assert_eq!(pose[1], pose[0]);
        assert_eq!(pose[2], [1.5 / 28.0, 0.5 / 28.0]);
        // Last 28×28×2 anchors start the 14×14 grid.
        assert_eq!(pose[28 * 28 * 2], [0.5 / 14.0, 0.5 / 14.0]);
        assert_eq!(*pose.last().unwrap(), [6.5 / 7.0, 6.5 / 7.0]);
        let palm = ssd_anchors(&PALM_DETECTION_ANCHORS);
        assert_eq!(palm.len(), 2016);
        assert_eq!(palm[0], [0.5 / 24.0, 0.5 / 24.0]);
        assert_eq!(*palm.last().unwrap(), [11.5 / 12.0, 11.5 / 12.0]);
        // The 12×12 grid has 6 anchors per cell.
        assert_eq!(palm[24 * 24 * 2 + 5], [0.5 / 12.0, 0.5 / 12.0]);
        assert_eq!(palm[24 * 24 * 2 + 6], [1.5 / 12.0, 0.5 / 12.0]);
    }

    #[test]
    fn decode_applies_anchor_scale_and_threshold() {
        let anchors = [[0.25, 0.5], [0.75, 0.5]];
        let options = DecodeOptions {
            num_keypoints: 1,
            coords_per_anchor: 6,
            scale: 100.0,
            min_score: 0.5,
        };
        let raw = [
            10.0, -10.0, 20.0, 40.0, 5.0, 5.0, /* second */ 0.0, 0.0, 10.0, 10.0, 0.0, 0.0,
        ];
        let mut out = Vec::new();
        decode_detections(&raw, &[2.0, -2.0], &anchors, &options, &mut out);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        assert!((d.score - sigmoid(2.0)).abs() < 1e-7);
        let expect = [0.35 - 0.1, 0.4 - 0.2, 0.2, 0.4];
        for (a, b) in d.bbox.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{:?}", d.bbox);
        }
        assert!((d.keypoints[0][0] - 0.3).abs() < 1e-6 && (d.keypoints[0][1] - 0.55).abs() < 1e-6);
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_separate_boxes() {
        let det = |score: f32, x: f32| Detection {
            score,
            bbox: [x, 0.0, 1.0, 1.0],
            keypoints: vec![[x, 0.0]],
        };
        let out = weighted_nms(
            vec![det(0.6, 0.1), det(0.9, 0.0), det(0.8, 5.0)],
            NMS_IOU_THRESHOLD,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        // (0.9·0 + 0.6·0.1) / 1.5 = 0.04
        assert!(
            (out[0].bbox[0] - 0.04).abs() < 1e-6 && (out[0].keypoints[0][0] - 0.04).abs() < 1e-6
        );
        assert!((out[0].bbox[2] - 1.0).abs() < 1e-6);
        assert_eq!(out[1].bbox, [5.0, 0.0, 1.0, 1.0]);
        assert!(weighted_nms(Vec::new(), 0.3).is_empty());
    }
}
