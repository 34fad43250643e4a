//! Socket.IO at `/socket.io/` (Engine.IO v4, Socket.IO v5) with real clients and on the wire:
//! - socket.io-client 4.8.4 (Node, `tests/browser/package-lock.json`) with default options, and
//!   python-socketio 5.18.1 (`tests/requirements.txt`), each streaming `carphone_640` as the prototype did
//!   (`frame` events with data URLs), disconnecting and reconnecting half-way, then sending binary
//!   attachments with and without acknowledgements. Every `pose_result` must be the engine's own result
//!   on that frame (static tracking, the references' legacy kernel) within 0.001 px and 0.001 mm, with
//!   the same hands and labels: the frames travel unchanged, so nothing else may differ.
//!
//! The protocol's rules on the wire, with raw requests, are in `super::socketio_wire`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::mjpeg_frames;
use livepose::server::socketio::SocketIoConfig;
use livepose::server::{Server, ServerConfig};
use livepose::vision::{EngineConfig, FrameResult, TrackerConfig};
use serde_json::Value;

pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// The clip's frames the real clients stream (all of them).
const CLIP_FRAMES: usize = 120;
/// Transport fidelity: the same engine on the same bytes.
const MAX_PX: f64 = 1e-3;
const MAX_MM: f64 = 1e-3;

/// The clip's frames as JPEG files in a folder the clients read (`000.jpg` …), made once.
pub(crate) fn frames_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| crate::common::clip_frames_dir("carphone_640.mjpeg", CLIP_FRAMES))
}

/// The engine's result on each clip frame (static tracking, legacy kernel), as the server's JSON
/// schema; computed once for every test of this file.
fn expected() -> &'static Vec<FrameResult> {
    static EXPECTED: OnceLock<Vec<FrameResult>> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let mut engine = livepose::vision::Engine::new(EngineConfig {
            refine_kernel: 9,
            ..Default::default()
        })
        .unwrap();
        mjpeg_frames("carphone_640.mjpeg")
            .iter()
            .take(CLIP_FRAMES)
            .map(|jpeg| {
                let image = livepose::vision::image::rgb_image_from_jpeg(jpeg).unwrap();
                engine
                    .process(
                        &image,
                        1,
                        &mut livepose::vision::Tracker::new(TrackerConfig::STATIC),
                    )
                    .unwrap()
            })
            .collect()
    })
}

fn xy(v: &Value) -> (f64, f64) {
    (v["x_px"].as_f64().unwrap(), v["y_px"].as_f64().unwrap())
}

fn xyz_mm(v: &Value) -> [f64; 3] {
    [
        v["x_m"].as_f64().unwrap() * 1e3,
        v["y_m"].as_f64().unwrap() * 1e3,
        v["z_m"].as_f64().unwrap() * 1e3,
    ]
}

/// Asserts that a `pose_result` is the engine's result on clip frame `k` (landmarks, world landmarks,
/// hands and their labels, angles); returns the largest 2D difference (px).
pub(crate) fn assert_engine_result(result: &Value, k: usize, context: &str) -> f64 {
    let direct = &expected()[k];
    let ours =
        serde_json::to_value(livepose::schema::frame_json("direct", None, direct, "full")).unwrap();
    assert_eq!(result["width"], 640, "{context}");
    let mut worst: f64 = 0.0;
    let pose = &result["pose"];
    assert!(pose.is_object(), "{context}: no pose");
    for (a, b) in pose["landmarks"]
        .as_array()
        .unwrap()
        .iter()
        .zip(ours["pose"]["landmarks"].as_array().unwrap())
    {
        let (pa, pb) = (xy(a), xy(b));
        worst = worst.max((pa.0 - pb.0).hypot(pa.1 - pb.1));
    }
    for (a, b) in pose["world_landmarks"]
        .as_array()
        .unwrap()
        .iter()
        .zip(ours["pose"]["world_landmarks"].as_array().unwrap())
    {
        let (wa, wb) = (xyz_mm(a), xyz_mm(b));
        let d =
            ((wa[0] - wb[0]).powi(2) + (wa[1] - wb[1]).powi(2) + (wa[2] - wb[2]).powi(2)).sqrt();
        assert!(
            d <= MAX_MM,
            "{context}: world landmark {d} mm from the engine's"
        );
    }
    let (hands, direct_hands) = (
        result["hands"].as_array().unwrap(),
        ours["hands"].as_array().unwrap(),
    );
    assert_eq!(hands.len(), direct_hands.len(), "{context}: hand count");
    for (a, b) in hands.iter().zip(direct_hands) {
        assert_eq!(a["handedness"], b["handedness"], "{context}");
        for (la, lb) in a["landmarks"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["landmarks"].as_array().unwrap())
        {
            let (pa, pb) = (xy(la), xy(lb));
            worst = worst.max((pa.0 - pb.0).hypot(pa.1 - pb.1));
        }
    }
    let (angles, direct_angles) = (
        result["angles"].as_object().unwrap(),
        ours["angles"].as_object().unwrap(),
    );
    assert_eq!(
        angles.keys().collect::<Vec<_>>(),
        direct_angles.keys().collect::<Vec<_>>(),
        "{context}"
    );
    for (name, angle) in angles {
        let d = (angle["radians"].as_f64().unwrap()
            - direct_angles[name]["radians"].as_f64().unwrap())
        .abs();
        assert!(d < 1e-4, "{context}: {name} differs by {d} rad");
    }
    assert!(
        worst <= MAX_PX,
        "{context}: {worst} px from the engine's result"
    );
    worst
}

/// A server over its own service (static tracking, legacy kernel), adjusted by `adjust`.
pub(crate) fn start(adjust: impl FnOnce(&mut ServerConfig)) -> Server {
    crate::common::start_server(adjust)
}

