//! Motion out: a humanoid skeleton solved from the landmarks ([`solver`]), its hierarchy and forward
//! kinematics ([`skeleton`]), BVH files ([`bvh`]). Plain Rust and `glam`, no Bevy types; it reads the
//! engine's [`crate::vision::FrameResult`]s as any subscriber of a stream does.
//!
//! Spaces (every one right-handed unless said):
//! - MediaPipe world landmarks: metres, origin between the hips, x to the image's right, y down, z away
//!   from the camera (hands: origin near the hand's centre, same axes).
//! - Skeleton space ([`skeleton`]): metres, y up, the person at rest facing +z (the camera), their left
//!   +x; `(x, −y, −z)` of MediaPipe's. The floor is y = 0.
//! - BVH ([`bvh`]): skeleton space in centimetres. Blender's importer maps it to (x, −z, y).
//! - VMC / Unity: left-handed, y up, z forward: positions `(−x, y, z)` and rotations `(x, −y, −z, w)` of
//!   skeleton space's (a mirror in x), so the avatar faces +z as Unity's humanoids do.

pub mod bvh;
pub mod quality;
mod rotations;
pub mod skeleton;
pub mod solver;
pub mod vmc;

pub use quality::{Quality, measure};
pub use skeleton::{BONE_COUNT, Bone, HumanoidPose, Kinematics, RestPose, Side, forward};
pub use solver::Solver;

/// Pose landmarks that sit on a joint of the skeleton: (landmark, bone whose joint it is).
pub const JOINT_LANDMARKS: [(usize, Bone); 12] = [
    (11, Bone(7)),  // LeftUpperArm
    (13, Bone(8)),  // LeftLowerArm
    (15, Bone(9)),  // LeftHand
    (12, Bone(11)), // RightUpperArm
    (14, Bone(12)), // RightLowerArm
    (16, Bone(13)), // RightHand
    (23, Bone(14)), // LeftUpperLeg
    (25, Bone(15)), // LeftLowerLeg
    (27, Bone(16)), // LeftFoot
    (24, Bone(18)), // RightUpperLeg
    (26, Bone(19)), // RightLowerLeg
    (28, Bone(20)), // RightFoot
];

/// Forward-kinematics error of a solved pose: for each joint landmark the reference sees (visibility ≥
/// 0.5) on a chain the solver follows (every bone from the hips to the joint's parent seen with
/// confidence ≥ 0.5; an unseen bone eases to neutral on purpose), the distance (m) between the
/// skeleton's joint and the world landmark, with the hips' joint put on the landmarks' origin.
pub fn joint_errors_m(
    rest: &RestPose,
    pose: &HumanoidPose,
    result: &crate::vision::FrameResult,
) -> Vec<f32> {
    let Some(p) = result.pose.as_ref() else {
        return Vec::new();
    };
    let fk = forward(rest, pose);
    let hips = fk.pos_m[Bone::HIPS.index()];
    JOINT_LANDMARKS
        .iter()
        .filter(|(i, bone)| p.world_landmarks[*i].visibility >= 0.5 && chain_followed(pose, *bone))
        .map(|(i, bone)| {
            let lm = solver::skeleton_from_mediapipe(p.world_landmarks[*i].pos_in_world);
            (fk.pos_m[bone.index()] - hips - lm).length()
        })
        .collect()
}

/// Whether every bone from the hips to `bone`'s parent is seen with confidence (so `bone`'s joint
/// follows the landmarks).
pub fn chain_followed(pose: &HumanoidPose, bone: Bone) -> bool {
    let mut next = bone.parent();
    while let Some(b) = next {
        if pose.confidence[b.index()] < solver::MIN_CONFIDENCE {
            return false;
        }
        next = b.parent();
    }
    true
}

#[cfg(test)]
mod tests;
