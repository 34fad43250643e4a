//! Everything the engine computes for one frame. Its own module, below both the landmarks and the
//! angles, so neither depends on the other.

use serde::Serialize;

use crate::vision::angles::JointAngles;
use crate::vision::landmarks::{Hand, Pose};
use crate::vision::timings::StageTimings;

/// Everything computed for one frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameResult {
    /// Capture time of the frame, µs, as given by the caller.
    pub timestamp_us: i64,
    pub width: u32,
    pub height: u32,
    pub pose: Option<Pose>,
    pub hands: Vec<Hand>,
    pub angles: JointAngles,
    /// Whether the pose detector ran this frame (false while tracking).
    pub pose_detector_ran: bool,
    /// Whether the palm detector ran this frame.
    pub palm_detector_ran: bool,
    pub timings: StageTimings,
}
