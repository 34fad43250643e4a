//! Several people's pose landmarks on parallel lanes (`livepose::vision::lanes`) give what one session
//! running them one after the other gives: the same people with the same ids and landmarks on every
//! frame of `mp_cross3` (three people crossing, so two or three crops per frame, often beside the
//! detector). The two engines differ only in `solo_threads`: 1 (one session, every crop in turn) and
//! 2 (a second lane). Measured on 2026-12-07: identical to the bit on all 120 frames; the bound below
//! allows for a machine whose one- and two-thread kernels round differently.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use livepose::vision::{Engine, EngineConfig, FrameResult, TrackerConfig};

/// Largest difference allowed between the two runs' landmarks (image px).
const SAME_PX: f32 = 1e-3;

fn run(solo_threads: usize) -> Vec<FrameResult> {
    let mut engine = Engine::new(EngineConfig {
        hands: false,
        threads: 1,
        solo_threads,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("cannot load models (run `make setup`): {e}"));
    crate::common::process_clip(
        &mut engine,
        "multiperson/mp_cross3.mjpeg",
        TrackerConfig::VIDEO.with_max_people(3),
    )
}

#[test]
fn several_peoples_landmarks_on_lanes_are_those_of_one_session_in_turn() {
    let one_lane = run(1);
    let two_lanes = run(2);
    assert_eq!(one_lane.len(), two_lanes.len());
    let mut several = 0;
    let mut beside_detector = 0;
    for (k, (a, b)) in one_lane.iter().zip(&two_lanes).enumerate() {
        let ids = |r: &FrameResult| r.people.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b), "frame {k}: people");
        assert_eq!(a.pose_detector_ran, b.pose_detector_ran, "frame {k}");
        if a.people.len() >= 2 {
            several += 1;
            if a.pose_detector_ran {
                beside_detector += 1;
            }
        }
        for (pa, pb) in a.people.iter().zip(&b.people) {
            for (i, (la, lb)) in pa.pose.landmarks.iter().zip(&pb.pose.landmarks).enumerate() {
                let d = (la.pos_in_image[0] - lb.pos_in_image[0])
                    .abs()
                    .max((la.pos_in_image[1] - lb.pos_in_image[1]).abs());
                assert!(
                    d <= SAME_PX,
                    "frame {k}, person {}, landmark {i}: {d} px",
                    pa.id
                );
            }
        }
    }
    // The clip exercises the lanes: most frames have two or three people, some with the detector.
    assert!(several >= 60, "{several} frames with several people");
    assert!(
        beside_detector >= 10,
        "{beside_detector} such frames with the detector"
    );
}
