//! The engine: the loaded models and their reused buffers, and the two branches of a frame.
//!
//! - The pose branch: the detector only when the stream is not tracking, then the landmark model, the
//!   smoothing, and the next ROI from the auxiliary points ([`Engine::run_pose`]).
//! - The hand branch: the palm detector while fewer than `max_hands` hands are tracked (throttled), the
//!   hand landmark model per ROI, and the next ROIs from the landmarks ([`Engine::run_hands`]).
//!
//! Each branch reads and writes only its half of the stream's [`Tracker`], so the inference service
//! (`crate::service`) can run the pose branch of frame N+1 beside the hand branch of frame N on another
//! worker. [`Engine::process`] runs both, one after the other, on the calling thread: the simple path of
//! the tests and benchmarks. [`assemble`] joins the two halves into a [`FrameResult`]. Plain Rust, no Bevy
//! types; the engine is `Send` and is used by one thread at a time (`&mut self`).

use std::time::{Duration, Instant};

use crate::vision::angles::joint_angles_from_world;
use crate::vision::config::{EngineConfig, TrackerConfig};
use crate::vision::error::{ModelError, VisionError};
use crate::vision::hands::{HandLandmarker, PalmDetector, tracking_roi_from_landmarks};
use crate::vision::image::RgbImage;
use crate::vision::landmarks::{Hand, POSE_LANDMARK_COUNT, Pose};
use crate::vision::model::{ModelFile, OnnxModel, SessionOptions};
use crate::vision::pose::{PoseDetector, PoseLandmarker, RawPose, roi_from_alignment_points};
use crate::vision::result::FrameResult;
use crate::vision::smoothing::{
    object_scale, points_from_image_landmarks, points_from_world_landmarks, write_image_points,
    write_world_points,
};
use crate::vision::timings::{Stage, StageTimings};
use crate::vision::tracker::{HandTrack, HandsTrack, PoseTrack, Tracker};

/// Two hand ROIs overlapping by more than this are the same hand.
const HAND_ASSOCIATION_IOU: f32 = 0.5;

struct PoseBranch {
    detector: PoseDetector,
    landmarker: PoseLandmarker,
    /// The same model with `solo_threads`, for frames where this engine has the whole budget.
    landmarker_solo: Option<PoseLandmarker>,
}

struct HandBranch {
    detector: PalmDetector,
    landmarker: HandLandmarker,
    max_hands: usize,
}

/// What the pose branch found in one frame.
#[derive(Clone, Debug, Default)]
pub struct PoseOutput {
    pub pose: Option<Pose>,
    pub detector_ran: bool,
    pub timings: StageTimings,
}

/// What the hand branch found in one frame.
#[derive(Clone, Debug, Default)]
pub struct HandsOutput {
    pub hands: Vec<Hand>,
    pub palm_detector_ran: bool,
    pub timings: StageTimings,
}

/// The loaded models. The branches borrow it mutably, so one frame is in flight per engine.
pub struct Engine {
    config: EngineConfig,
    pose: PoseBranch,
    hands: Option<HandBranch>,
}

