//! Bad input gets a clear error and processing goes on: corrupt images in the CLI, timestamps going
//! backwards, missing or damaged model files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;

use crate::common::{fixture, legacy_engine};
use livepose::vision::image::rgb_image_from_path;
use livepose::vision::model::ModelFile;
use livepose::vision::{
    Engine, EngineConfig, ModelError, PoseModel, Tracker, TrackerConfig, VisionError,
};

#[test]
fn analyze_reports_a_corrupt_file_and_goes_on_with_the_next() {
    let dir = crate::common::temp_dir("cli");
    let corrupt = dir.join("corrupt.jpg");
    let mut bytes = std::fs::read(fixture("grace_hopper.jpg")).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&corrupt, bytes).unwrap();
    let out = dir.join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args([
            "analyze",
            corrupt.to_str().unwrap(),
            fixture("messi5.jpg").to_str().unwrap(),
            "--no-hands",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(
        stderr.contains("corrupt.jpg") && stderr.to_lowercase().contains("jpeg"),
        "stderr: {stderr}"
    );
    // The good input after the bad one was still processed.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("messi5.json")).unwrap()).unwrap();
    assert_eq!(json["file"], "messi5.jpg");
    assert_eq!(json["pose"]["landmarks"].as_array().unwrap().len(), 33);
    assert_eq!(
        json["pose"]["world_landmarks"].as_array().unwrap().len(),
        33
    );
    assert_eq!(
        (&json["width"], &json["height"]),
        (&548.into(), &342.into())
    );
    assert_eq!(json["model"], "pose_landmark_full");
    assert!(!out.join("corrupt.json").exists());
}

#[test]
fn analyze_writes_one_line_per_clip_frame_and_annotations() {
    let dir = crate::common::temp_dir("clip");
    let output = Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args([
            "analyze",
            fixture("carphone.mjpeg").to_str().unwrap(),
            "--no-hands",
            "--max-people",
            "1",
            "--annotate",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dir.join("carphone.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 120);
    assert_eq!(lines[0]["frame"], 0);
    assert_eq!(lines[119]["timestamp_us"], 120 * 33_333);
    assert!(lines.iter().all(|l| !l["pose"].is_null()));
    // Tracking one person: the detector runs on the first frame only (with room for more people it
    // would look for them every other frame).
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["pose_detector_ran"] == true)
            .count(),
        1
    );
    let png = image::open(dir.join("carphone").join("00000.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(png.dimensions(), (176, 144));
    // The skeleton is drawn: pink pixels near the nose landmark.
    let nose = &lines[0]["pose"]["landmarks"][0];
    let (nx, ny) = (
        nose["x_px"].as_f64().unwrap() as i64,
        nose["y_px"].as_f64().unwrap() as i64,
    );
    let pink = (-3..=3)
        .flat_map(|dy| (-3..=3).map(move |dx| (nx + dx, ny + dy)))
        .filter(|&(x, y)| x >= 0 && y >= 0 && x < 176 && y < 144)
        .any(|(x, y)| {
            let p = png.get_pixel(x as u32, y as u32);
            p[0] > 200 && p[1] < 120 && p[2] > 120
        });
    assert!(pink, "no body colour drawn at the nose");
}

#[test]
fn timestamps_must_increase() {
    let mut engine = legacy_engine(PoseModel::Full, false);
    let image = rgb_image_from_path(&fixture("grace_hopper.jpg")).unwrap();
    let mut tracker = Tracker::new(TrackerConfig::VIDEO);
    assert!(
        engine
            .process(&image, 1_000, &mut tracker)
            .unwrap()
            .pose
            .is_some()
    );
    let err = engine.process(&image, 1_000, &mut tracker).unwrap_err();
    assert!(
        matches!(
            err,
            VisionError::NonMonotonicTimestamp {
                previous_us: 1_000,
                got_us: 1_000
            }
        ),
        "{err}"
    );
    assert!(engine.process(&image, 500, &mut tracker).is_err());
    // The stream goes on after the rejected frames.
    assert!(
        engine
            .process(&image, 2_000, &mut tracker)
            .unwrap()
            .pose
            .is_some()
    );
}

#[test]
fn a_frame_whose_buffer_does_not_match_its_size_is_rejected() {
    let mut engine = legacy_engine(PoseModel::Full, false);
    let bad = livepose::vision::RgbImage {
        width: 10,
        height: 10,
        data: vec![0; 299],
    };
    let err = engine
        .process(&bad, 1, &mut Tracker::new(TrackerConfig::STATIC))
        .unwrap_err();
    assert!(matches!(err, VisionError::BadFrame { .. }), "{err}");
}

#[test]
fn missing_and_damaged_models_are_named() {
    let dir = crate::common::temp_dir("models");
    let config = EngineConfig {
        models_dir: dir.clone(),
        ..Default::default()
    };
    let Err(err) = Engine::new(config.clone()) else {
        panic!("loaded from an empty folder")
    };
    assert!(
        matches!(&err, ModelError::Missing { path } if path.ends_with("pose_detection.onnx")),
        "{err}"
    );
    assert!(err.to_string().contains("make_models.sh"), "{err}");

    // A truncated copy of a real model fails its SHA-256 check.
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(ModelFile::PoseDetection.file_name());
    let bytes = std::fs::read(real).unwrap();
    std::fs::write(
        dir.join(ModelFile::PoseDetection.file_name()),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let Err(err) = Engine::new(config) else {
        panic!("loaded a damaged model")
    };
    assert!(
        matches!(&err, ModelError::HashMismatch { path, .. } if path.ends_with("pose_detection.onnx")),
        "{err}"
    );
}

#[test]
fn a_broken_onnx_runtime_library_is_an_error_not_a_panic() {
    let dir = crate::common::temp_dir("ort");
    let fake = dir.join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"not a shared library").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args(["analyze", fixture("messi5.jpg").to_str().unwrap(), "--out"])
        .arg(dir.join("out"))
        .env("ORT_DYLIB_PATH", &fake)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("cannot load ONNX Runtime") && stderr.contains("libonnxruntime.so.1.31.1"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

/// ONNX Runtime 1.31's official build (the one livepose loads) keeps a device id and queues usage
/// telemetry for Microsoft under `$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime/` unless
/// `ORT_DISABLE_TELEMETRY` is set before it loads (or it thinks it runs on a CI service). A user who set
/// nothing gets livepose's opt-out: `analyze` with a fresh home and none of those variables leaves no such
/// folder. (Without the opt-out in `main`, this run made `deviceid` and `onnxruntime.db` there.)
#[test]
fn analyze_leaves_no_onnx_runtime_telemetry_behind() {
    let home = crate::common::temp_dir("telemetry-home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_livepose"));
    command
        .args([
            "analyze",
            fixture("messi5.jpg").to_str().unwrap(),
            "--no-hands",
            "--out",
        ])
        .arg(home.join("out"))
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"));
    // The variables by which the runtime suppresses its telemetry on its own (found in the library's
    // strings), and the opt-out itself (`make test` exports it).
    for var in [
        livepose::vision::model::TELEMETRY_OPT_OUT_VAR,
        "CI",
        "TF_BUILD",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "CIRCLECI",
        "TRAVIS",
        "JENKINS_URL",
        "CODEBUILD_BUILD_ID",
        "BUILDKITE",
    ] {
        command.env_remove(var);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    assert!(
        home.join("out").join("messi5.json").is_file(),
        "analyze wrote no result; stderr: {stderr}"
    );
    let left: Vec<_> = walk(&home)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("Microsoft"))
        .collect();
    assert!(left.is_empty(), "ONNX Runtime telemetry files: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}
