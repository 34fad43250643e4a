//! Sessions (`livepose::session`): recording, reading back after a crash, re-tracking, export and the
//! report, with the real engine on `carphone_640.mjpeg` (120 frames of a man talking, 640×480).
//!
//! Asserted:
//! - `serve --record DIR` killed with SIGKILL mid-stream leaves a session that reads back to its last
//!   complete frame: every frame's bytes are the JPEG the client sent, every result equals the
//!   `pose_result` the client received for that frame (the file's rounding, 1e-4 px), and a torn record
//!   appended to each file is left out with a warning;
//! - re-analysing a recorded session with the same settings (`livepose analyze SESSION_DIR`)
//!   reproduces its results (every landmark within the file's 1e-4 px rounding, the same detections);
//! - a full disk (`frames.bin` is `/dev/full`, which fails every write with ENOSPC) stops the recording
//!   with "the disk is full" in its status and in `session.json`, and tracking goes on: the stream's
//!   other subscriber gets every result;
//! - `livepose export` writes CSV, TRC, BVH and JSONL that hold the recorded results, and `livepose
//!   report` writes one self-contained HTML file (checked in Chromium by `the_report_renders_in_chromium_with_its_plots`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Write as _;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::common::{mjpeg_frames, record_clip};
use livepose::frame::EncodedFormat;
use livepose::server::wire::binary_from_frame;
use livepose::service::{Delivery, Service, ServiceConfig, StreamKind, StreamSpec};
use livepose::session::{
    RecordedSession, Recorder, RecorderConfig, SessionSettings, SessionSource, model_hashes,
};
use livepose::vision::{EngineConfig, TrackerConfig};
use serde_json::Value;
use tungstenite::Message;

const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames the killed recording streams before the kill.
const FRAMES_BEFORE_KILL: usize = 40;
/// The JSON files round pixels to 1e-4.
const ROUNDING_PX: f64 = 1.5e-4;

fn landmarks_px(pose: &Value) -> Vec<(f64, f64)> {
    pose["landmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["x_px"].as_f64().unwrap(), l["y_px"].as_f64().unwrap()))
        .collect()
}

fn max_diff(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(p, q)| (p.0 - q.0).abs().max((p.1 - q.1).abs()))
        .fold(0.0, f64::max)
}

