//! The avatar's body: the parts it is made of (a box along each bone segment, the head and its nose,
//! joint spheres), their sizes, and where a box goes given its bone's joint and rotation. No systems:
//! `super::avatar` spawns and places them.

use bevy::prelude::*;

use crate::motion::skeleton::{Bone, Side};

/// Joint spheres' radius (m).
pub(crate) const JOINT_RADIUS_M: f32 = 0.035;
/// Head box (width, height, depth, m) around the head joint (ear height: chin 8 cm below, crown 14 cm
/// above), and its centre's offset.
pub(crate) const HEAD_SIZE_M: Vec3 = Vec3::new(0.15, 0.22, 0.19);
pub(crate) const HEAD_CENTRE_M: Vec3 = Vec3::new(0.0, 0.03, 0.0);
/// The nose, in the head's frame: in front (+z, the way the head faces), at ear height.
pub(crate) const NOSE_SIZE_M: Vec3 = Vec3::new(0.04, 0.05, 0.07);
pub(crate) const NOSE_CENTRE_M: Vec3 = Vec3::new(0.0, 0.0, 0.11);

/// What a segment box spans.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SegmentEnd {
    /// From the bone's joint to this child's joint.
    Child(Bone),
    /// From the bone's joint to its end site.
    Tip,
}

/// What a part is coloured as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tint {
    Body,
    Hand,
}

/// A box along a bone: `cross_m` is its size across the bone (the box's local x and z; at rest, with the
/// bone along y, x is the person's left–right).
#[derive(Component, Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) bone: Bone,
    pub(crate) end: SegmentEnd,
    pub(crate) cross_m: Vec2,
    pub(crate) tint: Tint,
}

/// A box fixed in a bone's frame (the head and its nose).
#[derive(Component, Clone, Copy, Debug)]
pub(crate) struct Attached {
    pub(crate) bone: Bone,
    pub(crate) centre_m: Vec3,
    pub(crate) size_m: Vec3,
    pub(crate) nose: bool,
}

/// A joint sphere.
#[derive(Component, Clone, Copy, Debug)]
pub(crate) struct JointBall(pub(crate) Bone);

/// The segments the avatar is made of: (bone, end, cross-section in m, tint).
pub(crate) fn segments() -> Vec<Segment> {
    let mut out = Vec::new();
    let mut add = |bone: Bone, end: SegmentEnd, w: f32, d: f32, tint: Tint| {
        out.push(Segment {
            bone,
            end,
            cross_m: Vec2::new(w, d),
            tint,
        });
    };
    use SegmentEnd::{Child, Tip};
    // Trunk: pelvis, three torso blocks, neck.
    add(Bone::HIPS, Child(Bone::SPINE), 0.26, 0.16, Tint::Body);
    add(Bone::SPINE, Child(Bone::CHEST), 0.27, 0.16, Tint::Body);
    add(
        Bone::CHEST,
        Child(Bone::UPPER_CHEST),
        0.29,
        0.17,
        Tint::Body,
    );
    add(Bone::UPPER_CHEST, Child(Bone::NECK), 0.31, 0.17, Tint::Body);
    add(Bone::NECK, Child(Bone::HEAD), 0.07, 0.07, Tint::Body);
    for side in [Side::Left, Side::Right] {
        // The pelvis' sides: along x, so the box's local x is vertical.
        add(
            Bone::HIPS,
            Child(Bone::leg(side, 0)),
            0.12,
            0.16,
            Tint::Body,
        );
        add(
            Bone::leg(side, 0),
            Child(Bone::leg(side, 1)),
            0.13,
            0.13,
            Tint::Body,
        );
        add(
            Bone::leg(side, 1),
            Child(Bone::leg(side, 2)),
            0.10,
            0.10,
            Tint::Body,
        );
        // Foot and toes point forward (+z at rest): local x stays left–right, local z is the height.
        add(
            Bone::leg(side, 2),
            Child(Bone::leg(side, 3)),
            0.09,
            0.06,
            Tint::Body,
        );
        add(Bone::leg(side, 3), Tip, 0.09, 0.04, Tint::Body);
        // Collar bone, upper arm, forearm (along x: local x is vertical, local z front–back).
        add(
            Bone::arm(side, 0),
            Child(Bone::arm(side, 1)),
            0.06,
            0.06,
            Tint::Body,
        );
        add(
            Bone::arm(side, 1),
            Child(Bone::arm(side, 2)),
            0.08,
            0.08,
            Tint::Body,
        );
        add(
            Bone::arm(side, 2),
            Child(Bone::arm(side, 3)),
            0.065,
            0.065,
            Tint::Body,
        );
        // The palm: flat (thin vertically in the T-pose, palm down), to the middle finger's knuckle.
        let hand = Bone::arm(side, 3);
        add(
            hand,
            Child(Bone::finger(side, 2, 0)),
            0.025,
            0.085,
            Tint::Hand,
        );
        add(
            hand,
            Child(Bone::finger(side, 0, 0)),
            0.022,
            0.022,
            Tint::Hand,
        );
        for finger in 0..5 {
            let width = if finger == 0 { 0.022 } else { 0.017 };
            for phalanx in 0..2 {
                add(
                    Bone::finger(side, finger, phalanx),
                    Child(Bone::finger(side, finger, phalanx + 1)),
                    width,
                    width,
                    Tint::Hand,
                );
            }
            add(Bone::finger(side, finger, 2), Tip, width, width, Tint::Hand);
        }
    }
    out
}

