//! `livepose analyze --bvh` against the real consumer: Blender's own BVH importer (Debian's `blender`
//! 3.4, headless, `tests/blender/bvh_positions.py`). Blender reads back every joint's world position at
//! several frames; they must match livepose's own forward kinematics of the same frames within 1 mm,
//! after the documented change of unit (BVH centimetres = Blender units at `global_scale=1`) and axes
//! (Blender's (x, y, z) = BVH's (x, −z, y)). Blender must also see the bone names and the frame count
//! livepose wrote.
//!
//! Blender takes ~1 min to install and a few seconds to start, so this test is behind its own target:
//! `make test-blender` (which `.ci/run` runs after `make test`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;

use crate::common::fixture;
use livepose::motion::{Bone, Solver, bvh, forward};
use livepose::schema::read_jsonl;
use serde_json::Value;

/// Blender frames read back (1-based: BVH frame k is Blender frame k + 1).
const FRAMES: [usize; 5] = [1, 2, 31, 61, 90];
/// 1 mm, in Blender units (centimetres).
const TOLERANCE_CM: f64 = 0.1;

#[test]
#[ignore = "needs Blender (Debian's blender package): run `make test-blender`"]
fn blender_puts_the_joints_of_analyze_bvh_where_livepose_does() {
    let dir = crate::common::temp_dir("blender");
    let clip = "kenburns_messi";
    let output = Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args(["analyze", "--bvh", "--out"])
        .arg(&dir)
        .arg(fixture(&format!("{clip}.mjpeg")))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("joint position error"), "{stderr}");
    let bvh_path = dir.join(format!("{clip}.bvh"));

    // livepose's forward kinematics of the same frames, solved again from the JSON analyze wrote.
    let text = std::fs::read_to_string(dir.join(format!("{clip}.jsonl"))).unwrap();
    let (results, torn) = read_jsonl(&text).unwrap();
    assert!(torn.is_none());
    let mut solver = Solver::new();
    let poses: Vec<_> = results.iter().map(|r| solver.solve(r)).collect();
    let rest = solver.rest_pose();
    let frames = bvh::resample(&poses, 30.0);
    assert_eq!(frames.len(), results.len());

    check_in_blender(&dir, &bvh_path, &rest, &frames, &FRAMES, 30.0);
}

/// A recording of a crossing clip (`mp_cross2`, two people), exported per person: every person's BVH
/// (`person-<id>.bvh`) goes through Blender's own importer and puts the joints where livepose's forward
/// kinematics of that person's poses (solved again from the session's results) puts them.
#[test]
#[ignore = "needs Blender (Debian's blender package): run `make test-blender`"]
fn blender_reads_every_persons_bvh_of_an_export() {
    let dir = crate::common::temp_dir("blender-people");
    let frames = crate::common::mjpeg_frames("multiperson/mp_cross2.mjpeg");
    let session = crate::common::record_clip_tracking(&dir, &frames, 3, None);
    let out = dir.join("export");
    crate::common::run_livepose(
        ["export", "--bvh", "--jsonl", "--out"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([out.as_os_str(), session.as_os_str()]),
    );
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let (results, _) = read_jsonl(&text).unwrap();
    let mut ids: Vec<u64> = results
        .iter()
        .flat_map(|r| r.people.iter().map(|p| p.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() >= 2, "people in the recording: {ids:?}");
    for id in ids {
        let bvh_path = out.join(format!("person-{id}.bvh"));
        assert!(bvh_path.exists(), "{} is missing", bvh_path.display());
        let mine: Vec<_> = results.iter().map(|r| r.of_person(id)).collect();
        let mut solver = Solver::new();
        let poses: Vec<_> = mine.iter().map(|r| solver.solve(r)).collect();
        let rest = solver.rest_pose();
        let fps = livepose::export::frame_rate(&results, 30.0);
        let resampled = bvh::resample(&poses, fps);
        let last = resampled.len();
        let check = [1, 2, last / 3, (2 * last) / 3, last];
        println!("person {id}:");
        check_in_blender(&dir, &bvh_path, &rest, &resampled, &check, fps);
    }
}

/// Imports `bvh_path` with Blender's importer and checks its frame rate (`fps`) and every joint of the
/// 1-based `check` frames against livepose's forward kinematics of `frames` on `rest` (1 mm).
fn check_in_blender(
    dir: &std::path::Path,
    bvh_path: &std::path::Path,
    rest: &livepose::motion::RestPose,
    frames: &[livepose::motion::HumanoidPose],
    check: &[usize],
    fps: f64,
) {
    let json_path = dir.join(format!(
        "{}.blender.json",
        bvh_path.file_stem().unwrap().to_string_lossy()
    ));
    let blender = Command::new("blender")
        .args(["-b", "--factory-startup", "--python"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/blender/bvh_positions.py"
        ))
        .arg("--")
        .arg(bvh_path)
        .arg(&json_path)
        .args(check.iter().map(|f| f.to_string()))
        .output()
        .expect("blender runs (Debian's blender package: make test-blender installs it)");
    assert!(
        blender.status.success() && json_path.exists(),
        "blender failed:\n{}\n{}",
        String::from_utf8_lossy(&blender.stdout),
        String::from_utf8_lossy(&blender.stderr)
    );
    let seen: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();

    let mut names: Vec<String> = seen["bones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut ours: Vec<String> = Bone::all().map(Bone::name).collect();
    ours.sort();
    assert_eq!(names, ours, "Blender's bones are the file's joints");
    let range = seen["action_range"].as_array().unwrap();
    let (first, last) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
    assert_eq!(
        seen["keyframes"].as_u64().unwrap() as usize,
        frames.len(),
        "frame count"
    );
    assert_eq!(
        (first, last),
        (1.0, frames.len() as f64),
        "Blender's frames"
    );
    assert!(seen["frame_end"].as_u64().unwrap() >= frames.len() as u64);
    assert_eq!(seen["fps"].as_f64().unwrap().round(), fps.round());

    let mut worst_cm = 0.0_f64;
    for &frame in check {
        let fk = forward(rest, &frames[frame - 1]);
        let positions = &seen["positions"][frame.to_string()];
        for bone in Bone::all() {
            let p = fk.pos_m[bone.index()] * 100.0;
            let expected = [f64::from(p.x), f64::from(-p.z), f64::from(p.y)];
            let got: Vec<f64> = positions[bone.name()]
                .as_array()
                .unwrap_or_else(|| panic!("frame {frame}: no {}", bone.name()))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let d = (0..3)
                .map(|k| (got[k] - expected[k]).powi(2))
                .sum::<f64>()
                .sqrt();
            worst_cm = worst_cm.max(d);
            assert!(
                d <= TOLERANCE_CM,
                "frame {frame} {}: Blender {got:?} cm, livepose {expected:?} cm ({:.3} mm apart)",
                bone.name(),
                d * 10.0
            );
        }
    }
    println!(
        "Blender round trip: {} bones × {} frames, largest distance {:.4} mm",
        ours.len(),
        check.len(),
        worst_cm * 10.0
    );
}
