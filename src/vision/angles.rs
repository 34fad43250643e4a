//! Joint angles in 3D from world landmarks, in radians, each with a confidence from the visibilities
//! involved.

use serde::Serialize;

use crate::vision::landmarks::WorldLandmark;

/// The joints measured, each as (a, vertex, b) BlazePose indices: the angle at `vertex` between the
/// bones to `a` and `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Joint {
    LeftElbow,
    RightElbow,
    LeftShoulder,
    RightShoulder,
    LeftHip,
    RightHip,
    LeftKnee,
    RightKnee,
    LeftAnkle,
    RightAnkle,
    LeftWrist,
    RightWrist,
}

impl Joint {
    pub const ALL: [Joint; 12] = [
        Joint::LeftElbow,
        Joint::RightElbow,
        Joint::LeftShoulder,
        Joint::RightShoulder,
        Joint::LeftHip,
        Joint::RightHip,
        Joint::LeftKnee,
        Joint::RightKnee,
        Joint::LeftAnkle,
        Joint::RightAnkle,
        Joint::LeftWrist,
        Joint::RightWrist,
    ];

    /// (a, vertex, b) landmark indices.
    pub fn points(self) -> (usize, usize, usize) {
        match self {
            Joint::LeftElbow => (11, 13, 15), // shoulder–elbow–wrist
            Joint::RightElbow => (12, 14, 16),
            Joint::LeftShoulder => (23, 11, 13), // hip–shoulder–elbow
            Joint::RightShoulder => (24, 12, 14),
            Joint::LeftHip => (11, 23, 25), // shoulder–hip–knee
            Joint::RightHip => (12, 24, 26),
            Joint::LeftKnee => (23, 25, 27), // hip–knee–ankle
            Joint::RightKnee => (24, 26, 28),
            Joint::LeftAnkle => (25, 27, 31), // knee–ankle–foot index
            Joint::RightAnkle => (26, 28, 32),
            Joint::LeftWrist => (13, 15, 19), // elbow–wrist–index knuckle
            Joint::RightWrist => (14, 16, 20),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Joint::LeftElbow => "left_elbow",
            Joint::RightElbow => "right_elbow",
            Joint::LeftShoulder => "left_shoulder",
            Joint::RightShoulder => "right_shoulder",
            Joint::LeftHip => "left_hip",
            Joint::RightHip => "right_hip",
            Joint::LeftKnee => "left_knee",
            Joint::RightKnee => "right_knee",
            Joint::LeftAnkle => "left_ankle",
            Joint::RightAnkle => "right_ankle",
            Joint::LeftWrist => "left_wrist",
            Joint::RightWrist => "right_wrist",
        }
    }
}

/// One measured angle.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct JointAngle {
    pub joint: Joint,
    /// Radians in [0, π]: π = straight limb.
    pub radians: f32,
    /// The lowest visibility of the three landmarks.
    pub confidence: f32,
}

/// All joint angles of a frame; joints that cannot be measured (no pose, degenerate bones) are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JointAngles {
    pub angles: Vec<JointAngle>,
}

impl JointAngles {
    pub fn get(&self, joint: Joint) -> Option<&JointAngle> {
        self.angles.iter().find(|a| a.joint == joint)
    }
}

/// Angle at `vertex` between the rays to `a` and `b`; `None` when a ray has no length or a value is not
/// finite.
pub fn angle_at(a: [f32; 3], vertex: [f32; 3], b: [f32; 3]) -> Option<f32> {
    let u = [a[0] - vertex[0], a[1] - vertex[1], a[2] - vertex[2]];
    let v = [b[0] - vertex[0], b[1] - vertex[1], b[2] - vertex[2]];
    let dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
    let cross = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let cross_len = (cross[0] * cross[0] + cross[1] * cross[1] + cross[2] * cross[2]).sqrt();
    let len = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt()
        * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    // atan2 of |u×v| and u·v is accurate near 0 and π, unlike acos.
    let angle = cross_len.atan2(dot);
    (len > f32::EPSILON && angle.is_finite()).then_some(angle)
}

/// Angles of every joint from 33 world landmarks.
pub fn joint_angles_from_world(world: &[WorldLandmark]) -> JointAngles {
    let angles = Joint::ALL
        .iter()
        .filter_map(|&joint| {
            let (a, v, b) = joint.points();
            let (la, lv, lb) = (world.get(a)?, world.get(v)?, world.get(b)?);
            let radians = angle_at(la.pos_in_world, lv.pos_in_world, lb.pos_in_world)?;
            let confidence = la.visibility.min(lv.visibility).min(lb.visibility);
            Some(JointAngle {
                joint,
                radians,
                confidence: if confidence.is_finite() {
                    confidence
                } else {
                    0.0
                },
            })
        })
        .collect();
    JointAngles { angles }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::{FRAC_PI_2, PI};

    #[test]
    fn right_angle_straight_and_folded() {
        assert!(
            (angle_at([1.0, 0.0, 0.0], [0.0; 3], [0.0, 0.0, 2.0]).unwrap() - FRAC_PI_2).abs()
                < 1e-6
        );
        assert!((angle_at([1.0, 0.0, 0.0], [0.0; 3], [-3.0, 0.0, 0.0]).unwrap() - PI).abs() < 1e-6);
        assert!(
            angle_at([1.0, 1.0, 0.0], [0.0; 3], [2.0, 2.0, 0.0])
                .unwrap()
                .abs()
                < 1e-6
        );
        // 60° in 3D.
        let a = angle_at([1.0, 0.0, 0.0], [0.0; 3], [0.5, 0.0, 0.75_f32.sqrt()]).unwrap();
        assert!((a - PI / 3.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_and_nan_inputs_give_none() {
        assert_eq!(angle_at([0.0; 3], [0.0; 3], [1.0, 0.0, 0.0]), None);
        assert_eq!(
            angle_at([f32::NAN, 0.0, 0.0], [0.0; 3], [1.0, 0.0, 0.0]),
            None
        );
    }

    #[test]
    fn elbow_angle_and_confidence_from_a_skeleton() {
        let mut world = vec![
            WorldLandmark {
                pos_in_world: [0.0; 3],
                visibility: 0.9
            };
            33
        ];
        world[11].pos_in_world = [0.0, -0.5, 0.0]; // left shoulder
        world[13].pos_in_world = [0.0, -0.2, 0.0]; // left elbow, straight below
        world[15].pos_in_world = [0.3, -0.2, 0.0]; // left wrist, forearm horizontal
        world[15].visibility = 0.4;
        let angles = joint_angles_from_world(&world);
        let elbow = angles.get(Joint::LeftElbow).unwrap();
        assert!((elbow.radians - FRAC_PI_2).abs() < 1e-5);
        assert_eq!(elbow.confidence, 0.4);
        // Coincident points (all others at the origin) are left out rather than reported as NaN.
        assert!(angles.get(Joint::RightKnee).is_none());
        assert!(joint_angles_from_world(&[]).angles.is_empty());
    }
}
