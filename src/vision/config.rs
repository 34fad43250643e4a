//! What an engine loads and how a stream is tracked: [`EngineConfig`] (models, thresholds, threads) and
//! [`TrackerConfig`] (tracking, smoothing, palm detector throttle), with MediaPipe's defaults.

use std::path::PathBuf;

use crate::vision::model::{ModelFile, default_models_dir};
use crate::vision::pose::DEFAULT_REFINE_KERNEL;
use crate::vision::smoothing::SmoothingMethod;

/// Which pose landmark model to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoseModel {
    Lite,
    Full,
    Heavy,
}

impl PoseModel {
    pub fn file(self) -> ModelFile {
        match self {
            PoseModel::Lite => ModelFile::PoseLandmarkLite,
            PoseModel::Full => ModelFile::PoseLandmarkFull,
            PoseModel::Heavy => ModelFile::PoseLandmarkHeavy,
        }
    }

    /// `lite`, `full`, `heavy`.
    pub fn name(self) -> &'static str {
        match self {
            PoseModel::Lite => "lite",
            PoseModel::Full => "full",
            PoseModel::Heavy => "heavy",
        }
    }

    /// The model file's stem, as the reference files name it (`pose_landmark_full`).
    pub fn file_stem(self) -> &'static str {
        match self {
            PoseModel::Lite => "pose_landmark_lite",
            PoseModel::Full => "pose_landmark_full",
            PoseModel::Heavy => "pose_landmark_heavy",
        }
    }
}

/// Default score a detection needs (MediaPipe's `min_detection_confidence`).
pub const DEFAULT_MIN_DETECTION_CONFIDENCE: f32 = 0.5;
/// Default presence a landmark model needs to keep tracking (MediaPipe's `min_tracking_confidence`).
pub const DEFAULT_MIN_TRACKING_CONFIDENCE: f32 = 0.5;
/// MediaPipe tracks up to two hands.
pub const DEFAULT_MAX_HANDS: usize = 2;
/// Default palm detector throttle while tracking.
pub const DEFAULT_PALM_DETECTION_EVERY: u32 = 3;
/// While fewer people are tracked than wanted, the person detector runs every this many frames (it
/// always runs while nobody is tracked, and on the frame after someone was lost or jumped).
pub const DEFAULT_DETECT_EVERY: u32 = 2;

/// What one engine loads and how it runs the models.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub models_dir: PathBuf,
    pub pose_model: PoseModel,
    /// Run the hand models at all.
    pub hands: bool,
    pub max_hands: usize,
    pub min_detection_confidence: f32,
    pub min_tracking_confidence: f32,
    /// Heatmap refinement window for pose landmarks (7 = MediaPipe graph, 9 = legacy Python API).
    pub refine_kernel: usize,
    /// ONNX Runtime intra-op threads of every session of this engine.
    pub threads: usize,
    /// Threads of a second pose landmark session, used when the engine has the whole inference budget
    /// to itself (the other workers idle); `threads` or fewer: no second session.
    pub solo_threads: usize,
    /// Frames are mirrored (selfie view): decides which hand is the person's left.
    pub input_is_mirrored: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            models_dir: default_models_dir(),
            pose_model: PoseModel::Full,
            hands: true,
            max_hands: DEFAULT_MAX_HANDS,
            min_detection_confidence: DEFAULT_MIN_DETECTION_CONFIDENCE,
            min_tracking_confidence: DEFAULT_MIN_TRACKING_CONFIDENCE,
            refine_kernel: DEFAULT_REFINE_KERNEL,
            threads: 1,
            solo_threads: 1,
            input_is_mirrored: false,
        }
    }
}

