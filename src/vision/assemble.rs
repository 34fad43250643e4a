//! One frame's result from its two branches ([`assemble`]): everyone the pose branch found, each with
//! their angles and the hands at their wrists, the lowest id at the top level, the stage timings merged.

use std::time::Duration;

use crate::vision::angles::joint_angles_from_world;
use crate::vision::config::TrackerConfig;
use crate::vision::landmarks::{Hand, Pose};
use crate::vision::people::{BodyInImage, PersonId};
use crate::vision::result::{FrameResult, Person};
use crate::vision::timings::{Stage, StageTimings};

/// What the pose branch found in one frame.
#[derive(Clone, Debug, Default)]
pub struct PoseOutput {
    /// Everyone found, by id.
    pub people: Vec<(PersonId, Pose)>,
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

/// Joins the two branches' outputs for one frame: each person's angles and hands (a hand belongs to the
/// person whose wrist its own wrist is nearest, within [`HAND_TO_WRIST_TORSOS`] of their torso length;
/// one hand per wrist), the lowest id's at the top level, timings merged, `total` the frame's wall time
/// (branches may overlap, so it is not the sum of the stages). In the legacy mode the top-level hands
/// are every hand found, as MediaPipe's.
pub fn assemble(
    width: u32,
    height: u32,
    timestamp_us: i64,
    config: TrackerConfig,
    pose: PoseOutput,
    hands: HandsOutput,
    total: Duration,
) -> FrameResult {
    let mut timings = pose.timings;
    timings.merge(&hands.timings);
    let all_hands = hands.hands;
    let people = timings.time(Stage::Angles, || {
        let owners = hand_owners(&pose.people, &all_hands);
        pose.people
            .into_iter()
            .enumerate()
            .map(|(i, (id, pose))| Person {
                id,
                angles: joint_angles_from_world(&pose.world_landmarks),
                hands: all_hands
                    .iter()
                    .zip(&owners)
                    .filter(|(_, owner)| **owner == Some(i))
                    .map(|(hand, _)| hand.clone())
                    .collect(),
                pose,
            })
            .collect::<Vec<_>>()
    });
    timings.add(Stage::Total, total);
    let first = people.first();
    let top_hands = match first {
        Some(person) if !config.is_legacy() => person.hands.clone(),
        _ => all_hands,
    };
    FrameResult {
        timestamp_us,
        width,
        height,
        pose: first.map(|p| p.pose.clone()),
        hands: top_hands,
        angles: first.map(|p| p.angles.clone()).unwrap_or_default(),
        people,
        pose_detector_ran: pose.detector_ran,
        palm_detector_ran: hands.palm_detector_ran,
        timings,
    }
}

/// A hand's wrist within this many of a person's torso lengths of one of their pose wrists is theirs.
pub const HAND_TO_WRIST_TORSOS: f32 = 0.5;

/// For each hand, the index of the person it belongs to: pairs (hand, person wrist) by distance, nearest
/// first, each hand and each wrist used once.
fn hand_owners(people: &[(PersonId, Pose)], hands: &[Hand]) -> Vec<Option<usize>> {
    use crate::vision::landmarks::pose_index::{LEFT_WRIST, RIGHT_WRIST};
    let mut pairs = Vec::new();
    for (pi, (_, pose)) in people.iter().enumerate() {
        let Some(body) = BodyInImage::from_landmarks(&pose.landmarks) else {
            continue;
        };
        let gate = HAND_TO_WRIST_TORSOS * body.torso_px();
        for (wi, wrist) in [LEFT_WRIST, RIGHT_WRIST].into_iter().enumerate() {
            let Some(w) = pose.landmarks.get(wrist) else {
                continue;
            };
            for (hi, hand) in hands.iter().enumerate() {
                let Some(hw) = hand.landmarks.first() else {
                    continue;
                };
                let d = ((hw.pos_in_image[0] - w.pos_in_image[0]).powi(2)
                    + (hw.pos_in_image[1] - w.pos_in_image[1]).powi(2))
                .sqrt();
                if d.is_finite() && d <= gate {
                    pairs.push((d, hi, pi * 2 + wi));
                }
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut owners = vec![None; hands.len()];
    let mut wrist_taken = vec![false; people.len() * 2];
    for (_, hi, wrist) in pairs {
        if owners[hi].is_some() || wrist_taken[wrist] {
            continue;
        }
        owners[hi] = Some(wrist / 2);
        wrist_taken[wrist] = true;
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::landmarks::pose_index::{LEFT_WRIST, RIGHT_WRIST};
    use crate::vision::landmarks::{Handedness, ImageLandmark, POSE_LANDMARK_COUNT, WorldLandmark};
    use crate::vision::roi::Roi;

    /// A standing person at `x`: shoulders at y 100, hips at y 300 (torso 200 px), wrists at y 300 on
    /// either side.
    fn pose_at(x: f32) -> Pose {
        let mut landmarks = vec![
            ImageLandmark {
                pos_in_image: [x, 200.0],
                visibility: 1.0,
                presence: 1.0,
                depth: 0.0,
            };
            POSE_LANDMARK_COUNT
        ];
        for (i, y) in [(11, 100.0), (12, 100.0), (23, 300.0), (24, 300.0)] {
            landmarks[i].pos_in_image = [x, y];
        }
        landmarks[LEFT_WRIST].pos_in_image = [x + 60.0, 300.0];
        landmarks[RIGHT_WRIST].pos_in_image = [x - 60.0, 300.0];
        Pose {
            landmarks,
            world_landmarks: vec![WorldLandmark::default(); POSE_LANDMARK_COUNT],
            presence: 1.0,
            roi: Roi::full_image(640, 480),
        }
    }

    fn hand_at(x: f32, y: f32) -> Hand {
        Hand {
            landmarks: vec![
                ImageLandmark {
                    pos_in_image: [x, y],
                    ..ImageLandmark::default()
                };
                21
            ],
            world_landmarks: vec![WorldLandmark::default(); 21],
            handedness_mediapipe: Handedness::Left,
            handedness_score: 0.9,
            handedness: Handedness::Right,
            presence: 1.0,
            roi: Roi::full_image(640, 480),
        }
    }

    fn assembled(
        config: TrackerConfig,
        people: Vec<(PersonId, Pose)>,
        hands: Vec<Hand>,
    ) -> FrameResult {
        assemble(
            640,
            480,
            0,
            config,
            PoseOutput {
                people,
                ..PoseOutput::default()
            },
            HandsOutput {
                hands,
                ..HandsOutput::default()
            },
            Duration::ZERO,
        )
    }

    #[test]
    fn each_hand_goes_to_the_person_whose_wrist_it_is_at_and_the_lowest_id_is_the_top_level() {
        let hands = vec![
            hand_at(465.0, 305.0), // person 7's left wrist (400 + 60)
            hand_at(145.0, 300.0), // person 3's right wrist (200 − 60) … 5 px off
            hand_at(300.0, 50.0),  // nobody's
        ];
        let r = assembled(
            TrackerConfig::VIDEO,
            vec![(3, pose_at(200.0)), (7, pose_at(400.0))],
            hands,
        );
        assert_eq!(r.people.iter().map(|p| p.id).collect::<Vec<_>>(), [3, 7]);
        assert_eq!(r.people[0].hands.len(), 1);
        assert_eq!(
            r.people[0].hands[0].landmarks[0].pos_in_image,
            [145.0, 300.0]
        );
        assert_eq!(
            r.people[1].hands[0].landmarks[0].pos_in_image,
            [465.0, 305.0]
        );
        // The top level is person 3: their pose and their hand only.
        assert_eq!(r.pose, Some(r.people[0].pose.clone()));
        assert_eq!(r.hands, r.people[0].hands);
    }

    #[test]
    fn the_legacy_top_level_keeps_every_hand_and_nobody_in_view_keeps_them_too() {
        let hands = vec![hand_at(145.0, 300.0), hand_at(300.0, 50.0)];
        let legacy = assembled(
            TrackerConfig::LEGACY_VIDEO,
            vec![(1, pose_at(200.0))],
            hands.clone(),
        );
        assert_eq!(legacy.hands.len(), 2, "MediaPipe's: every hand");
        assert_eq!(legacy.people[0].hands.len(), 1);
        let nobody = assembled(TrackerConfig::VIDEO, Vec::new(), hands);
        assert_eq!(nobody.hands.len(), 2, "with nobody to own them, every hand");
        assert!(nobody.pose.is_none() && nobody.people.is_empty());
    }

    #[test]
    fn one_wrist_takes_one_hand() {
        let hands = vec![hand_at(142.0, 300.0), hand_at(148.0, 300.0)];
        let r = assembled(TrackerConfig::VIDEO, vec![(1, pose_at(200.0))], hands);
        assert_eq!(r.people[0].hands.len(), 1);
        assert_eq!(
            r.people[0].hands[0].landmarks[0].pos_in_image,
            [142.0, 300.0]
        );
    }
}
