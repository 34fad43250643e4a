//! The solver: a [`HumanoidPose`] (root position and one local rotation per bone) from one frame's
//! landmarks, on a rest pose measured from the person.
//!
//! - **Rest pose**: bone lengths from the pose world landmarks (left and right averaged, so the skeleton
//!   is symmetric), the hand's layout from the hand world landmarks, the foot's from heel, ankle and foot
//!   index. Each measure is the median of the frames that see it during its first second (from the first
//!   frame that sees it), then frozen: the skeleton settles within a second and never changes again.
//!   Until a measure has a sample, it takes the proportions of a 1.75 m adult.
//! - **Rotations**: each bone's global rotation turns its rest frame (the direction to its child, and a
//!   second axis) onto the observed one: `look(primary, secondary)`. The second axis fixes the twist:
//!   - upper arm: the direction the forearm bends (when the elbow is bent by more than ~20°), blended
//!     smoothly into the chest's forward direction when the arm is straight;
//!   - forearm: across the palm (index knuckle − little knuckle), from the tracked hand or else from the
//!     pose's own hand points (15, 17, 19), so a forearm's roll follows the hand;
//!   - thigh: the direction the knee bends, blended into the hips' forward; shin and foot: heel → foot
//!     index;
//!   - spine: the hips' frame and the shoulders' frame, Spine and Chest in between (slerp);
//!   - head: ear to ear, and the nose; the neck halfway between chest and head;
//!   - hand and fingers: from the hand world landmarks (hand assigned to the wrist it is nearest in the
//!     image), the thumb's roll from the back of the hand.
//! - **Confidence**: the lowest visibility of the landmarks behind a bone (the hand's presence for
//!   fingers). A bone below 0.5 eases towards a neutral pose (arms down, fingers straight) with a 0.2 s
//!   time constant instead of jumping, and eases back when it is seen again (until it is within 3° of
//!   what it sees, then follows it).
//! - **No jumps**: a seen bone whose solved rotation would turn faster than 15 rad/s (~29° between two
//!   frames at 30 frames/s: faster than a human joint turns) eases towards it the same way. That happens
//!   when the landmarks themselves jump (a re-detection, another person) or when a twist's source
//!   changes (a tracked hand appears at a wrist whose roll came from the pose's coarse hand points).
//! - **Never NaN**: a degenerate frame (coincident points, non-finite values) keeps the bone's previous
//!   rotation. Quaternions keep the sign of the previous frame's, so no bone flips by a full turn of
//!   sign between frames.
//! - **Root**: the hips at rest height, moved in x and y by the hips' image motion since the first frame,
//!   converted to metres with the torso's length; z stays 0 (a single camera sees depth poorly).

use glam::{Mat3, Quat, Vec3};

use crate::motion::skeleton::{BONE_COUNT, Bone, HumanoidPose, RestPose, Side};
use crate::vision::{FrameResult, Hand};

/// Bones below this confidence ease towards neutral.
pub const MIN_CONFIDENCE: f32 = 0.5;
/// Time constant of the easing, seconds.
const EASE_SECONDS: f32 = 0.2;
/// Easing ends when the bone is this close to what it sees (radians, 3°).
const CAUGHT_UP_RAD: f32 = 0.052;
/// Faster than this (rad/s) a seen bone eases instead of following.
const MAX_SPEED_RAD_S: f32 = 15.0;
/// How long each body measure collects samples.
const CALIBRATION_US: i64 = 1_000_000;

