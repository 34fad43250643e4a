//! Present stage, 3D: the rigged avatar, driven **only** by the solved humanoid pose
//! ([`crate::motion`]): the same solver, rest pose and forward kinematics that BVH export and VMC use, so
//! what is seen is what is sent and exported.
//!
//! - Reads [`Results`] (the last two results of the stream shown). Each new result is solved once, in
//!   order, for every person in it, by that person's own [`Solver`] (their own measured body; a new
//!   stream starts afresh).
//! - One avatar per person in view ([`AVATARS`] at most), side by side in the order the people stand in
//!   the image ([`AVATAR_SPACING_M`] apart, centred): world landmarks are per person and centred on
//!   their hips, so the avatars' x comes from their order, not from the image; each keeps its own height.
//!   Each is in its person's colour, bright for the person followed, dimmed for the others.
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

use crate::app::avatar_body::{
    Attached, HEAD_CENTRE_M, HEAD_SIZE_M, JOINT_RADIUS_M, JointBall, NOSE_CENTRE_M, NOSE_SIZE_M,
    Segment, SegmentEnd, Tint, along_bone, ball_joints, segments,
};
use crate::app::overlay::{HAND_COLOR, PERSON_COLORS, blend_now};
use crate::app::results::{Followed, Results};
use crate::app::scene3d::{AvatarRoot, VIEW3D_LAYER, set_material};
use crate::app::{AppSettings, PresentSystems};
use crate::motion::skeleton::{Bone, HumanoidPose, RestPose, forward};
use crate::motion::solver::{MIN_CONFIDENCE, Solver};
use crate::service::StreamId;
use crate::vision::{FrameResult, PersonId};

/// Colour of the parts whose bones are not seen (easing to neutral).
const UNSEEN_COLOR: Color = Color::srgb(0.62, 0.58, 0.5);
const JOINT_COLOR: Color = Color::srgb(0.95, 0.93, 0.85);
const NOSE_COLOR: Color = Color::srgb(1.0, 0.8, 0.2);

/// The pose drawn this update and the rest pose it was drawn on (for the headless state dump; kept as
/// the solver's own types, so the per-frame update allocates nothing).
#[derive(Resource, Default, Clone, Debug)]
pub struct AvatarDrawn {
    /// The followed person's avatar.
    pub pose: Option<HumanoidPose>,
    pub rest: Option<RestPose>,
    /// The blend factor between the last two solved poses.
    pub blend: f32,
    /// Avatars drawn (one per person in view).
    pub avatars: usize,
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
            avatars: self.avatars,
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
    /// Avatars drawn (one per person in view).
    pub avatars: usize,
}

/// Which avatar a part belongs to (one avatar per person in view, [`AVATARS`] at most).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
struct AvatarSlot(usize);

/// Avatars drawn at most (the panel's people slider goes to 6).
pub const AVATARS: usize = 6;
/// Avatars stand this far apart, side by side in the order their people stand in the image.
pub const AVATAR_SPACING_M: f32 = 0.9;

#[derive(Resource)]
struct AvatarMaterials {
    /// Each person colour's body material ([`PERSON_COLORS`]), bright for the person followed and dimmed
    /// for the others.
    body: Vec<Handle<StandardMaterial>>,
    body_dim: Vec<Handle<StandardMaterial>>,
    hand: Handle<StandardMaterial>,
    unseen: Handle<StandardMaterial>,
    joint: Handle<StandardMaterial>,
    nose: Handle<StandardMaterial>,
}

impl AvatarMaterials {
    fn for_part(&self, tint: Tint, confidence: f32, look: Look) -> &Handle<StandardMaterial> {
        let colour = look.colour % self.body.len().max(1);
        match (tint, confidence >= MIN_CONFIDENCE) {
            (_, false) => &self.unseen,
            (Tint::Body, true) if look.followed => &self.body[colour],
            (Tint::Body, true) => &self.body_dim[colour],
            (Tint::Hand, true) => &self.hand,
        }
    }
}

/// How an avatar is coloured: its person's colour, bright when followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Look {
    colour: usize,
    followed: bool,
}

