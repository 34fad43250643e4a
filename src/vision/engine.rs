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

use std::time::Instant;

use crate::vision::assemble::assemble;
pub use crate::vision::assemble::{HandsOutput, PoseOutput};
use crate::vision::config::{EngineConfig, HandRegions, TrackerConfig};
use crate::vision::error::{ModelError, VisionError};
use crate::vision::hands::{
    HandFromPose, HandLandmarker, PalmDetector, tracking_roi_from_landmarks,
};
use crate::vision::image::RgbImage;
use crate::vision::landmarks::{POSE_LANDMARK_COUNT, Pose};
use crate::vision::lanes::{LandmarkResult, LaneModel, PoseLanes, landmarks_on_lanes};
use crate::vision::model::{ModelFile, OnnxModel, SessionOptions};
use crate::vision::people::{
    Appearance, BodyInImage, PeopleTracker, PersonId, detection_tiles, pick_tile,
};
use crate::vision::pose::{PoseDetector, PoseLandmarker, RawPose, roi_from_alignment_points};
use crate::vision::result::FrameResult;
use crate::vision::roi::Roi;
use crate::vision::smoothing::{
    object_scale, points_from_image_landmarks, points_from_world_landmarks, write_image_points,
    write_world_points,
};
use crate::vision::timings::Stage;
use crate::vision::tracker::{HandTrack, HandsTrack, PersonFilters, PoseTrack, Tracker};

/// Two hand ROIs overlapping by more than this are the same hand.
const HAND_ASSOCIATION_IOU: f32 = 0.5;

struct PoseBranch {
    detector: PoseDetector,
    landmarker: PoseLandmarker,
    /// The same model with `solo_threads`, for frames where this engine has the whole budget.
    landmarker_solo: Option<PoseLandmarker>,
    /// Sessions of `threads` beside `landmarker`, for several people when the engine has the whole
    /// budget.
    lanes: PoseLanes,
}

struct HandBranch {
    detector: PalmDetector,
    landmarker: HandLandmarker,
    max_hands: usize,
}

