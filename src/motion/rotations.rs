//! The geometry of the solver: one frame's landmarks in skeleton space ([`Frame`]), the global rotation
//! of every bone from them ([`local_rotations`]: torso and head, then per side the arm, hand, fingers and
//! leg), and the frame helpers (`look`, hinge axes, swings, the foot's and the hand's frames). Pure
//! functions of one frame; the solver ([`super::solver`]) keeps the state between frames.

use glam::{Mat3, Quat, Vec3};

use crate::motion::skeleton::{BONE_COUNT, Bone, Side};
use crate::vision::landmarks::hand_index::{
    FINGER_BASES, INDEX_FINGER_MCP, MIDDLE_FINGER_MCP, PINKY_MCP, WRIST,
};
use crate::vision::landmarks::pose_index::{
    LEFT_ANKLE, LEFT_EAR, LEFT_ELBOW, LEFT_FOOT_INDEX, LEFT_HEEL, LEFT_HIP, LEFT_INDEX, LEFT_KNEE,
    LEFT_PINKY, LEFT_SHOULDER, LEFT_WRIST, NOSE, RIGHT_EAR, RIGHT_HIP, RIGHT_SHOULDER,
};
use crate::vision::{FrameResult, Hand};

/// From MediaPipe's world space (x right in the image, y down, z away) to skeleton space.
pub fn skeleton_from_mediapipe(p: [f32; 3]) -> Vec3 {
    Vec3::new(p[0], -p[1], -p[2])
}

/// The landmarks of one frame in skeleton space.
pub(super) struct Frame<'a> {
    pub(super) world: Vec<Vec3>,
    pub(super) visibility: Vec<f32>,
    pub(super) result: &'a FrameResult,
    pub(super) hands: [Option<&'a Hand>; 2],
}

impl<'a> Frame<'a> {
    /// The frame of `result`'s pose, if it has all 33 landmarks.
    pub(super) fn of(result: &'a FrameResult) -> Option<Self> {
        let pose = result
            .pose
            .as_ref()
            .filter(|p| p.world_landmarks.len() >= 33 && p.landmarks.len() >= 33)?;
        Some(Frame {
            world: pose
                .world_landmarks
                .iter()
                .map(|w| skeleton_from_mediapipe(w.pos_in_world))
                .collect(),
            visibility: pose
                .world_landmarks
                .iter()
                .map(|w| {
                    if w.visibility.is_finite() {
                        w.visibility
                    } else {
                        0.0
                    }
                })
                .collect(),
            result,
            hands: assign_hands(result),
        })
    }

    pub(super) fn p(&self, i: usize) -> Vec3 {
        self.world[i]
    }

    pub(super) fn mid(&self, a: usize, b: usize) -> Vec3 {
        (self.world[a] + self.world[b]) * 0.5
    }

    /// The lowest visibility of `ids`.
    pub(super) fn vis(&self, ids: &[usize]) -> f32 {
        ids.iter().map(|&i| self.visibility[i]).fold(1.0, f32::min)
    }

    pub(super) fn hand(&self, side: Side) -> Option<&Hand> {
        self.hands[side_slot(side)]
    }

    pub(super) fn shoulder_centre(&self) -> Vec3 {
        self.mid(LEFT_SHOULDER, RIGHT_SHOULDER)
    }

    pub(super) fn hip_centre(&self) -> Vec3 {
        self.mid(LEFT_HIP, RIGHT_HIP)
    }
}

fn side_slot(side: Side) -> usize {
    match side {
        Side::Left => 0,
        Side::Right => 1,
    }
}

/// The pose landmark of `side` whose left one is `left` (MediaPipe puts the right one next).
pub(super) fn lm(side: Side, left: usize) -> usize {
    match side {
        Side::Left => left,
        Side::Right => left + 1,
    }
}

pub(super) fn hand_world(hand: &Hand, i: usize) -> Vec3 {
    skeleton_from_mediapipe(hand.world_landmarks[i].pos_in_world)
}

/// Rest directions of the thumb in the hand frame (x along the hand, z across towards the index).
pub(super) fn thumb_rest_direction(side: Side) -> Vec3 {
    Vec3::new(0.6 * side.sign(), 0.0, 0.8)
}

/// A rotation turning the rest frame (`rest_primary`, `rest_secondary`) onto the observed one. None if
/// either observed axis is degenerate or not finite.
pub fn look(
    primary: Vec3,
    secondary: Vec3,
    rest_primary: Vec3,
    rest_secondary: Vec3,
) -> Option<Quat> {
    let observed = basis(primary, secondary)?;
    let rest = basis(rest_primary, rest_secondary)?;
    let q = Quat::from_mat3(&(observed * rest.transpose())).normalize();
    q.is_finite().then_some(q)
}

