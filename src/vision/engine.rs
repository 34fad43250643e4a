//! The engine: models and their reused buffers (one per process or per worker) plus a [`Tracker`] per
//! stream (ROIs carried between frames, smoothing state, the last timestamp). Plain Rust, no Bevy types.
//!
//! Per frame: the pose branch (detector only when not tracking → landmark model → smoothing → next ROI
//! from the auxiliary points) and the hand branch (palm detector only while fewer than `max_hands` hands
//! are tracked → hand landmark model per ROI → next ROIs from the landmarks) run side by side on two
//! threads, each ONNX Runtime session with its own intra-op threads.

use std::path::PathBuf;
use std::time::Instant;

use crate::vision::angles::joint_angles_from_world;
use crate::vision::error::{ModelError, VisionError};
use crate::vision::hands::{HandLandmarker, PalmDetector, tracking_roi_from_landmarks};
use crate::vision::image::RgbImage;
use crate::vision::landmarks::{FrameResult, Hand, POSE_LANDMARK_COUNT, Pose};
use crate::vision::model::{ModelFile, OnnxModel, SessionOptions, default_models_dir};
use crate::vision::pose::{
    DEFAULT_REFINE_KERNEL, PoseDetector, PoseLandmarker, RawPose, roi_from_alignment_points,
};
use crate::vision::roi::Roi;
use crate::vision::smoothing::{
    POSE_AUX_FILTER, POSE_LANDMARK_FILTER, POSE_WORLD_FILTER, PointsFilter, SmoothingMethod,
    VisibilityFilter, object_scale, points_from_image_landmarks, points_from_world_landmarks,
    write_image_points, write_world_points,
};
use crate::vision::timings::{Stage, StageTimings};

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

    pub fn name(self) -> &'static str {
        match self {
            PoseModel::Lite => "lite",
            PoseModel::Full => "full",
            PoseModel::Heavy => "heavy",
        }
    }
}

/// Default score a detection needs (MediaPipe's `min_detection_confidence`).
pub const DEFAULT_MIN_DETECTION_CONFIDENCE: f32 = 0.5;
/// Default presence a landmark model needs to keep tracking (MediaPipe's `min_tracking_confidence`).
pub const DEFAULT_MIN_TRACKING_CONFIDENCE: f32 = 0.5;
/// MediaPipe tracks up to two hands.
pub const DEFAULT_MAX_HANDS: usize = 2;
/// A palm detection overlapping a tracked hand's ROI by more than this is the same hand.
const HAND_ASSOCIATION_IOU: f32 = 0.5;

/// What the engine loads and how it runs the models.
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
    /// CPU threads inference may use. With `parallel_branches`, the pose and hand branches get half
    /// each while both have work; a frame where the hand branch has nothing to do (no hand tracked, palm
    /// detector not due) runs the pose landmark model with all of them.
    pub threads: usize,
    /// Run the hand branch on its own thread beside the pose branch.
    pub parallel_branches: bool,
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
            // Two branches side by side, one thread each, fill the 2 cores this was tuned on without
            // oversubscribing them; see the README's "Threads" section.
            threads: default_threads(),
            parallel_branches: true,
            input_is_mirrored: false,
        }
    }
}

/// Threads for inference by default: the machine's cores, at most 4 (these small models stop scaling
/// beyond that).
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
}

/// Default palm detector throttle while tracking.
pub const DEFAULT_PALM_DETECTION_EVERY: u32 = 3;

impl TrackerConfig {
    /// Video: tracking, MediaPipe's One Euro smoothing for body and hands, palm detector throttled.
    pub const VIDEO: TrackerConfig = TrackerConfig {
        tracking: true,
        smoothing: SmoothingMethod::ONE_EURO,
        smooth_hands: true,
        palm_detection_every: DEFAULT_PALM_DETECTION_EVERY,
    };
    /// What the legacy `mp.solutions` API does in video mode: hands not smoothed, palm detector every
    /// frame while fewer than two hands are tracked.
    pub const LEGACY_VIDEO: TrackerConfig = TrackerConfig {
        tracking: true,
        smoothing: SmoothingMethod::ONE_EURO,
        smooth_hands: false,
        palm_detection_every: 1,
    };
    /// Every frame on its own, no smoothing.
    pub const STATIC: TrackerConfig = TrackerConfig {
        tracking: false,
        smoothing: SmoothingMethod::Off,
        smooth_hands: false,
        palm_detection_every: 1,
    };
}

