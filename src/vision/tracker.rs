//! Per-stream tracking state: the ROIs carried from one frame to the next, the smoothing filters and the
//! last timestamp, split into the pose half and the hands half so the two branches of a stream can run
//! on different threads (the pose branch of frame N+1 beside the hand branch of frame N).
//!
//! A configuration change is adopted by each half at its next frame. Changing the smoothing keeps the
//! tracked ROIs (only the filters change: new parameters of the same filter keep its state, another
//! filter starts from the next value); switching tracking off forgets them.

use crate::vision::config::TrackerConfig;
use crate::vision::roi::Roi;
use crate::vision::smoothing::{
    POSE_AUX_FILTER, POSE_LANDMARK_FILTER, POSE_WORLD_FILTER, PointsFilter, SmoothingMethod,
    VisibilityFilter,
};

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

    /// Forgets everything tracked (the next frame detects afresh); the timestamp order is kept.
    pub fn reset(&mut self) {
        self.pose.lose();
        self.hands.lose();
    }

    /// The previous frame's timestamp, if any.
    pub fn last_timestamp_us(&self) -> Option<i64> {
        self.pose
            .last_timestamp_us
            .max(self.hands.last_timestamp_us)
    }
}

/// The pose branch's state.
#[derive(Debug)]
pub struct PoseTrack {
    pub(crate) config: TrackerConfig,
    pub(crate) last_timestamp_us: Option<i64>,
    pub(crate) roi: Option<Roi>,
    pub(crate) landmarks: PointsFilter,
    pub(crate) aux: PointsFilter,
    pub(crate) world: PointsFilter,
    pub(crate) visibility: VisibilityFilter,
}

impl PoseTrack {
    pub fn new(config: TrackerConfig) -> Self {
        let method = config.body_smoothing();
        Self {
            config,
            last_timestamp_us: None,
            roi: None,
            landmarks: PointsFilter::new(method, POSE_LANDMARK_FILTER),
            aux: PointsFilter::new(method, POSE_AUX_FILTER),
            world: PointsFilter::new(method, POSE_WORLD_FILTER),
            visibility: VisibilityFilter::default(),
        }
    }

    /// Takes `config` for this frame on.
    pub(crate) fn adopt(&mut self, config: TrackerConfig) {
        if config == self.config {
            return;
        }
        if config.tracking != self.config.tracking {
            self.lose();
        }
        let method = config.body_smoothing();
        if method.is_one_euro() != self.config.body_smoothing().is_one_euro() {
            self.visibility.reset();
        }
        self.landmarks.set_method(method);
        self.aux.set_method(method);
        self.world.set_method(method);
        self.config = config;
    }

    /// The person was lost: the next frame runs the detector; filters restart.
    pub(crate) fn lose(&mut self) {
        self.roi = None;
        self.landmarks.reset();
        self.aux.reset();
        self.world.reset();
        self.visibility.reset();
    }

    /// The ROI the next frame will use, if the person is tracked.
    pub fn roi(&self) -> Option<Roi> {
        self.roi
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
    use crate::vision::smoothing::OneEuroTuning;

    #[test]
    fn a_smoothing_change_keeps_the_tracked_roi_and_static_mode_drops_it() {
        let mut track = PoseTrack::new(TrackerConfig::VIDEO);
        let roi = Roi::full_image(64, 48);
        track.roi = Some(roi);
        let mut points = [[1.0_f32, 2.0, 3.0]];
        track.landmarks.apply(1, Some(10.0), &mut points);
        track.adopt(TrackerConfig {
            smoothing: SmoothingMethod::OneEuro(OneEuroTuning {
                min_cutoff_scale: 0.5,
                beta_scale: 2.0,
            }),
            ..TrackerConfig::VIDEO
        });
        assert_eq!(track.roi, Some(roi));
        assert!(
            track.landmarks.is_primed(),
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
        assert!(!track.landmarks.is_primed());
        track.adopt(TrackerConfig::STATIC);
        assert_eq!(track.roi, None);
    }
}
