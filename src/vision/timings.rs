//! Per-stage timings, recorded for every frame.

use std::time::{Duration, Instant};

use serde::ser::SerializeMap as _;

/// The named steps of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    PoseDetectionCrop,
    PoseDetectionInfer,
    PoseDetectionDecode,
    PoseLandmarkCrop,
    PoseLandmarkInfer,
    PoseLandmarkDecode,
    PalmDetectionCrop,
    PalmDetectionInfer,
    PalmDetectionDecode,
    HandLandmarkCrop,
    HandLandmarkInfer,
    HandLandmarkDecode,
    Smoothing,
    Angles,
    /// Wall time of the whole frame (branches may overlap, so this is not the sum of the others).
    Total,
}

impl Stage {
    pub const COUNT: usize = 15;
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::PoseDetectionCrop,
        Stage::PoseDetectionInfer,
        Stage::PoseDetectionDecode,
        Stage::PoseLandmarkCrop,
        Stage::PoseLandmarkInfer,
        Stage::PoseLandmarkDecode,
        Stage::PalmDetectionCrop,
        Stage::PalmDetectionInfer,
        Stage::PalmDetectionDecode,
        Stage::HandLandmarkCrop,
        Stage::HandLandmarkInfer,
        Stage::HandLandmarkDecode,
        Stage::Smoothing,
        Stage::Angles,
        Stage::Total,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::PoseDetectionCrop => "pose_detection_crop",
            Stage::PoseDetectionInfer => "pose_detection_infer",
            Stage::PoseDetectionDecode => "pose_detection_decode",
            Stage::PoseLandmarkCrop => "pose_landmark_crop",
            Stage::PoseLandmarkInfer => "pose_landmark_infer",
            Stage::PoseLandmarkDecode => "pose_landmark_decode",
            Stage::PalmDetectionCrop => "palm_detection_crop",
            Stage::PalmDetectionInfer => "palm_detection_infer",
            Stage::PalmDetectionDecode => "palm_detection_decode",
            Stage::HandLandmarkCrop => "hand_landmark_crop",
            Stage::HandLandmarkInfer => "hand_landmark_infer",
            Stage::HandLandmarkDecode => "hand_landmark_decode",
            Stage::Smoothing => "smoothing",
            Stage::Angles => "angles",
            Stage::Total => "total",
        }
    }

    /// True for the ONNX Runtime calls.
    pub fn is_inference(self) -> bool {
        matches!(
            self,
            Stage::PoseDetectionInfer
                | Stage::PoseLandmarkInfer
                | Stage::PalmDetectionInfer
                | Stage::HandLandmarkInfer
        )
    }
}

/// Milliseconds spent in each stage this frame; stages that did not run are `None`. A stage that runs
/// more than once (one hand landmark pass per hand) accumulates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimings {
    ms: [Option<f32>; Stage::COUNT],
}

impl StageTimings {
    pub fn add(&mut self, stage: Stage, elapsed: Duration) {
        let slot = &mut self.ms[stage as usize];
        *slot = Some(slot.unwrap_or(0.0) + elapsed.as_secs_f32() * 1000.0);
    }

    /// Times `f` as `stage`.
    pub fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add(stage, start.elapsed());
        out
    }

    pub fn get(&self, stage: Stage) -> Option<f32> {
        self.ms[stage as usize]
    }

    /// Adds every stage of `other` into `self` (merging the hand branch's timings).
    pub fn merge(&mut self, other: &StageTimings) {
        for stage in Stage::ALL {
            if let Some(ms) = other.get(stage) {
                self.add(stage, Duration::from_secs_f32(ms / 1000.0));
            }
        }
    }

    /// Stages that ran, with their milliseconds.
    pub fn iter(&self) -> impl Iterator<Item = (Stage, f32)> + '_ {
        Stage::ALL
            .into_iter()
            .filter_map(|s| self.get(s).map(|ms| (s, ms)))
    }
}

impl serde::Serialize for StageTimings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (stage, ms) in self.iter() {
            map.serialize_entry(stage.name(), &ms)?;
        }
        map.end()
    }
}