/// From MediaPipe's world space (x right in the image, y down, z away) to skeleton space.
pub fn skeleton_from_mediapipe(p: [f32; 3]) -> Vec3 {
    Vec3::new(p[0], -p[1], -p[2])
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

/// Body measures, each settled by its own first second of samples.
#[derive(Clone, Debug, Default)]
struct Measure {
    samples: Vec<f32>,
    first_us: Option<i64>,
    settled: Option<f32>,
}

impl Measure {
    fn add(&mut self, timestamp_us: i64, value: f32) {
        if self.settled.is_some() || !value.is_finite() || value <= 0.0 {
            return;
        }
        let first = *self.first_us.get_or_insert(timestamp_us);
        if timestamp_us - first > CALIBRATION_US && !self.samples.is_empty() {
            self.settled = Some(median(&mut self.samples.clone()));
            return;
        }
        self.samples.push(value);
    }

    fn value(&self, default: f32) -> f32 {
        match self.settled {
            Some(v) => v,
            None if self.samples.is_empty() => default,
            None => median(&mut self.samples.clone()),
        }
    }
}

fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The measures behind the rest pose.
#[derive(Clone, Debug, Default)]
struct Body {
    torso: Measure,
    shoulder_width: Measure,
    hip_width: Measure,
    neck_to_ears: Measure,
    ear_width: Measure,
    upper_arm: Measure,
    forearm: Measure,
    thigh: Measure,
    shin: Measure,
    /// Foot index from the ankle, in the foot's frame (x across, y up along the shin, z forward).
    toe_up: Measure,
    toe_forward: Measure,
    /// The hand: wrist to middle knuckle; each knuckle's place in the hand frame; phalanx lengths.
    hand: Measure,
    knuckles: [[Measure; 3]; 5],
    phalanges: [[Measure; 3]; 5],
}

/// MediaPipe hand landmark of each finger's proximal joint (thumb: CMC); the next three follow.
const FINGER_BASE: [usize; 5] = [1, 5, 9, 13, 17];

/// Rest directions of the thumb in the hand frame (x along the hand, z across towards the index).
fn thumb_rest_direction(side: Side) -> Vec3 {
    Vec3::new(0.6 * side.sign(), 0.0, 0.8)
}

/// The neutral local rotation of each bone: arms hanging down (80° from the T-pose), all else rest.
fn neutral(bone: Bone) -> Quat {
    for side in [Side::Left, Side::Right] {
        if bone == Bone::arm(side, 1) {
            return Quat::from_rotation_z(-80_f32.to_radians() * side.sign());
        }
    }
    Quat::IDENTITY
}

/// One stream's solver: its measured body and the previous pose.
#[derive(Clone, Debug)]
pub struct Solver {
    body: Body,
    previous: Option<HumanoidPose>,
    /// Bones easing towards their target (unseen, or seen again, or after a jump) rather than following.
    settling: [bool; BONE_COUNT],
    /// The hips' image position on the first tracked frame (px).
    first_hips_px: Option<[f32; 2]>,
}

/// The landmarks of one frame in skeleton space.
struct Frame<'a> {
    world: Vec<Vec3>,
    visibility: Vec<f32>,
    result: &'a FrameResult,
    hands: [Option<&'a Hand>; 2],
}

impl Frame<'_> {
    fn p(&self, i: usize) -> Vec3 {
        self.world[i]
    }

    fn mid(&self, a: usize, b: usize) -> Vec3 {
        (self.world[a] + self.world[b]) * 0.5
    }

    fn vis(&self, ids: &[usize]) -> f32 {
        ids.iter().map(|&i| self.visibility[i]).fold(1.0, f32::min)
    }

    fn hand(&self, side: Side) -> Option<&Hand> {
        self.hands[side_slot(side)]
    }
}

fn side_slot(side: Side) -> usize {
    match side {
        Side::Left => 0,
        Side::Right => 1,
    }
}

/// Pose landmark of a side: `left` is the left's index; the right's is the next one.
fn lm(side: Side, left: usize) -> usize {
    match side {
        Side::Left => left,
        Side::Right => left + 1,
    }
}

fn hand_world(hand: &Hand, i: usize) -> Vec3 {
    skeleton_from_mediapipe(hand.world_landmarks[i].pos_in_world)
}

impl Default for Solver {
    fn default() -> Self {
        Self {
            body: Body::default(),
            previous: None,
            settling: [true; BONE_COUNT],
            first_hips_px: None,
        }
    }
}

