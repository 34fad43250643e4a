//! The humanoid hierarchy (Unity's `HumanBodyBones` names, which VMC uses), its rest pose and forward
//! kinematics.
//!
//! Skeleton space: metres, right-handed, **y up**; at rest the person stands in a T-pose facing **+z**
//! (towards the camera that filmed them), so their left is **+x**. MediaPipe's world landmarks (x right in
//! the image, y down, z away from the camera, origin between the hips) map to it by a half turn about x:
//! `(x, −y, −z)`. Rest rotations are all identity: a bone's local rotation is its rotation away from the
//! T-pose, in its parent's frame, and its offset from its parent joint is fixed (measured lengths).

use glam::{Quat, Vec3};

/// Left or right, of the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    /// +1 for the left (+x at rest), −1 for the right.
    pub fn sign(self) -> f32 {
        match self {
            Side::Left => 1.0,
            Side::Right => -1.0,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

pub const FINGERS: [&str; 5] = ["Thumb", "Index", "Middle", "Ring", "Little"];
pub const PHALANGES: [&str; 3] = ["Proximal", "Intermediate", "Distal"];

/// Number of bones.
pub const BONE_COUNT: usize = 52;

/// One bone of the hierarchy, by index. Parents come before their children.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bone(pub u8);

impl Bone {
    pub const HIPS: Bone = Bone(0);
    pub const SPINE: Bone = Bone(1);
    pub const CHEST: Bone = Bone(2);
    pub const UPPER_CHEST: Bone = Bone(3);
    pub const NECK: Bone = Bone(4);
    pub const HEAD: Bone = Bone(5);

    /// Shoulder, UpperArm, LowerArm, Hand of one side (`part` 0–3).
    pub fn arm(side: Side, part: u8) -> Bone {
        Bone(6 + side_index(side) * 4 + part)
    }

    /// UpperLeg, LowerLeg, Foot, Toes of one side (`part` 0–3).
    pub fn leg(side: Side, part: u8) -> Bone {
        Bone(14 + side_index(side) * 4 + part)
    }

    /// A finger bone: `finger` 0–4 (thumb … little), `phalanx` 0–2 (proximal … distal).
    pub fn finger(side: Side, finger: u8, phalanx: u8) -> Bone {
        Bone(22 + side_index(side) * 15 + finger * 3 + phalanx)
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn all() -> impl Iterator<Item = Bone> {
        (0..BONE_COUNT as u8).map(Bone)
    }

    /// The side of a limb bone, or `None` for the spine and head.
    pub fn side(self) -> Option<Side> {
        match self.0 {
            0..=5 => None,
            6..=9 | 14..=17 | 22..=36 => Some(Side::Left),
            _ => Some(Side::Right),
        }
    }

    /// The same bone on the other side (itself for the spine and head).
    pub fn mirrored(self) -> Bone {
        match self.0 {
            0..=5 => self,
            6..=13 => Bone(if self.0 < 10 { self.0 + 4 } else { self.0 - 4 }),
            14..=21 => Bone(if self.0 < 18 { self.0 + 4 } else { self.0 - 4 }),
            _ => Bone(if self.0 < 37 {
                self.0 + 15
            } else {
                self.0 - 15
            }),
        }
    }

    pub fn parent(self) -> Option<Bone> {
        let b = self.0;
        Some(match b {
            0 => return None,
            1..=5 => Bone(b - 1),
            6 | 10 => Bone::UPPER_CHEST,
            7..=9 | 11..=13 => Bone(b - 1),
            14 | 18 => Bone::HIPS,
            15..=17 | 19..=21 => Bone(b - 1),
            _ => {
                let side = if b < 37 { Side::Left } else { Side::Right };
                let k = (b - 22) % 15;
                if k.is_multiple_of(3) {
                    Bone::arm(side, 3)
                } else {
                    Bone(b - 1)
                }
            }
        })
    }

    /// Unity's `HumanBodyBones` name.
    pub fn name(self) -> String {
        const TRUNK: [&str; 6] = ["Hips", "Spine", "Chest", "UpperChest", "Neck", "Head"];
        const ARM: [&str; 4] = ["Shoulder", "UpperArm", "LowerArm", "Hand"];
        const LEG: [&str; 4] = ["UpperLeg", "LowerLeg", "Foot", "Toes"];
        let b = usize::from(self.0);
        let side = match self.side() {
            None => return TRUNK[b].to_owned(),
            Some(Side::Left) => "Left",
            Some(Side::Right) => "Right",
        };
        match b {
            6..=13 => format!("{side}{}", ARM[(b - 6) % 4]),
            14..=21 => format!("{side}{}", LEG[(b - 14) % 4]),
            _ => {
                let k = (b - 22) % 15;
                format!("{side}{}{}", FINGERS[k / 3], PHALANGES[k % 3])
            }
        }
    }
}

fn side_index(side: Side) -> u8 {
    match side {
        Side::Left => 0,
        Side::Right => 1,
    }
}

/// The rest (T-)pose: each bone's offset from its parent joint, and the tip of each bone without a child.
#[derive(Clone, Debug, PartialEq)]
pub struct RestPose {
    /// Offset of each joint from its parent joint, metres, in skeleton space at rest (zero for the hips).
    pub offsets_m: [Vec3; BONE_COUNT],
    /// Where the bones without children end (head top, finger tips, toe tips), from their joint.
    pub end_sites_m: [Option<Vec3>; BONE_COUNT],
    /// Height of the hip joint above the floor at rest (legs straight, feet flat).
    pub hip_height_m: f32,
}

/// A solved pose: where the hips are and how each bone is turned from the rest pose.
#[derive(Clone, Debug, PartialEq)]
pub struct HumanoidPose {
    /// The frame's timestamp, µs.
    pub timestamp_us: i64,
    /// Whether a person was tracked on this frame (otherwise the pose eases towards neutral).
    pub tracked: bool,
    /// The hip joint in skeleton space (metres; y is the height above the floor).
    pub root_pos_m: Vec3,
    /// Each bone's rotation from rest, in its parent's frame (the hips': in skeleton space). Unit.
    pub local: [Quat; BONE_COUNT],
    /// Each bone's confidence, 0–1, from the visibilities (or the hand score) behind it.
    pub confidence: [f32; BONE_COUNT],
}

impl HumanoidPose {
    /// The rest pose at `root_pos_m`.
    pub fn rest(timestamp_us: i64, root_pos_m: Vec3) -> Self {
        Self {
            timestamp_us,
            tracked: false,
            root_pos_m,
            local: [Quat::IDENTITY; BONE_COUNT],
            confidence: [0.0; BONE_COUNT],
        }
    }
}

/// Global rotation and position of every joint.
#[derive(Clone, Debug, PartialEq)]
pub struct Kinematics {
    pub global: [Quat; BONE_COUNT],
    pub pos_m: [Vec3; BONE_COUNT],
}

impl Kinematics {
    /// Where the tip of `bone` is (its end site, or none).
    pub fn end_site(&self, rest: &RestPose, bone: Bone) -> Option<Vec3> {
        rest.end_sites_m[bone.index()]
            .map(|e| self.pos_m[bone.index()] + self.global[bone.index()] * e)
    }
}

/// Forward kinematics: the global rotation and position of every joint of `pose` on `rest`.
pub fn forward(rest: &RestPose, pose: &HumanoidPose) -> Kinematics {
    let mut global = [Quat::IDENTITY; BONE_COUNT];
    let mut pos_m = [Vec3::ZERO; BONE_COUNT];
    for bone in Bone::all() {
        let i = bone.index();
        match bone.parent() {
            None => {
                global[i] = pose.local[i];
                pos_m[i] = pose.root_pos_m;
            }
            Some(parent) => {
                let p = parent.index();
                global[i] = (global[p] * pose.local[i]).normalize();
                pos_m[i] = pos_m[p] + global[p] * rest.offsets_m[i];
            }
        }
    }
    Kinematics { global, pos_m }
}

/// The children of each bone, in index order.
pub fn children(bone: Bone) -> impl Iterator<Item = Bone> {
    Bone::all().filter(move |b| b.parent() == Some(bone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parents_and_mirrors_form_the_humanoid_hierarchy() {
        let names: Vec<String> = Bone::all().map(Bone::name).collect();
        assert_eq!(names.len(), BONE_COUNT);
        for expected in [
            "Hips",
            "UpperChest",
            "LeftShoulder",
            "RightHand",
            "LeftToes",
            "LeftThumbProximal",
            "RightLittleDistal",
            "LeftIndexIntermediate",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}");
        }
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), BONE_COUNT);
        for bone in Bone::all() {
            if let Some(parent) = bone.parent() {
                assert!(parent < bone, "{} before its parent", bone.name());
            }
            let m = bone.mirrored();
            assert_eq!(m.mirrored(), bone);
            assert_eq!(
                m.name().replace("Right", "Left"),
                bone.name().replace("Right", "Left")
            );
            assert_eq!(bone.parent().map(Bone::mirrored), m.parent());
        }
        assert_eq!(
            Bone::finger(Side::Right, 0, 0).parent(),
            Some(Bone::arm(Side::Right, 3))
        );
        assert_eq!(
            Bone::leg(Side::Left, 0).parent(),
            Some(Bone::HIPS),
            "legs hang from the hips"
        );
    }
}
