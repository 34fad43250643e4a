//! Golden tests on real clips against official MediaPipe 0.10.21 (`tests/fixtures/*.{static,video}.ref.jsonl`,
//! made with the legacy `mp.solutions` API; see `tests/fixtures/README.md`). Every clip in both modes:
//! `carphone` (176×144), `carphone_640` and `kenburns_messi` (one hand in 81 of 90 frames), and the two
//! strong-motion clips `kenburns_basketball1` and `kenburns_astronaut` (their video mode is checked
//! against MediaPipe's own drift: see `check_strong_motion`). Frames are
//! decoded with libjpeg-turbo as the references were; video mode feeds the references' timestamps
//! ((k+1)·33333 µs) so the One Euro filters see the same time steps. The engine runs as `--legacy`
//! (refinement kernel 9, hands not smoothed, palm detector every frame), the mode that reproduces the
//! API which made the references.
//!
//! What docs/MEASUREMENTS.md documents, and what is asserted here:
//! - static mode: pose mean ≤ 0.1 px and world ≤ 2 mm per clip, pose found on the same frames, the same
//!   hand count on every frame, hand landmarks ≤ 0.1 px, and MediaPipe's handedness label on every
//!   matched hand;
//! - video mode: pose mean ≤ 0.5 px and world ≤ 10 mm per clip, pose found on the same frames, the same
//!   hand count on every frame, hand landmarks ≤ 0.5 px, the same handedness labels, and jitter (mean
//!   |p[t+1] − 2p[t] + p[t−1]|) within 5 % of MediaPipe's.
//!
//! Measured (2026-12-01): static 0.007 px / 0.06 mm pooled; video 0.04 / 0.10 / 0.20 px and 0.5 / 0.5 /
//! 3.8 mm; jitter within 1 %. The bounds are 5–15× those.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use crate::common::{
    hand_errors, legacy_engine, mean, pose_errors, pose_json_errors, process_clip, read_jsonl,
};
use livepose::vision::{FrameResult, PoseModel, TrackerConfig};

fn run_clip(clip: &str, config: TrackerConfig) -> Vec<FrameResult> {
    let mut engine = legacy_engine(PoseModel::Full, true);
    process_clip(&mut engine, clip, config)
}

/// Mean |p[t+1] − 2p[t] + p[t−1]| (px/frame²) over landmarks the reference sees in all three frames.
fn jitter(ours: &[FrameResult], reference: &[serde_json::Value]) -> (f64, f64) {
    let mut ours_acc = Vec::new();
    let mut ref_acc = Vec::new();
    for t in 1..ours.len() - 1 {
        let (Some(a), Some(b), Some(c)) = (&ours[t - 1].pose, &ours[t].pose, &ours[t + 1].pose)
        else {
            continue;
        };
        let refs = [
            &reference[t - 1]["pose"],
            &reference[t]["pose"],
            &reference[t + 1]["pose"],
        ];
        if refs.iter().any(|r| r.is_null()) {
            continue;
        }
        for i in 0..33 {
            let lm = |r: &serde_json::Value| r["landmarks"][i].clone();
            if refs
                .iter()
                .any(|r| lm(r)["visibility"].as_f64().unwrap() < 0.5)
            {
                continue;
            }
            let accel = |p0: [f64; 2], p1: [f64; 2], p2: [f64; 2]| {
                ((p2[0] - 2.0 * p1[0] + p0[0]).powi(2) + (p2[1] - 2.0 * p1[1] + p0[1]).powi(2))
                    .sqrt()
            };
            let o = |p: &livepose::vision::Pose| {
                [
                    f64::from(p.landmarks[i].pos_in_image[0]),
                    f64::from(p.landmarks[i].pos_in_image[1]),
                ]
            };
            let r = |p: &serde_json::Value| {
                [
                    lm(p)["x_px"].as_f64().unwrap(),
                    lm(p)["y_px"].as_f64().unwrap(),
                ]
            };
            ours_acc.push(accel(o(a), o(b), o(c)));
            ref_acc.push(accel(r(refs[0]), r(refs[1]), r(refs[2])));
        }
    }
    (mean(&ours_acc), mean(&ref_acc))
}

#[derive(Debug)]
struct ClipScore {
    frames: usize,
    pose_px: f64,
    world_mm: f64,
    /// Frames where both or neither found a pose.
    pose_agree: usize,
    /// Frames with the same number of hands.
    hand_count_agree: usize,
    hands_matched: usize,
    hand_labels_agree: usize,
    hand_px: f64,
}