fn pose_of(result: &livepose::vision::FrameResult) -> Vec<(f64, f64)> {
    result
        .pose
        .as_ref()
        .map(|p| {
            p.landmarks
                .iter()
                .map(|l| (f64::from(l.pos_in_image[0]), f64::from(l.pos_in_image[1])))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_recording_reads_back_to_its_last_complete_frame() {
    let dir = crate::common::temp_dir("killed");
    let mut serve =
        crate::common::start_serve(&["--threads", "2", "--record", dir.to_str().unwrap()]);
    let addr = serve.addr.clone();
    let url = format!("ws://{addr}/ws");
    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
    let frames = mjpeg_frames("carphone_640.mjpeg");
    let mut received: Vec<Value> = Vec::new();
    for (seq, jpeg) in frames.iter().take(FRAMES_BEFORE_KILL).enumerate() {
        ws.send(Message::binary(binary_from_frame(
            seq as u64,
            seq as f64 * 33.3,
            jpeg,
        )))
        .unwrap();
        // One frame in flight at a time: every frame is tracked (none replaced in the slot).
        loop {
            match ws.read().unwrap() {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(text.as_str()).unwrap();
                    if message["type"] == "pose_result" {
                        assert_eq!(message["sequence"], seq);
                        received.push(message);
                        break;
                    }
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }
    // One more frame on its way, then SIGKILL: the recorder may be anywhere in its writes.
    ws.send(Message::binary(binary_from_frame(
        FRAMES_BEFORE_KILL as u64,
        FRAMES_BEFORE_KILL as f64 * 33.3,
        &frames[FRAMES_BEFORE_KILL],
    )))
    .unwrap();
    std::thread::sleep(Duration::from_millis(15));
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();

    let sessions: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sessions.len(), 1, "one folder per client: {sessions:?}");
    let session_dir = &sessions[0];
    assert!(
        session_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("client-"),
        "{session_dir:?}"
    );
    let check = |session: &RecordedSession| {
        let info = session.info.as_ref().expect("session.json is always whole");
        assert!(!info.complete, "killed: not complete");
        assert_eq!(info.source.kind, "websocket");
        assert!(
            info.models.iter().all(|m| m.sha256.len() == 64),
            "{:?}",
            info.models
        );
        let n = session.frames.len();
        assert!(
            (FRAMES_BEFORE_KILL - 1..=FRAMES_BEFORE_KILL + 1).contains(&n),
            "{n} frames read back; {FRAMES_BEFORE_KILL} had results before the kill"
        );
        assert!(session.results.len() + 1 >= n && session.results.len() <= n);
        for (i, entry) in session.frames.iter().enumerate() {
            assert_eq!(entry.frame, i);
            assert_eq!(entry.format, EncodedFormat::Jpeg);
            assert!(!entry.encoded_by_recorder);
            assert_eq!(
                session.frame_bytes(i).unwrap(),
                frames[entry.seq as usize],
                "frame {i}: the bytes as the client sent them"
            );
        }
        for recorded in &session.results {
            let Some(sent) = received.iter().find(|m| m["sequence"] == recorded.seq) else {
                continue; // the last frame's result may not have reached the client
            };
            let d = max_diff(&pose_of(&recorded.result), &landmarks_px(&sent["pose"]));
            assert!(
                d <= ROUNDING_PX,
                "frame {}: recorded differs from sent by {d} px",
                recorded.seq
            );
        }
    };
    let session = RecordedSession::open(session_dir).unwrap();
    check(&session);
    let counts = (session.frames.len(), session.results.len());

    // A crash mid-record leaves torn ends: readers leave them out and say so.
    for (file, torn) in [
        ("frames.bin", &b"\xff\xd8\xff\xe0 half a JPEG"[..]),
        ("frames.jsonl", &br#"{"frame":999,"seq":999,"timesta"#[..]),
        ("results.jsonl", &br#"{"file":"x","frame":"#[..]),
    ] {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(session_dir.join(file))
            .unwrap();
        f.write_all(torn).unwrap();
    }
    let session = RecordedSession::open(session_dir).unwrap();
    check(&session);
    assert_eq!((session.frames.len(), session.results.len()), counts);
    assert!(
        session
            .warnings
            .iter()
            .any(|w| w.contains("torn last line of frames.jsonl"))
            && session
                .warnings
                .iter()
                .any(|w| w.contains("torn last line of results.jsonl")),
        "{:?}",
        session.warnings
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn re_analysing_a_session_with_its_settings_reproduces_it() {
    let frames = mjpeg_frames("carphone_640.mjpeg");
    let dir = record_clip(&crate::common::temp_dir("reanalyse"), &frames);
    let session = RecordedSession::open(&dir).unwrap();
    assert!(session.warnings.is_empty(), "{:?}", session.warnings);
    let info = session.info.as_ref().unwrap();
    assert!(info.complete);
    assert_eq!((info.frames, info.results), (120, 120));
    assert_eq!(session.results.len(), 120);

    let out = dir.parent().unwrap().join("again");
    let analyze = ["analyze", "--threads", "2", "--workers", "2", "--out"];
    crate::common::run_livepose(
        analyze
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([out.as_os_str(), dir.as_os_str()]),
    );
    let again: Vec<Value> = std::fs::read_to_string(out.join("session.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(again.len(), session.results.len());
    let mut worst = 0.0_f64;
    for (recorded, line) in session.results.iter().zip(&again) {
        assert_eq!(line["frame"], recorded.frame);
        assert_eq!(line["timestamp_us"], recorded.result.timestamp_us);
        assert_eq!(line["pose"].is_null(), recorded.result.pose.is_none());
        assert_eq!(
            line["hands"].as_array().unwrap().len(),
            recorded.result.hands.len(),
            "frame {}",
            recorded.frame
        );
        if recorded.result.pose.is_some() {
            worst = worst.max(max_diff(
                &pose_of(&recorded.result),
                &landmarks_px(&line["pose"]),
            ));
        }
    }
    println!("re-analysis: largest landmark difference {worst:.6} px over 120 frames");
    assert!(worst <= ROUNDING_PX, "re-analysis differs by {worst} px");

    // Export: every format from the session alone.
    let export = dir.parent().unwrap().join("export");
    crate::common::run_livepose([
        std::ffi::OsStr::new("export"),
        dir.as_os_str(),
        std::ffi::OsStr::new("--out"),
        export.as_os_str(),
    ]);
    let landmarks = std::fs::read_to_string(export.join("landmarks.csv")).unwrap();
    assert_eq!(
        landmarks.lines().count(),
        121,
        "header + one row per result"
    );
    let first_row: Vec<&str> = landmarks.lines().nth(1).unwrap().split(',').collect();
    let header: Vec<&str> = landmarks.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let nose = &session.results[0].result.pose.as_ref().unwrap().landmarks[0];
    let x: f64 = first_row[col("nose_x_px")].parse().unwrap();
    assert!((x - f64::from(nose.pos_in_image[0])).abs() <= ROUNDING_PX);
    assert!(
        std::fs::read_to_string(export.join("angles.csv"))
            .unwrap()
            .lines()
            .count()
            == 121
    );
    let trc = std::fs::read_to_string(export.join("markers.trc")).unwrap();
    assert!(
        trc.starts_with("PathFileType"),
        "{}",
        &trc[..40.min(trc.len())]
    );
    let bvh = std::fs::read_to_string(export.join("motion.bvh")).unwrap();
    assert!(bvh.contains("Frames: 120"), "BVH frames");
    let jsonl = std::fs::read_to_string(export.join("results.jsonl")).unwrap();
    assert_eq!(
        jsonl,
        std::fs::read_to_string(dir.join("results.jsonl")).unwrap(),
        "the results as recorded"
    );
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_full_disk_stops_the_recording_with_a_clear_error_and_tracking_goes_on() {
    let engine = EngineConfig {
        hands: false,
        ..EngineConfig::default()
    };
    let service = Service::start(ServiceConfig::new(engine.clone(), 1, 1)).unwrap();
    let stream = service.open_stream(StreamSpec {
        name: "full disk".into(),
        kind: StreamKind::File,
        tracker: TrackerConfig::VIDEO,
        delivery: Delivery::Lossless,
    });
    let dir = crate::common::temp_dir("full").join("session");
    std::fs::create_dir_all(&dir).unwrap();
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", dir.join("frames.bin")).unwrap();
    let recorder = Recorder::start(
        &stream,
        RecorderConfig {
            dir: dir.clone(),
            source: SessionSource::default(),
            settings: SessionSettings::new(&engine, TrackerConfig::VIDEO),
            models: model_hashes(&engine),
        },
    )
    .unwrap();
    let results = stream.subscribe(16);
    let frames = mjpeg_frames("carphone_640.mjpeg");
    for (k, jpeg) in frames.iter().take(10).enumerate() {
        crate::common::publish_jpeg(&stream, k, jpeg);
        let result = results
            .recv_timeout(READ_TIMEOUT)
            .expect("tracking goes on");
        assert!(result.outcome.unwrap().pose.is_some());
    }
    let status = recorder.stop();
    let error = status.error.expect("the write error is reported");
    assert!(error.contains("the disk is full"), "{error}");
    assert_eq!(status.frames, 0);
    assert_eq!(status.not_written, 10);
    let session = RecordedSession::open(&dir).unwrap();
    let info = session.info.unwrap();
    assert!(info.error.unwrap().contains("the disk is full"));
    assert_eq!(session.frames.len(), 0);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_folder_that_cannot_be_written_is_a_clear_error() {
    let engine = EngineConfig::default();
    let service = Service::start(ServiceConfig::new(engine.clone(), 1, 1)).unwrap();
    let stream = service.open_stream(StreamSpec {
        name: "x".into(),
        kind: StreamKind::File,
        tracker: TrackerConfig::VIDEO,
        delivery: Delivery::LatestWins,
    });
    let config = |dir: std::path::PathBuf| RecorderConfig {
        dir,
        source: SessionSource::default(),
        settings: SessionSettings::new(&engine, TrackerConfig::VIDEO),
        models: model_hashes(&engine),
    };
    // A path under a regular file can never be a folder.
    let file = crate::common::temp_dir("unwritable").join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Recorder::start(&stream, config(file.join("session"))).unwrap_err();
    assert!(err.to_string().contains("a-file/session"), "{err}");
}

/// Pixels of the screenshot within 40 (sum of channel differences) of `colour`.
fn pixels_near(image: &image::RgbaImage, colour: [u8; 3]) -> usize {
    image
        .pixels()
        .filter(|p| {
            p.0[..3]
                .iter()
                .zip(colour)
                .map(|(a, b)| u32::from(a.abs_diff(b)))
                .sum::<u32>()
                <= 40
        })
        .count()
}

#[test]
fn the_report_renders_in_chromium_with_its_plots() {
    let _heavy = crate::common::heavy();
    // The whole body is in view (carphone shows head and shoulders only: no angle is sure enough).
    let frames = mjpeg_frames("kenburns_messi.mjpeg");
    let dir = record_clip(&crate::common::temp_dir("report"), &frames[..60]);
    let html_path = dir.parent().unwrap().join("report.html");
    crate::common::run_livepose([
        std::ffi::OsStr::new("report"),
        dir.as_os_str(),
        std::ffi::OsStr::new("--out"),
        html_path.as_os_str(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Self-contained: nothing to fetch (the only URL is SVG's namespace name, which is never fetched).
    for needle in ["src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(needle),
            "the report refers to an outside resource: {needle}"
        );
    }
    assert!(html.matches("<svg").count() >= 6, "plots inline");
    assert!(
        html.contains("id=\"rom\"") && html.contains("left_elbow"),
        "range-of-motion table"
    );
    assert!(html.contains("with a person"), "presence table");

    let png = dir.parent().unwrap().join("report.png");
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--window-size=1000,3200",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html_path.display()))
        .output()
        .expect("chromium runs (scripts/setup.sh installs Debian's chromium)");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shot = image::open(&png).unwrap().to_rgba8();
    // The plots' lines, in their colours: left joints pink, right joints blue, timings green.
    let left = pixels_near(&shot, [214, 39, 120]);
    let right = pixels_near(&shot, [31, 119, 180]);
    let timings = pixels_near(&shot, [44, 160, 44]);
    println!(
        "report screenshot {}: {left} pink, {right} blue, {timings} green pixels",
        png.display()
    );
    assert!(
        left > 2000 && right > 2000 && timings > 300,
        "{left} / {right} / {timings}"
    );
    if std::env::var_os("LIVEPOSE_KEEP_REPORT").is_none() {
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}

/// A recording of a crossing clip (`mp_cross2`, two people) made while person 2 is followed (as the
/// app's recorder does with its followed person): every result records `followed`, the session reads
/// back with person 2 at the top level wherever they are in view (the lowest id elsewhere), and the
/// export's `landmarks.csv` is `person-2.landmarks.csv` on those frames.
#[test]
fn a_recording_follows_the_person_followed_into_its_exports() {
    let dir = crate::common::temp_dir("followed");
    let frames = mjpeg_frames("multiperson/mp_cross2.mjpeg");
    let session_dir = crate::common::record_clip_tracking(&dir, &frames, 3, Some(2));
    let session = RecordedSession::open(&session_dir).unwrap();
    assert_eq!(session.results.len(), frames.len());
    let (mut followed_shown, mut with_one_before) = (0, 0);
    for r in &session.results {
        assert_eq!(r.followed, Some(2));
        let lowest = r.result.people.iter().map(|p| p.id).min();
        match r.result.people.iter().find(|p| p.id == 2) {
            Some(person) => {
                assert_eq!(
                    r.result.pose.as_ref(),
                    Some(&person.pose),
                    "frame {}",
                    r.frame
                );
                followed_shown += 1;
                with_one_before += usize::from(lowest < Some(2));
            }
            None => assert_eq!(r.result.top_level_id(), lowest, "frame {}", r.frame),
        }
    }
    // Person 2 in view, with a lower id beside them: the frames where following changes something
    // (25 of the 90 frames on 2026-12-07).
    assert!(
        with_one_before >= 15,
        "person 2 beside a lower id in {with_one_before} of {} frames",
        frames.len()
    );

    let out = dir.join("export");
    crate::common::run_livepose(
        ["export", "--csv", "--out"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([out.as_os_str(), session_dir.as_os_str()]),
    );
    let rows = |name: &str| -> Vec<String> {
        std::fs::read_to_string(out.join(name))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (top, person2) = (rows("landmarks.csv"), rows("person-2.landmarks.csv"));
    assert_eq!(top.len(), frames.len() + 1);
    assert_eq!(top.len(), person2.len());
    // `pose_present` is the third column: where person 2 is present, the rows are the same.
    let present = |row: &str| row.split(',').nth(2) == Some("1");
    let same = top
        .iter()
        .zip(&person2)
        .skip(1)
        .filter(|(a, b)| present(b) && a == b)
        .count();
    assert_eq!(same, followed_shown);
}