impl HandBranch {
    /// Hands tracked at most: the engine's `max_hands`, or two per person tracked.
    fn max_hands(&self, config: TrackerConfig) -> usize {
        self.max_hands.max(2 * config.max_people)
    }
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
            lanes: PoseLanes::new(
                LaneModel {
                    models_dir: dir.clone(),
                    file: config.pose_model.file(),
                    options,
                    refine_kernel: config.refine_kernel,
                    min_presence: config.min_tracking_confidence,
                },
                solo.intra_threads,
            ),
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
        // The hand branch sees the previous frame's poses, as it does in the service, where it runs
        // beside this frame's pose branch.
        let from_pose = tracker.pose.hands_from_pose.clone();
        let solo = !self.hands_have_work(config, &from_pose, &tracker.hands);
        let pose = self.run_pose(image, timestamp_us, config, &mut tracker.pose, solo)?;
        let hands = self.run_hands(image, timestamp_us, config, &from_pose, &mut tracker.hands)?;
        Ok(assemble(
            image.width,
            image.height,
            timestamp_us,
            config,
            pose,
            hands,
            start.elapsed(),
        ))
    }

    /// Whether the hand branch will run a model this frame (otherwise it only counts the frame for the
    /// palm detector's throttle, which costs nothing): a hand is tracked, or new hands are due to be
    /// looked for and there is somewhere to look (the palm detector, or a visible wrist).
    pub fn hands_have_work(
        &self,
        config: TrackerConfig,
        from_pose: &[HandFromPose],
        track: &HandsTrack,
    ) -> bool {
        let Some(branch) = &self.hands else {
            return false;
        };
        let tracked = if config.tracking && track.config.tracking == config.tracking {
            track.hands.len()
        } else {
            0
        };
        let due = tracked < branch.max_hands(config) && palm_detector_due(config, track);
        tracked > 0
            || (due
                && (!looks_from_wrists(config, from_pose)
                    || from_pose.iter().any(|h| h.roi().is_some())))
    }

    /// The pose branch on one frame. `solo`: use the pose session with `solo_threads` (when nothing else
    /// runs beside it). The legacy configuration runs MediaPipe's video mode exactly
    /// ([`Self::run_legacy_pose`]); every other one, the multi-person tracker ([`Self::run_people`]).
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
        let out = if config.is_legacy() {
            self.run_legacy_pose(image, timestamp_us, track, solo)
        } else {
            self.run_people(image, timestamp_us, config, track, solo)
        }?;
        track.hands_from_pose = if hands_from_wrists(config) {
            HandFromPose::of_people(&out.people)
        } else {
            Vec::new()
        };
        Ok(out)
    }

    /// MediaPipe's legacy video mode: one person; the detector only when nobody is tracked; the next
    /// region from the smoothed auxiliary points.
    fn run_legacy_pose(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        track: &mut PoseTrack,
        solo: bool,
    ) -> Result<PoseOutput, VisionError> {
        let mut out = PoseOutput::default();
        let branch = &mut self.pose;
        let roi = match track.roi {
            Some(roi) => Some(roi),
            None => {
                out.detector_ran = true;
                let found = branch.detector.detect(image, &mut out.timings)?;
                if found.is_some() {
                    track.legacy_id += 1;
                }
                found
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
        let (pose, next) = smooth_pose(raw, image.width, timestamp_us, &mut track.filters);
        track.roi = Some(next);
        out.people.push((track.legacy_id, pose));
        out.timings.add(Stage::Smoothing, start.elapsed());
        Ok(out)
    }

    /// The multi-person tracker ([`crate::vision::people`]) on one frame: predict, detect when due,
    /// associate, run the landmark model on every tracked person, smooth each with their own filters,
    /// settle. Static mode (no tracking) detects on every frame and smooths nothing; association still
    /// carries ids from frame to frame.
    pub fn run_people(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        track: &mut PoseTrack,
        solo: bool,
    ) -> Result<PoseOutput, VisionError> {
        let mut out = PoseOutput::default();
        let max_people = config.max_people.max(1);
        let people = &mut track.people;
        if !config.tracking {
            // Every frame on its own: nobody keeps a region; a detection matched to someone gives
            // them back their id with the detection's region.
            for person in &mut people.people {
                if person.lost_since_us.is_none() {
                    person.lost_since_us = Some(timestamp_us);
                    person.roi = None;
                }
            }
        }
        let use_motion = config.tracking;
        let jobs_now = |people: &PeopleTracker<PersonFilters>| -> Vec<(PersonId, Roi)> {
            people
                .people
                .iter()
                .filter(|p| p.is_tracked())
                .filter_map(|p| Some((p.id, p.region_at(timestamp_us, use_motion)?)))
                .collect()
        };
        let PoseBranch {
            detector,
            landmarker,
            landmarker_solo,
            lanes,
        } = &mut self.pose;
        // Landmarks already run this frame (beside the detector), by person and region.
        let mut early: Vec<(PersonId, Roi, LandmarkResult)> = Vec::new();
        let tiles = detection_tiles(image.width, image.height);
        if let Some(region) = people.detection_region(
            max_people,
            config.detect_every,
            config.tracking,
            tiles.len(),
        ) {
            out.detector_ran = true;
            let tracked_bodies: Vec<BodyInImage> = people
                .people
                .iter()
                .filter(|p| p.is_tracked())
                .map(|p| p.body_at(timestamp_us))
                .collect();
            let tile = region
                .and_then(|turn| tiles.get(pick_tile(&tiles, turn, &tracked_bodies)).copied());
            // The people tracked mostly keep their regions whatever the detector finds, so with
            // lanes to spare their landmarks run beside it (the detector taking one lane's place). A
            // person whose region a detection replaces (a cut body that drifted) runs again after.
            let tracked = if solo && config.tracking {
                jobs_now(people)
            } else {
                Vec::new()
            };
            let beside = if tracked.is_empty() {
                &mut []
            } else {
                lanes.beside(tracked.len() + 1)
            };
            let mut candidates = if beside.is_empty() {
                detector.detect_with_tile(image, tile, &tracked_bodies, &mut out.timings)?
            } else {
                let rois: Vec<Roi> = tracked.iter().map(|(_, roi)| *roi).collect();
                let (found, raws) =
                    landmarks_on_lanes(image, &rois, landmarker, beside, &mut out.timings, |t| {
                        detector.detect_with_tile(image, tile, &tracked_bodies, t)
                    });
                early = tracked
                    .into_iter()
                    .zip(raws)
                    .map(|((id, roi), raw)| (id, roi, raw))
                    .collect();
                found?
            };
            if !config.tracking {
                // Every frame on its own: the best `max_people` detections, as MediaPipe's static mode
                // takes the best one (association only carries the ids).
                candidates.truncate(max_people);
            }
            people.associate(&candidates, timestamp_us, max_people, || {
                PersonFilters::new(config)
            });
        }
        let jobs = jobs_now(people);
        let mut raws: Vec<Option<LandmarkResult>> = jobs
            .iter()
            .map(|(id, roi)| {
                let i = early.iter().position(|(e, r, _)| e == id && r == roi)?;
                Some(early.swap_remove(i).2)
            })
            .collect();
        let missing: Vec<usize> = (0..jobs.len()).filter(|&i| raws[i].is_none()).collect();
        let beside = if solo && missing.len() > 1 {
            lanes.beside(missing.len())
        } else {
            &mut []
        };
        if beside.is_empty() {
            let landmarker = match (landmarker_solo, solo) {
                (Some(solo_landmarker), true) => solo_landmarker,
                _ => landmarker,
            };
            for &i in &missing {
                raws[i] = Some(landmarker.landmarks(image, jobs[i].1, &mut out.timings));
            }
        } else {
            let rois: Vec<Roi> = missing.iter().map(|&i| jobs[i].1).collect();
            let ((), found) =
                landmarks_on_lanes(image, &rois, landmarker, beside, &mut out.timings, |_| ());
            for (&i, raw) in missing.iter().zip(found) {
                raws[i] = Some(raw);
            }
        }
        for ((id, _), raw) in jobs.into_iter().zip(raws) {
            let raw = match raw {
                Some(raw) => raw?,
                None => None,
            };
            let start = Instant::now();
            let seen = raw.and_then(|raw| {
                let person = people.get_mut(id)?;
                if person.restart_filters || !config.tracking {
                    person.state.reset();
                }
                // The next region from this frame's own auxiliary points (moved on by the person's
                // velocity at the next frame), not from their smoothed copy as MediaPipe's: smoothing
                // lags behind a moving camera, and the landmarks are smoothed anyway (measured against
                // the truth: docs/MEASUREMENTS.md).
                let next = next_roi_from_raw(&raw);
                let pose = if config.tracking {
                    smooth_pose(raw, image.width, timestamp_us, &mut person.state).0
                } else {
                    pose_from_raw(raw)
                };
                let body = BodyInImage::from_landmarks(&pose.landmarks)?;
                let look = Appearance::of(image, &body);
                // The region slid onto someone else (the person behind, in a crossing, replaced by
                // the person in front): not this person.
                if person.looks_like_someone_else(look.as_ref()) {
                    tracing::trace!(
                        "#{id} slid onto someone else (similarity {:?})",
                        person.similarity(look.as_ref())
                    );
                    return None;
                }
                Some((pose, body, next, look))
            });
            match seen {
                Some((pose, body, next, look)) => {
                    people.seen(id, timestamp_us, body, next, look);
                    out.people.push((id, pose));
                }
                None => people.not_seen(id, timestamp_us),
            }
            out.timings.add(Stage::Smoothing, start.elapsed());
        }
        let given_up = people.settle(timestamp_us);
        // Newcomers not confirmed yet are tracked but not reported (`people::CONFIRM_FRAMES`); static
        // mode reports everyone found.
        out.people.retain(|(id, _)| {
            !given_up.contains(id) && (!config.tracking || people.is_confirmed(*id))
        });
        out.people.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// The hand branch on one frame (no hands, at no cost, when the engine has no hand models).
    pub fn run_hands(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        from_pose: &[HandFromPose],
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
        let max_hands = branch.max_hands(config);
        let mut candidates: Vec<HandTrack> = Vec::with_capacity(2 * max_hands);
        if previous.len() < max_hands && palm_detector_due(config, track) {
            track.frames_since_palm_detection = 0;
            let method = config.hand_smoothing();
            // The palm detector looks for hands in photos and static mode (no previous frame), with
            // `--legacy` (MediaPipe Hands), and when nobody's pose was in the previous frame (a hand
            // held up close, no body in view: no wrist to start from).
            if looks_from_wrists(config, from_pose) {
                for hand in from_pose {
                    let Some(roi) = hand.roi() else {
                        continue;
                    };
                    // A wrist whose hand is tracked already keeps that hand's region.
                    let knuckles = hand.knuckles_in_image();
                    if previous.iter().any(|t| t.roi.contains(knuckles)) {
                        continue;
                    }
                    associate(&mut candidates, HandTrack::new(roi, method));
                }
            } else {
                out.palm_detector_ran = true;
                for roi in branch.detector.detect(image, max_hands, &mut out.timings)? {
                    associate(&mut candidates, HandTrack::new(roi, method));
                }
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

/// Whether the hand branch starts new hands from the previous frame's wrists: `HandRegions::Pose` in
/// video mode, `--legacy` excepted (it is MediaPipe Hands).
fn hands_from_wrists(config: TrackerConfig) -> bool {
    config.tracking && !config.legacy && config.hand_regions == HandRegions::Pose
}

/// Whether new hands are looked for at the wrists of `from_pose` (someone's pose was in the previous
/// frame) rather than by the palm detector.
fn looks_from_wrists(config: TrackerConfig, from_pose: &[HandFromPose]) -> bool {
    hands_from_wrists(config) && !from_pose.is_empty()
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

/// MediaPipe's `PoseLandmarkFiltering` with one person's filters: visibility low-pass, One Euro on image
/// landmarks scaled by the body size from the raw auxiliary points, on world landmarks unscaled, and on
/// the auxiliary points, whose smoothed positions give the region of the next frame (returned).
fn smooth_pose(
    mut raw: RawPose,
    image_width: u32,
    timestamp_us: i64,
    filters: &mut PersonFilters,
) -> (Pose, Roi) {
    let width = image_width as f32;
    let [aux0, aux1] = raw.aux_in_image();
    // Object scale: the alignment rect from the raw auxiliary points (twice their distance).
    let scale = 2.0 * ((aux1[0] - aux0[0]).powi(2) + (aux1[1] - aux0[1]).powi(2)).sqrt();

    if filters.landmarks.method().is_one_euro() {
        let body = &mut raw.landmarks[..POSE_LANDMARK_COUNT];
        let mut smoothed = [0.0; POSE_LANDMARK_COUNT];
        filters
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
    filters
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
    filters
        .aux
        .apply(timestamp_us, Some(scale), &mut aux_points);
    let next = roi_from_alignment_points(
        [aux_points[0][0], aux_points[0][1]],
        [aux_points[1][0], aux_points[1][1]],
    );

    let mut world_points = points_from_world_landmarks(&raw.world_landmarks);
    filters.world.apply(timestamp_us, None, &mut world_points);
    write_world_points(&mut raw.world_landmarks, &world_points);
    (pose_from_raw(raw), next)
}

/// The region the raw auxiliary points give (no smoothing).
fn next_roi_from_raw(raw: &RawPose) -> Roi {
    let [aux0, aux1] = raw.aux_in_image();
    roi_from_alignment_points(aux0, aux1)
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