/// Per-stream state. One per camera, file or client.
#[derive(Debug)]
pub struct Tracker {
    pub config: TrackerConfig,
    last_timestamp_us: Option<i64>,
    pose: PoseTrack,
    hands: HandsTrack,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            last_timestamp_us: None,
            pose: PoseTrack::new(config.smoothing),
            hands: HandsTrack::default(),
        }
    }

    /// Changes tracking or smoothing; filter state restarts.
    pub fn set_config(&mut self, config: TrackerConfig) {
        let last = self.last_timestamp_us;
        *self = Self::new(config);
        self.last_timestamp_us = last;
    }

    /// Forgets everything tracked (the next frame detects afresh); the timestamp order is kept.
    pub fn reset(&mut self) {
        self.set_config(self.config);
    }

    /// The previous frame's timestamp, if any.
    pub fn last_timestamp_us(&self) -> Option<i64> {
        self.last_timestamp_us
    }
}

#[derive(Debug)]
struct PoseTrack {
    roi: Option<Roi>,
    landmarks: PointsFilter,
    aux: PointsFilter,
    world: PointsFilter,
    visibility: VisibilityFilter,
}

impl PoseTrack {
    fn new(method: SmoothingMethod) -> Self {
        Self {
            roi: None,
            landmarks: PointsFilter::new(method, POSE_LANDMARK_FILTER),
            aux: PointsFilter::new(method, POSE_AUX_FILTER),
            world: PointsFilter::new(method, POSE_WORLD_FILTER),
            visibility: VisibilityFilter::default(),
        }
    }

    fn lose(&mut self) {
        self.roi = None;
        self.landmarks.reset();
        self.aux.reset();
        self.world.reset();
        self.visibility.reset();
    }
}

#[derive(Debug, Default)]
struct HandsTrack {
    hands: Vec<HandTrack>,
    frames_since_palm_detection: u32,
}

#[derive(Debug)]
struct HandTrack {
    roi: Roi,
    landmarks: PointsFilter,
    world: PointsFilter,
}

impl HandTrack {
    fn new(roi: Roi, method: SmoothingMethod) -> Self {
        Self {
            roi,
            landmarks: PointsFilter::new(method, POSE_LANDMARK_FILTER),
            world: PointsFilter::new(method, POSE_WORLD_FILTER),
        }
    }
}

struct PoseBranch {
    detector: PoseDetector,
    /// Landmark model with the branch's share of the threads (runs beside the hand branch).
    landmarker: PoseLandmarker,
    /// The same model with all the threads, for frames where the hand branch is idle; `None` when that
    /// would be the same thread count.
    landmarker_solo: Option<PoseLandmarker>,
}

struct HandBranch {
    detector: PalmDetector,
    landmarker: HandLandmarker,
    max_hands: usize,
}

/// The loaded models. `process` borrows it mutably, so one frame is in flight per engine.
pub struct Engine {
    config: EngineConfig,
    pose: PoseBranch,
    hands: Option<HandBranch>,
}

