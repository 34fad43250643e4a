//! Everything the engine computes for one frame. Its own module, below both the landmarks and the
//! angles, so neither depends on the other.

use serde::Serialize;

use crate::vision::angles::JointAngles;
use crate::vision::landmarks::{Hand, Pose};
use crate::vision::people::PersonId;
use crate::vision::timings::StageTimings;

/// One person in one frame: their id (per stream, never reused), body, hands and joint angles.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Person {
    pub id: PersonId,
    pub pose: Pose,
    /// The hands whose wrist is at this person's wrists (at most one per wrist).
    pub hands: Vec<Hand>,
    pub angles: JointAngles,
}

/// Everything computed for one frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameResult {
    /// Capture time of the frame, µs, as given by the caller.
    pub timestamp_us: i64,
    pub width: u32,
    pub height: u32,
    /// The person with the lowest id in view (`people[0]`), as every single-person consumer reads it.
    pub pose: Option<Pose>,
    /// That person's hands; with nobody in view, every hand found. (The legacy single-person mode keeps
    /// MediaPipe's: every hand found.)
    pub hands: Vec<Hand>,
    /// That person's angles.
    pub angles: JointAngles,
    /// Everyone in view, by id.
    pub people: Vec<Person>,
    /// Whether the pose detector ran this frame (false while tracking).
    pub pose_detector_ran: bool,
    /// Whether the palm detector ran this frame.
    pub palm_detector_ran: bool,
    pub timings: StageTimings,
}

impl FrameResult {
    /// This frame as if person `id` were the only one: the top-level pose, hands and angles are theirs
    /// (none when they are not in view), so a single-person consumer (the solver, an exporter) follows
    /// exactly that person.
    pub fn of_person(&self, id: PersonId) -> FrameResult {
        FrameResult {
            people: self.people.iter().filter(|p| p.id == id).cloned().collect(),
            ..self.focused_on(id)
        }
    }

    /// This frame with person `id` at the top level (their pose, hands and angles; none when they are not
    /// in view), everyone still in `people`: what the app shows when a person is followed.
    pub fn focused_on(&self, id: PersonId) -> FrameResult {
        let person = self.people.iter().find(|p| p.id == id);
        FrameResult {
            pose: person.map(|p| p.pose.clone()),
            hands: person.map(|p| p.hands.clone()).unwrap_or_default(),
            angles: person.map(|p| p.angles.clone()).unwrap_or_default(),
            ..self.clone()
        }
    }

    /// The id of the person at the top level, if the top level is one of `people`.
    pub fn top_level_id(&self) -> Option<PersonId> {
        let pose = self.pose.as_ref()?;
        self.people
            .iter()
            .find(|p| p.pose.landmarks == pose.landmarks)
            .map(|p| p.id)
    }
}

/// Results for unit tests elsewhere in the crate.
#[cfg(test)]
pub mod testing {
    use super::{FrameResult, Person, PersonId};
    use crate::vision::angles::JointAngles;
    use crate::vision::landmarks::{ImageLandmark, POSE_LANDMARK_COUNT, Pose, WorldLandmark};
    use crate::vision::roi::Roi;
    use crate::vision::timings::StageTimings;

    /// A 640×480 frame whose every pose landmark is at (x, 2x) px and (x/100, 0, 0) m; nobody in
    /// `people`.
    pub fn result_at(x: f32) -> FrameResult {
        let lm = ImageLandmark {
            pos_in_image: [x, 2.0 * x],
            depth: 0.0,
            visibility: 1.0,
            presence: 1.0,
        };
        let w = WorldLandmark {
            pos_in_world: [x / 100.0, 0.0, 0.0],
            visibility: 1.0,
        };
        FrameResult {
            timestamp_us: 0,
            width: 640,
            height: 480,
            pose: Some(Pose {
                landmarks: vec![lm; POSE_LANDMARK_COUNT],
                world_landmarks: vec![w; POSE_LANDMARK_COUNT],
                presence: 1.0,
                roi: Roi::full_image(640, 480),
            }),
            hands: Vec::new(),
            angles: JointAngles::default(),
            people: Vec::new(),
            pose_detector_ran: false,
            palm_detector_ran: false,
            timings: StageTimings::default(),
        }
    }

    /// Person `id` with [`result_at`]'s pose.
    pub fn person_at(id: PersonId, x: f32) -> Person {
        Person {
            id,
            pose: result_at(x).pose.expect("result_at has a pose"),
            hands: Vec::new(),
            angles: JointAngles::default(),
        }
    }
}