impl Engine {
    /// Loads and verifies every model the configuration needs. ONNX Runtime's threads (if any) are
    /// started here and take the calling thread's name.
    pub fn new(config: EngineConfig) -> Result<Self, ModelError> {
        let options = SessionOptions {
            intra_threads: config.threads.max(1),
        };
        let solo = SessionOptions {
            intra_threads: config.solo_threads.max(1),
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
                OnnxModel::load(dir, ModelFile::PoseDetection, options)?,
                config.min_detection_confidence,
            ),
            landmarker: pose_landmarker(options)?,
            landmarker_solo: if solo.intra_threads > options.intra_threads {
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

    /// Processes one frame of `tracker`'s stream, captured at `timestamp_us` (must increase): the pose
    /// branch, then the hand branch, on the calling thread.
    pub fn process(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        tracker: &mut Tracker,
    ) -> Result<FrameResult, VisionError> {
        let start = Instant::now();
        check_frame(image)?;
        if let Some(previous_us) = tracker.last_timestamp_us()
            && timestamp_us <= previous_us
        {
            return Err(VisionError::NonMonotonicTimestamp {
                previous_us,
                got_us: timestamp_us,
            });
        }
        let config = tracker.config;
        let solo = !self.hands_have_work(config, &tracker.hands);
        let pose = self.run_pose(image, timestamp_us, config, &mut tracker.pose, solo)?;
        let hands = self.run_hands(image, timestamp_us, config, &mut tracker.hands)?;
        Ok(assemble(
            image.width,
            image.height,
            timestamp_us,
            pose,
            hands,
            start.elapsed(),
        ))
    }

    /// Whether the hand branch will run a model this frame (otherwise it only counts the frame for the
    /// palm detector's throttle, which costs nothing).
    pub fn hands_have_work(&self, config: TrackerConfig, track: &HandsTrack) -> bool {
        let Some(branch) = &self.hands else {
            return false;
        };
        let tracked = if config.tracking && track.config.tracking == config.tracking {
            track.hands.len()
        } else {
            0
        };
        tracked > 0 || (tracked < branch.max_hands && palm_detector_due(config, track))
    }

    /// The pose branch on one frame. `solo`: use the pose session with `solo_threads` (when nothing else
    /// runs beside it).
    pub fn run_pose(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        track: &mut PoseTrack,
        solo: bool,
    ) -> Result<PoseOutput, VisionError> {
        check_frame(image)?;
        check_order(track.last_timestamp_us, timestamp_us)?;
        track.last_timestamp_us = Some(timestamp_us);
        track.adopt(config);
        let mut out = PoseOutput::default();
        let branch = &mut self.pose;
        let tracked_roi = if config.tracking { track.roi } else { None };
        let roi = match tracked_roi {
            Some(roi) => Some(roi),
            None => {
                out.detector_ran = true;
                branch.detector.detect(image, &mut out.timings)?
            }
        };
        let landmarker = match (&mut branch.landmarker_solo, solo) {
            (Some(solo_landmarker), true) => solo_landmarker,
            _ => &mut branch.landmarker,
        };
        let raw = match roi {
            Some(roi) => landmarker.landmarks(image, roi, &mut out.timings)?,
            None => None,
        };
        let Some(raw) = raw else {
            track.lose();
            return Ok(out);
        };
        let start = Instant::now();
        out.pose = Some(if config.tracking {
            smooth_pose(raw, image.width, timestamp_us, track)
        } else {
            pose_from_raw(raw)
        });
        out.timings.add(Stage::Smoothing, start.elapsed());
        Ok(out)
    }

    /// The hand branch on one frame (no hands, at no cost, when the engine has no hand models).
    pub fn run_hands(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        track: &mut HandsTrack,
    ) -> Result<HandsOutput, VisionError> {
        check_frame(image)?;
        check_order(track.last_timestamp_us, timestamp_us)?;
        track.last_timestamp_us = Some(timestamp_us);
        track.adopt(config);
        let mut out = HandsOutput::default();
        let Some(branch) = self.hands.as_mut() else {
            track.lose();
            return Ok(out);
        };
        let previous = if config.tracking {
            std::mem::take(&mut track.hands)
        } else {
            Vec::new()
        };
        let mut candidates: Vec<HandTrack> = Vec::with_capacity(2 * branch.max_hands);
        if previous.len() < branch.max_hands && palm_detector_due(config, track) {
            out.palm_detector_ran = true;
            track.frames_since_palm_detection = 0;
            let method = config.hand_smoothing();
            for roi in branch
                .detector
                .detect(image, branch.max_hands, &mut out.timings)?
            {
                associate(&mut candidates, HandTrack::new(roi, method));
            }
        } else {
            track.frames_since_palm_detection = track.frames_since_palm_detection.saturating_add(1);
        }
        for tracked in previous {
            associate(&mut candidates, tracked);
        }

        for mut candidate in candidates {
            let Some(mut hand) =
                branch
                    .landmarker
                    .landmarks(image, candidate.roi, &mut out.timings)?
            else {
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
                out.timings.add(Stage::Smoothing, start.elapsed());
            }
            out.hands.push(hand);
        }
        Ok(out)
    }
}

/// Joins the two branches' outputs for one frame: angles from the pose, timings merged, `total` the
/// frame's wall time (branches may overlap, so it is not the sum of the stages).
pub fn assemble(
    width: u32,
    height: u32,
    timestamp_us: i64,
    pose: PoseOutput,
    hands: HandsOutput,
    total: Duration,
) -> FrameResult {
    let mut timings = pose.timings;
    timings.merge(&hands.timings);
    let angles = timings.time(Stage::Angles, || {
        pose.pose
            .as_ref()
            .map(|p| joint_angles_from_world(&p.world_landmarks))
            .unwrap_or_default()
    });
    timings.add(Stage::Total, total);
    FrameResult {
        timestamp_us,
        width,
        height,
        pose: pose.pose,
        hands: hands.hands,
        angles,
        pose_detector_ran: pose.detector_ran,
        palm_detector_ran: hands.palm_detector_ran,
        timings,
    }
}

fn check_frame(image: &RgbImage) -> Result<(), VisionError> {
    if image.is_valid() {
        Ok(())
    } else {
        Err(VisionError::BadFrame {
            width: image.width,
            height: image.height,
            len: image.data.len(),
        })
    }
}

fn check_order(previous_us: Option<i64>, got_us: i64) -> Result<(), VisionError> {
    match previous_us {
        Some(previous_us) if got_us <= previous_us => Err(VisionError::NonMonotonicTimestamp {
            previous_us,
            got_us,
        }),
        _ => Ok(()),
    }
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

    if track.landmarks.method().is_one_euro() {
        let body = &mut raw.landmarks[..POSE_LANDMARK_COUNT];
        let mut smoothed = [0.0; POSE_LANDMARK_COUNT];
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

/// MediaPipe's `AssociationNormRectCalculator` (threshold 0.5) over the palm detections, then the hands
/// tracked from the previous frame: each new ROI removes every earlier one it overlaps by more than the
/// threshold (IoU of the unrotated rectangles) and joins the list. So a tracked hand wins over a palm
/// detection of the same hand, two tracked ROIs that have come together become one, and, as in
/// MediaPipe, new palms are not capped at the free slots (one tracked hand and two new palms elsewhere
/// give three hands on that frame; the detector then stays off until fewer are tracked).
fn associate(candidates: &mut Vec<HandTrack>, hand: HandTrack) {
    candidates.retain(|c| c.roi.iou_ignoring_rotation(&hand.roi) <= HAND_ASSOCIATION_IOU);
    candidates.push(hand);
}

fn palm_detector_due(config: TrackerConfig, track: &HandsTrack) -> bool {
    !config.tracking || track.frames_since_palm_detection + 1 >= config.palm_detection_every.max(1)
}
