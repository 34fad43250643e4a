//! Load benchmark of `livepose serve`: N concurrent WebSocket clients (Rust, not a browser) stream
//! `carphone_640` like the page does (30 frames/s each, at most 3 unanswered, never queueing), for
//! N = 1, 2, 4, 8. Reports results/s, round trip p50/p95 and drops; then streams 10 000 frames into
//! one server and samples its resident memory every 1 000 frames (it must stay flat).
//!
//! Run: `make bench-load` (or `cargo bench --bench load -- [seconds per N]`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary: failing loudly is what we want"
)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use livepose::server::wire::binary_from_frame;
use livepose::vision::image::MjpegFrames;
use tungstenite::Message;

const CLIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/carphone_640.mjpeg"
);
const CAMERA_FPS: f64 = 30.0;
const MAX_UNANSWERED: usize = 3;
const MEMORY_FRAMES: u64 = 10_000;

struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_livepose"))
            .args(["serve", "--listen", "127.0.0.1:0", "--stats-every", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("livepose serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // "livepose: serving http://127.0.0.1:PORT/ (WebSocket …)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct ClientReport {
    sent: u64,
    results: u64,
    rtts_ms: Vec<f64>,
    server_dropped: u64,
    skipped: u64,
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
                ws.send(Message::binary(binary_from_frame(seq, ts, frame)))
                    .unwrap();
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

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let bytes = std::fs::read(CLIP).unwrap();
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(
        MjpegFrames::new(&bytes)
            .map(|f| f.unwrap().to_vec())
            .collect(),
    );
    println!(
        "load: livepose serve (pose full + hands, default threads), carphone_640 (640×480 JPEG), \
         {CAMERA_FPS} frames/s per client, ≤ {MAX_UNANSWERED} unanswered, {seconds} s per run"
    );
    println!(
        "{:>3} {:>10} {:>12} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "N", "results/s", "per client", "rtt p50", "rtt p95", "sent", "srv dropped", "skipped"
    );
    for n in [1_usize, 2, 4, 8] {
        let server = ServerProcess::start(&[]);
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let clients = spawn_clients(n, CAMERA_FPS, &server, &frames, &stop, &received);
        // Warm-up (engine caches, first detections) is included: this is what a user gets.
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        let reports: Vec<ClientReport> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let results: u64 = reports.iter().map(|r| r.results).sum();
        let sent: u64 = reports.iter().map(|r| r.sent).sum();
        let mut rtts: Vec<f64> = reports
            .iter()
            .flat_map(|r| r.rtts_ms.iter().copied())
            .collect();
        rtts.sort_by(f64::total_cmp);
        let rate = results as f64 / seconds as f64;
        println!(
            "{n:>3} {rate:>10.1} {:>12.1} {:>7.1}ms {:>7.1}ms {sent:>9} {:>12} {:>10}",
            rate / n as f64,
            percentile(&rtts, 0.5),
            percentile(&rtts, 0.95),
            reports.iter().map(|r| r.server_dropped).sum::<u64>(),
            reports.iter().map(|r| r.skipped).sum::<u64>(),
        );
        let errors: u64 = reports.iter().map(|r| r.errors).sum();
        assert_eq!(errors, 0, "the server reported errors");
    }

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