fn score(ours: &[FrameResult], reference: &[serde_json::Value]) -> ClipScore {
    assert_eq!(ours.len(), reference.len());
    let (mut px, mut mm, mut hand_px) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pose_agree, mut hand_count_agree, mut matched, mut labels) = (0, 0, 0, 0);
    for (o, r) in ours.iter().zip(reference) {
        if o.pose.is_some() != r["pose"].is_null() {
            pose_agree += 1;
        }
        if o.pose.is_some() && !r["pose"].is_null() {
            let (p, m) = pose_errors(o, &r["pose"]);
            px.extend(p);
            mm.extend(m);
        }
        if o.hands.len() == r["hands"].as_array().unwrap().len() {
            hand_count_agree += 1;
        }
        for (error_px, _, same_label) in hand_errors(o, &r["hands"]) {
            hand_px.push(error_px);
            matched += 1;
            labels += usize::from(same_label);
        }
    }
    ClipScore {
        frames: ours.len(),
        pose_px: mean(&px),
        world_mm: mean(&mm),
        pose_agree,
        hand_count_agree,
        hands_matched: matched,
        hand_labels_agree: labels,
        hand_px: mean(&hand_px),
    }
}

/// The bounds docs/MEASUREMENTS.md states for one mode.
struct Bounds {
    pose_px: f64,
    world_mm: f64,
    hand_px: f64,
    /// Jitter within this fraction of MediaPipe's (video only).
    jitter: Option<f64>,
}

const STATIC: Bounds = Bounds {
    pose_px: 0.1,
    world_mm: 2.0,
    hand_px: 0.1,
    jitter: None,
};
const VIDEO: Bounds = Bounds {
    pose_px: 0.5,
    world_mm: 10.0,
    hand_px: 0.5,
    jitter: Some(0.05),
};

fn check(clip: &str, video: bool) {
    let (config, mode, bounds) = if video {
        (TrackerConfig::LEGACY_VIDEO, "video", VIDEO)
    } else {
        (TrackerConfig::STATIC, "static", STATIC)
    };
    let ours = run_clip(&format!("{clip}.mjpeg"), config);
    let reference = read_jsonl(&format!("{clip}.{mode}.ref.jsonl"));
    let s = score(&ours, &reference);
    let (j_ours, j_ref) = jitter(&ours, &reference);
    eprintln!("{clip} {mode}: {s:?}, jitter {j_ours:.3} vs MediaPipe's {j_ref:.3} px/frame²");
    assert_eq!(s.pose_agree, s.frames, "pose found on different frames");
    assert!(s.pose_px <= bounds.pose_px, "pose {} px", s.pose_px);
    assert!(s.world_mm <= bounds.world_mm, "world {} mm", s.world_mm);
    assert_eq!(
        s.hand_count_agree, s.frames,
        "hand count differs on some frames"
    );
    assert_eq!(
        s.hand_labels_agree, s.hands_matched,
        "handedness labels differ"
    );
    assert!(s.hand_px <= bounds.hand_px, "hands {} px", s.hand_px);
    if let Some(share) = bounds.jitter {
        assert!(
            (j_ours - j_ref).abs() <= share * j_ref,
            "jitter {j_ours} vs MediaPipe's {j_ref}"
        );
    }
    if video {
        // Tracking: the detector runs on the first frame and whenever the person was lost.
        assert!(ours[0].pose_detector_ran);
        let redetections = ours[1..].iter().filter(|r| r.pose_detector_ran).count();
        assert_eq!(
            redetections, 0,
            "{clip}: the person was lost and found again"
        );
    }
}

#[test]
fn carphone_static() {
    check("carphone", false);
}

#[test]
fn carphone_video() {
    check("carphone", true);
}

#[test]
fn carphone_640_static() {
    check("carphone_640", false);
}

#[test]
fn carphone_640_video() {
    check("carphone_640", true);
}

#[test]
fn kenburns_messi_static() {
    check("kenburns_messi", false);
}

#[test]
fn kenburns_messi_video() {
    check("kenburns_messi", true);
}

#[test]
fn kenburns_basketball1_static() {
    check("kenburns_basketball1", false);
}

#[test]
fn kenburns_astronaut_static() {
    check("kenburns_astronaut", false);
}

