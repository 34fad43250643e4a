//! Per-stream tracking state: the ROIs carried from one frame to the next, the smoothing filters and the
//! last timestamp, split into the pose half and the hands half so the two branches of a stream can run
//! on different threads (the pose branch of frame N+1 beside the hand branch of frame N).
//!
//! A configuration change is adopted by each half at its next frame. Changing the smoothing keeps the
//! tracked ROIs (only the filters change: new parameters of the same filter keep its state, another
//! filter starts from the next value); switching tracking off forgets them.

use crate::vision::config::TrackerConfig;
use crate::vision::hands::HandFromPose;
use crate::vision::people::{PeopleTracker, PersonId};
use crate::vision::roi::Roi;
use crate::vision::smoothing::{
    OneEuroTuning, POSE_AUX_FILTER, POSE_LANDMARK_FILTER, POSE_WORLD_FILTER, PointsFilter,
    SmoothingMethod, VisibilityFilter,
};

/// The auxiliary points, which give the next frame's ROI, are always smoothed with MediaPipe's own One
/// Euro filter while tracking: in MediaPipe's `PoseLandmarkFiltering` graph their filter is not behind
/// the `smooth_landmarks` switch. So the ROI path is MediaPipe's whatever smoothing the user picks for
/// the landmarks shown.
const AUX_SMOOTHING: SmoothingMethod = SmoothingMethod::OneEuro(OneEuroTuning::MEDIAPIPE);

/// Both halves of one stream's state. One per camera, file or client.
#[derive(Debug)]
pub struct Tracker {
    pub config: TrackerConfig,
    pub pose: PoseTrack,
    pub hands: HandsTrack,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            pose: PoseTrack::new(config),
            hands: HandsTrack::new(config),
        }
    }

    /// Changes tracking or smoothing from the next frame on (see the module docs for what is kept).
    pub fn set_config(&mut self, config: TrackerConfig) {
        self.config = config;
    }

    /// Forgets everything tracked, filters included (the next frame detects afresh); the timestamp
    /// order is kept.
    pub fn reset(&mut self) {
        self.pose.forget();
        self.hands.lose();
    }

    /// The previous frame's timestamp, if any.
    pub fn last_timestamp_us(&self) -> Option<i64> {
        self.pose
            .last_timestamp_us
            .max(self.hands.last_timestamp_us)
    }
}

/// One person's smoothing filters (MediaPipe's `PoseLandmarkFiltering`): image landmarks, auxiliary
/// points (the next region), world landmarks, visibility.
#[derive(Debug)]
pub struct PersonFilters {
    pub(crate) landmarks: PointsFilter,
    pub(crate) aux: PointsFilter,
    pub(crate) world: PointsFilter,
    pub(crate) visibility: VisibilityFilter,
}

impl PersonFilters {
    pub fn new(config: TrackerConfig) -> Self {
        let method = config.body_smoothing();
        Self {
            landmarks: PointsFilter::new(method, POSE_LANDMARK_FILTER),
            aux: PointsFilter::new(AUX_SMOOTHING, POSE_AUX_FILTER),
            world: PointsFilter::new(method, POSE_WORLD_FILTER),
            visibility: VisibilityFilter::default(),
        }
    }

    fn set_method(&mut self, method: SmoothingMethod, was_one_euro: bool) {
        if method.is_one_euro() != was_one_euro {
            self.visibility.reset();
        }
        self.landmarks.set_method(method);
        self.world.set_method(method);
    }

    /// Every filter starts afresh.
    pub(crate) fn reset(&mut self) {
        self.landmarks.reset();
        self.aux.reset();
        self.world.reset();
        self.visibility.reset();
    }
}

/// The pose branch's state: the legacy single person (MediaPipe's video mode), or the people of the
/// multi-person tracker ([`crate::vision::people`]), whichever the configuration runs.
#[derive(Debug)]
pub struct PoseTrack {
    pub(crate) config: TrackerConfig,
    pub(crate) last_timestamp_us: Option<i64>,
    /// Legacy: the region for the next frame, if the person is tracked.
    pub(crate) roi: Option<Roi>,
    /// Legacy: the person's filters.
    pub(crate) filters: PersonFilters,
    /// Legacy: the id of the person now tracked (a new one each time the detector finds someone).
    pub(crate) legacy_id: PersonId,
    /// The multi-person tracker's people.
    pub(crate) people: PeopleTracker<PersonFilters>,
    /// The last frame's people's wrists, pinkies and indexes: where the hand branch of the next frame
    /// looks for hands with [`crate::vision::config::HandRegions::Pose`] (empty in every other mode).
    pub(crate) hands_from_pose: Vec<HandFromPose>,
}

