//! Tracking scored against the truth, not against MediaPipe's answers: synthetic clips whose true
//! landmarks are known by construction (`tests/fixtures/multiperson/README.md`, `tests/fixtures/truth/`),
//! scored by `scripts/refdata/score_truth.py` (the team's scorer: recall within a gate of max(0.6 ×
//! torso, 25 px), mean and p95 landmark error of the matched, id switches, unmatched outputs) and
//! `scripts/refdata/angles_vs_truth.py` (joint angles against the photo's, which a camera move does not
//! change). MediaPipe's own answers on the same clips (Tasks with num_poses 3 for the people clips; the
//! legacy video and static references for the Ken Burns clips) are scored by the same scorer in the
//! same test, so every bound below is MediaPipe's figure, not a number written here.
//!
//! Targets (issue 23): multi-person recall ≥ 0.95 where nobody is hidden and ≥ 0.85 with crossings; no
//! id switch without crossings and at most 1 per crossing clip; mean error at most MediaPipe Tasks' +
//! 1 px. One person under camera motion (the default video mode): recall ≥ MediaPipe video mode's, mean
//! and p95 ≤ its; joint angles mean and p95 ≤ its. `mp_leave3`, `mp_cross4` and `mp_pass2` were made
//! for these tests and were not used to tune the tracker (held out).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/refdata")
        .join(name)
}

/// Runs one of the scorers (standard-library Python) and returns its JSON line.
fn score(scorer: &str, args: &[&Path]) -> Value {
    let output = std::process::Command::new("python3")
        .arg(script(scorer))
        .args(args)
        .arg("--fp")
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{scorer}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{scorer} printed {text:?}: {e}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// `livepose analyze` over `clips` (the debug binary), with `extra` options; the output folder.
fn analyze(clips: &[PathBuf], extra: &[&str], name: &str) -> PathBuf {
    let out = crate::common::temp_dir(name);
    let mut args: Vec<String> = vec!["analyze".into()];
    args.extend(clips.iter().map(|c| c.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = crate::common::run_livepose(&args);
    assert!(
        output.status.success(),
        "analyze: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn people_clip(stem: &str) -> PathBuf {
    crate::common::fixture(&format!("multiperson/{stem}.mjpeg"))
}

/// (clip, has crossings) for every multi-person clip; the last three are held out of tuning.
const PEOPLE_CLIPS: [(&str, bool); 6] = [
    ("mp_kb_basketball1", false),
    ("mp_cross2", true),
    ("mp_cross3", true),
    ("mp_leave3", false),
    ("mp_cross4", true),
    ("mp_pass2", true),
];

#[test]
fn every_person_is_found_with_a_stable_id_and_as_close_as_mediapipe_tasks() {
    let clips: Vec<PathBuf> = PEOPLE_CLIPS.iter().map(|(s, _)| people_clip(s)).collect();
    let out = analyze(&clips, &["--max-people", "3", "--no-hands"], "truth-people");
    let mut report = Vec::new();
    for (stem, crossing) in PEOPLE_CLIPS {
        let truth = crate::common::fixture(&format!("multiperson/{stem}.truth.jsonl"));
        let ours = score(
            "score_truth.py",
            &[&truth, &out.join(format!("{stem}.jsonl"))],
        );
        let tasks = score(
            "score_truth.py",
            &[
                &truth,
                &crate::common::fixture(&format!("multiperson/{stem}.mediapipe_tasks.jsonl")),
            ],
        );
        report.push(format!("{stem}: livepose {ours} | MediaPipe Tasks {tasks}"));
        let min_recall = if crossing { 0.85 } else { 0.95 };
        let max_switches = if crossing { 1 } else { 0 };
        assert!(
            f(&ours, "recall") >= min_recall,
            "{stem}: recall {ours} (at least {min_recall})"
        );
        assert!(
            f(&ours, "id_switches") <= f64::from(max_switches),
            "{stem}: id switches {ours} (at most {max_switches})"
        );
        assert!(
            f(&ours, "mean_px") <= f(&tasks, "mean_px") + 1.0,
            "{stem}: mean {ours} against MediaPipe Tasks {tasks} (+1 px)"
        );
    }
    println!("{}", report.join("\n"));
}

/// (Ken Burns clip, the photo it moves over, whether its angles are scored: the astronaut has no joint
/// with all three landmarks visible).
const KEN_BURNS: [(&str, &str, bool); 3] = [
    ("kenburns_messi", "messi5", true),
    ("kenburns_astronaut", "astronaut", false),
    ("kenburns_basketball1", "basketball1", true),
];

#[test]
fn one_person_under_camera_motion_is_closer_to_the_truth_than_mediapipes_video_mode() {
    let clips: Vec<PathBuf> = KEN_BURNS
        .iter()
        .map(|(c, _, _)| crate::common::fixture(&format!("{c}.mjpeg")))
        .collect();
    let out = analyze(&clips, &["--no-hands"], "truth-kenburns");
    let mut report = Vec::new();
    for (clip, photo, angles) in KEN_BURNS {
        let truth = crate::common::fixture(&format!("truth/{clip}.truth.jsonl"));
        let ours_file = out.join(format!("{clip}.jsonl"));
        let mp_file = crate::common::fixture(&format!("{clip}.video.ref.jsonl"));
        let ours = score("score_truth.py", &[&truth, &ours_file]);
        let mp = score("score_truth.py", &[&truth, &mp_file]);
        report.push(format!("{clip}: livepose {ours} | MediaPipe video {mp}"));
        assert!(
            f(&ours, "recall") >= f(&mp, "recall"),
            "{clip}: {ours} vs {mp}"
        );
        assert!(
            f(&ours, "mean_px") <= f(&mp, "mean_px"),
            "{clip}: {ours} vs {mp}"
        );
        assert!(
            f(&ours, "p95_px") <= f(&mp, "p95_px"),
            "{clip}: {ours} vs {mp}"
        );
        if angles {
            let reference = crate::common::fixture(&format!("{photo}.ref.json"));
            let ours_a = angles_score(&truth, &reference, &ours_file);
            let mp_a = angles_score(&truth, &reference, &mp_file);
            report.push(format!(
                "{clip} angles: livepose {ours_a} | MediaPipe video {mp_a}"
            ));
            for key in ["mean_deg", "p95_deg"] {
                assert!(
                    f(&ours_a, key) <= f(&mp_a, key),
                    "{clip} angles {key}: {ours_a} vs {mp_a}"
                );
            }
        }
    }
    println!("{}", report.join("\n"));
}

fn angles_score(truth: &Path, photo_ref: &Path, output: &Path) -> Value {
    let output = std::process::Command::new("python3")
        .arg(script("angles_vs_truth.py"))
        .args([truth, photo_ref, output])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "angles_vs_truth: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("angles_vs_truth printed {text:?}: {e}"))
}