/// MediaPipe's own drift on a clip: its video-mode output with its input changed by one grey level,
/// scored against its reference like livepose is (see the fixtures' README): one value of one pixel of
/// one frame (`mp_pixel_a`, `mp_pixel_b`), or every value of every frame by a uniform integer in [−1, 1]
/// (`mp_noise_seed0`, `mp_noise_seed1`). Per run: the pooled pose mean (px) and the frames where only one
/// of the two finds a pose.
fn mediapipe_drift(clip: &str, reference: &[serde_json::Value]) -> Vec<(f64, usize)> {
    [
        "mp_pixel_a",
        "mp_pixel_b",
        "mp_noise_seed0",
        "mp_noise_seed1",
    ]
    .iter()
    .map(|run| {
        let perturbed = read_jsonl(&format!("{clip}.video.{run}.jsonl"));
        assert_eq!(perturbed.len(), reference.len());
        let mut px = Vec::new();
        let mut disagree = 0;
        for (p, r) in perturbed.iter().zip(reference) {
            match (p["pose"].is_null(), r["pose"].is_null()) {
                (false, false) => px.extend(pose_json_errors(&p["pose"], &r["pose"])),
                (true, true) => {}
                _ => disagree += 1,
            }
        }
        (mean(&px), disagree)
    })
    .collect()
}

/// Strong motion in video mode. On these clips MediaPipe's tracking loop amplifies any difference in
/// its input: one grey level on one pixel of one frame moves MediaPipe's own output by up to 12 px from
/// its reference, ±1 level of noise by up to 22 px, and it then loses the person on frames where the
/// reference does not (docs/MEASUREMENTS.md, "Fidelity under strong motion"). The engine matches MediaPipe to ~0.01 px
/// frame by frame (the static tests above), and ONNX Runtime's arithmetic differs from TFLite's by
/// ~0.0003 px per model run, so no bound tighter than MediaPipe's own drift can hold. Asserted, with
/// the figures measured on 2026-12-02:
/// - the pose mean is within twice the largest of MediaPipe's four drifts (astronaut: livepose 32.0 px,
///   MediaPipe 10.7–22.4; basketball1: 10.3 px, MediaPipe 0.5–12.5);
/// - the pose is found on the same frames as the reference but for at most as many frames as the
///   perturbed MediaPipe runs miss, plus 2 (livepose 2 and 2; MediaPipe up to 14 and 9);
/// - on the detection frame and the `early` frames after it, before the loop has amplified anything,
///   the pose agrees to 0.5 px (astronaut, 6 frames: 0.08 px; basketball1, the detection frame: 0.02 px).
fn check_strong_motion(clip: &str, early: usize) {
    let ours = run_clip(&format!("{clip}.mjpeg"), TrackerConfig::LEGACY_VIDEO);
    let reference = read_jsonl(&format!("{clip}.video.ref.jsonl"));
    let s = score(&ours, &reference);
    let drift = mediapipe_drift(clip, &reference);
    let drift_px = drift.iter().map(|d| d.0).fold(0.0, f64::max);
    let drift_disagree = drift.iter().map(|d| d.1).max().unwrap();
    let first = reference.iter().position(|r| !r["pose"].is_null()).unwrap();
    let mut early_px = Vec::new();
    for (o, r) in ours.iter().zip(&reference).skip(first).take(early) {
        assert!(o.pose.is_some(), "{clip}: no pose on an early frame");
        early_px.extend(pose_errors(o, &r["pose"]).0);
    }
    eprintln!(
        "{clip} video: {s:?}; MediaPipe's own drifts (px, frames disagreeing): {drift:?}; frames \
         {first}..{}: {:.3} px",
        first + early,
        mean(&early_px)
    );
    assert!(
        s.pose_px <= 2.0 * drift_px,
        "pose {} px, beyond twice MediaPipe's own drift {drift_px} px",
        s.pose_px
    );
    assert!(
        s.frames - s.pose_agree <= drift_disagree + 2,
        "pose found on {} frames more or fewer than MediaPipe's reference",
        s.frames - s.pose_agree
    );
    assert!(
        mean(&early_px) <= 0.5,
        "{clip}: frames {first}..{}: {} px",
        first + early,
        mean(&early_px)
    );
}

#[test]
fn kenburns_basketball1_video_strong_motion() {
    check_strong_motion("kenburns_basketball1", 1);
}

#[test]
fn kenburns_astronaut_video_strong_motion() {
    check_strong_motion("kenburns_astronaut", 6);
}
