//! Solver tests on synthetic landmarks: a known pose → forward kinematics → the landmarks MediaPipe
//! would give for it → the solver, which must recover the pose.

use glam::{Quat, Vec3};

use super::skeleton::{Bone, HumanoidPose, RestPose, Side, forward};
use super::solver::{Solver, align};
use crate::vision::roi::Roi;
use crate::vision::{FrameResult, Hand, Handedness, ImageLandmark, Pose, WorldLandmark};

const FRAME_US: i64 = 33_333;

/// A small deterministic generator (xorshift), so the poses are the same on every run.
/// Xorshift.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1_u64 << 24) as f32
    }

    /// Uniform in [lo, hi] degrees, as radians.
    fn deg(&mut self, lo: f32, hi: f32) -> f32 {
        (lo + (hi - lo) * self.unit()).to_radians()
    }

    fn rotation(&mut self, max_deg: f32) -> Quat {
        let axis = Vec3::new(self.unit() - 0.5, self.unit() - 0.5, self.unit() - 0.5)
            .try_normalize()
            .unwrap_or(Vec3::X);
        Quat::from_axis_angle(axis, self.deg(0.0, max_deg))
    }
}

/// A pose the solver's model can represent exactly: any hips and upper-arm rotation, a straight spine,
/// the neck half of the head's turn, elbows and knees bending on their hinge with a twist below them,
/// wrists and ankles flexing, fingers curling.
fn random_pose(rng: &mut Rng, t: i64) -> HumanoidPose {
    let mut pose = HumanoidPose::rest(t, Vec3::new(0.0, 0.95, 0.0));
    let l = |b: Bone| b.index();
    pose.local[l(Bone::HIPS)] = rng.rotation(70.0);
    let head = rng.rotation(40.0);
    let half = Quat::IDENTITY.slerp(head, 0.5);
    pose.local[l(Bone::NECK)] = half;
    pose.local[l(Bone::HEAD)] = half;
    for side in [Side::Left, Side::Right] {
        let s = side.sign();
        pose.local[l(Bone::arm(side, 1))] = rng.rotation(120.0);
        pose.local[l(Bone::arm(side, 2))] = Quat::from_rotation_y(-s * rng.deg(40.0, 140.0))
            * Quat::from_rotation_x(rng.deg(-80.0, 80.0));
        pose.local[l(Bone::arm(side, 3))] = Quat::from_rotation_y(rng.deg(-25.0, 25.0))
            * Quat::from_rotation_z(rng.deg(-50.0, 50.0));
        pose.local[l(Bone::leg(side, 0))] = rng.rotation(50.0);
        pose.local[l(Bone::leg(side, 1))] = Quat::from_rotation_x(rng.deg(40.0, 110.0))
            * Quat::from_rotation_y(rng.deg(-30.0, 30.0));
        pose.local[l(Bone::leg(side, 2))] = Quat::from_rotation_x(rng.deg(-30.0, 30.0));
        for finger in 0..5 {
            for j in 0..3 {
                pose.local[l(Bone::finger(side, finger, j))] = if finger == 0 {
                    Quat::from_rotation_y(rng.deg(-30.0, 30.0))
                } else {
                    Quat::from_rotation_z(-s * rng.deg(0.0, 70.0))
                };
            }
        }
    }
    pose
}

/// MediaPipe's world axes from skeleton space.
fn to_mediapipe(p: Vec3) -> [f32; 3] {
    [p.x, -p.y, -p.z]
}

fn to_image(p: Vec3) -> [f32; 2] {
    let m = to_mediapipe(p);
    [320.0 + 400.0 * m[0], 240.0 + 400.0 * m[1]]
}

