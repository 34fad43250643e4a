//! Pipeline benchmark: per-stage p50/p95 ms and frames per second on real clips, pose full + hands, in
//! video (tracking) mode, for several threading set-ups. Run with `make bench` (which also times the
//! official MediaPipe pipeline on the same frames in the same run) or `cargo bench --bench pipeline`.
//!
//! Options (after `--`): `--passes N` (default 3, best pass kept per configuration), `--json PATH`,
//! `--clips a.mjpeg,b.mjpeg` (default: the two fixture clips), `--only NAME` (one configuration).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary: failing loudly is what we want"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use livepose::frame::{FrameInput, FrameMeta, Payload};
use livepose::service::{Delivery, Service, ServiceConfig, StreamKind, StreamSpec};
use livepose::vision::image::{MjpegFrames, rgb_image_from_bytes};
use livepose::vision::timings::Stage;
use livepose::vision::{Engine, EngineConfig, FrameResult, RgbImage, Tracker, TrackerConfig};

const FRAME_US: i64 = 33_333;

struct Setup {
    name: &'static str,
    threads: usize,
    /// Through the inference service with this many workers (`analyze`, `serve` and the app run this
    /// way); `None`: `Engine::process` on one thread, the hand branch after the pose branch.
    workers: Option<usize>,
    palm_every: u32,
}

/// The default first; the others show why it is the default.
const SETUPS: [Setup; 5] = [
    Setup {
        name: "default",
        threads: 2,
        workers: Some(2),
        palm_every: 3,
    },
    Setup {
        name: "service-palm-every-frame",
        threads: 2,
        workers: Some(2),
        palm_every: 1,
    },
    Setup {
        name: "sequential-2t",
        threads: 2,
        workers: None,
        palm_every: 3,
    },
    Setup {
        name: "sequential-2t-palm-every-frame",
        threads: 2,
        workers: None,
        palm_every: 1,
    },
    Setup {
        name: "sequential-1t",
        threads: 1,
        workers: None,
        palm_every: 3,
    },
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn stats(mut v: Vec<f64>) -> (f64, f64, usize) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.95), v.len())
}