impl Solver {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rest pose as measured so far (settled after the first second of each measure).
    pub fn rest_pose(&self) -> RestPose {
        let b = &self.body;
        let torso = b.torso.value(0.52);
        let shoulder_half = b.shoulder_width.value(0.36) * 0.5;
        let hip_half = b.hip_width.value(0.2) * 0.5;
        let upper_arm = b.upper_arm.value(0.28);
        let forearm = b.forearm.value(0.26);
        let thigh = b.thigh.value(0.43);
        let shin = b.shin.value(0.42);
        let toe_up = b.toe_up.signed_value(-0.06);
        let toe_forward = b.toe_forward.value(0.15);
        let hand_len = b.hand.value(0.09);
        let mut offsets = [Vec3::ZERO; BONE_COUNT];
        let mut ends = [None; BONE_COUNT];
        let quarter = Vec3::Y * torso * 0.25;
        for bone in [Bone::SPINE, Bone::CHEST, Bone::UPPER_CHEST, Bone::NECK] {
            offsets[bone.index()] = quarter;
        }
        offsets[Bone::HEAD.index()] = Vec3::Y * b.neck_to_ears.value(0.2);
        ends[Bone::HEAD.index()] = Some(Vec3::Y * b.ear_width.value(0.15) * 0.8);
        for side in [Side::Left, Side::Right] {
            let s = side.sign();
            offsets[Bone::arm(side, 0).index()] = quarter;
            offsets[Bone::arm(side, 1).index()] = Vec3::X * s * shoulder_half;
            offsets[Bone::arm(side, 2).index()] = Vec3::X * s * upper_arm;
            offsets[Bone::arm(side, 3).index()] = Vec3::X * s * forearm;
            offsets[Bone::leg(side, 0).index()] = Vec3::X * s * hip_half;
            offsets[Bone::leg(side, 1).index()] = Vec3::NEG_Y * thigh;
            offsets[Bone::leg(side, 2).index()] = Vec3::NEG_Y * shin;
            offsets[Bone::leg(side, 3).index()] = Vec3::new(0.0, toe_up, toe_forward);
            ends[Bone::leg(side, 3).index()] = Some(Vec3::Z * 0.03);
            for finger in 0..5_u8 {
                let f = usize::from(finger);
                let default_knuckle = default_knuckle(finger, hand_len);
                let k = &b.knuckles[f];
                let knuckle = Vec3::new(
                    s * k[0].signed_value(default_knuckle.x),
                    k[1].signed_value(default_knuckle.y),
                    k[2].signed_value(default_knuckle.z),
                );
                offsets[Bone::finger(side, finger, 0).index()] = knuckle;
                let direction = if finger == 0 {
                    thumb_rest_direction(side)
                } else {
                    Vec3::X * s
                };
                let default_len = hand_len * [0.45, 0.42, 0.46, 0.43, 0.34][f];
                let lengths: Vec<f32> = (0..3)
                    .map(|j| b.phalanges[f][j].value(default_len * [1.0, 0.7, 0.6][j]))
                    .collect();
                offsets[Bone::finger(side, finger, 1).index()] = direction * lengths[0];
                offsets[Bone::finger(side, finger, 2).index()] = direction * lengths[1];
                ends[Bone::finger(side, finger, 2).index()] = Some(direction * lengths[2]);
            }
        }
        RestPose {
            offsets_m: offsets,
            end_sites_m: ends,
            hip_height_m: thigh + shin - toe_up,
        }
    }