/// [`start`] with a fast heartbeat (ms), connect timeout (s) and a 1 s upgrade timeout, so that tests see
/// them in action.
pub(crate) fn start_with_heartbeat(interval_ms: u64, timeout_ms: u64, connect_s: u64) -> Server {
    start(|c| {
        c.socketio = SocketIoConfig {
            ping_interval: Duration::from_millis(interval_ms),
            ping_timeout: Duration::from_millis(timeout_ms),
            connect_timeout: Duration::from_secs(connect_s),
            upgrade_timeout: Duration::from_secs(1),
        }
    })
}

/// What a client script reported, checked: every result is the engine's on the frame it answers.
/// Returns the results per label.
fn check_stream_report(report: &Value, client: &str) -> HashMap<String, Vec<Value>> {
    let mut frame_of: HashMap<(String, u64), usize> = HashMap::new();
    for sent in report["sent"].as_array().unwrap() {
        frame_of.insert(
            (
                sent["label"].as_str().unwrap().to_owned(),
                sent["sequence"].as_u64().unwrap(),
            ),
            sent["frame"].as_u64().unwrap() as usize,
        );
    }
    let mut by_label: HashMap<String, Vec<Value>> = HashMap::new();
    let mut worst: f64 = 0.0;
    for entry in report["results"].as_array().unwrap() {
        let label = entry["label"].as_str().unwrap().to_owned();
        let sequence = entry["sequence"].as_u64().unwrap();
        let k = frame_of[&(label.clone(), sequence)];
        worst = worst.max(assert_engine_result(
            &entry["result"],
            k,
            &format!("{client} {label} sequence {sequence} (frame {k})"),
        ));
        by_label.entry(label).or_default().push(entry.clone());
    }
    eprintln!(
        "{client}: {} results, each within {worst:.5} px of the engine's result on its frame",
        report["results"].as_array().unwrap().len()
    );
    by_label
}

/// The checks both real clients' stream scenarios share.
fn check_stream(report: &Value, client: &str) {
    let by_label = check_stream_report(report, client);
    let events = report["events"].as_array().unwrap();
    let event = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("{client}: no {name} event in {events:?}"))
    };
    // Default options: the session opens on long-polling, then upgrades to WebSocket.
    assert_eq!(event("open")["transport"], "polling", "{client}");
    assert_eq!(
        event("final_transport")["transport"],
        "websocket",
        "{client}"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "missing_last"),
        "{client}: {events:?}"
    );
    // Data URLs at 30 fps: latest-wins may drop frames while inference is busy, but most are answered,
    // before and after the reconnect, and in order.
    let data_url = &by_label["data_url"];
    let half = (CLIP_FRAMES / 2) as u64;
    let before = data_url
        .iter()
        .filter(|r| r["sequence"].as_u64().unwrap() <= half)
        .count();
    let after = data_url.len() - before;
    eprintln!(
        "{client}: data URLs at 30 fps: {} results for {CLIP_FRAMES} frames ({before} before the reconnect, {after} after)",
        data_url.len()
    );
    assert!(
        data_url.len() >= CLIP_FRAMES / 3,
        "{client}: {} results",
        data_url.len()
    );
    assert!(before >= 5 && after >= 5, "{client}: {before} / {after}");
    let sequences: Vec<u64> = data_url
        .iter()
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "{client}: {sequences:?}"
    );
    // One at a time with binary attachments: every frame answered.
    let binary = &by_label["binary"];
    assert_eq!(binary.len(), CLIP_FRAMES, "{client}: binary results");
    let acks = report["acks"].as_array().unwrap();
    assert_eq!(acks.len(), CLIP_FRAMES.div_ceil(4), "{client}");
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack["accepted"], true, "{client}: {ack}");
        assert_eq!(ack["sequence"], 4 * i as u64 + 1, "{client}: {ack}");
    }
    // A `hello` on each connection, each a new client with its own stream.
    let hellos = report["hellos"].as_array().unwrap();
    let ids: std::collections::BTreeSet<u64> = hellos
        .iter()
        .map(|h| h["client_id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (hellos.len(), ids.len()),
        (3, 3),
        "{client}: hellos {hellos:?}"
    );
}

pub(crate) fn run_client(command: std::process::Command, client: &str) -> Value {
    crate::common::run_json_client(command, client)
}

pub(crate) fn node_client(scenario: &str, url: &str, count: usize) -> std::process::Command {
    crate::common::socketio_node_client(scenario, url, frames_dir(), count)
}

#[test]
fn socket_io_client_with_default_options_streams_and_gets_the_engines_results() {
    let server = start(|_| {});
    let _ = expected();
    let report = run_client(
        node_client("stream", &server.url(), CLIP_FRAMES),
        "socket.io-client",
    );
    check_stream(&report, "socket.io-client");
    let upgrade = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "upgrade")
        .cloned();
    assert_eq!(
        upgrade.map(|e| e["transport"].clone()),
        Some(Value::from("websocket"))
    );
    // The bad frame: an `error` event with the native code; the socket stayed connected.
    let bad = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "bad_frame")
        .cloned()
        .unwrap();
    assert_eq!(bad["code"], "bad_image");
    assert_eq!(bad["connected"], true);
    // Every client is gone once the script disconnected.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.stats().clients.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.stats().clients.is_empty(), "{:?}", server.stats());
}

#[test]
fn python_socketio_client_streams_and_gets_the_engines_results() {
    let server = start(|_| {});
    let _ = expected();
    let mut command = std::process::Command::new(crate::common::test_python());
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio/client.py"))
        .arg(server.url())
        .arg(frames_dir())
        .arg(CLIP_FRAMES.to_string());
    let report = run_client(command, "python-socketio");
    check_stream(&report, "python-socketio");
}
