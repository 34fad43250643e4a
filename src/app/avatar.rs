//! Present stage, 3D: the rigged avatar, driven **only** by the solved humanoid pose
//! ([`crate::motion`]): the same solver, rest pose and forward kinematics that BVH export and VMC use, so
//! what is seen is what is sent and exported.
//!
//! - Reads [`Results`] (the last two results of the stream shown). Each new result is solved once, in
//!   order, by this stream's [`Solver`] (a new stream gets a new solver: its own measured body).
//! - Draws the pose blended between the last two solved poses with the overlay's blend factor (root
//!   lerped, bone rotations slerped), so the avatar moves with the 2D skeleton.
//! - Writes the segments' transforms, [`AvatarRoot`] (the drawn hip joint: the landmarks view stands
//!   on it and the camera follows it) and [`AvatarDrawn`] (the pose drawn, for the headless test).
//!
//! The body is rigid boxes, one per bone segment (joint to child joint, or to the end site), placed by
//! forward kinematics: a box's long axis runs along the bone and its cross-section turns with the bone's
//! full rotation, so twist shows. The head carries a nose (which way it faces), hands are flat palms
//! with a thumb and three-phalanx fingers (palm down in the T-pose), feet point to their toes. Joints are
//! small spheres. Bones whose confidence is below [`MIN_CONFIDENCE`] (unseen: easing to neutral) are
//! grey. Drawing cost: one cube and one sphere mesh and five materials for every part, so Bevy batches
//! them into a few instanced draws; a part's material is swapped only when its confidence class
//! changes; nothing is spawned or despawned after start-up.

use std::time::Instant;

use bevy::camera::visibility::RenderLayers;
use bevy::prelude::*;

use crate::app::overlay::{BODY_COLOR, HAND_COLOR, blend_now};
use crate::app::results::Results;
use crate::app::scene3d::{AvatarRoot, VIEW3D_LAYER, set_material};
use crate::app::{AppSettings, PresentSystems};
use crate::motion::skeleton::{Bone, HumanoidPose, RestPose, Side, forward};
use crate::motion::solver::{MIN_CONFIDENCE, Solver};
use crate::service::StreamId;

/// Joint spheres' radius (m).
const JOINT_RADIUS_M: f32 = 0.035;
/// Head box (width, height, depth, m) around the head joint (ear height: chin 8 cm below, crown 14 cm
/// above), and its centre's offset.
const HEAD_SIZE_M: Vec3 = Vec3::new(0.15, 0.22, 0.19);
const HEAD_CENTRE_M: Vec3 = Vec3::new(0.0, 0.03, 0.0);
/// The nose, in the head's frame: in front (+z, the way the head faces), at ear height.
const NOSE_SIZE_M: Vec3 = Vec3::new(0.04, 0.05, 0.07);
const NOSE_CENTRE_M: Vec3 = Vec3::new(0.0, 0.0, 0.11);

/// Colour of the parts whose bones are not seen (easing to neutral).
const UNSEEN_COLOR: Color = Color::srgb(0.62, 0.58, 0.5);
const JOINT_COLOR: Color = Color::srgb(0.95, 0.93, 0.85);
const NOSE_COLOR: Color = Color::srgb(1.0, 0.8, 0.2);

/// The pose drawn this update and the rest pose it was drawn on (for the headless state dump; kept as
/// the solver's own types, so the per-frame update allocates nothing).
#[derive(Resource, Default, Clone, Debug)]
pub struct AvatarDrawn {
    pub pose: Option<HumanoidPose>,
    pub rest: Option<RestPose>,
    /// The blend factor between the last two solved poses.
    pub blend: f32,
}

impl AvatarDrawn {
    /// The drawn pose as JSON-ready arrays.
    pub fn dump(&self) -> AvatarDump {
        let (Some(pose), Some(rest)) = (&self.pose, &self.rest) else {
            return AvatarDump::default();
        };
        AvatarDump {
            shown: true,
            root_pos_m: pose.root_pos_m.to_array(),
            local_xyzw: pose.local.iter().map(|q| q.to_array()).collect(),
            confidence: pose.confidence.to_vec(),
            offsets_m: rest.offsets_m.iter().map(|v| v.to_array()).collect(),
            end_sites_m: rest
                .end_sites_m
                .iter()
                .map(|e| e.map(|v| v.to_array()))
                .collect(),
            bone_names: Bone::all().map(Bone::name).collect(),
            blend: self.blend,
        }
    }
}

