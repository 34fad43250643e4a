//! Load benchmark of `livepose serve` (default threads and workers): N concurrent WebSocket clients (Rust,
//! not a browser) stream a clip like the page does (30 frames/s each, at most 3 unanswered, never
//! queueing), for N = 1, 2, 4, 8, on `carphone_640` (no hand in view) and `kenburns_messi` (one hand
//! tracked). Reports results/s, round trip p50/p95 and drops; then streams 10 000 frames into one
//! server and samples its resident memory every 1 000 frames (it must stay flat).
//!
//! The floor: what the machine's cores could serve if every one were busy with this clip's work, from the
//! same run's per-stage times. The work of a frame is the sum of every stage the engine timed (crops,
//! model runs, output decoding, smoothing, angles) plus the JPEG decode, measured first with one client
//! on a server limited to one thread (every stage alone on one core); floor = cores × 1000 / (mean
//! work in ms). The share is the N = 4 results/s over the floor. With
//! `--mediapipe JSON` (from `scripts/refdata/time_mediapipe.py`, run just before by `make bench-load`),
//! it also prints N = 4 results/s over official MediaPipe's single-stream FPS on the same clip.
//!
//! "pose det" and "palm det" are the shares of results where a detector ran (the person or a hand had
//! to be found again: more work per frame). The two columns before them are the CPU (cores busy on average) of the server and of this process's
//! clients, which share the machine's cores with it.
//!
//! Run: `make bench-load` (or `cargo bench --bench load -- [SECONDS] [--mediapipe JSON] [--json OUT]`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary: failing loudly is what we want"
)]

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use livepose::server::wire::binary_from_frame;
use support::{ServerProcess, clip_frames, cpu_seconds, percentile};
use tungstenite::Message;

mod support;

const CLIPS: [&str; 2] = ["carphone_640.mjpeg", "kenburns_messi.mjpeg"];
const CAMERA_FPS: f64 = 30.0;
const MAX_UNANSWERED: usize = 3;
const MEMORY_FRAMES: u64 = 10_000;

#[derive(Default)]
struct ClientReport {
    sent: u64,
    results: u64,
    rtts_ms: Vec<f64>,
    /// Per result: every engine stage plus the JPEG decode, ms (one core's work on that frame).
    work_ms: Vec<f64>,
    /// Results where the pose detector / palm detector ran (tracking lost or not yet found).
    pose_detections: u64,
    palm_detections: u64,
    server_dropped: u64,
    skipped: u64,
    /// The server closed the connection (the app exited, in `--client` mode).
    closed_by_server: bool,
    errors: u64,
}

/// Streams frames at `fps` (0: as fast as the unanswered window allows) until `stop`.
fn run_client(
    addr: &str,
    frames: &[Vec<u8>],
    fps: f64,
    stop: &AtomicBool,
    received: &AtomicU64,
) -> ClientReport {
    let stream = TcpStream::connect(addr).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let mut report = ClientReport::default();
    let started = Instant::now();
    let mut unanswered: Vec<(u64, Instant)> = Vec::new();
    let mut next_frame_at = Duration::ZERO;
    let mut seq = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        let now = started.elapsed();
        if fps == 0.0 || now >= next_frame_at {
            next_frame_at += Duration::from_secs_f64(if fps > 0.0 { 1.0 / fps } else { 0.0 });
            unanswered.retain(|(_, at)| at.elapsed() < Duration::from_secs(2));
            if unanswered.len() >= MAX_UNANSWERED {
                report.skipped += 1;
            } else {
                seq += 1;
                let frame = &frames[seq as usize % frames.len()];
                let ts = started.elapsed().as_secs_f64() * 1e3;
                if ws
                    .send(Message::binary(binary_from_frame(seq, ts, frame)))
                    .is_err()
                {
                    report.closed_by_server = true;
                    break;
                }
                unanswered.push((seq, Instant::now()));
                report.sent += 1;
                received.fetch_add(1, Ordering::Relaxed);
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("pose_result") => {
                        let s = v["sequence"].as_u64().unwrap();
                        if let Some(&(_, at)) = unanswered.iter().find(|(q, _)| *q == s) {
                            report.rtts_ms.push(at.elapsed().as_secs_f64() * 1e3);
                        }
                        unanswered.retain(|(q, _)| *q > s);
                        report.results += 1;
                        let stages: f64 = v["timings_ms"]
                            .as_object()
                            .map(|t| {
                                t.iter()
                                    .filter(|(k, _)| k.as_str() != "total")
                                    .filter_map(|(_, ms)| ms.as_f64())
                                    .sum()
                            })
                            .unwrap_or(0.0);
                        let decode = v["server"]["decode_ms"].as_f64().unwrap_or(0.0);
                        report.work_ms.push(stages + decode);
                        report.pose_detections +=
                            u64::from(v["timings_ms"]["pose_detection_infer"].is_number());
                        report.palm_detections +=
                            u64::from(v["timings_ms"]["palm_detection_infer"].is_number());
                        report.server_dropped = v["counters"]["dropped"].as_u64().unwrap_or(0);
                    }
                    Some("error") => report.errors += 1,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(_),
            ) => {
                report.closed_by_server = true;
                break;
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                report.closed_by_server = true;
                break;
            }
            Err(e) => panic!("client: {e}"),
        }
    }
    let _ = ws.close(None);
    report
}

