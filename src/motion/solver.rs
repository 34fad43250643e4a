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

use glam::{Quat, Vec3};

use crate::motion::rotations::{
    Frame, foot_frame, hand_frame_from_hand, hand_world, lm, local_rotations, thumb_rest_direction,
};
pub use crate::motion::rotations::{align, look, skeleton_from_mediapipe};
use crate::motion::skeleton::{BONE_COUNT, Bone, HumanoidPose, RestPose, Side};
use crate::vision::FrameResult;
use crate::vision::landmarks::hand_index::{FINGER_BASES, MIDDLE_FINGER_MCP, WRIST};
use crate::vision::landmarks::pose_index::{
    LEFT_ANKLE, LEFT_EAR, LEFT_ELBOW, LEFT_FOOT_INDEX, LEFT_HEEL, LEFT_HIP, LEFT_KNEE,
    LEFT_SHOULDER, LEFT_WRIST, RIGHT_EAR, RIGHT_FOOT_INDEX, RIGHT_HEEL, RIGHT_HIP, RIGHT_SHOULDER,
};

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
        let frame = Frame::of(result);
        let mut solved = [None; BONE_COUNT];
        let mut confidence = [0.0_f32; BONE_COUNT];
        let mut root = None;
        if let Some(frame) = &frame {
            self.measure(frame, timestamp_us);
            let rest = self.rest_pose();
            (solved, confidence) = local_rotations(frame);
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
        let (ls, rs, lh, rh) = (LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP);
        let torso = (f.shoulder_centre() - f.hip_centre()).length();
        add(&mut b.torso, &[ls, rs, lh, rh], torso);
        add(
            &mut b.shoulder_width,
            &[ls, rs],
            (f.p(ls) - f.p(rs)).length(),
        );
        add(&mut b.hip_width, &[lh, rh], (f.p(lh) - f.p(rh)).length());
        let ears = f.mid(LEFT_EAR, RIGHT_EAR);
        add(
            &mut b.neck_to_ears,
            &[LEFT_EAR, RIGHT_EAR, ls, rs],
            (ears - f.shoulder_centre()).length(),
        );
        add(
            &mut b.ear_width,
            &[LEFT_EAR, RIGHT_EAR],
            (f.p(LEFT_EAR) - f.p(RIGHT_EAR)).length(),
        );
        // A segment's length, left and right averaged (the right landmarks follow the left ones).
        let both = |a: usize, c: usize| [a, a + 1, c, c + 1];
        let pair = |a: usize, c: usize| {
            ((f.p(a) - f.p(c)).length() + (f.p(a + 1) - f.p(c + 1)).length()) * 0.5
        };
        let limbs = [
            (&mut b.upper_arm, LEFT_SHOULDER, LEFT_ELBOW),
            (&mut b.forearm, LEFT_ELBOW, LEFT_WRIST),
            (&mut b.thigh, LEFT_HIP, LEFT_KNEE),
            (&mut b.shin, LEFT_KNEE, LEFT_ANKLE),
        ];
        for (measure, from, to) in limbs {
            add(measure, &both(from, to), pair(from, to));
        }
        // The foot index in the foot's frame, both feet averaged.
        let mut up = 0.0;
        let mut forward = 0.0;
        let mut feet = 0;
        for side in [Side::Left, Side::Right] {
            if let Some(r) = foot_frame(f, side) {
                let toe =
                    r.inverse() * (f.p(lm(side, LEFT_FOOT_INDEX)) - f.p(lm(side, LEFT_ANKLE)));
                up += toe.y;
                forward += toe.z;
                feet += 1;
            }
        }
        let legs = [
            LEFT_KNEE,
            LEFT_KNEE + 1,
            LEFT_ANKLE,
            LEFT_ANKLE + 1,
            LEFT_HEEL,
            RIGHT_HEEL,
            LEFT_FOOT_INDEX,
            RIGHT_FOOT_INDEX,
        ];
        if feet > 0 && f.vis(&legs) >= MIN_CONFIDENCE {
            b.toe_up.add_signed(t, up / feet as f32);
            b.toe_forward.add(t, forward / feet as f32);
        }
        for side in [Side::Left, Side::Right] {
            let Some(hand) = f.hand(side) else { continue };
            let Some(r) = hand_frame_from_hand(hand, side) else {
                continue;
            };
            let s = side.sign();
            let wrist = hand_world(hand, WRIST);
            b.hand
                .add(t, (hand_world(hand, MIDDLE_FINGER_MCP) - wrist).length());
            for (finger, &base) in FINGER_BASES.iter().enumerate() {
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
        let hips = (px(LEFT_HIP) + px(RIGHT_HIP)) * 0.5;
        let shoulders = (px(LEFT_SHOULDER) + px(RIGHT_SHOULDER)) * 0.5;
        let torso_px = (shoulders - hips).length();
        let torso_m = (f.shoulder_centre() - f.hip_centre()).length();
        if !(torso_px > 1.0 && torso_m > 0.05 && hips.is_finite()) {
            return None;
        }
        let first = *self.first_hips_px.get_or_insert([hips.x, hips.y]);
        let m_per_px = torso_m / torso_px;
        let moved = Vec3::new(hips.x - first[0], -(hips.y - first[1]), 0.0) * m_per_px;
        let root = Vec3::Y * rest.hip_height_m + moved;
        root.is_finite().then_some(root)
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