    /// Solves one frame. Without a pose, every bone eases towards neutral and `tracked` is false.
    pub fn solve(&mut self, result: &FrameResult) -> HumanoidPose {
        let timestamp_us = result.timestamp_us;
        let dt_s = self.previous.as_ref().map_or(0.0, |p| {
            ((timestamp_us - p.timestamp_us) as f32 * 1e-6).max(0.0)
        });
        let frame = result
            .pose
            .as_ref()
            .filter(|p| p.world_landmarks.len() >= 33 && p.landmarks.len() >= 33)
            .map(|pose| Frame {
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
            });
        let mut solved = [None; BONE_COUNT];
        let mut confidence = [0.0_f32; BONE_COUNT];
        let mut root = None;
        if let Some(frame) = &frame {
            self.measure(frame, timestamp_us);
            let rest = self.rest_pose();
            self.solve_rotations(frame, &mut solved, &mut confidence);
            root = self.root(frame, &rest);
        }
        let rest = self.rest_pose();
        let previous = self.previous.clone();
        let mut local = [Quat::IDENTITY; BONE_COUNT];
        let ease = 1.0 - (-dt_s / EASE_SECONDS).exp();
        for bone in Bone::all() {
            let i = bone.index();
            let before = previous.as_ref().map(|p| p.local[i]);
            let seen = confidence[i] >= MIN_CONFIDENCE && solved[i].is_some();
            let target = match (seen, solved[i]) {
                (true, Some(q)) => q,
                _ => neutral(bone),
            };
            let mut q = match before {
                Some(before) => {
                    let target = align(target, before);
                    let step = crate::motion::quality::rotation_between(before, target);
                    if seen && !self.settling[i] && step > MAX_SPEED_RAD_S * dt_s.max(1e-3) {
                        self.settling[i] = true;
                    }
                    if self.settling[i] || !seen {
                        let eased = before.slerp(target, ease);
                        if seen
                            && crate::motion::quality::rotation_between(eased, target)
                                < CAUGHT_UP_RAD
                        {
                            self.settling[i] = false;
                        }
                        eased
                    } else {
                        target
                    }
                }
                None => {
                    self.settling[i] = !seen;
                    target
                }
            };
            if !seen {
                self.settling[i] = true;
            }
            if let Some(before) = before {
                q = align(q, before);
            }
            local[i] = if q.is_finite() {
                q.normalize()
            } else {
                neutral(bone)
            };
        }
        let root_pos_m = root
            .or_else(|| previous.as_ref().map(|p| p.root_pos_m))
            .unwrap_or(Vec3::Y * rest.hip_height_m);
        let pose = HumanoidPose {
            timestamp_us,
            tracked: frame.is_some(),
            root_pos_m,
            local,
            confidence,
        };
        self.previous = Some(pose.clone());
        pose
    }

    fn measure(&mut self, f: &Frame, t: i64) {
        let b = &mut self.body;
        let add = |m: &mut Measure, ids: &[usize], value: f32| {
            if f.vis(ids) >= MIN_CONFIDENCE {
                m.add(t, value);
            }
        };
        let sc = f.mid(11, 12);
        let hc = f.mid(23, 24);
        add(&mut b.torso, &[11, 12, 23, 24], (sc - hc).length());
        add(
            &mut b.shoulder_width,
            &[11, 12],
            (f.p(11) - f.p(12)).length(),
        );
        add(&mut b.hip_width, &[23, 24], (f.p(23) - f.p(24)).length());
        add(
            &mut b.neck_to_ears,
            &[7, 8, 11, 12],
            (f.mid(7, 8) - sc).length(),
        );
        add(&mut b.ear_width, &[7, 8], (f.p(7) - f.p(8)).length());
        let pair = |a: usize, c: usize| {
            ((f.p(a) - f.p(c)).length() + (f.p(a + 1) - f.p(c + 1)).length()) * 0.5
        };
        add(&mut b.upper_arm, &[11, 12, 13, 14], pair(11, 13));
        add(&mut b.forearm, &[13, 14, 15, 16], pair(13, 15));
        add(&mut b.thigh, &[23, 24, 25, 26], pair(23, 25));
        add(&mut b.shin, &[25, 26, 27, 28], pair(25, 27));
        // The foot index in the foot's frame, both feet averaged.
        let mut up = 0.0;
        let mut forward = 0.0;
        let mut feet = 0;
        for side in [Side::Left, Side::Right] {
            if let Some(r) = foot_frame(f, side) {
                let toe = r.inverse() * (f.p(lm(side, 31)) - f.p(lm(side, 27)));
                up += toe.y;
                forward += toe.z;
                feet += 1;
            }
        }
        if feet > 0 && f.vis(&[25, 26, 27, 28, 29, 30, 31, 32]) >= MIN_CONFIDENCE {
            b.toe_up.add_signed(t, up / feet as f32);
            b.toe_forward.add(t, forward / feet as f32);
        }
        for side in [Side::Left, Side::Right] {
            let Some(hand) = f.hand(side) else { continue };
            let Some(r) = hand_frame_from_hand(hand, side) else {
                continue;
            };
            let s = side.sign();
            let wrist = hand_world(hand, 0);
            b.hand.add(t, (hand_world(hand, 9) - wrist).length());
            for (finger, &base) in FINGER_BASE.iter().enumerate() {
                let k = r.inverse() * (hand_world(hand, base) - wrist);
                // Mirrored to the left hand's layout, so both hands share one measure.
                let k = Vec3::new(k.x * s, k.y, k.z);
                let [kx, ky, kz] = &mut b.knuckles[finger];
                kx.add_signed(t, k.x);
                ky.add_signed(t, k.y);
                kz.add_signed(t, k.z);
                for j in 0..3 {
                    let len =
                        (hand_world(hand, base + j + 1) - hand_world(hand, base + j)).length();
                    b.phalanges[finger][j].add(t, len);
                }
            }
        }
    }

