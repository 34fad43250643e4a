//! The JSON schema of results, used by `livepose analyze` (files), the server (`pose_result`) and the
//! recorder: the schema of the MediaPipe reference files (see the README),
//! plus livepose's own keys (angles, timings, the person's actual hand).

use serde::Serialize;

use crate::vision::landmarks::{Hand, Pose};
use crate::vision::result::FrameResult;
use crate::vision::timings::StageTimings;

/// px are rounded to 1e-4 and everything else to 1e-6, as the reference files.
fn round_px(v: f32) -> f64 {
    (f64::from(v) * 1e4).round() / 1e4
}
fn round6(v: f32) -> f64 {
    (f64::from(v) * 1e6).round() / 1e6
}

#[derive(Serialize)]
pub struct PoseLandmarkJson {
    x_px: f64,
    y_px: f64,
    z: f64,
    visibility: f64,
}

#[derive(Serialize)]
pub struct WorldLandmarkJson {
    x_m: f64,
    y_m: f64,
    z_m: f64,
    visibility: f64,
}

#[derive(Serialize)]
pub struct PoseJson {
    landmarks: Vec<PoseLandmarkJson>,
    world_landmarks: Vec<WorldLandmarkJson>,
    presence: f64,
}

#[derive(Serialize)]
pub struct HandLandmarkJson {
    x_px: f64,
    y_px: f64,
    z: f64,
}

#[derive(Serialize)]
pub struct HandWorldLandmarkJson {
    x_m: f64,
    y_m: f64,
    z_m: f64,
}

#[derive(Serialize)]
pub struct HandJson {
    /// MediaPipe's label (assumes a mirrored image), as in the references.
    handedness: &'static str,
    score: f64,
    /// The person's actual hand given `--mirrored` (default: an ordinary, unmirrored camera image).
    person_hand: &'static str,
    landmarks: Vec<HandLandmarkJson>,
    world_landmarks: Vec<HandWorldLandmarkJson>,
}

#[derive(Serialize)]
pub struct AngleJson {
    radians: f64,
    confidence: f64,
}

/// One frame or photo.
#[derive(Serialize)]
pub struct FrameJson {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<usize>,
    width: u32,
    height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_us: Option<i64>,
    pose: Option<PoseJson>,
    hands: Vec<HandJson>,
    angles: std::collections::BTreeMap<&'static str, AngleJson>,
    model: &'static str,
    pose_detector_ran: bool,
    palm_detector_ran: bool,
    timings_ms: StageTimings,
}

pub fn pose_json(pose: &Pose) -> PoseJson {
    PoseJson {
        landmarks: pose
            .landmarks
            .iter()
            .map(|l| PoseLandmarkJson {
                x_px: round_px(l.pos_in_image[0]),
                y_px: round_px(l.pos_in_image[1]),
                z: round6(l.depth),
                visibility: round6(l.visibility),
            })
            .collect(),
        world_landmarks: pose
            .world_landmarks
            .iter()
            .map(|w| WorldLandmarkJson {
                x_m: round6(w.pos_in_world[0]),
                y_m: round6(w.pos_in_world[1]),
                z_m: round6(w.pos_in_world[2]),
                visibility: round6(w.visibility),
            })
            .collect(),
        presence: round6(pose.presence),
    }
}

pub fn hand_json(hand: &Hand) -> HandJson {
    HandJson {
        handedness: hand.handedness_mediapipe.label(),
        score: round6(hand.handedness_score),
        person_hand: hand.handedness.label(),
        landmarks: hand
            .landmarks
            .iter()
            .map(|l| HandLandmarkJson {
                x_px: round_px(l.pos_in_image[0]),
                y_px: round_px(l.pos_in_image[1]),
                z: round6(l.depth),
            })
            .collect(),
        world_landmarks: hand
            .world_landmarks
            .iter()
            .map(|w| HandWorldLandmarkJson {
                x_m: round6(w.pos_in_world[0]),
                y_m: round6(w.pos_in_world[1]),
                z_m: round6(w.pos_in_world[2]),
            })
            .collect(),
    }
}

/// The joint angles by name (`left_elbow`, …), radians with their confidence.
pub fn angles_json(result: &FrameResult) -> std::collections::BTreeMap<&'static str, AngleJson> {
    result
        .angles
        .angles
        .iter()
        .map(|a| {
            (
                a.joint.name(),
                AngleJson {
                    radians: round6(a.radians),
                    confidence: round6(a.confidence),
                },
            )
        })
        .collect()
}

/// Builds the JSON object for one result. `frame` and `timestamp_us` are written for clips only.
pub fn frame_json(
    file: &str,
    frame: Option<usize>,
    result: &FrameResult,
    model: &'static str,
) -> FrameJson {
    FrameJson {
        file: file.to_owned(),
        frame,
        width: result.width,
        height: result.height,
        timestamp_us: frame.map(|_| result.timestamp_us),
        pose: result.pose.as_ref().map(pose_json),
        hands: result.hands.iter().map(hand_json).collect(),
        angles: angles_json(result),
        model,
        pose_detector_ran: result.pose_detector_ran,
        palm_detector_ran: result.palm_detector_ran,
        timings_ms: result.timings,
    }
}