/// An orthonormal frame whose first axis is `primary` and whose third lies along `secondary` (made
/// perpendicular to the first); the second completes a right-handed frame.
fn basis(primary: Vec3, secondary: Vec3) -> Option<Mat3> {
    let x = primary.try_normalize()?;
    let z = perpendicular(secondary, x)?;
    let y = z.cross(x);
    Some(Mat3::from_cols(x, y, z))
}

/// The unit part of `v` perpendicular to the unit vector `axis`.
fn perpendicular(v: Vec3, axis: Vec3) -> Option<Vec3> {
    let p = v - axis * v.dot(axis);
    (p.length() > 1e-4 * v.length().max(1e-9)).then_some(())?;
    p.try_normalize()
}

/// `q` or `−q`, whichever is nearer `reference` (the same rotation; keeps the sign continuous).
pub fn align(q: Quat, reference: Quat) -> Quat {
    if q.dot(reference) < 0.0 { -q } else { q }
}

/// Every bone's global rotation (None: not seen) and confidence, as they are solved.
struct Globals {
    rotation: [Option<Quat>; BONE_COUNT],
    confidence: [f32; BONE_COUNT],
}

impl Globals {
    fn set(&mut self, bone: Bone, rotation: Option<Quat>, confidence: f32) {
        self.rotation[bone.index()] = rotation;
        self.confidence[bone.index()] = confidence;
    }

    fn get(&self, bone: Bone) -> Option<Quat> {
        self.rotation[bone.index()]
    }
}

/// Each bone's local rotation (None where it or its parent is not seen) and confidence (0 there).
pub(super) fn local_rotations(f: &Frame) -> ([Option<Quat>; BONE_COUNT], [f32; BONE_COUNT]) {
    let mut g = Globals {
        rotation: [None; BONE_COUNT],
        confidence: [0.0; BONE_COUNT],
    };
    let hips = torso_and_head(f, &mut g);
    for side in [Side::Left, Side::Right] {
        let hand = arm(f, side, &mut g);
        if let (Some(h), Some(hand_q)) = (f.hand(side), hand.rotation) {
            fingers(h, side, hand_q, hand.confidence, &mut g);
        }
        leg(f, side, hips, &mut g);
    }
    let mut local = [None; BONE_COUNT];
    let mut confidence = g.confidence;
    for bone in Bone::all() {
        let i = bone.index();
        local[i] = g.rotation[i].and_then(|global| match bone.parent() {
            None => Some(global),
            Some(parent) => g.rotation[parent.index()].map(|p| (p.inverse() * global).normalize()),
        });
        if local[i].is_none() {
            confidence[i] = 0.0;
        }
    }
    (local, confidence)
}

/// Hips, spine (Spine and Chest between the hips' and the shoulders' frames), neck and head. Returns
/// the hips' rotation.
fn torso_and_head(f: &Frame, g: &mut Globals) -> Option<Quat> {
    let up = f.shoulder_centre() - f.hip_centre();
    let hips = look(f.p(LEFT_HIP) - f.p(RIGHT_HIP), up, Vec3::X, Vec3::Y);
    let shoulders = look(
        f.p(LEFT_SHOULDER) - f.p(RIGHT_SHOULDER),
        up,
        Vec3::X,
        Vec3::Y,
    );
    let torso_vis = f.vis(&[LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP]);
    g.set(Bone::HIPS, hips, torso_vis);
    if let (Some(h), Some(s)) = (hips, shoulders) {
        let s = align(s, h);
        g.set(Bone::SPINE, Some(h.slerp(s, 1.0 / 3.0)), torso_vis);
        g.set(Bone::CHEST, Some(h.slerp(s, 2.0 / 3.0)), torso_vis);
        g.set(Bone::UPPER_CHEST, Some(s), torso_vis);
    }
    let ears = f.mid(LEFT_EAR, RIGHT_EAR);
    let head = look(
        f.p(LEFT_EAR) - f.p(RIGHT_EAR),
        f.p(NOSE) - ears,
        Vec3::X,
        Vec3::Z,
    );
    let head_vis = f.vis(&[NOSE, LEFT_EAR, RIGHT_EAR]);
    if let (Some(chest), Some(hd)) = (g.get(Bone::UPPER_CHEST), head) {
        let hd = align(hd, chest);
        g.set(
            Bone::NECK,
            Some(chest.slerp(hd, 0.5)),
            head_vis.min(torso_vis),
        );
        g.set(Bone::HEAD, Some(hd), head_vis);
    }
    hips
}