    fn root(&mut self, f: &Frame, rest: &RestPose) -> Option<Vec3> {
        let pose = f.result.pose.as_ref()?;
        let px = |i: usize| {
            Vec3::new(
                pose.landmarks[i].pos_in_image[0],
                pose.landmarks[i].pos_in_image[1],
                0.0,
            )
        };
        let hips = (px(23) + px(24)) * 0.5;
        let shoulders = (px(11) + px(12)) * 0.5;
        let torso_px = (shoulders - hips).length();
        let torso_m = (f.mid(11, 12) - f.mid(23, 24)).length();
        if !(torso_px > 1.0 && torso_m > 0.05 && hips.is_finite()) {
            return None;
        }
        let first = *self.first_hips_px.get_or_insert([hips.x, hips.y]);
        let m_per_px = torso_m / torso_px;
        let moved = Vec3::new(hips.x - first[0], -(hips.y - first[1]), 0.0) * m_per_px;
        let root = Vec3::Y * rest.hip_height_m + moved;
        root.is_finite().then_some(root)
    }

    fn solve_rotations(
        &self,
        f: &Frame,
        solved: &mut [Option<Quat>; BONE_COUNT],
        confidence: &mut [f32; BONE_COUNT],
    ) {
        let mut global: [Option<Quat>; BONE_COUNT] = [None; BONE_COUNT];
        let sc = f.mid(11, 12);
        let hc = f.mid(23, 24);
        let up = sc - hc;
        let hips = look(f.p(23) - f.p(24), up, Vec3::X, Vec3::Y);
        let shoulders = look(f.p(11) - f.p(12), up, Vec3::X, Vec3::Y);
        let torso_vis = f.vis(&[11, 12, 23, 24]);
        let set = |g: &mut [Option<Quat>; BONE_COUNT],
                   c: &mut [f32; BONE_COUNT],
                   bone: Bone,
                   q: Option<Quat>,
                   conf: f32| {
            g[bone.index()] = q;
            c[bone.index()] = conf;
        };
        set(&mut global, confidence, Bone::HIPS, hips, torso_vis);
        if let (Some(h), Some(s)) = (hips, shoulders) {
            let s = align(s, h);
            set(
                &mut global,
                confidence,
                Bone::SPINE,
                Some(h.slerp(s, 1.0 / 3.0)),
                torso_vis,
            );
            set(
                &mut global,
                confidence,
                Bone::CHEST,
                Some(h.slerp(s, 2.0 / 3.0)),
                torso_vis,
            );
            set(
                &mut global,
                confidence,
                Bone::UPPER_CHEST,
                Some(s),
                torso_vis,
            );
        }
        let head = look(f.p(7) - f.p(8), f.p(0) - f.mid(7, 8), Vec3::X, Vec3::Z);
        let head_vis = f.vis(&[0, 7, 8]);
        if let (Some(uc), Some(hd)) = (global[Bone::UPPER_CHEST.index()], head) {
            let hd = align(hd, uc);
            set(
                &mut global,
                confidence,
                Bone::NECK,
                Some(uc.slerp(hd, 0.5)),
                head_vis.min(torso_vis),
            );
            set(&mut global, confidence, Bone::HEAD, Some(hd), head_vis);
        }
        let chest = global[Bone::UPPER_CHEST.index()];
        for side in [Side::Left, Side::Right] {
            let s = side.sign();
            let (sh, el, wr) = (lm(side, 11), lm(side, 13), lm(side, 15));
            set(
                &mut global,
                confidence,
                Bone::arm(side, 0),
                chest,
                torso_vis,
            );
            let upper = f.p(el) - f.p(sh);
            let lower = f.p(wr) - f.p(el);
            let forward = chest.map_or(Vec3::Z, |c| c * Vec3::Z);
            let upper_q = look(
                upper,
                hinge_secondary(upper, lower, forward),
                Vec3::X * s,
                Vec3::Z,
            );
            set(
                &mut global,
                confidence,
                Bone::arm(side, 1),
                upper_q,
                f.vis(&[sh, el, wr]),
            );
            // The hand: from the tracked hand, else from the pose's own hand points.
            let hand = f.hand(side);
            let (hand_q, hand_conf) = match hand.and_then(|h| hand_frame_from_hand(h, side)) {
                Some(q) => (Some(q), hand.map_or(0.0, |h| h.presence).min(f.vis(&[wr]))),
                None => {
                    let (pinky, index) = (f.p(lm(side, 17)), f.p(lm(side, 19)));
                    let q = look(
                        (pinky + index) * 0.5 - f.p(wr),
                        index - pinky,
                        Vec3::X * s,
                        Vec3::Z,
                    );
                    (q, f.vis(&[wr, lm(side, 17), lm(side, 19)]))
                }
            };
            let across = hand_q.map(|q| q * Vec3::Z);
            let lower_q = match across {
                Some(a) => look(lower, a, Vec3::X * s, Vec3::Z),
                None => None,
            }
            .or_else(|| upper_q.map(|u| swing(u, Vec3::X * s, lower)));
            set(
                &mut global,
                confidence,
                Bone::arm(side, 2),
                lower_q,
                f.vis(&[el, wr]),
            );
            set(
                &mut global,
                confidence,
                Bone::arm(side, 3),
                hand_q,
                hand_conf,
            );
            // Fingers, from the tracked hand only.
            if let (Some(h), Some(hq)) = (hand, hand_q.filter(|_| hand.is_some())) {
                let across = hq * Vec3::Z;
                let back = hq * Vec3::Y;
                for finger in 0..5_u8 {
                    let base = FINGER_BASE[usize::from(finger)];
                    for j in 0..3_u8 {
                        let a = hand_world(h, base + usize::from(j));
                        let b = hand_world(h, base + usize::from(j) + 1);
                        let q = if finger == 0 {
                            look(b - a, back, thumb_rest_direction(side), Vec3::Y)
                        } else {
                            look(b - a, across, Vec3::X * s, Vec3::Z)
                        };
                        set(
                            &mut global,
                            confidence,
                            Bone::finger(side, finger, j),
                            q,
                            hand_conf,
                        );
                    }
                }
            }
            // Legs.
            let (hp, kn, an) = (lm(side, 23), lm(side, 25), lm(side, 27));
            let thigh = f.p(kn) - f.p(hp);
            let shin = f.p(an) - f.p(kn);
            let hips_fwd = hips.map_or(Vec3::Z, |h| h * Vec3::Z);
            // The knee bends backwards: the shin's part across the thigh points back, so negate it.
            let thigh_q = look(
                thigh,
                -hinge_secondary(thigh, shin, -hips_fwd),
                Vec3::NEG_Y,
                Vec3::Z,
            );
            set(
                &mut global,
                confidence,
                Bone::leg(side, 0),
                thigh_q,
                f.vis(&[hp, kn, an]),
            );
            let foot_q = foot_frame(f, side);
            let foot_fwd = foot_q.map(|q| q * Vec3::Z);
            let shin_q = foot_fwd
                .and_then(|fw| look(shin, fw, Vec3::NEG_Y, Vec3::Z))
                .or_else(|| thigh_q.map(|t| swing(t, Vec3::NEG_Y, shin)));
            let foot_vis = f.vis(&[an, lm(side, 29), lm(side, 31)]);
            set(
                &mut global,
                confidence,
                Bone::leg(side, 1),
                shin_q,
                f.vis(&[kn, an]),
            );
            set(
                &mut global,
                confidence,
                Bone::leg(side, 2),
                foot_q,
                foot_vis,
            );
            set(
                &mut global,
                confidence,
                Bone::leg(side, 3),
                foot_q,
                foot_vis,
            );
        }
        // Local rotations from the globals.
        for bone in Bone::all() {
            let i = bone.index();
            let Some(g) = global[i] else { continue };
            solved[i] = match bone.parent() {
                None => Some(g),
                Some(parent) => global[parent.index()].map(|p| (p.inverse() * g).normalize()),
            };
            if solved[i].is_none() {
                confidence[i] = 0.0;
            }
        }
        for bone in Bone::all() {
            if global[bone.index()].is_none() {
                confidence[bone.index()] = 0.0;
            }
        }
    }
}