/// One person's solver and their last two solved poses.
struct PersonSolve {
    id: PersonId,
    solver: Solver,
    /// Timestamp (µs) of the newest result solved.
    solved_us: Option<i64>,
    previous: Option<HumanoidPose>,
    newest: Option<HumanoidPose>,
    rest: Option<RestPose>,
}

/// The shown stream's people: a solver each (their own measured body).
#[derive(Resource, Default)]
pub struct AvatarSolve {
    stream: Option<StreamId>,
    people: Vec<PersonSolve>,
}

impl AvatarSolve {
    fn person(&self, id: PersonId) -> Option<&PersonSolve> {
        self.people.iter().find(|p| p.id == id)
    }
}

/// The people a result holds, by id (a result without people, read from a file written before there
/// were people, is its top-level pose as person 1).
fn people_ids(result: &FrameResult) -> Vec<PersonId> {
    if result.people.is_empty() && result.pose.is_some() {
        vec![1]
    } else {
        result.people.iter().map(|p| p.id).collect()
    }
}

fn of_person(result: &FrameResult, id: PersonId) -> FrameResult {
    if result.people.is_empty() {
        result.clone()
    } else {
        result.of_person(id)
    }
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
    let dim = |c: Color| {
        let c = c.to_srgba();
        Color::srgb(c.red * 0.55, c.green * 0.55, c.blue * 0.55)
    };
    let mats = AvatarMaterials {
        body: PERSON_COLORS
            .iter()
            .map(|c| materials.add(material(*c)))
            .collect(),
        body_dim: PERSON_COLORS
            .iter()
            .map(|c| materials.add(material(dim(*c))))
            .collect(),
        hand: materials.add(material(HAND_COLOR)),
        unseen: materials.add(material(UNSEEN_COLOR)),
        joint: materials.add(material(JOINT_COLOR)),
        nose: materials.add(material(NOSE_COLOR)),
    };
    let cube = meshes.add(Cuboid::new(1.0, 1.0, 1.0));
    // Low-poly: software rendering pays per triangle.
    let sphere = meshes.add(Sphere::new(1.0).mesh().uv(10, 6));
    for slot in (0..AVATARS).map(AvatarSlot) {
        let hidden = (
            Transform::default(),
            Visibility::Hidden,
            layer.clone(),
            slot,
        );
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
    }
    commands.insert_resource(mats);
}

/// Solves each result of the stream shown that has not been solved yet, oldest first: every person in
/// it with their own solver. People out of view for a while are forgotten (a new solver if they return).
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
        for id in people_ids(&result.result) {
            if solve.person(id).is_none() {
                solve.people.push(PersonSolve {
                    id,
                    solver: Solver::new(),
                    solved_us: None,
                    previous: None,
                    newest: None,
                    rest: None,
                });
            }
            let Some(person) = solve.people.iter_mut().find(|p| p.id == id) else {
                continue;
            };
            if person.solved_us.is_some_and(|s| timestamp_us <= s) {
                continue;
            }
            let pose = person.solver.solve(&of_person(&result.result, id));
            person.previous = person.newest.replace(pose);
            person.solved_us = Some(timestamp_us);
            person.rest = Some(person.solver.rest_pose());
        }
    }
    let now_us = newest.result.timestamp_us;
    solve
        .people
        .retain(|p| p.solved_us.is_some_and(|s| now_us - s <= FORGET_AVATAR_US));
}

/// A person out of view this long loses their solver (measured afresh when they come back).
const FORGET_AVATAR_US: i64 = 10_000_000;

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

