//! Between two inference results, landmarks are blended as the prototype did: t = time since the newest
//! result / interval between the last two, clamped to [0, 1], drawn = previous + (newest − previous)·t.
//! Never extrapolated past the newest.

use std::time::Duration;

use crate::vision::FrameResult;
use crate::vision::angles::JointAngles;
use crate::vision::landmarks::{Hand, ImageLandmark, Pose, WorldLandmark};

/// The blend factor: 0 just after a result arrived (show the previous one), 1 once a full interval has
/// passed (show the newest), and 1 when the interval is unknown.
pub fn blend_factor(since_newest: Duration, interval: Duration) -> f32 {
    if interval.is_zero() {
        return 1.0;
    }
    (since_newest.as_secs_f32() / interval.as_secs_f32()).clamp(0.0, 1.0)
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

fn lerp_image(a: &ImageLandmark, b: &ImageLandmark, t: f32) -> ImageLandmark {
    ImageLandmark {
        pos_in_image: [
            lerp(a.pos_in_image[0], b.pos_in_image[0], t),
            lerp(a.pos_in_image[1], b.pos_in_image[1], t),
        ],
        depth: lerp(a.depth, b.depth, t),
        visibility: lerp(a.visibility, b.visibility, t),
        presence: lerp(a.presence, b.presence, t),
    }
}

fn lerp_world(a: &WorldLandmark, b: &WorldLandmark, t: f32) -> WorldLandmark {
    WorldLandmark {
        pos_in_world: std::array::from_fn(|k| lerp(a.pos_in_world[k], b.pos_in_world[k], t)),
        visibility: lerp(a.visibility, b.visibility, t),
    }
}

fn lerp_pose(a: &Pose, b: &Pose, t: f32) -> Pose {
    Pose {
        landmarks: a
            .landmarks
            .iter()
            .zip(&b.landmarks)
            .map(|(x, y)| lerp_image(x, y, t))
            .collect(),
        world_landmarks: a
            .world_landmarks
            .iter()
            .zip(&b.world_landmarks)
            .map(|(x, y)| lerp_world(x, y, t))
            .collect(),
        presence: b.presence,
        roi: b.roi,
    }
}

fn lerp_hand(a: &Hand, b: &Hand, t: f32) -> Hand {
    Hand {
        landmarks: a
            .landmarks
            .iter()
            .zip(&b.landmarks)
            .map(|(x, y)| lerp_image(x, y, t))
            .collect(),
        world_landmarks: a
            .world_landmarks
            .iter()
            .zip(&b.world_landmarks)
            .map(|(x, y)| lerp_world(x, y, t))
            .collect(),
        ..b.clone()
    }
}

/// Blends `previous` towards `newest`. Each person is blended only with the same person (by id) of
/// `previous`, never with someone else; parts present in only one of them are taken from `newest` (a
/// body that just appeared is drawn where it is, not faded in from nowhere); hands are paired by label.
pub fn interpolate(previous: &FrameResult, newest: &FrameResult, t: f32) -> FrameResult {
    let t = t.clamp(0.0, 1.0);
    let mut out = newest.clone();
    if t >= 1.0 || previous.width != newest.width || previous.height != newest.height {
        return out;
    }
    for person in &mut out.people {
        if let Some(prev) = previous.people.iter().find(|p| p.id == person.id) {
            blend(
                (&prev.pose, &prev.hands, &prev.angles),
                (&mut person.pose, &mut person.hands, &mut person.angles),
                t,
            );
        }
    }
    // The top level (the lowest id, or the person followed): blended when it is the same person (or, in
    // results without people, such as files written before there were people, when both have a pose).
    if previous.top_level_id() == newest.top_level_id()
        && let (Some(a), Some(b)) = (&previous.pose, &mut out.pose)
    {
        let mut angles = std::mem::take(&mut out.angles);
        blend(
            (a, &previous.hands, &previous.angles),
            (b, &mut out.hands, &mut angles),
            t,
        );
        out.angles = angles;
    }
    out
}

/// One person's pose, hands (paired by label) and angles blended from `previous` towards `newest`.
fn blend(
    previous: (&Pose, &[Hand], &JointAngles),
    newest: (&mut Pose, &mut Vec<Hand>, &mut JointAngles),
    t: f32,
) {
    let (prev_pose, prev_hands, prev_angles) = previous;
    let (pose, hands, angles) = newest;
    *pose = lerp_pose(prev_pose, pose, t);
    for hand in hands.iter_mut() {
        if let Some(prev) = prev_hands.iter().find(|h| h.handedness == hand.handedness) {
            *hand = lerp_hand(prev, hand, t);
        }
    }
    for (angle, prev) in angles
        .angles
        .iter_mut()
        .filter_map(|a| prev_angles.get(a.joint).map(|p| (a, p)))
    {
        angle.radians = lerp(prev.radians, angle.radians, t);
        angle.confidence = lerp(prev.confidence, angle.confidence, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::vision::result::testing::{person_at as person, result_at as result};

    #[test]
    fn blend_factor_is_clamped_and_never_extrapolates() {
        let interval = Duration::from_millis(40);
        assert_eq!(blend_factor(Duration::ZERO, interval), 0.0);
        assert!((blend_factor(Duration::from_millis(10), interval) - 0.25).abs() < 1e-6);
        assert_eq!(blend_factor(Duration::from_millis(40), interval), 1.0);
        assert_eq!(blend_factor(Duration::from_millis(400), interval), 1.0);
        assert_eq!(blend_factor(Duration::from_millis(5), Duration::ZERO), 1.0);
    }

    #[test]
    fn endpoints_are_exact_and_midpoint_is_halfway() {
        let (a, b) = (result(100.0), result(200.0));
        let at0 = interpolate(&a, &b, 0.0);
        assert_eq!(
            at0.pose.as_ref().unwrap().landmarks[5].pos_in_image,
            [100.0, 200.0]
        );
        let at1 = interpolate(&a, &b, 1.0);
        assert_eq!(at1, b);
        let mid = interpolate(&a, &b, 0.5);
        let pose = mid.pose.unwrap();
        assert_eq!(pose.landmarks[0].pos_in_image, [150.0, 300.0]);
        assert!((pose.world_landmarks[0].pos_in_world[0] - 1.5).abs() < 1e-6);
        // Beyond 1 is clamped: no extrapolation.
        assert_eq!(interpolate(&a, &b, 3.0), b);
    }

    #[test]
    fn a_body_that_just_appeared_is_not_blended() {
        let mut a = result(100.0);
        a.pose = None;
        let b = result(200.0);
        assert_eq!(interpolate(&a, &b, 0.3).pose, b.pose);
    }

    #[test]
    fn each_person_blends_only_with_the_same_person() {
        let with = |people: Vec<crate::vision::Person>| FrameResult {
            pose: people.first().map(|p| p.pose.clone()),
            people,
            ..result(0.0)
        };
        // Person 1 moved from 10 to 20; person 2 appears; person 5 left.
        let previous = with(vec![person(1, 10.0), person(5, 100.0)]);
        let newest = with(vec![person(1, 20.0), person(2, 200.0)]);
        let out = interpolate(&previous, &newest, 0.5);
        let x = |p: &crate::vision::Person| p.pose.landmarks[0].pos_in_image[0];
        assert_eq!(out.people.len(), 2);
        assert!((x(&out.people[0]) - 15.0).abs() < 1e-4);
        assert_eq!(
            x(&out.people[1]),
            200.0,
            "a new person is drawn where they are"
        );
        assert!((out.pose.as_ref().unwrap().landmarks[0].pos_in_image[0] - 15.0).abs() < 1e-4);
        // The top level changes person (1 left): no blending across people.
        let later = with(vec![person(2, 210.0)]);
        let out = interpolate(&newest, &later, 0.5);
        assert_eq!(
            out.pose.as_ref().unwrap().landmarks[0].pos_in_image[0],
            210.0
        );
        assert!((x(&out.people[0]) - 205.0).abs() < 1e-4);
    }
}