/// Starts `n` client threads streaming to `server` at `fps` (0: unpaced) until `stop`.
fn spawn_clients(
    n: usize,
    fps: f64,
    server: &ServerProcess,
    frames: &Arc<Vec<Vec<u8>>>,
    stop: &Arc<AtomicBool>,
    received: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<ClientReport>> {
    (0..n)
        .map(|i| {
            let (addr, frames, stop, received) = (
                server.addr.clone(),
                Arc::clone(frames),
                Arc::clone(stop),
                Arc::clone(received),
            );
            std::thread::Builder::new()
                .name(format!("load-client-{i}"))
                .spawn(move || run_client(&addr, &frames, fps, &stop, &received))
                .unwrap()
        })
        .collect()
}

/// One N of one clip.
struct Run {
    n: usize,
    rate: f64,
    mean_work_ms: f64,
    rtt_p50: f64,
    rtt_p95: f64,
}

fn run_clients(n: usize, seconds: u64, frames: &Arc<Vec<Vec<u8>>>, server_args: &[&str]) -> Run {
    let server = ServerProcess::start(server_args);
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let server_pid = server.child.id().to_string();
    let (server_cpu0, clients_cpu0) = (cpu_seconds(&server_pid), cpu_seconds("self"));
    let clients = spawn_clients(n, CAMERA_FPS, &server, frames, &stop, &received);
    // Warm-up (engine caches, first detections) is included: this is what a user gets.
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let server_cores = (cpu_seconds(&server_pid) - server_cpu0) / seconds as f64;
    let clients_cores = (cpu_seconds("self") - clients_cpu0) / seconds as f64;
    let reports: Vec<ClientReport> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let results: u64 = reports.iter().map(|r| r.results).sum();
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let mut rtts: Vec<f64> = reports
        .iter()
        .flat_map(|r| r.rtts_ms.iter().copied())
        .collect();
    rtts.sort_by(f64::total_cmp);
    let work: Vec<f64> = reports
        .iter()
        .flat_map(|r| r.work_ms.iter().copied())
        .collect();
    let rate = results as f64 / seconds as f64;
    let detections = |f: fn(&ClientReport) -> u64| {
        100.0 * reports.iter().map(f).sum::<u64>() as f64 / results.max(1) as f64
    };
    let (pose_det, palm_det) = (
        detections(|r| r.pose_detections),
        detections(|r| r.palm_detections),
    );
    let run = Run {
        n,
        rate,
        mean_work_ms: work.iter().sum::<f64>() / work.len().max(1) as f64,
        rtt_p50: percentile(&rtts, 0.5),
        rtt_p95: percentile(&rtts, 0.95),
    };
    println!(
        "{n:>3} {rate:>10.1} {:>12.1} {:>7.1}ms {:>7.1}ms {sent:>9} {:>12} {:>10} {:>9.2} {server_cores:>6.2} {clients_cores:>7.2} {pose_det:>5.1}% {palm_det:>5.1}%",
        rate / n as f64,
        run.rtt_p50,
        run.rtt_p95,
        reports.iter().map(|r| r.server_dropped).sum::<u64>(),
        reports.iter().map(|r| r.skipped).sum::<u64>(),
        run.mean_work_ms,
    );
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    assert_eq!(errors, 0, "the server reported errors");
    assert!(
        reports.iter().all(|r| !r.closed_by_server),
        "the server closed a client"
    );
    run
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(15);
    // `--client ADDR`: only stream carphone_640 to ADDR for SECONDS like a tab does (for `make
    // bench-app`, which measures the app while a tab streams to it), retrying until the server is up.
    if let Some(addr) = option("--client") {
        let frames = clip_frames(CLIPS[0]);
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "no server at {addr}");
            std::thread::sleep(Duration::from_millis(200));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let received = AtomicU64::new(0);
        let timer = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("load-client-timer".into())
                .spawn(move || {
                    std::thread::sleep(Duration::from_secs(seconds));
                    stop.store(true, Ordering::Relaxed);
                })
                .unwrap()
        };
        let report = run_client(&addr, &frames, CAMERA_FPS, &stop, &received);
        timer.join().unwrap();
        println!(
            "client: {} frames sent, {} results, {} skipped",
            report.sent, report.results, report.skipped
        );
        return;
    }
    let mediapipe: Option<serde_json::Value> = option("--mediapipe").map(|path| {
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            .unwrap()
    });
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let clips: Vec<String> = option("--clips").map_or_else(
        || CLIPS.iter().map(|c| (*c).to_owned()).collect(),
        |c| c.split(',').map(str::to_owned).collect(),
    );
    let mut report = serde_json::Map::new();
    for clip in &clips {
        let clip = clip.as_str();
        let frames = clip_frames(clip);
        println!(
            "\nload: livepose serve (pose full + hands, default threads and workers), {clip}, \
             {CAMERA_FPS} frames/s per client, ≤ {MAX_UNANSWERED} unanswered, {seconds} s per run"
        );
        println!(
            "{:>3} {:>10} {:>12} {:>9} {:>9} {:>9} {:>12} {:>10} {:>9} {:>6} {:>7} {:>6} {:>6}",
            "N",
            "results/s",
            "per client",
            "rtt p50",
            "rtt p95",
            "sent",
            "srv dropped",
            "skipped",
            "work ms",
            "server",
            "clients",
            "pose det",
            "palm det"
        );
        // One core's work per frame: one client, a server with one thread and one worker, so every stage
        // runs alone on one core (no second session, no contention).
        print!("one thread: ");
        let single = run_clients(1, seconds.min(10), &frames, &["--threads", "1"]);
        let runs: Vec<Run> = [1_usize, 2, 4, 8]
            .into_iter()
            .map(|n| run_clients(n, seconds, &frames, &[]))
            .collect();
        let floor = cores as f64 * 1000.0 / single.mean_work_ms;
        let four = runs.iter().find(|r| r.n == 4).map_or(0.0, |r| r.rate);
        println!(
            "  floor ({cores} cores × 1000 / {:.2} ms, one core's work per frame): {floor:.1} frames/s; \
             N = 4 reaches {four:.1} results/s = {:.0} % of it",
            single.mean_work_ms,
            100.0 * four / floor
        );
        let mp_fps = mediapipe
            .as_ref()
            .and_then(|m| m["results"][clip]["both"]["best"]["fps"].as_f64());
        if let Some(mp) = mp_fps {
            println!(
                "  official MediaPipe, one stream, same frames, this run: {mp:.1} FPS; N = 4 is {:.2}× it",
                four / mp
            );
        }
        report.insert(
            clip.into(),
            serde_json::json!({
                "floor": floor,
                "work_ms_one_thread": single.mean_work_ms,
                "share_n4": four / floor,
                "mediapipe_fps": mp_fps,
                "ratio_n4_mediapipe": mp_fps.map(|mp| four / mp),
                "runs": runs.iter().map(|r| serde_json::json!({
                    "n": r.n, "results_per_s": r.rate, "rtt_p50_ms": r.rtt_p50, "rtt_p95_ms": r.rtt_p95,
                    "work_ms": r.mean_work_ms,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    if let Some(path) = option("--json") {
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
    if args.iter().any(|a| a == "--no-memory") {
        return;
    }
    let frames = clip_frames(CLIPS[0]);

    // Memory: 4 clients streaming as fast as their window allows, until they sent 10 000 frames.
    println!(
        "\nmemory: 4 clients, unpaced, until they have sent {MEMORY_FRAMES} frames (all accepted: --max-fps 1000)"
    );
    let server = ServerProcess::start(&["--max-fps", "1000"]);
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let clients = spawn_clients(4, 0.0, &server, &frames, &stop, &received);
    let started = Instant::now();
    let mut next_sample = 1_000;
    let mut samples = Vec::new();
    while next_sample <= MEMORY_FRAMES {
        if received.load(Ordering::Relaxed) >= next_sample {
            let rss = server.rss_mib();
            println!(
                "  {next_sample:>6} frames  {:>6.1} s  RSS {rss:.1} MiB",
                started.elapsed().as_secs_f64()
            );
            samples.push(rss);
            next_sample += 1_000;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let results: u64 = clients.into_iter().map(|c| c.join().unwrap().results).sum();
    let growth = samples[samples.len() - 1] - samples[0];
    println!(
        "  {results} results; RSS {:.1} MiB at 1 000 frames, {:.1} MiB at {MEMORY_FRAMES} ({growth:+.1} MiB)",
        samples[0],
        samples[samples.len() - 1]
    );
}