/// The pose of `person` to draw now, and the blend factor.
fn pose_to_draw(
    results: &Results,
    person: &PersonSolve,
    interpolation: bool,
) -> Option<(HumanoidPose, f32)> {
    let newest = person.newest.as_ref()?;
    match (
        &person.previous,
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

/// The people to draw, in the order they stand in the image (left to right on screen), each with the
/// x offset of their avatar: side by side, [`AVATAR_SPACING_M`] apart, centred on x = 0.
fn standing_order(result: &FrameResult, mirror: bool) -> Vec<(PersonId, f32)> {
    let mut people: Vec<(PersonId, f32)> = if result.people.is_empty() {
        result
            .pose
            .iter()
            .map(|p| (1, hip_x(&p.landmarks)))
            .collect()
    } else {
        result
            .people
            .iter()
            .map(|p| (p.id, hip_x(&p.pose.landmarks)))
            .collect()
    };
    people.sort_by(|a, b| a.1.total_cmp(&b.1));
    if mirror {
        people.reverse();
    }
    people.truncate(AVATARS);
    let n = people.len() as f32;
    people
        .into_iter()
        .enumerate()
        .map(|(k, (id, _))| (id, (k as f32 - (n - 1.0) * 0.5) * AVATAR_SPACING_M))
        .collect()
}

fn hip_x(landmarks: &[crate::vision::ImageLandmark]) -> f32 {
    use crate::vision::landmarks::pose_index::{LEFT_HIP, RIGHT_HIP};
    match (landmarks.get(LEFT_HIP), landmarks.get(RIGHT_HIP)) {
        (Some(l), Some(r)) => (l.pos_in_image[0] + r.pos_in_image[0]) * 0.5,
        _ => f32::MAX,
    }
}

#[allow(clippy::too_many_arguments, reason = "one query per kind of part")]
#[allow(clippy::type_complexity, reason = "disjoint queries over the parts")]
fn draw_avatar(
    results: Res<Results>,
    solve: Res<AvatarSolve>,
    settings: Res<AppSettings>,
    followed: Res<Followed>,
    materials: Res<AvatarMaterials>,
    mut root: ResMut<AvatarRoot>,
    // Only in test mode (`--state`): the pose drawn, for the state dump.
    mut drawn: Option<ResMut<AvatarDrawn>>,
    mut segments: Query<
        (
            &Segment,
            &AvatarSlot,
            &mut Transform,
            &mut Visibility,
            &mut MeshMaterial3d<StandardMaterial>,
        ),
        (Without<Attached>, Without<JointBall>),
    >,
    mut attached: Query<
        (
            &Attached,
            &AvatarSlot,
            &mut Transform,
            &mut Visibility,
            &mut MeshMaterial3d<StandardMaterial>,
        ),
        (Without<Segment>, Without<JointBall>),
    >,
    mut balls: Query<
        (&JointBall, &AvatarSlot, &mut Transform, &mut Visibility),
        (Without<Segment>, Without<Attached>),
    >,
) {
    // Each avatar to draw: its slot, pose, rest pose, look; the followed person's is the root.
    let mut avatars = Vec::new();
    let mut followed_root = None;
    let mut followed_pose = None;
    if settings.view3d.avatar
        && let Some(newest) = &results.newest
    {
        let followed_id = followed
            .current
            .or_else(|| people_ids(&newest.result).first().copied());
        for (slot, (id, offset_x)) in standing_order(&newest.result, settings.mirror)
            .into_iter()
            .enumerate()
        {
            let Some(person) = solve.person(id) else {
                continue;
            };
            let (Some((mut pose, blend)), Some(rest)) = (
                pose_to_draw(&results, person, settings.blends()),
                person.rest.as_ref(),
            ) else {
                continue;
            };
            // Side by side: each avatar at its place, its own height and depth.
            pose.root_pos_m.x = offset_x;
            pose.root_pos_m.z = 0.0;
            let look = Look {
                colour: (id.saturating_sub(1) % PERSON_COLORS.len() as u64) as usize,
                followed: Some(id) == followed_id,
            };
            let fk = forward(rest, &pose);
            if look.followed {
                followed_root = Some(fk.pos_m[Bone::HIPS.index()]);
                followed_pose = Some((pose.clone(), rest.clone(), blend));
            }
            avatars.push((slot, fk, pose, rest, look));
        }
    }
    let shown: Vec<usize> = avatars.iter().map(|a| a.0).collect();
    let hide = |slot: &AvatarSlot| !shown.contains(&slot.0);
    for (_, slot, _, mut v, _) in &mut segments {
        if hide(slot) {
            v.set_if_neq(Visibility::Hidden);
        }
    }
    for (_, slot, _, mut v, _) in &mut attached {
        if hide(slot) {
            v.set_if_neq(Visibility::Hidden);
        }
    }
    for (_, slot, _, mut v) in &mut balls {
        if hide(slot) {
            v.set_if_neq(Visibility::Hidden);
        }
    }
    for (slot, fk, pose, rest, look) in &avatars {
        for (segment, _, mut transform, mut visibility, mut material) in
            segments.iter_mut().filter(|s| s.1.0 == *slot)
        {
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
                        materials.for_part(segment.tint, pose.confidence[b], *look),
                    );
                    visibility.set_if_neq(Visibility::Visible);
                }
                None => {
                    visibility.set_if_neq(Visibility::Hidden);
                }
            }
        }
        for (part, _, mut transform, mut visibility, mut material) in
            attached.iter_mut().filter(|a| a.1.0 == *slot)
        {
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
                    materials.for_part(Tint::Body, pose.confidence[b], *look)
                };
                set_material(&mut material, wanted);
                visibility.set_if_neq(Visibility::Visible);
            } else {
                visibility.set_if_neq(Visibility::Hidden);
            }
        }
        for (ball, _, mut transform, mut visibility) in balls.iter_mut().filter(|b| b.1.0 == *slot)
        {
            let p = fk.pos_m[ball.0.index()];
            if p.is_finite() {
                *transform = Transform::from_translation(p).with_scale(Vec3::splat(JOINT_RADIUS_M));
                visibility.set_if_neq(Visibility::Visible);
            } else {
                visibility.set_if_neq(Visibility::Hidden);
            }
        }
    }
    if root.0 != followed_root {
        root.0 = followed_root;
    }
    if let Some(drawn) = drawn.as_mut() {
        match followed_pose {
            Some((pose, rest, blend)) => {
                drawn.rest = Some(rest);
                drawn.pose = Some(pose);
                drawn.blend = blend;
                drawn.avatars = avatars.len();
            }
            None => **drawn = AvatarDrawn::default(),
        }
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
    fn blending_runs_from_the_previous_pose_to_the_newest() {
        let a = HumanoidPose::rest(0, Vec3::new(0.0, 1.0, 0.0));
        let mut b = HumanoidPose::rest(33_000, Vec3::new(0.2, 1.0, 0.0));
        b.local[7] = Quat::from_rotation_z(1.0);
        let half = blend_poses(&a, &b, 0.5);
        assert!((half.root_pos_m.x - 0.1).abs() < 1e-6);
        assert!(half.local[7].angle_between(Quat::from_rotation_z(0.5)) < 1e-4);
        assert_eq!(blend_poses(&a, &b, 1.0).local[7], b.local[7].normalize());
    }

    /// Avatars stand side by side in the order their people stand in the image (hip x), whatever
    /// their ids, centred on x = 0 and [`AVATAR_SPACING_M`] apart; mirrored, the order is reversed (as
    /// the mirrored video is); one person stands at 0.
    #[test]
    fn avatars_stand_in_the_order_of_their_people_in_the_image() {
        use crate::vision::result::testing::{person_at, result_at};
        let with = |people: Vec<crate::vision::Person>| FrameResult {
            pose: people.first().map(|p| p.pose.clone()),
            people,
            ..result_at(0.0)
        };
        // Person 7 stands left of person 2, who stands left of person 4.
        let result = with(vec![
            person_at(2, 300.0),
            person_at(4, 500.0),
            person_at(7, 100.0),
        ]);
        let s = AVATAR_SPACING_M;
        assert_eq!(
            standing_order(&result, false),
            vec![(7, -s), (2, 0.0), (4, s)]
        );
        assert_eq!(
            standing_order(&result, true),
            vec![(4, -s), (2, 0.0), (7, s)]
        );
        assert_eq!(
            standing_order(&with(vec![person_at(9, 100.0)]), false),
            vec![(9, 0.0)]
        );
        // A result from before there were people: its one pose, as person 1.
        assert_eq!(standing_order(&result_at(50.0), false), vec![(1, 0.0)]);
        // At most AVATARS.
        let crowd = with((1..=9).map(|id| person_at(id, id as f32 * 10.0)).collect());
        assert_eq!(standing_order(&crowd, false).len(), AVATARS);
    }
}