/// A hand's rotation and its confidence.
struct HandRotation {
    rotation: Option<Quat>,
    confidence: f32,
}

/// Shoulder, upper arm, forearm and hand of one side. The hand comes from the tracked hand, else from
/// the pose's own hand points (wrist, pinky, index); the forearm's roll follows it.
fn arm(f: &Frame, side: Side, g: &mut Globals) -> HandRotation {
    let s = side.sign();
    let (shoulder, elbow, wrist) = (
        lm(side, LEFT_SHOULDER),
        lm(side, LEFT_ELBOW),
        lm(side, LEFT_WRIST),
    );
    let chest = g.get(Bone::UPPER_CHEST);
    let torso_vis = g.confidence[Bone::HIPS.index()];
    g.set(Bone::arm(side, 0), chest, torso_vis);
    let upper = f.p(elbow) - f.p(shoulder);
    let lower = f.p(wrist) - f.p(elbow);
    let forward = chest.map_or(Vec3::Z, |c| c * Vec3::Z);
    let upper_q = look(
        upper,
        hinge_secondary(upper, lower, forward),
        Vec3::X * s,
        Vec3::Z,
    );
    g.set(
        Bone::arm(side, 1),
        upper_q,
        f.vis(&[shoulder, elbow, wrist]),
    );
    let tracked = f.hand(side);
    let hand = match tracked.and_then(|h| hand_frame_from_hand(h, side)) {
        Some(q) => HandRotation {
            rotation: Some(q),
            confidence: tracked.map_or(0.0, |h| h.presence).min(f.vis(&[wrist])),
        },
        None => {
            let (pinky, index) = (f.p(lm(side, LEFT_PINKY)), f.p(lm(side, LEFT_INDEX)));
            HandRotation {
                rotation: look(
                    (pinky + index) * 0.5 - f.p(wrist),
                    index - pinky,
                    Vec3::X * s,
                    Vec3::Z,
                ),
                confidence: f.vis(&[wrist, lm(side, LEFT_PINKY), lm(side, LEFT_INDEX)]),
            }
        }
    };
    let lower_q = hand
        .rotation
        .and_then(|q| look(lower, q * Vec3::Z, Vec3::X * s, Vec3::Z))
        .or_else(|| upper_q.map(|u| swing(u, Vec3::X * s, lower)));
    g.set(Bone::arm(side, 2), lower_q, f.vis(&[elbow, wrist]));
    g.set(Bone::arm(side, 3), hand.rotation, hand.confidence);
    HandRotation {
        rotation: hand.rotation.filter(|_| tracked.is_some()),
        confidence: hand.confidence,
    }
}

/// The three phalanges of every finger of a tracked hand (the thumb's roll from the back of the hand,
/// the others' from across the palm).
fn fingers(hand: &Hand, side: Side, hand_q: Quat, confidence: f32, g: &mut Globals) {
    let across = hand_q * Vec3::Z;
    let back = hand_q * Vec3::Y;
    for (finger, &base) in (0_u8..).zip(FINGER_BASES.iter()) {
        for j in 0..3_u8 {
            let a = hand_world(hand, base + usize::from(j));
            let b = hand_world(hand, base + usize::from(j) + 1);
            let q = if finger == 0 {
                look(b - a, back, thumb_rest_direction(side), Vec3::Y)
            } else {
                look(b - a, across, Vec3::X * side.sign(), Vec3::Z)
            };
            g.set(Bone::finger(side, finger, j), q, confidence);
        }
    }
}

/// Thigh, shin and foot (and toes) of one side.
fn leg(f: &Frame, side: Side, hips: Option<Quat>, g: &mut Globals) {
    let (hip, knee, ankle) = (
        lm(side, LEFT_HIP),
        lm(side, LEFT_KNEE),
        lm(side, LEFT_ANKLE),
    );
    let thigh = f.p(knee) - f.p(hip);
    let shin = f.p(ankle) - f.p(knee);
    let hips_forward = hips.map_or(Vec3::Z, |h| h * Vec3::Z);
    // The knee bends backwards: the shin's part across the thigh points back, so negate it.
    let thigh_q = look(
        thigh,
        -hinge_secondary(thigh, shin, -hips_forward),
        Vec3::NEG_Y,
        Vec3::Z,
    );
    g.set(Bone::leg(side, 0), thigh_q, f.vis(&[hip, knee, ankle]));
    let foot_q = foot_frame(f, side);
    let shin_q = foot_q
        .and_then(|q| look(shin, q * Vec3::Z, Vec3::NEG_Y, Vec3::Z))
        .or_else(|| thigh_q.map(|t| swing(t, Vec3::NEG_Y, shin)));
    let foot_vis = f.vis(&[ankle, lm(side, LEFT_HEEL), lm(side, LEFT_FOOT_INDEX)]);
    g.set(Bone::leg(side, 1), shin_q, f.vis(&[knee, ankle]));
    g.set(Bone::leg(side, 2), foot_q, foot_vis);
    g.set(Bone::leg(side, 3), foot_q, foot_vis);
}