fn decode_clip(path: &Path) -> (Vec<Arc<RgbImage>>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    let mut decode_ms = Vec::new();
    for jpeg in MjpegFrames::new(&bytes) {
        let jpeg = jpeg.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let start = Instant::now();
        frames.push(Arc::new(
            rgb_image_from_bytes(jpeg).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        ));
        decode_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    (frames, decode_ms)
}

/// Runs every frame through `runner`; returns the results and the wall time.
fn run_pass(
    runner: &mut Runner,
    frames: &[Arc<RgbImage>],
    config: TrackerConfig,
) -> (Vec<FrameResult>, f64) {
    match runner {
        Runner::Engine(engine) => {
            let mut tracker = Tracker::new(config);
            let start = Instant::now();
            let results = frames
                .iter()
                .enumerate()
                .map(|(k, f)| {
                    engine
                        .process(f, (k as i64 + 1) * FRAME_US, &mut tracker)
                        .unwrap_or_else(|e| panic!("frame {k}: {e}"))
                })
                .collect();
            (results, start.elapsed().as_secs_f64())
        }
        Runner::Service(service) => {
            // As `analyze` feeds it: a lossless stream, at most 4 results outstanding.
            let stream = service.open_stream(StreamSpec {
                name: "bench".into(),
                kind: StreamKind::Analysis,
                tracker: config,
                delivery: Delivery::Lossless,
            });
            let subscription = stream.subscribe(8);
            let start = Instant::now();
            let mut results = Vec::with_capacity(frames.len());
            let take = |results: &mut Vec<FrameResult>| {
                let done = subscription
                    .recv_timeout(std::time::Duration::from_secs(60))
                    .expect("a result");
                results.push((*done.outcome.expect("processed")).clone());
            };
            for (k, f) in frames.iter().enumerate() {
                let now = Instant::now();
                stream
                    .publish(FrameInput {
                        meta: FrameMeta {
                            seq: k as u64,
                            timestamp_us: (k as i64 + 1) * FRAME_US,
                            captured_at: now,
                            client_timestamp_ms: None,
                        },
                        payload: Payload::Decoded(Arc::clone(f)),
                    })
                    .expect("published");
                while (k + 1 - results.len()) >= 4 {
                    take(&mut results);
                }
            }
            while results.len() < frames.len() {
                take(&mut results);
            }
            (results, start.elapsed().as_secs_f64())
        }
    }
}

enum Runner {
    Engine(Box<Engine>),
    Service(Service),
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let passes: usize = arg("--passes").and_then(|v| v.parse().ok()).unwrap_or(3);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures");
    let clips: Vec<PathBuf> = arg("--clips")
        .map(|c| c.split(',').map(PathBuf::from).collect())
        .unwrap_or_else(|| {
            vec![
                fixtures.join("carphone_640.mjpeg"),
                fixtures.join("kenburns_messi.mjpeg"),
            ]
        });
    let only = arg("--only");
    let mut report = serde_json::Map::new();

    for setup in SETUPS
        .iter()
        .filter(|s| only.as_deref().is_none_or(|o| o == s.name))
    {
        let mut runner = match setup.workers {
            Some(workers) => Runner::Service(
                Service::start(ServiceConfig::new(
                    EngineConfig::default(),
                    setup.threads,
                    workers,
                ))
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            None => Runner::Engine(Box::new(
                Engine::new(EngineConfig {
                    threads: setup.threads,
                    solo_threads: setup.threads,
                    ..Default::default()
                })
                .unwrap_or_else(|e| panic!("{e}")),
            )),
        };
        let tracker_config = TrackerConfig {
            palm_detection_every: setup.palm_every,
            ..TrackerConfig::VIDEO
        };
        println!(
            "\n=== {} (threads {}, {}, palm detector every {} frame(s)) ===",
            setup.name,
            setup.threads,
            match setup.workers {
                Some(w) => format!("inference service with {w} worker(s)"),
                None => "Engine::process, branches one after the other".into(),
            },
            setup.palm_every
        );
        let mut setup_report = serde_json::Map::new();
        for clip in &clips {
            let (frames, decode_ms) = decode_clip(clip);
            // Warm-up pass (allocations, ORT's first-run costs), then the best of `passes`.
            let _ = run_pass(&mut runner, &frames[..frames.len().min(10)], tracker_config);
            let best = (0..passes.max(1))
                .map(|_| run_pass(&mut runner, &frames, tracker_config))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or_else(|| unreachable!("passes ≥ 1"));
            let (results, seconds) = best;
            let tracked: Vec<&FrameResult> = results
                .iter()
                .filter(|r| !r.pose_detector_ran && r.pose.is_some())
                .collect();
            let clip_name = clip
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!(
                "{clip_name}: {} frames, {:.1} FPS overall ({:.1} ms/frame), {} tracked frames",
                results.len(),
                results.len() as f64 / seconds,
                seconds * 1e3 / results.len() as f64,
                tracked.len()
            );
            let (dp50, dp95, _) = stats(decode_ms);
            println!(
                "  {:<24} p50 {dp50:7.2}  p95 {dp95:7.2}   (JPEG decode, outside the engine)",
                "decode"
            );
            let mut clip_report = serde_json::Map::new();
            for stage in Stage::ALL {
                let values: Vec<f64> = tracked
                    .iter()
                    .filter_map(|r| r.timings.get(stage))
                    .map(f64::from)
                    .collect();
                if values.is_empty() {
                    continue;
                }
                let (p50, p95, n) = stats(values);
                println!(
                    "  {:<24} p50 {p50:7.2}  p95 {p95:7.2}   ({n} frames)",
                    stage.name()
                );
                clip_report.insert(
                    stage.name().into(),
                    serde_json::json!({"p50_ms": p50, "p95_ms": p95, "frames": n}),
                );
            }
            // Frames where the hand branch had nothing to run (the pose landmark model may get every thread).
            let idle: Vec<f64> = tracked
                .iter()
                .filter(|r| {
                    !r.palm_detector_ran && r.timings.get(Stage::HandLandmarkInfer).is_none()
                })
                .filter_map(|r| r.timings.get(Stage::Total))
                .map(f64::from)
                .collect();
            if !idle.is_empty() {
                let (p50, p95, n) = stats(idle);
                println!(
                    "  {:<24} p50 {p50:7.2}  p95 {p95:7.2}   ({n} frames with the hand branch idle)",
                    "total (pose only)"
                );
            }
            // Share of frame time outside ONNX Runtime: the non-inference stages of each branch,
            // over the sum of all stages (CPU time of both branches).
            let outside: f64 = tracked
                .iter()
                .map(|r| {
                    r.timings
                        .iter()
                        .filter(|(s, _)| !s.is_inference() && *s != Stage::Total)
                        .map(|(_, ms)| f64::from(ms))
                        .sum::<f64>()
                })
                .sum();
            let all: f64 = tracked
                .iter()
                .map(|r| {
                    r.timings
                        .iter()
                        .filter(|(s, _)| *s != Stage::Total)
                        .map(|(_, ms)| f64::from(ms))
                        .sum::<f64>()
                })
                .sum();
            let (tp50, tp95, _) = stats(
                tracked
                    .iter()
                    .filter_map(|r| r.timings.get(Stage::Total))
                    .map(f64::from)
                    .collect(),
            );
            println!(
                "  tracked frame: p50 {tp50:.2} ms, p95 {tp95:.2} ms → {:.1} FPS at p50; outside ONNX Runtime {:.1} % of stage time",
                1e3 / tp50,
                100.0 * outside / all
            );
            clip_report.insert(
                "fps_overall".into(),
                serde_json::json!(results.len() as f64 / seconds),
            );
            clip_report.insert("tracked_total_p50_ms".into(), serde_json::json!(tp50));
            clip_report.insert("tracked_total_p95_ms".into(), serde_json::json!(tp95));
            clip_report.insert(
                "outside_ort_percent".into(),
                serde_json::json!(100.0 * outside / all),
            );
            clip_report.insert("decode_p50_ms".into(), serde_json::json!(dp50));
            setup_report.insert(clip_name, serde_json::Value::Object(clip_report));
        }
        report.insert(setup.name.into(), serde_json::Value::Object(setup_report));
    }
    if let Some(path) = arg("--json")
        && let Err(e) = std::fs::write(
            &path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
    {
        eprintln!("cannot write {path}: {e}");
    }
}
