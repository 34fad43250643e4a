//! What the engine produces: body and hand landmarks in image pixels and in metres, per frame.

use serde::Serialize;

use crate::vision::roi::Roi;

/// BlazePose's 33 body landmarks.
pub const POSE_LANDMARK_COUNT: usize = 33;
/// Landmarks the pose model outputs: 33 body, 2 auxiliary (tracking ROI), 4 unused.
pub const POSE_MODEL_LANDMARK_COUNT: usize = 39;
/// The hand model's 21 landmarks.
pub const HAND_LANDMARK_COUNT: usize = 21;

/// BlazePose landmark indices by name (MediaPipe's `PoseLandmark`; "left" is the person's left). A
/// right-side landmark is always its left counterpart + 1.
pub mod pose_index {
    pub const NOSE: usize = 0;
    pub const LEFT_EAR: usize = 7;
    pub const RIGHT_EAR: usize = 8;
    pub const LEFT_SHOULDER: usize = 11;
    pub const RIGHT_SHOULDER: usize = 12;
    pub const LEFT_ELBOW: usize = 13;
    pub const RIGHT_ELBOW: usize = 14;
    pub const LEFT_WRIST: usize = 15;
    pub const RIGHT_WRIST: usize = 16;
    pub const LEFT_PINKY: usize = 17;
    pub const LEFT_INDEX: usize = 19;
    pub const LEFT_HIP: usize = 23;
    pub const RIGHT_HIP: usize = 24;
    pub const LEFT_KNEE: usize = 25;
    pub const RIGHT_KNEE: usize = 26;
    pub const LEFT_ANKLE: usize = 27;
    pub const RIGHT_ANKLE: usize = 28;
    pub const LEFT_HEEL: usize = 29;
    pub const RIGHT_HEEL: usize = 30;
    pub const LEFT_FOOT_INDEX: usize = 31;
    pub const RIGHT_FOOT_INDEX: usize = 32;
}

/// Hand landmark indices by name (MediaPipe's `HandLandmark`).
pub mod hand_index {
    pub const WRIST: usize = 0;
    pub const INDEX_FINGER_MCP: usize = 5;
    pub const MIDDLE_FINGER_MCP: usize = 9;
    pub const PINKY_MCP: usize = 17;
    /// Each finger's first joint (the thumb's CMC, the others' MCP); the next three follow it.
    pub const FINGER_BASES: [usize; 5] = [1, 5, 9, 13, 17];
}

/// BlazePose landmark names, in model order.
pub const POSE_LANDMARK_NAMES: [&str; POSE_LANDMARK_COUNT] = [
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
];

/// The hand model's landmark names, in model order (MediaPipe's `HandLandmark`).
pub const HAND_LANDMARK_NAMES: [&str; HAND_LANDMARK_COUNT] = [
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_finger_mcp",
    "index_finger_pip",
    "index_finger_dip",
    "index_finger_tip",
    "middle_finger_mcp",
    "middle_finger_pip",
    "middle_finger_dip",
    "middle_finger_tip",
    "ring_finger_mcp",
    "ring_finger_pip",
    "ring_finger_dip",
    "ring_finger_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
];

/// Body connections drawn as bones (MediaPipe's POSE_CONNECTIONS).
pub const POSE_CONNECTIONS: [(usize, usize); 35] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
];

/// Hand connections (MediaPipe's HAND_CONNECTIONS).
pub const HAND_CONNECTIONS: [(usize, usize); 21] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (5, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (9, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (13, 17),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
];

/// A landmark in the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ImageLandmark {
    /// x, y in image pixels (no half-pixel shift; may lie outside the image).
    pub pos_in_image: [f32; 2],
    /// MediaPipe's relative depth, in units of the image width (smaller = nearer the camera).
    pub depth: f32,
    /// Probability the point is visible (pose only; 1 for hands).
    pub visibility: f32,
    /// Probability the point is inside the image (pose only; 1 for hands).
    pub presence: f32,
}

/// A landmark in metric 3D space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WorldLandmark {
    /// Metres; pose: origin between the hips; hands: origin near the hand's centre; y points down.
    pub pos_in_world: [f32; 3],
    pub visibility: f32,
}

/// A tracked body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pose {
    /// 33 BlazePose landmarks.
    pub landmarks: Vec<ImageLandmark>,
    /// 33 world landmarks, same order.
    pub world_landmarks: Vec<WorldLandmark>,
    /// The pose model's presence score.
    pub presence: f32,
    /// The ROI the landmarks were computed in.
    #[serde(skip)]
    pub roi: Roi,
}

/// Which hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Handedness {
    Left,
    Right,
}

impl Handedness {
    pub fn other(self) -> Self {
        match self {
            Handedness::Left => Handedness::Right,
            Handedness::Right => Handedness::Left,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Handedness::Left => "Left",
            Handedness::Right => "Right",
        }
    }
}

/// A tracked hand.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hand {
    /// 21 landmarks; `depth` is relative to the wrist.
    pub landmarks: Vec<ImageLandmark>,
    /// 21 world landmarks in metres.
    pub world_landmarks: Vec<WorldLandmark>,
    /// MediaPipe's label. MediaPipe assumes a mirrored (selfie) image, so on an ordinary camera image
    /// "Left" usually means the person's right hand.
    pub handedness_mediapipe: Handedness,
    /// Probability of `handedness_mediapipe`.
    pub handedness_score: f32,
    /// The person's actual hand, given whether the input was mirrored (`EngineConfig::input_is_mirrored`).
    pub handedness: Handedness,
    /// The hand model's presence score.
    pub presence: f32,
    #[serde(skip)]
    pub roi: Roi,
}