impl Measure {
    /// A value that may be negative or zero (a coordinate): stored shifted by one metre.
    fn add_signed(&mut self, t: i64, value: f32) {
        self.add(t, value + 1.0);
    }

    fn signed_value(&self, default: f32) -> f32 {
        self.value(default + 1.0) - 1.0
    }
}

/// The hand layout's default knuckle places (left hand, hand frame: x along the hand, z to the index).
fn default_knuckle(finger: u8, hand_len: f32) -> Vec3 {
    let (x, z) = [
        (0.25, 0.45),
        (0.95, 0.3),
        (1.0, 0.0),
        (0.93, -0.17),
        (0.83, -0.37),
    ][usize::from(finger)];
    Vec3::new(x * hand_len, 0.0, z * hand_len)
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
fn foot_frame(f: &Frame, side: Side) -> Option<Quat> {
    let forward = f.p(lm(side, 31)) - f.p(lm(side, 29));
    let up = f.p(lm(side, 25)) - f.p(lm(side, 27));
    // Rest: forward +z, up +y; `look` takes (primary, secondary) = (forward, up).
    look(forward, up, Vec3::Z, Vec3::Y)
}

/// The hand's global rotation from the hand world landmarks: along wrist → middle knuckle, across
/// from the little knuckle to the index knuckle.
fn hand_frame_from_hand(hand: &Hand, side: Side) -> Option<Quat> {
    if hand.world_landmarks.len() < 21 {
        return None;
    }
    let along = hand_world(hand, 9) - hand_world(hand, 0);
    let across = hand_world(hand, 5) - hand_world(hand, 17);
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
        let wrist = px(lm(side, 15));
        let limit = ((px(lm(side, 13)) - wrist).length() * 0.5).max(60.0);
        let best = result
            .hands
            .iter()
            .enumerate()
            .filter(|(i, h)| !taken[*i] && !h.landmarks.is_empty() && h.world_landmarks.len() >= 21)
            .map(|(i, h)| {
                let w = h.landmarks[0].pos_in_image;
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

/// `q` or `−q`, whichever is nearer `reference` (the same rotation; keeps the sign continuous).
pub fn align(q: Quat, reference: Quat) -> Quat {
    if q.dot(reference) < 0.0 { -q } else { q }
}