impl PoseTrack {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            last_timestamp_us: None,
            roi: None,
            filters: PersonFilters::new(config),
            legacy_id: 0,
            people: PeopleTracker::default(),
            hands_from_pose: Vec::new(),
        }
    }

    /// Takes `config` for this frame on.
    pub(crate) fn adopt(&mut self, config: TrackerConfig) {
        if config == self.config {
            return;
        }
        if config.tracking != self.config.tracking || config.legacy != self.config.legacy {
            self.forget();
        }
        let method = config.body_smoothing();
        let was_one_euro = self.config.body_smoothing().is_one_euro();
        self.filters.set_method(method, was_one_euro);
        for person in &mut self.people.people {
            person.state.set_method(method, was_one_euro);
        }
        if config.max_people < self.config.max_people {
            // Keep the people with the lowest ids.
            let mut ids: Vec<PersonId> = self.people.people.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            ids.truncate(config.max_people.max(1));
            self.people.people.retain(|p| ids.contains(&p.id));
        }
        self.config = config;
    }

    /// The person was lost on this frame: the next frame runs the detector. As in MediaPipe's graph, the
    /// filters of the image landmarks and of the auxiliary points restart (their calculators see an
    /// empty input beside the image size and reset), while the world-landmark filter and the
    /// visibility low-pass keep their state (their calculators have no other input, so they do not run
    /// on a frame without a pose, and carry on from the last pose when one is found again).
    pub(crate) fn lose(&mut self) {
        self.roi = None;
        self.filters.landmarks.reset();
        self.filters.aux.reset();
        self.hands_from_pose.clear();
    }

    /// Forgets everything, every filter and every person included (ids go on increasing).
    pub(crate) fn forget(&mut self) {
        self.lose();
        self.filters.world.reset();
        self.filters.visibility.reset();
        self.people.clear();
    }

    /// The region the next frame will use, if the (legacy) person is tracked.
    pub fn roi(&self) -> Option<Roi> {
        self.roi
    }

    /// The last frame's hands as its poses place them (see [`HandFromPose`]).
    pub fn hands_from_pose(&self) -> &[HandFromPose] {
        &self.hands_from_pose
    }

    /// The people tracked into the next frame (multi-person tracker).
    pub fn tracked_people(&self) -> usize {
        self.people.tracked()
    }
}

/// The hand branch's state.
#[derive(Debug)]
pub struct HandsTrack {
    pub(crate) config: TrackerConfig,
    pub(crate) last_timestamp_us: Option<i64>,
    pub(crate) hands: Vec<HandTrack>,
    pub(crate) frames_since_palm_detection: u32,
}

impl HandsTrack {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            last_timestamp_us: None,
            hands: Vec::new(),
            frames_since_palm_detection: 0,
        }
    }

    pub(crate) fn adopt(&mut self, config: TrackerConfig) {
        if config == self.config {
            return;
        }
        if config.tracking != self.config.tracking {
            self.lose();
        }
        let method = config.hand_smoothing();
        for hand in &mut self.hands {
            hand.landmarks.set_method(method);
            hand.world.set_method(method);
        }
        self.config = config;
    }

    pub(crate) fn lose(&mut self) {
        self.hands.clear();
        self.frames_since_palm_detection = 0;
    }

    /// Hands tracked into the next frame.
    pub fn tracked(&self) -> usize {
        self.hands.len()
    }
}

/// One tracked hand.
#[derive(Debug)]
pub(crate) struct HandTrack {
    pub(crate) roi: Roi,
    pub(crate) landmarks: PointsFilter,
    pub(crate) world: PointsFilter,
}

impl HandTrack {
    pub(crate) fn new(roi: Roi, method: SmoothingMethod) -> Self {
        Self {
            roi,
            landmarks: PointsFilter::new(method, POSE_LANDMARK_FILTER),
            world: PointsFilter::new(method, POSE_WORLD_FILTER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smoothing_change_keeps_the_tracked_roi_and_static_mode_drops_it() {
        let mut track = PoseTrack::new(TrackerConfig::VIDEO);
        let roi = Roi::full_image(64, 48);
        track.roi = Some(roi);
        let mut points = [[1.0_f32, 2.0, 3.0]];
        track.filters.landmarks.apply(1, Some(10.0), &mut points);
        track.adopt(TrackerConfig {
            smoothing: SmoothingMethod::OneEuro(OneEuroTuning {
                min_cutoff_scale: 0.5,
                beta_scale: 2.0,
            }),
            ..TrackerConfig::VIDEO
        });
        assert_eq!(track.roi, Some(roi));
        assert!(
            track.filters.landmarks.is_primed(),
            "same filter, new parameters: state kept"
        );
        track.adopt(TrackerConfig {
            smoothing: SmoothingMethod::Ema { alpha: 0.7 },
            ..TrackerConfig::VIDEO
        });
        assert_eq!(
            track.roi,
            Some(roi),
            "another filter: the ROI is still kept"
        );
        assert!(!track.filters.landmarks.is_primed());
        track.adopt(TrackerConfig::STATIC);
        assert_eq!(track.roi, None);
    }

    #[test]
    fn losing_the_person_restarts_the_image_filters_but_keeps_world_and_visibility_as_mediapipe() {
        let mut track = PoseTrack::new(TrackerConfig::VIDEO);
        track.roi = Some(Roi::full_image(64, 48));
        let mut points = [[1.0_f32, 2.0, 3.0]];
        track.filters.landmarks.apply(1, Some(10.0), &mut points);
        track.filters.aux.apply(1, Some(10.0), &mut points);
        track.filters.world.apply(1, None, &mut points);
        track
            .filters
            .visibility
            .apply([0.9_f32].into_iter(), |_, _| {});
        track.lose();
        assert_eq!(track.roi, None);
        assert!(!track.filters.landmarks.is_primed());
        assert!(!track.filters.aux.is_primed());
        assert!(track.filters.world.is_primed());
        assert!(track.filters.visibility.is_primed());
        track.forget();
        assert!(!track.filters.world.is_primed());
        assert!(!track.filters.visibility.is_primed());
    }

    #[test]
    fn the_auxiliary_points_keep_mediapipes_one_euro_whatever_the_landmark_smoothing() {
        let mut track = PoseTrack::new(TrackerConfig {
            smoothing: SmoothingMethod::Off,
            ..TrackerConfig::VIDEO
        });
        assert_eq!(track.filters.aux.method(), AUX_SMOOTHING);
        track.adopt(TrackerConfig {
            smoothing: SmoothingMethod::Ema { alpha: 0.7 },
            ..TrackerConfig::VIDEO
        });
        assert_eq!(track.filters.aux.method(), AUX_SMOOTHING);
    }
}