/// The landmarks of `pose` on `rest`: pose world landmarks around the hips, image landmarks by a simple
/// projection, both hands' landmarks, all fully visible.
fn landmarks_of(rest: &RestPose, pose: &HumanoidPose) -> FrameResult {
    let fk = forward(rest, pose);
    let hips = fk.pos_m[Bone::HIPS.index()];
    let at = |b: Bone| fk.pos_m[b.index()] - hips;
    let rot = |b: Bone| fk.global[b.index()];
    let mut points = [Vec3::ZERO; 33];
    let head = at(Bone::HEAD);
    points[0] = head + rot(Bone::HEAD) * Vec3::new(0.0, 0.0, 0.1);
    for side in [Side::Left, Side::Right] {
        let s = side.sign();
        let i = |left: usize| if side == Side::Left { left } else { left + 1 };
        points[i(7)] = head + rot(Bone::HEAD) * Vec3::new(0.075 * s, 0.0, 0.0);
        points[i(11)] = at(Bone::arm(side, 1));
        points[i(13)] = at(Bone::arm(side, 2));
        points[i(15)] = at(Bone::arm(side, 3));
        points[i(17)] = at(Bone::finger(side, 4, 0));
        points[i(19)] = at(Bone::finger(side, 1, 0));
        points[i(21)] = at(Bone::finger(side, 0, 1));
        points[i(23)] = at(Bone::leg(side, 0));
        points[i(25)] = at(Bone::leg(side, 1));
        points[i(27)] = at(Bone::leg(side, 2));
        let foot = rot(Bone::leg(side, 2));
        let toe = rest.offsets_m[Bone::leg(side, 3).index()];
        points[i(29)] = at(Bone::leg(side, 2)) + foot * Vec3::new(0.0, toe.y, -0.05);
        points[i(31)] = at(Bone::leg(side, 3));
    }
    // Eyes and mouth on the nose (the solver does not use them).
    let nose = points[0];
    for k in [1, 2, 3, 4, 5, 6, 9, 10] {
        points[k] = nose;
    }
    let pose_out = Pose {
        landmarks: points
            .iter()
            .map(|p| ImageLandmark {
                pos_in_image: to_image(*p),
                depth: 0.0,
                visibility: 1.0,
                presence: 1.0,
            })
            .collect(),
        world_landmarks: points
            .iter()
            .map(|p| WorldLandmark {
                pos_in_world: to_mediapipe(*p),
                visibility: 1.0,
            })
            .collect(),
        presence: 1.0,
        roi: Roi::full_image(640, 480),
    };
    let hands = [Side::Left, Side::Right]
        .iter()
        .map(|&side| {
            let mut pts = vec![at(Bone::arm(side, 3))];
            for finger in 0..5 {
                for j in 0..3 {
                    pts.push(at(Bone::finger(side, finger, j)));
                }
                let distal = Bone::finger(side, finger, 2);
                pts.push(fk.end_site(rest, distal).unwrap_or_default() - hips);
            }
            let handedness = if side == Side::Left {
                Handedness::Left
            } else {
                Handedness::Right
            };
            Hand {
                landmarks: pts
                    .iter()
                    .map(|p| ImageLandmark {
                        pos_in_image: to_image(*p),
                        depth: 0.0,
                        visibility: 1.0,
                        presence: 1.0,
                    })
                    .collect(),
                // Hand world landmarks have their own origin: shift them to show it is not used.
                world_landmarks: pts
                    .iter()
                    .map(|p| WorldLandmark {
                        pos_in_world: to_mediapipe(*p + Vec3::new(0.3, -0.2, 0.1)),
                        visibility: 1.0,
                    })
                    .collect(),
                handedness_mediapipe: handedness.other(),
                handedness_score: 0.99,
                handedness,
                presence: 1.0,
                roi: Roi::full_image(640, 480),
            }
        })
        .collect();
    FrameResult {
        timestamp_us: pose.timestamp_us,
        width: 640,
        height: 480,
        pose: Some(pose_out),
        hands,
        angles: Default::default(),
        people: Vec::new(),
        pose_detector_ran: false,
        palm_detector_ran: false,
        timings: Default::default(),
    }
}

/// The rest pose the synthetic person has: the solver's defaults, measured back from their landmarks.
fn person() -> RestPose {
    Solver::new().rest_pose()
}

/// Feeds 40 frames (1.3 s, so the measures settle) of `frames` and returns the last solution.
fn solve_all(solver: &mut Solver, frames: &[FrameResult]) -> Vec<HumanoidPose> {
    frames.iter().map(|f| solver.solve(f)).collect()
}

/// Frame interval of the round trips: each frame is an unrelated random pose, so they are a second
/// apart, where the solver's speed limit (15 rad/s) never holds a bone back.
const ROUND_TRIP_FRAME_US: i64 = 1_000_000;