/// Joints shown as spheres: the trunk, arms and legs (not the fingers).
pub(crate) fn ball_joints() -> impl Iterator<Item = Bone> {
    [
        Bone::HIPS,
        Bone::SPINE,
        Bone::CHEST,
        Bone::UPPER_CHEST,
        Bone::NECK,
    ]
    .into_iter()
    .chain([Side::Left, Side::Right].into_iter().flat_map(|side| {
        (1..4)
            .map(move |p| Bone::arm(side, p))
            .chain((0..4).map(move |p| Bone::leg(side, p)))
    }))
}

/// Where a box is and how it is turned, from a joint, the bone's global rotation and its rest direction.
pub(crate) fn along_bone(
    start: Vec3,
    global: Quat,
    rest_dir: Vec3,
    cross: Vec2,
) -> Option<Transform> {
    let length = rest_dir.length();
    if !(length.is_finite() && length > 1e-4) {
        return None;
    }
    let rotation = (global * Quat::from_rotation_arc(Vec3::Y, rest_dir / length)).normalize();
    let transform = Transform {
        translation: start + rotation * (Vec3::Y * length * 0.5),
        rotation,
        scale: Vec3::new(cross.x, length, cross.y),
    };
    transform.is_finite().then_some(transform)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::solver::Solver;
    #[test]
    fn every_segment_and_joint_is_a_bone_of_the_hierarchy_with_a_length() {
        let rest = Solver::new().rest_pose();
        let segments = segments();
        // Every bone but the head (drawn as its own box with a nose) starts a segment.
        for bone in Bone::all() {
            let starts = segments.iter().any(|s| s.bone == bone);
            assert!(
                starts || bone == Bone::HEAD,
                "{} has no segment",
                bone.name()
            );
        }
        for s in &segments {
            let dir = match s.end {
                SegmentEnd::Child(c) => {
                    assert_eq!(c.parent(), Some(s.bone), "{} → {}", s.bone.name(), c.name());
                    Some(rest.offsets_m[c.index()])
                }
                SegmentEnd::Tip => rest.end_sites_m[s.bone.index()],
            };
            let t = along_bone(Vec3::ZERO, Quat::IDENTITY, dir.unwrap(), s.cross_m).unwrap();
            // At rest the box runs from the joint along the rest offset.
            let end = t.translation + t.rotation * (Vec3::Y * t.scale.y * 0.5);
            assert!((end - dir.unwrap()).length() < 1e-5, "{}", s.bone.name());
        }
        assert_eq!(ball_joints().count(), 5 + 2 * 7);
    }

    #[test]
    fn a_box_turns_with_the_bones_twist() {
        // A forearm along +x twisted 90° about its own axis: its cross-section swaps axes.
        let dir = Vec3::X * 0.25;
        let cross = Vec2::new(0.02, 0.08);
        let plain = along_bone(Vec3::ZERO, Quat::IDENTITY, dir, cross).unwrap();
        let twisted = along_bone(Vec3::ZERO, Quat::from_rotation_x(1.0), dir, cross).unwrap();
        assert!((plain.translation - twisted.translation).length() < 1e-5);
        let wide = |t: &Transform| t.rotation * Vec3::Z;
        assert!(wide(&plain).dot(wide(&twisted)) < 0.6);
        // A zero-length or NaN direction places nothing.
        assert!(along_bone(Vec3::ZERO, Quat::IDENTITY, Vec3::ZERO, cross).is_none());
        assert!(along_bone(Vec3::ZERO, Quat::IDENTITY, Vec3::NAN, cross).is_none());
    }
}