/// [`AvatarDrawn`] in the state dump.
#[derive(Default, Clone, Debug, serde::Serialize)]
pub struct AvatarDump {
    pub shown: bool,
    pub root_pos_m: [f32; 3],
    /// Each bone's local rotation (x, y, z, w), in bone index order.
    pub local_xyzw: Vec<[f32; 4]>,
    pub confidence: Vec<f32>,
    /// The rest pose: each joint's offset from its parent, and the end sites.
    pub offsets_m: Vec<[f32; 3]>,
    pub end_sites_m: Vec<Option<[f32; 3]>>,
    pub bone_names: Vec<String>,
    /// The blend factor between the last two solved poses.
    pub blend: f32,
}

/// What a segment box spans.
#[derive(Clone, Copy, Debug)]
enum SegmentEnd {
    /// From the bone's joint to this child's joint.
    Child(Bone),
    /// From the bone's joint to its end site.
    Tip,
}

/// What a part is coloured as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tint {
    Body,
    Hand,
}

/// A box along a bone: `cross_m` is its size across the bone (the box's local x and z; at rest, with the
/// bone along y, x is the person's left–right).
#[derive(Component, Clone, Copy, Debug)]
struct Segment {
    bone: Bone,
    end: SegmentEnd,
    cross_m: Vec2,
    tint: Tint,
}

/// A box fixed in a bone's frame (the head and its nose).
#[derive(Component, Clone, Copy, Debug)]
struct Attached {
    bone: Bone,
    centre_m: Vec3,
    size_m: Vec3,
    nose: bool,
}

/// A joint sphere.
#[derive(Component, Clone, Copy, Debug)]
struct JointBall(Bone);

#[derive(Resource)]
struct AvatarMaterials {
    body: Handle<StandardMaterial>,
    hand: Handle<StandardMaterial>,
    unseen: Handle<StandardMaterial>,
    joint: Handle<StandardMaterial>,
    nose: Handle<StandardMaterial>,
}

impl AvatarMaterials {
    fn for_part(&self, tint: Tint, confidence: f32) -> &Handle<StandardMaterial> {
        match (tint, confidence >= MIN_CONFIDENCE) {
            (_, false) => &self.unseen,
            (Tint::Body, true) => &self.body,
            (Tint::Hand, true) => &self.hand,
        }
    }
}

/// The shown stream's solver and its last two solved poses.
#[derive(Resource, Default)]
pub struct AvatarSolve {
    stream: Option<StreamId>,
    solver: Solver,
    /// Timestamp (µs) of the newest result solved.
    solved_us: Option<i64>,
    previous: Option<HumanoidPose>,
    newest: Option<HumanoidPose>,
    rest: Option<RestPose>,
}