#[test]
fn known_rotations_are_recovered_through_the_landmarks() {
    let rest = person();
    let mut rng = Rng::new(0x5eed);
    let poses: Vec<HumanoidPose> = (0..60)
        .map(|k| random_pose(&mut rng, k * ROUND_TRIP_FRAME_US))
        .collect();
    let frames: Vec<FrameResult> = poses.iter().map(|p| landmarks_of(&rest, p)).collect();
    let mut solver = Solver::new();
    let solved = solve_all(&mut solver, &frames);
    let measured = solver.rest_pose();
    for bone in Bone::all() {
        let d = (measured.offsets_m[bone.index()] - rest.offsets_m[bone.index()]).length();
        assert!(d < 1e-4, "{}: rest offset off by {d} m", bone.name());
    }
    let mut worst_deg = 0.0_f32;
    let mut worst_mm = 0.0_f32;
    for (truth, got) in poses.iter().zip(&solved).skip(40) {
        let a = forward(&rest, truth);
        let b = forward(&measured, got);
        for bone in Bone::all() {
            let i = bone.index();
            let mm = (a.pos_m[i] - a.pos_m[0] - (b.pos_m[i] - b.pos_m[0])).length() * 1e3;
            worst_mm = worst_mm.max(mm);
            // The toes have no landmark of their own to turn them: they keep the foot's rotation.
            if bone != Bone::leg(Side::Left, 3) && bone != Bone::leg(Side::Right, 3) {
                worst_deg = worst_deg.max(a.global[i].angle_between(b.global[i]).to_degrees());
            }
        }
        assert!(got.confidence.iter().all(|&c| c >= 0.99));
    }
    assert!(worst_deg < 0.5, "a bone's rotation is off by {worst_deg}°");
    assert!(worst_mm < 1.0, "a joint is off by {worst_mm} mm");
}

/// The mirror image of a frame: x negated (in the image, about its centre), left and right swapped.
fn mirror(frame: &FrameResult) -> FrameResult {
    let mut out = frame.clone();
    let swap = |k: usize| match k {
        0 => 0,
        1..=10 => {
            // 1–3 left eye, 4–6 right eye, 7/8 ears, 9/10 mouth corners.
            match k {
                1..=3 => k + 3,
                4..=6 => k - 3,
                7 => 8,
                8 => 7,
                9 => 10,
                _ => 9,
            }
        }
        _ if k % 2 == 1 => k + 1,
        _ => k - 1,
    };
    if let (Some(p), Some(src)) = (out.pose.as_mut(), frame.pose.as_ref()) {
        for k in 0..33 {
            let mut lm = src.landmarks[swap(k)];
            lm.pos_in_image[0] = 640.0 - lm.pos_in_image[0];
            p.landmarks[k] = lm;
            let mut w = src.world_landmarks[swap(k)];
            w.pos_in_world[0] = -w.pos_in_world[0];
            p.world_landmarks[k] = w;
        }
    }
    for hand in &mut out.hands {
        for lm in &mut hand.landmarks {
            lm.pos_in_image[0] = 640.0 - lm.pos_in_image[0];
        }
        for w in &mut hand.world_landmarks {
            w.pos_in_world[0] = -w.pos_in_world[0];
        }
        hand.handedness = hand.handedness.other();
    }
    out
}

/// A rotation seen in a mirror in x.
fn mirrored(q: Quat) -> Quat {
    Quat::from_xyzw(q.x, -q.y, -q.z, q.w)
}

#[test]
fn mirrored_landmarks_give_the_mirrored_pose() {
    let rest = person();
    let mut rng = Rng::new(77);
    let frames: Vec<FrameResult> = (0..45)
        .map(|k| landmarks_of(&rest, &random_pose(&mut rng, k * ROUND_TRIP_FRAME_US)))
        .collect();
    let mirrors: Vec<FrameResult> = frames.iter().map(mirror).collect();
    let a = solve_all(&mut Solver::new(), &frames);
    let b = solve_all(&mut Solver::new(), &mirrors);
    for (pa, pb) in a.iter().zip(&b).skip(40) {
        for bone in Bone::all() {
            let want = mirrored(pa.local[bone.index()]);
            let got = pb.local[bone.mirrored().index()];
            let deg = want.angle_between(got).to_degrees();
            assert!(deg < 0.05, "{}: mirror off by {deg}°", bone.name());
        }
        let root = pa.root_pos_m;
        assert!((Vec3::new(-root.x, root.y, root.z) - pb.root_pos_m).length() < 1e-4);
    }
}

fn assert_defined(pose: &HumanoidPose) {
    assert!(pose.root_pos_m.is_finite());
    for (bone, q) in Bone::all().zip(&pose.local) {
        assert!(q.is_finite(), "{}: {q:?}", bone.name());
        assert!((q.length() - 1.0).abs() < 1e-4, "{}: not unit", bone.name());
    }
    assert!(pose.confidence.iter().all(|c| c.is_finite()));
}