/// The second axis of a limb's first bone: the direction its second bone bends away (when bent by more
/// than ~10–30°), blended smoothly into `fallback` as the limb straightens, so the twist never jumps.
fn hinge_secondary(first: Vec3, second: Vec3, fallback: Vec3) -> Vec3 {
    let (Some(u), Some(v)) = (first.try_normalize(), second.try_normalize()) else {
        return fallback;
    };
    let bend = u.cross(v).length();
    let w = ((bend - 0.17) / (0.5 - 0.17)).clamp(0.0, 1.0);
    let w = w * w * (3.0 - 2.0 * w);
    let bent = perpendicular(v, u);
    let straight = perpendicular(fallback, u);
    match (bent, straight) {
        (Some(b), Some(s)) => b * w + s * (1.0 - w),
        (Some(b), None) => b,
        (None, Some(s)) => s,
        (None, None) => fallback,
    }
}

/// `parent_global` swung (no twist) so that its `rest_axis` points along `direction`.
fn swing(parent_global: Quat, rest_axis: Vec3, direction: Vec3) -> Quat {
    let from = parent_global * rest_axis;
    match (from.try_normalize(), direction.try_normalize()) {
        (Some(from), Some(to)) => (Quat::from_rotation_arc(from, to) * parent_global).normalize(),
        _ => parent_global,
    }
}

/// The foot's global rotation: forward from heel to foot index, up along the shin.
pub(super) fn foot_frame(f: &Frame, side: Side) -> Option<Quat> {
    let forward = f.p(lm(side, LEFT_FOOT_INDEX)) - f.p(lm(side, LEFT_HEEL));
    let up = f.p(lm(side, LEFT_KNEE)) - f.p(lm(side, LEFT_ANKLE));
    // Rest: forward +z, up +y; `look` takes (primary, secondary) = (forward, up).
    look(forward, up, Vec3::Z, Vec3::Y)
}

/// The hand's global rotation from the hand world landmarks: along wrist → middle knuckle, across
/// from the little knuckle to the index knuckle.
pub(super) fn hand_frame_from_hand(hand: &Hand, side: Side) -> Option<Quat> {
    if hand.world_landmarks.len() < 21 {
        return None;
    }
    let along = hand_world(hand, MIDDLE_FINGER_MCP) - hand_world(hand, WRIST);
    let across = hand_world(hand, INDEX_FINGER_MCP) - hand_world(hand, PINKY_MCP);
    look(along, across, Vec3::X * side.sign(), Vec3::Z)
}

/// The hand seen at each wrist: the one whose wrist is nearest that pose wrist in the image, if within
/// half the forearm's image length (or 60 px).
fn assign_hands(result: &FrameResult) -> [Option<&Hand>; 2] {
    let mut out = [None, None];
    let Some(pose) = result.pose.as_ref() else {
        return out;
    };
    let px = |i: usize| {
        let p = pose.landmarks[i].pos_in_image;
        Vec3::new(p[0], p[1], 0.0)
    };
    let mut taken = vec![false; result.hands.len()];
    for side in [Side::Left, Side::Right] {
        let wrist = px(lm(side, LEFT_WRIST));
        let limit = ((px(lm(side, LEFT_ELBOW)) - wrist).length() * 0.5).max(60.0);
        let best = result
            .hands
            .iter()
            .enumerate()
            .filter(|(i, h)| !taken[*i] && !h.landmarks.is_empty() && h.world_landmarks.len() >= 21)
            .map(|(i, h)| {
                let w = h.landmarks[WRIST].pos_in_image;
                (i, (Vec3::new(w[0], w[1], 0.0) - wrist).length())
            })
            .filter(|(_, d)| d.is_finite() && *d <= limit)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = best {
            taken[i] = true;
            out[side_slot(side)] = Some(&result.hands[i]);
        }
    }
    out
}