/// The segments the avatar is made of: (bone, end, cross-section in m, tint).
fn segments() -> Vec<Segment> {
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
fn ball_joints() -> impl Iterator<Item = Bone> {
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

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let layer = RenderLayers::layer(VIEW3D_LAYER);
    let material = |color: Color| StandardMaterial {
        base_color: color,
        perceptual_roughness: 0.7,
        ..default()
    };
    let mats = AvatarMaterials {
        body: materials.add(material(BODY_COLOR)),
        hand: materials.add(material(HAND_COLOR)),
        unseen: materials.add(material(UNSEEN_COLOR)),
        joint: materials.add(material(JOINT_COLOR)),
        nose: materials.add(material(NOSE_COLOR)),
    };
    let cube = meshes.add(Cuboid::new(1.0, 1.0, 1.0));
    // Low-poly: software rendering pays per triangle.
    let sphere = meshes.add(Sphere::new(1.0).mesh().uv(10, 6));
    let hidden = (Transform::default(), Visibility::Hidden, layer);
    for segment in segments() {
        commands.spawn((
            segment,
            Mesh3d(cube.clone()),
            MeshMaterial3d(mats.unseen.clone()),
            hidden.clone(),
        ));
    }
    for (centre_m, size_m, nose) in [
        (HEAD_CENTRE_M, HEAD_SIZE_M, false),
        (NOSE_CENTRE_M, NOSE_SIZE_M, true),
    ] {
        commands.spawn((
            Attached {
                bone: Bone::HEAD,
                centre_m,
                size_m,
                nose,
            },
            Mesh3d(cube.clone()),
            MeshMaterial3d(mats.unseen.clone()),
            hidden.clone(),
        ));
    }
    for bone in ball_joints() {
        commands.spawn((
            JointBall(bone),
            Mesh3d(sphere.clone()),
            MeshMaterial3d(mats.joint.clone()),
            hidden.clone(),
        ));
    }
    commands.insert_resource(mats);
}

/// Solves each result of the stream shown that has not been solved yet, oldest first.
fn solve_results(results: Res<Results>, mut solve: ResMut<AvatarSolve>) {
    if !results.changed() {
        return;
    }
    let Some(newest) = results.newest.as_ref() else {
        return;
    };
    if solve.stream != Some(newest.stream) {
        *solve = AvatarSolve {
            stream: Some(newest.stream),
            ..default()
        };
    }
    for result in [results.previous.as_ref(), Some(newest)]
        .into_iter()
        .flatten()
    {
        let timestamp_us = result.result.timestamp_us;
        if solve.solved_us.is_some_and(|s| timestamp_us <= s) {
            continue;
        }
        let pose = solve.solver.solve(&result.result);
        solve.previous = solve.newest.replace(pose);
        solve.solved_us = Some(timestamp_us);
    }
    solve.rest = Some(solve.solver.rest_pose());
}

/// The pose between `a` and `b` at `t` (0: `a`, 1: `b`): root lerped, rotations slerped.
fn blend_poses(a: &HumanoidPose, b: &HumanoidPose, t: f32) -> HumanoidPose {
    let mut out = b.clone();
    out.root_pos_m = a.root_pos_m.lerp(b.root_pos_m, t);
    for i in 0..out.local.len() {
        out.local[i] = a.local[i].slerp(b.local[i], t).normalize();
        out.confidence[i] = a.confidence[i] + (b.confidence[i] - a.confidence[i]) * t;
    }
    out
}

/// The pose to draw now, and the blend factor.
fn pose_to_draw(
    results: &Results,
    solve: &AvatarSolve,
    interpolation: bool,
) -> Option<(HumanoidPose, f32)> {
    let newest = solve.newest.as_ref()?;
    match (
        &solve.previous,
        &results.previous,
        &results.newest,
        interpolation,
    ) {
        (Some(previous), Some(rp), Some(rn), true) => {
            let t = blend_now(rp, rn, Instant::now());
            Some((blend_poses(previous, newest, t), t))
        }
        _ => Some((newest.clone(), 1.0)),
    }
}

/// Where a box is and how it is turned, from a joint, the bone's global rotation and its rest direction.
fn along_bone(start: Vec3, global: Quat, rest_dir: Vec3, cross: Vec2) -> Option<Transform> {
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

#[allow(clippy::too_many_arguments, reason = "one query per kind of part")]
#[allow(clippy::type_complexity, reason = "disjoint queries over the parts")]
fn draw_avatar(
    results: Res<Results>,
    solve: Res<AvatarSolve>,
    settings: Res<AppSettings>,
    materials: Res<AvatarMaterials>,
    mut root: ResMut<AvatarRoot>,
    // Only in test mode (`--state`): the pose drawn, for the state dump.
    mut drawn: Option<ResMut<AvatarDrawn>>,
    mut segments: Query<
        (
            &Segment,
            &mut Transform,
            &mut Visibility,
            &mut MeshMaterial3d<StandardMaterial>,
        ),
        (Without<Attached>, Without<JointBall>),
    >,
    mut attached: Query<
        (
            &Attached,
            &mut Transform,
            &mut Visibility,
            &mut MeshMaterial3d<StandardMaterial>,
        ),
        (Without<Segment>, Without<JointBall>),
    >,
    mut balls: Query<
        (&JointBall, &mut Transform, &mut Visibility),
        (Without<Segment>, Without<Attached>),
    >,
) {
    let pose = settings
        .view3d
        .avatar
        .then(|| pose_to_draw(&results, &solve, settings.interpolation))
        .flatten()
        .filter(|_| results.newest.is_some());
    let (Some((pose, blend)), Some(rest)) = (pose, solve.rest.as_ref()) else {
        if root.0.is_some() || drawn.as_ref().is_some_and(|d| d.pose.is_some()) {
            for (_, _, mut v, _) in &mut segments {
                v.set_if_neq(Visibility::Hidden);
            }
            for (_, _, mut v, _) in &mut attached {
                v.set_if_neq(Visibility::Hidden);
            }
            for (_, _, mut v) in &mut balls {
                v.set_if_neq(Visibility::Hidden);
            }
            root.0 = None;
            if let Some(drawn) = drawn.as_mut() {
                **drawn = AvatarDrawn::default();
            }
        }
        return;
    };
    let fk = forward(rest, &pose);
    for (segment, mut transform, mut visibility, mut material) in &mut segments {
        let b = segment.bone.index();
        let rest_dir = match segment.end {
            SegmentEnd::Child(child) => Some(rest.offsets_m[child.index()]),
            SegmentEnd::Tip => rest.end_sites_m[b],
        };
        let placed =
            rest_dir.and_then(|d| along_bone(fk.pos_m[b], fk.global[b], d, segment.cross_m));
        match placed {
            Some(t) => {
                *transform = t;
                set_material(
                    &mut material,
                    materials.for_part(segment.tint, pose.confidence[b]),
                );
                visibility.set_if_neq(Visibility::Visible);
            }
            None => {
                visibility.set_if_neq(Visibility::Hidden);
            }
        }
    }
    for (part, mut transform, mut visibility, mut material) in &mut attached {
        let b = part.bone.index();
        let t = Transform {
            translation: fk.pos_m[b] + fk.global[b] * part.centre_m,
            rotation: fk.global[b],
            scale: part.size_m,
        };
        if t.is_finite() {
            *transform = t;
            let wanted = if part.nose {
                &materials.nose
            } else {
                materials.for_part(Tint::Body, pose.confidence[b])
            };
            set_material(&mut material, wanted);
            visibility.set_if_neq(Visibility::Visible);
        } else {
            visibility.set_if_neq(Visibility::Hidden);
        }
    }
    for (ball, mut transform, mut visibility) in &mut balls {
        let p = fk.pos_m[ball.0.index()];
        if p.is_finite() {
            *transform = Transform::from_translation(p).with_scale(Vec3::splat(JOINT_RADIUS_M));
            visibility.set_if_neq(Visibility::Visible);
        } else {
            visibility.set_if_neq(Visibility::Hidden);
        }
    }
    root.0 = Some(fk.pos_m[Bone::HIPS.index()]);
    if let Some(drawn) = drawn.as_mut() {
        if drawn.rest.is_none() || solve.is_changed() {
            drawn.rest = Some(rest.clone());
        }
        drawn.pose = Some(pose);
        drawn.blend = blend;
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<AvatarSolve>()
        .init_resource::<AvatarRoot>()
        .add_systems(Startup, setup)
        .add_systems(
            Update,
            (solve_results, draw_avatar)
                .chain()
                .in_set(PresentSystems::Avatar),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn blending_runs_from_the_previous_pose_to_the_newest() {
        let a = HumanoidPose::rest(0, Vec3::new(0.0, 1.0, 0.0));
        let mut b = HumanoidPose::rest(33_000, Vec3::new(0.2, 1.0, 0.0));
        b.local[7] = Quat::from_rotation_z(1.0);
        let half = blend_poses(&a, &b, 0.5);
        assert!((half.root_pos_m.x - 0.1).abs() < 1e-6);
        assert!(half.local[7].angle_between(Quat::from_rotation_z(0.5)) < 1e-4);
        assert_eq!(blend_poses(&a, &b, 1.0).local[7], b.local[7].normalize());
    }
}