#[test]
fn degenerate_input_gives_a_defined_pose_never_nan() {
    let rest = person();
    let mut rng = Rng::new(3);
    let good = landmarks_of(&rest, &random_pose(&mut rng, 0));
    let mut solver = Solver::new();
    assert_defined(&solver.solve(&good));

    // Every landmark at one point.
    let mut same = good.clone();
    same.timestamp_us = FRAME_US;
    if let Some(p) = same.pose.as_mut() {
        for w in &mut p.world_landmarks {
            w.pos_in_world = [0.1, 0.1, 0.1];
        }
        for l in &mut p.landmarks {
            l.pos_in_image = [100.0, 100.0];
        }
    }
    for h in &mut same.hands {
        for w in &mut h.world_landmarks {
            w.pos_in_world = [0.0; 3];
        }
    }
    assert_defined(&solver.solve(&same));

    // NaN everywhere, and no hands.
    let mut nan = good.clone();
    nan.timestamp_us = 2 * FRAME_US;
    nan.hands.clear();
    if let Some(p) = nan.pose.as_mut() {
        for w in &mut p.world_landmarks {
            w.pos_in_world = [f32::NAN; 3];
            w.visibility = f32::NAN;
        }
        for l in &mut p.landmarks {
            l.pos_in_image = [f32::NAN; 2];
        }
    }
    let pose = solver.solve(&nan);
    assert_defined(&pose);
    assert!(pose.confidence.iter().all(|&c| c == 0.0));

    // No person: not tracked, easing towards neutral.
    let mut nobody = good.clone();
    nobody.timestamp_us = 3 * FRAME_US;
    nobody.pose = None;
    nobody.hands.clear();
    let pose = solver.solve(&nobody);
    assert_defined(&pose);
    assert!(!pose.tracked);
}

#[test]
fn a_bone_that_loses_confidence_eases_to_neutral_instead_of_jumping() {
    let rest = person();
    let mut rng = Rng::new(11);
    let pose = random_pose(&mut rng, 0);
    let mut solver = Solver::new();
    let mut last = Quat::IDENTITY;
    let forearm = Bone::arm(Side::Left, 2).index();
    for k in 0..40 {
        let mut p = pose.clone();
        p.timestamp_us = k * FRAME_US;
        last = solver.solve(&landmarks_of(&rest, &p)).local[forearm];
    }
    // The elbow and wrist drop out of view.
    let mut steps = Vec::new();
    for k in 40..70 {
        let mut p = pose.clone();
        p.timestamp_us = k * FRAME_US;
        let mut frame = landmarks_of(&rest, &p);
        if let Some(pp) = frame.pose.as_mut() {
            for i in [13, 15, 17, 19, 21] {
                pp.world_landmarks[i].visibility = 0.1;
            }
        }
        frame.hands.retain(|h| h.handedness != Handedness::Left);
        let q = solver.solve(&frame).local[forearm];
        steps.push(align(q, last).angle_between(last).to_degrees());
        last = q;
    }
    // Each step takes 1 − e^(−dt/0.2 s) ≈ 15 % of the way: no jump.
    let total: f32 = steps.iter().sum();
    assert!(
        steps[0] < 0.2 * total,
        "first step {}° of {total}°",
        steps[0]
    );
    assert!(
        total > 30.0,
        "the solved forearm was not neutral to begin with"
    );
    assert!(
        last.angle_between(Quat::IDENTITY).to_degrees() < 5.0,
        "after 1 s the forearm is near neutral"
    );
}

#[test]
fn a_sudden_half_turn_in_the_landmarks_is_eased_not_followed() {
    let rest = person();
    let mut rng = Rng::new(5);
    let pose = random_pose(&mut rng, 0);
    let mut solver = Solver::new();
    let mut last = None;
    for k in 0..40 {
        let mut p = pose.clone();
        p.timestamp_us = k * FRAME_US;
        last = Some(solver.solve(&landmarks_of(&rest, &p)));
    }
    let before = last.unwrap();
    // The whole body turns 150° about the vertical between two frames (33 ms): faster than anyone.
    let mut turned = pose.clone();
    turned.local[Bone::HIPS.index()] =
        Quat::from_rotation_y(150_f32.to_radians()) * pose.local[Bone::HIPS.index()];
    let hips = Bone::HIPS.index();
    let mut previous = before.local[hips];
    let mut steps = Vec::new();
    for k in 40..80 {
        turned.timestamp_us = k * FRAME_US;
        let got = solver.solve(&landmarks_of(&rest, &turned));
        steps.push(previous.angle_between(got.local[hips]).to_degrees());
        previous = got.local[hips];
    }
    let largest = steps.iter().copied().fold(0.0, f32::max);
    assert!(
        largest < 30.0,
        "the hips jumped by {largest}° in one frame: {steps:?}"
    );
    let left = previous.angle_between(turned.local[hips]).to_degrees();
    assert!(
        left < 3.0,
        "after 1.3 s the hips are still {left}° from the landmarks"
    );
}