/// The machine's cores, at most 4 (these small models stop scaling beyond that): the default inference
/// budget of `serve` and `analyze`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// How one stream is tracked and smoothed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackerConfig {
    /// Carry ROIs between frames (video). `false` treats every frame on its own (`static_image_mode`).
    pub tracking: bool,
    /// Smoothing of body landmarks (only while tracking).
    pub smoothing: SmoothingMethod,
    /// Smooth hand landmarks too (MediaPipe's legacy Hands does not).
    pub smooth_hands: bool,
    /// While fewer than `max_hands` hands are tracked, run the palm detector every this many frames
    /// (1 = every frame, as MediaPipe's legacy graph; the default 3 finds a new hand within 100 ms at
    /// 30 FPS and saves most of the detector's cost).
    pub palm_detection_every: u32,
    /// People tracked at most (`--max-people`); each costs one landmark model run per frame.
    #[serde(default = "one")]
    pub max_people: usize,
    /// Follow MediaPipe's legacy video mode exactly (one person; the region from the smoothed auxiliary
    /// points of the previous frame; the detector only when the person is lost), as `--legacy`.
    /// Otherwise the multi-person tracker of [`crate::vision::people`].
    #[serde(default)]
    pub legacy: bool,
    /// The multi-person tracker's detector cadence while fewer than `max_people` are tracked.
    #[serde(default = "default_detect_every")]
    pub detect_every: u32,
    /// Where a new hand's region comes from (`--hand-regions`).
    #[serde(default)]
    pub hand_regions: HandRegions,
}

/// Where the hand branch looks for a hand that it does not track yet.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HandRegions {
    /// The palm detector over the whole frame (MediaPipe Hands); each hand then goes to the person
    /// whose wrist it is at.
    Palm,
    /// Each person's wrist, index and pinky landmarks of the previous frame (MediaPipe Holistic's
    /// `HandDetectionsFromPoseToRectsCalculator`); the palm detector only while nobody's pose is in
    /// view. The default in video mode: it finds more hands, each already its person's
    /// (docs/MEASUREMENTS.md, "Hands: from the palm detector or from the pose"). `--legacy` and static
    /// mode use the palm detector.
    #[default]
    Pose,
}

fn one() -> usize {
    1
}

fn default_detect_every() -> u32 {
    DEFAULT_DETECT_EVERY
}

impl TrackerConfig {
    /// Video: tracking, MediaPipe's One Euro smoothing for body and hands, palm detector throttled.
    pub const VIDEO: TrackerConfig = TrackerConfig {
        tracking: true,
        smoothing: SmoothingMethod::ONE_EURO,
        smooth_hands: true,
        palm_detection_every: DEFAULT_PALM_DETECTION_EVERY,
        max_people: 1,
        legacy: false,
        detect_every: DEFAULT_DETECT_EVERY,
        hand_regions: HandRegions::Pose,
    };
    /// What the legacy `mp.solutions` API does in video mode: hands not smoothed, palm detector every
    /// frame while fewer than two hands are tracked.
    pub const LEGACY_VIDEO: TrackerConfig = TrackerConfig {
        tracking: true,
        smoothing: SmoothingMethod::ONE_EURO,
        smooth_hands: false,
        palm_detection_every: 1,
        max_people: 1,
        legacy: true,
        detect_every: 1,
        hand_regions: HandRegions::Palm,
    };
    /// Every frame on its own, no smoothing.
    pub const STATIC: TrackerConfig = TrackerConfig {
        tracking: false,
        smoothing: SmoothingMethod::Off,
        smooth_hands: false,
        palm_detection_every: 1,
        max_people: 1,
        legacy: false,
        detect_every: 1,
        hand_regions: HandRegions::Palm,
    };

    /// The same, tracking up to `max_people` (at least 1).
    pub const fn with_max_people(self, max_people: usize) -> Self {
        Self {
            max_people: if max_people == 0 { 1 } else { max_people },
            ..self
        }
    }

    /// Whether the legacy single-person path runs (MediaPipe's video mode, exactly).
    pub fn is_legacy(self) -> bool {
        self.legacy && self.tracking
    }

    /// The smoothing hands get.
    pub fn hand_smoothing(self) -> SmoothingMethod {
        if self.tracking && self.smooth_hands {
            self.smoothing
        } else {
            SmoothingMethod::Off
        }
    }

    /// The smoothing the body gets.
    pub fn body_smoothing(self) -> SmoothingMethod {
        if self.tracking {
            self.smoothing
        } else {
            SmoothingMethod::Off
        }
    }
}
