//! Shared helpers for the golden tests: load the MediaPipe reference files and score results against
//! them the way `scripts/refdata/compare_refs.py` does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use livepose::vision::image::{MjpegFrames, rgb_image_from_bytes};
use livepose::vision::{Engine, EngineConfig, FrameResult, PoseModel, Tracker, TrackerConfig};
use serde_json::Value;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

pub fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn read_jsonl(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every frame of the MJPEG fixture `clip` through `engine` with one tracker of `config`, at the
/// references' timestamps ((k+1)·33333 µs).
pub fn process_clip(engine: &mut Engine, clip: &str, config: TrackerConfig) -> Vec<FrameResult> {
    let bytes = std::fs::read(fixture(clip)).unwrap();
    let mut tracker = Tracker::new(config);
    MjpegFrames::new(&bytes)
        .enumerate()
        .map(|(k, jpeg)| {
            let image = rgb_image_from_bytes(jpeg.unwrap()).unwrap();
            engine
                .process(&image, (k as i64 + 1) * 33_333, &mut tracker)
                .unwrap()
        })
        .collect()
}

/// The configuration that reproduces the references: legacy refinement kernel 9.
pub fn legacy_engine(model: PoseModel, hands: bool) -> Engine {
    let config = EngineConfig {
        pose_model: model,
        hands,
        refine_kernel: 9,
        ..Default::default()
    };
    Engine::new(config)
        .unwrap_or_else(|e| panic!("cannot load models (run `make setup` and check models/): {e}"))
}

fn xy(v: &Value) -> [f64; 2] {
    [v["x_px"].as_f64().unwrap(), v["y_px"].as_f64().unwrap()]
}

fn xyz_m(v: &Value) -> [f64; 3] {
    [
        v["x_m"].as_f64().unwrap(),
        v["y_m"].as_f64().unwrap(),
        v["z_m"].as_f64().unwrap(),
    ]
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn dist3(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Pose errors against a reference POSE object, over landmarks the reference sees (visibility ≥ 0.5):
/// per-landmark 2D errors (px) and world errors (mm).
pub fn pose_errors(ours: &FrameResult, reference: &Value) -> (Vec<f64>, Vec<f64>) {
    let pose = ours.pose.as_ref().expect("pose");
    let mut px = Vec::new();
    let mut mm = Vec::new();
    let ref_lms = reference["landmarks"].as_array().unwrap();
    let ref_world = reference["world_landmarks"].as_array().unwrap();
    for i in 0..33 {
        if ref_lms[i]["visibility"].as_f64().unwrap() < 0.5 {
            continue;
        }
        let p = pose.landmarks[i].pos_in_image;
        px.push(dist2([f64::from(p[0]), f64::from(p[1])], xy(&ref_lms[i])));
        let w = pose.world_landmarks[i].pos_in_world;
        mm.push(
            1000.0
                * dist3(
                    [f64::from(w[0]), f64::from(w[1]), f64::from(w[2])],
                    xyz_m(&ref_world[i]),
                ),
        );
    }
    (px, mm)
}

/// Matches our hands to the reference hands by position (as compare_refs.py); returns, per matched hand,
/// the mean 2D error (px), the mean world error (mm) and whether MediaPipe's label agrees.
pub fn hand_errors(ours: &FrameResult, reference: &Value) -> Vec<(f64, f64, bool)> {
    let mut out = Vec::new();
    let mut used = vec![false; ours.hands.len()];
    for rh in reference.as_array().unwrap() {
        let ref_pts: Vec<[f64; 2]> = rh["landmarks"].as_array().unwrap().iter().map(xy).collect();
        let best = ours
            .hands
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .map(|(i, h)| {
                let mean = h
                    .landmarks
                    .iter()
                    .zip(&ref_pts)
                    .map(|(l, r)| {
                        dist2(
                            [f64::from(l.pos_in_image[0]), f64::from(l.pos_in_image[1])],
                            *r,
                        )
                    })
                    .sum::<f64>()
                    / 21.0;
                (i, mean)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, mean_px)) = best {
            used[i] = true;
            let h = &ours.hands[i];
            let ref_world: Vec<[f64; 3]> = rh["world_landmarks"]
                .as_array()
                .unwrap()
                .iter()
                .map(xyz_m)
                .collect();
            let mean_mm = h
                .world_landmarks
                .iter()
                .zip(&ref_world)
                .map(|(w, r)| {
                    1000.0
                        * dist3(
                            [
                                f64::from(w.pos_in_world[0]),
                                f64::from(w.pos_in_world[1]),
                                f64::from(w.pos_in_world[2]),
                            ],
                            *r,
                        )
                })
                .sum::<f64>()
                / 21.0;
            let same_label = h.handedness_mediapipe.label() == rh["handedness"].as_str().unwrap();
            out.push((mean_px, mean_mm, same_label));
        }
    }
    out
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Mean 2D error (px) between a pose in the JSON schema (`pose_result.pose`, analyze output) and a
/// reference pose, over landmarks the reference sees (visibility ≥ 0.5).
pub fn pose_json_error(ours: &Value, reference: &Value) -> f64 {
    mean(&pose_json_errors(ours, reference))
}

/// The 2D error (px) of each landmark the reference sees (visibility ≥ 0.5), both poses in the JSON
/// schema.
pub fn pose_json_errors(ours: &Value, reference: &Value) -> Vec<f64> {
    let ours = ours["landmarks"].as_array().unwrap();
    let refs = reference["landmarks"].as_array().unwrap();
    (0..33)
        .filter(|&i| refs[i]["visibility"].as_f64().unwrap() >= 0.5)
        .map(|i| dist2(xy(&ours[i]), xy(&refs[i])))
        .collect()
}

/// The frames of an `.mjpeg` fixture, as JPEG byte strings.
pub fn mjpeg_frames(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(fixture(name)).unwrap();
    livepose::vision::image::MjpegFrames::new(&bytes)
        .map(|f| f.unwrap().to_vec())
        .collect()
}

/// The Python of the tests' venv (`scripts/setup.sh` makes it from `tests/requirements.txt`: python-osc,
/// pandas, trc-data-reader), or `LIVEPOSE_TEST_PYTHON`.
pub fn test_python() -> PathBuf {
    if let Some(p) = std::env::var_os("LIVEPOSE_TEST_PYTHON") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let python = cache.join("livepose/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs tests/requirements.txt into that venv)",
        python.display()
    );
    python
}

/// Records `frames` (JPEG) into `parent/session` through a lossless stream of a 2-thread, 2-worker service (as `analyze --threads
/// 2` runs), in video mode with MediaPipe's smoothing; returns the session folder.
pub fn record_clip(parent: &Path, frames: &[Vec<u8>]) -> PathBuf {
    record_clip_tracking(parent, frames, 1, None)
}

/// [`record_clip`], tracking up to `max_people`.
pub fn record_clip_tracking(
    parent: &Path,
    frames: &[Vec<u8>],
    max_people: usize,
    follow: Option<u64>,
) -> PathBuf {
    let engine = livepose::vision::EngineConfig::default();
    let service = livepose::service::Service::start(livepose::service::ServiceConfig::new(
        engine.clone(),
        2,
        2,
    ))
    .unwrap();
    let tracker = livepose::vision::TrackerConfig::VIDEO.with_max_people(max_people);
    let stream = std::sync::Arc::new(service.open_stream(livepose::service::StreamSpec {
        name: "clip".into(),
        kind: livepose::service::StreamKind::File,
        tracker,
        delivery: livepose::service::Delivery::Lossless,
    }));
    let dir = parent.join("session");
    let recorder = livepose::session::Recorder::start(
        &stream,
        livepose::session::RecorderConfig {
            dir: dir.clone(),
            source: livepose::session::SessionSource {
                name: "clip".into(),
                kind: "file".into(),
            },
            settings: livepose::session::SessionSettings::new(&engine, tracker),
            models: livepose::session::model_hashes(&engine),
        },
    )
    .unwrap();
    recorder.follow(follow);
    let results = stream.subscribe(frames.len() + 1);
    for (k, jpeg) in frames.iter().enumerate() {
        publish_jpeg(&stream, k, jpeg);
    }
    for _ in frames {
        results
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a result");
    }
    let status = recorder.stop();
    assert_eq!(status.frames, frames.len() as u64);
    assert_eq!(status.not_written, 0);
    assert!(status.error.is_none(), "{:?}", status.error);
    dir
}

/// A `livepose serve` child process, killed (SIGKILL) when dropped unless it has exited.
pub struct ServeProcess {
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`, the address it bound (`--listen 127.0.0.1:0`).
    pub addr: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `livepose serve --listen 127.0.0.1:0 --stats-every 0` with `extra` flags and waits for the
/// line that names its address; its later output is read on (and echoed to stderr), so it never
/// blocks on a full pipe.
pub fn start_serve(extra: &[&str]) -> ServeProcess {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args(["serve", "--listen", "127.0.0.1:0", "--stats-every", "0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // "livepose: serving http://127.0.0.1:PORT/ (WebSocket ws://127.0.0.1:PORT/ws); …"
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .map(|w| w.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    std::thread::Builder::new()
        .name("serve-stdout".into())
        .spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                eprintln!("serve: {line}");
            }
        })
        .unwrap();
    ServeProcess { child, addr }
}

/// A plain HTTP/1.1 GET; the status code and the body (`None` if the connection fails).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_owned()))
}

/// Runs the `livepose` binary with `args` and asserts it succeeded (its stderr is the message).
pub fn run_livepose<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Publishes clip frame `k` (JPEG) into `stream`, stamped (k+1)·33333 µs as the MediaPipe references.
pub fn publish_jpeg(stream: &livepose::service::StreamHandle, k: usize, jpeg: &[u8]) {
    stream
        .publish(livepose::frame::FrameInput {
            meta: livepose::frame::FrameMeta {
                timestamp_us: (k as i64 + 1) * 33_333,
                ..livepose::frame::FrameMeta::captured_now(k as u64)
            },
            payload: livepose::frame::Payload::Encoded {
                format: livepose::frame::EncodedFormat::Jpeg,
                bytes: bytes::Bytes::copy_from_slice(jpeg),
            },
        })
        .unwrap();
}

/// An in-process server over its own service (2 threads, 2 workers: the `serve` default on these
/// machines; the references' legacy refinement kernel 9, static tracking), adjusted by `adjust`.
#[allow(dead_code, reason = "not every test file starts a server")]
pub fn start_server(
    adjust: impl FnOnce(&mut livepose::server::ServerConfig),
) -> livepose::server::Server {
    let engine = EngineConfig {
        refine_kernel: 9,
        ..Default::default()
    };
    let service =
        livepose::service::Service::start(livepose::service::ServiceConfig::new(engine, 2, 2))
            .expect("the service starts (models present: run `make setup`)");
    let mut config = livepose::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tracker: livepose::vision::TrackerConfig::STATIC,
        ..livepose::server::ServerConfig::default()
    };
    adjust(&mut config);
    livepose::server::Server::start(config, std::sync::Arc::new(service)).expect("server starts")
}

/// The first `count` frames of an `.mjpeg` fixture as JPEG files (`000.jpg` …) in a folder of the test
/// target's temporary directory, for test clients that are not Rust (the Socket.IO clients).
pub fn clip_frames_dir(name: &str, count: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("frames-{name}-{count}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (k, jpeg) in mjpeg_frames(name).iter().take(count).enumerate() {
        std::fs::write(dir.join(format!("{k:03}.jpg")), jpeg).unwrap();
    }
    dir
}

/// `node tests/browser/socketio_client.mjs SCENARIO URL FRAMES_DIR COUNT` (socket.io-client 4.8.4).
pub fn socketio_node_client(
    scenario: &str,
    url: &str,
    frames_dir: &Path,
    count: usize,
) -> std::process::Command {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "socket.io-client is missing: run scripts/setup.sh (npm ci in tests/browser)"
    );
    let mut command = std::process::Command::new("node");
    command
        .arg(dir.join("socketio_client.mjs"))
        .args([scenario, url])
        .arg(frames_dir)
        .arg(count.to_string());
    command
}

/// Runs a test client that prints one JSON object; asserts it succeeded and returns the object.
pub fn run_json_client(mut command: std::process::Command, client: &str) -> Value {
    let output = command.output().unwrap_or_else(|e| panic!("{client}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{client} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{client}: {e}; stderr:\n{stderr}"))
}

/// A new empty folder for one test: unique in this process (a counter) and across processes (the pid),
/// under the system's temporary folder. The one temporary-folder helper of the tests.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("livepose-it-{name}-{}-{n}", std::process::id()));
    // A folder left by an earlier process with the same pid: start empty.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Held by every test that starts a heavy outside program (the app under Xvfb and Mesa, Chromium, two
/// servers behind HAProxy): on 2 cores two of them at once starve each other's timing (a page's capture
/// loop, a failover's rates), so they run one at a time across the whole test binary.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