impl Engine {
    /// Loads and verifies every model the configuration needs.
    pub fn new(config: EngineConfig) -> Result<Self, ModelError> {
        let threads = config.threads.max(1);
        let split = config.hands && config.parallel_branches;
        let shared = SessionOptions {
            intra_threads: if split { (threads / 2).max(1) } else { threads },
        };
        let options = SessionOptions {
            intra_threads: if split {
                (threads - threads / 2).max(1)
            } else {
                threads
            },
        };
        let solo = SessionOptions {
            intra_threads: threads,
        };
        let dir = &config.models_dir;
        let pose_landmarker = |options| -> Result<PoseLandmarker, ModelError> {
            Ok(PoseLandmarker::new(
                OnnxModel::load(dir, config.pose_model.file(), options)?,
                config.refine_kernel,
                config.min_tracking_confidence,
            ))
        };
        let pose = PoseBranch {
            detector: PoseDetector::new(
                OnnxModel::load(dir, ModelFile::PoseDetection, shared)?,
                config.min_detection_confidence,
            ),
            landmarker: pose_landmarker(shared)?,
            landmarker_solo: if solo != shared {
                Some(pose_landmarker(solo)?)
            } else {
                None
            },
        };
        let hands = if config.hands {
            Some(HandBranch {
                detector: PalmDetector::new(
                    OnnxModel::load(dir, ModelFile::PalmDetectionFull, options)?,
                    config.min_detection_confidence,
                ),
                landmarker: HandLandmarker::new(
                    OnnxModel::load(dir, ModelFile::HandLandmarkFull, options)?,
                    config.min_tracking_confidence,
                    config.input_is_mirrored,
                ),
                max_hands: config.max_hands,
            })
        } else {
            None
        };
        Ok(Self {
            config,
            pose,
            hands,
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Processes one frame of `tracker`'s stream, captured at `timestamp_us` (must increase).
    pub fn process(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        tracker: &mut Tracker,
    ) -> Result<FrameResult, VisionError> {
        let start = Instant::now();
        if !image.is_valid() {
            return Err(VisionError::BadFrame {
                width: image.width,
                height: image.height,
                len: image.data.len(),
            });
        }
        if let Some(previous_us) = tracker.last_timestamp_us
            && timestamp_us <= previous_us
        {
            return Err(VisionError::NonMonotonicTimestamp {
                previous_us,
                got_us: timestamp_us,
            });
        }
        tracker.last_timestamp_us = Some(timestamp_us);
        let config = tracker.config;
        let mut timings = StageTimings::default();
        let mut hand_timings = StageTimings::default();

        let hands_busy = self
            .hands
            .as_ref()
            .is_some_and(|branch| hand_branch_has_work(branch, config, &tracker.hands));
        let pose_branch = &mut self.pose;
        let pose_track = &mut tracker.pose;
        let hands_track = &mut tracker.hands;
        let mut run_pose = |timings: &mut StageTimings, solo: bool| {
            pose_step(
                pose_branch,
                image,
                timestamp_us,
                config,
                pose_track,
                solo,
                timings,
            )
        };
        let (pose_out, hands_out) = match self.hands.as_mut() {
            None => (run_pose(&mut timings, true), Ok((Vec::new(), false))),
            Some(hand_branch) if !hands_busy => {
                // Nothing for the hand branch this frame (it only counts the frame for the palm
                // throttle): the pose model gets every thread.
                let out = hands_step(
                    hand_branch,
                    image,
                    timestamp_us,
                    config,
                    hands_track,
                    &mut hand_timings,
                );
                (run_pose(&mut timings, true), out)
            }
            Some(hand_branch) => {
                let mut run_hands = |timings: &mut StageTimings| {
                    hands_step(
                        hand_branch,
                        image,
                        timestamp_us,
                        config,
                        hands_track,
                        timings,
                    )
                };
                if self.config.parallel_branches {
                    std::thread::scope(|scope| {
                        let handle = std::thread::Builder::new()
                            .name("livepose-hands".into())
                            .spawn_scoped(scope, || {
                                let mut t = StageTimings::default();
                                let out = run_hands(&mut t);
                                (out, t)
                            });
                        let pose_out = run_pose(&mut timings, false);
                        let hands_out = match handle {
                            Ok(handle) => match handle.join() {
                                Ok((out, t)) => {
                                    hand_timings = t;
                                    out
                                }
                                Err(_) => Err(VisionError::Model(ModelError::Contract {
                                    name: "hands",
                                    what: "the hand thread panicked".into(),
                                })),
                            },
                            Err(e) => Err(VisionError::Model(ModelError::Contract {
                                name: "hands",
                                what: format!("cannot start the hand thread: {e}"),
                            })),
                        };
                        (pose_out, hands_out)
                    })
                } else {
                    let pose_out = run_pose(&mut timings, true);
                    (pose_out, run_hands(&mut hand_timings))
                }
            }
        };
        let (pose, pose_detector_ran) = pose_out?;
        let (hands, palm_detector_ran) = hands_out?;
        timings.merge(&hand_timings);

        let angles = timings.time(Stage::Angles, || {
            pose.as_ref()
                .map(|p| joint_angles_from_world(&p.world_landmarks))
                .unwrap_or_default()
        });
        timings.add(Stage::Total, start.elapsed());
        Ok(FrameResult {
            timestamp_us,
            width: image.width,
            height: image.height,
            pose,
            hands,
            angles,
            pose_detector_ran,
            palm_detector_ran,
            timings,
        })
    }
}

/// Returns the pose (if any) and whether the detector ran.
fn pose_step(
    branch: &mut PoseBranch,
    image: &RgbImage,
    timestamp_us: i64,
    config: TrackerConfig,
    track: &mut PoseTrack,
    solo: bool,
    timings: &mut StageTimings,
) -> Result<(Option<Pose>, bool), VisionError> {
    let tracked_roi = if config.tracking { track.roi } else { None };
    let (roi, detector_ran) = match tracked_roi {
        Some(roi) => (Some(roi), false),
        None => (branch.detector.detect(image, timings)?, true),
    };
    let landmarker = match (&mut branch.landmarker_solo, solo) {
        (Some(solo_landmarker), true) => solo_landmarker,
        _ => &mut branch.landmarker,
    };
    let raw = match roi {
        Some(roi) => landmarker.landmarks(image, roi, timings)?,
        None => None,
    };
    let Some(raw) = raw else {
        track.lose();
        return Ok((None, detector_ran));
    };
    let start = Instant::now();
    let pose = if config.tracking {
        smooth_pose(raw, image.width, timestamp_us, track)
    } else {
        pose_from_raw(raw)
    };
    timings.add(Stage::Smoothing, start.elapsed());
    Ok((Some(pose), detector_ran))
}

fn pose_from_raw(mut raw: RawPose) -> Pose {
    raw.landmarks.truncate(POSE_LANDMARK_COUNT);
    Pose {
        landmarks: raw.landmarks,
        world_landmarks: raw.world_landmarks,
        presence: raw.presence,
        roi: raw.roi,
    }
}

/// MediaPipe's `PoseLandmarkFiltering`: visibility low-pass, One Euro on image landmarks scaled by the
/// body size from the raw auxiliary points, on world landmarks unscaled, and on the auxiliary points,
/// whose smoothed positions give the next ROI.
fn smooth_pose(
    mut raw: RawPose,
    image_width: u32,
    timestamp_us: i64,
    track: &mut PoseTrack,
) -> Pose {
    let width = image_width as f32;
    let [aux0, aux1] = raw.aux_in_image();
    // Object scale: the alignment rect from the raw auxiliary points (twice their distance).
    let scale = 2.0 * ((aux1[0] - aux0[0]).powi(2) + (aux1[1] - aux0[1]).powi(2)).sqrt();

    if track.landmarks_smoothing_is_one_euro() {
        let body = &mut raw.landmarks[..POSE_LANDMARK_COUNT];
        let mut smoothed = vec![0.0; POSE_LANDMARK_COUNT];
        track
            .visibility
            .apply(body.iter().map(|l| l.visibility), |i, v| smoothed[i] = v);
        for (l, v) in body.iter_mut().zip(&smoothed) {
            l.visibility = *v;
        }
        for (w, v) in raw.world_landmarks.iter_mut().zip(&smoothed) {
            w.visibility = *v;
        }
    }
    let mut body_points = points_from_image_landmarks(&raw.landmarks[..POSE_LANDMARK_COUNT], width);
    track
        .landmarks
        .apply(timestamp_us, Some(scale), &mut body_points);
    write_image_points(
        &mut raw.landmarks[..POSE_LANDMARK_COUNT],
        &body_points,
        width,
    );

    let mut aux_points = points_from_image_landmarks(
        &raw.landmarks[POSE_LANDMARK_COUNT..POSE_LANDMARK_COUNT + 2],
        width,
    );
    track.aux.apply(timestamp_us, Some(scale), &mut aux_points);
    track.roi = Some(roi_from_alignment_points(
        [aux_points[0][0], aux_points[0][1]],
        [aux_points[1][0], aux_points[1][1]],
    ));

    let mut world_points = points_from_world_landmarks(&raw.world_landmarks);
    track.world.apply(timestamp_us, None, &mut world_points);
    write_world_points(&mut raw.world_landmarks, &world_points);
    pose_from_raw(raw)
}

impl PoseTrack {
    fn landmarks_smoothing_is_one_euro(&self) -> bool {
        self.landmarks.method().is_one_euro()
    }
}

fn palm_detector_due(config: TrackerConfig, track: &HandsTrack) -> bool {
    !config.tracking || track.frames_since_palm_detection + 1 >= config.palm_detection_every.max(1)
}

/// Whether the hand branch will run a model this frame.
fn hand_branch_has_work(branch: &HandBranch, config: TrackerConfig, track: &HandsTrack) -> bool {
    let tracked = if config.tracking {
        track.hands.len()
    } else {
        0
    };
    tracked > 0 || (tracked < branch.max_hands && palm_detector_due(config, track))
}

/// Returns the hands found and whether the palm detector ran.
fn hands_step(
    branch: &mut HandBranch,
    image: &RgbImage,
    timestamp_us: i64,
    config: TrackerConfig,
    track: &mut HandsTrack,
    timings: &mut StageTimings,
) -> Result<(Vec<Hand>, bool), VisionError> {
    let previous = if config.tracking {
        std::mem::take(&mut track.hands)
    } else {
        Vec::new()
    };
    let mut candidates: Vec<HandTrack> = Vec::with_capacity(branch.max_hands);
    let mut palm_ran = false;
    let detector_due = !config.tracking
        || track.frames_since_palm_detection + 1 >= config.palm_detection_every.max(1);
    if previous.len() < branch.max_hands && detector_due {
        palm_ran = true;
        track.frames_since_palm_detection = 0;
        let method = if config.smooth_hands {
            config.smoothing
        } else {
            SmoothingMethod::Off
        };
        let free = branch.max_hands - previous.len();
        for roi in branch.detector.detect(image, branch.max_hands, timings)? {
            let overlaps_tracked = previous
                .iter()
                .any(|t| t.roi.iou_ignoring_rotation(&roi) > HAND_ASSOCIATION_IOU);
            if !overlaps_tracked && candidates.len() < free {
                candidates.push(HandTrack::new(roi, method));
            }
        }
    } else {
        track.frames_since_palm_detection = track.frames_since_palm_detection.saturating_add(1);
    }
    candidates.extend(previous);

    let mut hands = Vec::with_capacity(candidates.len());
    for mut candidate in candidates {
        let Some(mut hand) = branch.landmarker.landmarks(image, candidate.roi, timings)? else {
            continue;
        };
        if config.tracking {
            let start = Instant::now();
            if let Some(next) = tracking_roi_from_landmarks(&hand.landmarks) {
                candidate.roi = next;
                let width = image.width as f32;
                let mut points = points_from_image_landmarks(&hand.landmarks, width);
                let scale = object_scale(&points);
                candidate
                    .landmarks
                    .apply(timestamp_us, Some(scale), &mut points);
                write_image_points(&mut hand.landmarks, &points, width);
                let mut world = points_from_world_landmarks(&hand.world_landmarks);
                candidate.world.apply(timestamp_us, None, &mut world);
                write_world_points(&mut hand.world_landmarks, &world);
                track.hands.push(candidate);
            }
            timings.add(Stage::Smoothing, start.elapsed());
        }
        hands.push(hand);
    }
    Ok((hands, palm_ran))
}
