//! Soak of `livepose serve` (release): hours of clients in minutes' terms. For `SOAK_MINUTES` (default 30)
//! it runs, against one server with its default threads and workers:
//! - 4 clients streaming `carphone_640` at 30 frames/s (at most 3 unanswered, as the page does), with 1 %
//!   malformed messages mixed in (in turn: a binary message with a bad magic, text that is not JSON, a
//!   frame header over bytes that are not an image); each must get exactly one `error` back and stay on;
//! - 1 client that connects, streams for 4 s and disconnects, every 5 s;
//! - 1 client that streams and never reads (the server closes it when it stalls; it connects again).
//!
//! Every 10 s it samples the server's resident memory, open file descriptors and threads (/proc), the
//! results/s of the 4 streaming clients and their round trip p50/p95, into `target/soak/soak.csv`, and at
//! the end draws the series (the session report's SVG line charts, `livepose::session::report`) into
//! `soak.html` and, through headless Chromium, `soak.png`.
//!
//! Pass (exit 0), else exit 1 with the reasons:
//! - after the warm-up (the first minute, or a tenth of a shorter run) resident memory grows by under
//!   5 MiB (largest sample after it minus the sample at its end);
//! - descriptors and threads return to their baseline (before the first client) once every client is gone;
//! - the round-trip p95 of the last 5 minutes is within 1.2× that of the first 5 after the warm-up (windows
//!   shrink to half of the rest on runs shorter than 11 minutes);
//! - no client that behaves (the 4 streaming, the one that comes and goes) is ever disconnected by the
//!   server, and every malformed message got its error.
//!
//! Run: `make soak` (`SOAK_MINUTES=5 make soak` for a short one), or
//! `cargo bench --no-default-features --bench soak -- [MINUTES]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary: failing loudly is what we want"
)]

use std::fmt::Write as _;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livepose::server::wire::binary_from_frame;
use livepose::session::report::{Series, line_chart};
use plotters::style::RGBColor;
use support::{ServerProcess, clip_frames, cpu_seconds, percentile};
use tungstenite::Message;

mod support;

const CAMERA_FPS: f64 = 30.0;
const MAX_UNANSWERED: usize = 3;
const STREAMING_CLIENTS: usize = 4;
/// One message in this many is malformed (1 %).
const MALFORMED_EVERY: u64 = 100;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const CHURN_PERIOD: Duration = Duration::from_secs(5);
const CHURN_STREAMING: Duration = Duration::from_secs(4);
const MAX_MEMORY_GROWTH_MIB: f64 = 5.0;
const MAX_P95_RATIO: f64 = 1.2;

type Ws = tungstenite::WebSocket<TcpStream>;
/// A client's thread body: the server's address, the clip's frames, the shared figures.
type ClientThread = Box<dyn FnOnce(String, Arc<Vec<Vec<u8>>>, Arc<Shared>) + Send>;

/// What every client thread adds to, read by the sampler.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Results of the 4 streaming clients.
    results: AtomicU64,
    /// (seconds since the start, round trip ms) of the 4 streaming clients' results.
    rtts: Mutex<Vec<(f64, f64)>>,
    /// (seconds since the start, the engine's own time for the frame, ms): tells a slower machine (both
    /// rise) from queueing in the server (only the round trip rises).
    inference_ms: Mutex<Vec<(f64, f64)>>,
    malformed_sent: AtomicU64,
    malformed_answered: AtomicU64,
    /// `error` messages that were not the answer to a malformed message.
    unexpected_errors: AtomicU64,
    /// Behaving clients the server disconnected (must stay 0).
    behaving_disconnects: AtomicU64,
    churn_sessions: AtomicU64,
    churn_results: AtomicU64,
    /// Times the server closed the client that never reads.
    never_reader_closed: AtomicU64,
    never_reader_frames: AtomicU64,
    notes: Mutex<Vec<String>>,
}

impl Shared {
    fn note(&self, text: String) {
        eprintln!("soak: {text}");
        self.notes.lock().unwrap().push(text);
    }
}

fn connect(addr: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    ws
}

/// The n-th malformed message, in turn of three kinds.
fn malformed(n: u64, seq: u64, timestamp_ms: f64) -> Message {
    match n % 3 {
        0 => Message::binary(b"XX\x01\x01 this is not a livepose frame".to_vec()),
        1 => Message::text("{\"type\":\"frame\",\"sequence\": oops"),
        _ => Message::binary(binary_from_frame(
            seq,
            timestamp_ms,
            b"definitely not an image, just bytes",
        )),
    }
}

/// Why a client's connection ended.
enum Ended {
    Stopped,
    ClosedByServer(String),
}

/// Streams frames at 30 frames/s with reads, until `until` or `stop`. `record`: count results and round
/// trips into the shared figures (the 4 streaming clients).
fn stream_for(
    ws: &mut Ws,
    frames: &[Vec<u8>],
    shared: &Shared,
    started: Instant,
    until: Option<Instant>,
    record: bool,
    malformed_share: bool,
) -> Ended {
    let opened = Instant::now();
    let mut unanswered: Vec<(u64, Instant)> = Vec::new();
    let mut next_frame_at = Duration::ZERO;
    let (mut seq, mut messages, mut bad_sent, mut bad_answered) = (0_u64, 0_u64, 0_u64, 0_u64);
    let mut ended = Ended::Stopped;
    while !shared.stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
        if opened.elapsed() >= next_frame_at {
            next_frame_at += Duration::from_secs_f64(1.0 / CAMERA_FPS);
            unanswered.retain(|(_, at)| at.elapsed() < Duration::from_secs(2));
            if unanswered.len() < MAX_UNANSWERED {
                messages += 1;
                seq += 1;
                let ts = opened.elapsed().as_secs_f64() * 1e3;
                let message =
                    if malformed_share && messages % MALFORMED_EVERY == MALFORMED_EVERY / 2 {
                        bad_sent += 1;
                        shared.malformed_sent.fetch_add(1, Ordering::Relaxed);
                        malformed(bad_sent, seq, ts)
                    } else {
                        unanswered.push((seq, Instant::now()));
                        Message::binary(binary_from_frame(
                            seq,
                            ts,
                            &frames[seq as usize % frames.len()],
                        ))
                    };
                if let Err(e) = ws.send(message) {
                    ended = Ended::ClosedByServer(format!("send: {e}"));
                    break;
                }
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("pose_result") => {
                        let s = v["sequence"].as_u64().unwrap();
                        if let Some(&(_, at)) = unanswered.iter().find(|(q, _)| *q == s)
                            && record
                        {
                            let now_s = started.elapsed().as_secs_f64();
                            let rtt_ms = at.elapsed().as_secs_f64() * 1e3;
                            shared.rtts.lock().unwrap().push((now_s, rtt_ms));
                            if let Some(total) = v["timings_ms"]["total"].as_f64() {
                                shared.inference_ms.lock().unwrap().push((now_s, total));
                            }
                        }
                        unanswered.retain(|(q, _)| *q > s);
                        if record {
                            shared.results.fetch_add(1, Ordering::Relaxed);
                        } else {
                            shared.churn_results.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some("error") if bad_answered < bad_sent => {
                        bad_answered += 1;
                        shared.malformed_answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("error") => {
                        shared.unexpected_errors.fetch_add(1, Ordering::Relaxed);
                        shared.note(format!("unexpected error message: {text}"));
                    }
                    _ => {}
                }
            }
            Ok(Message::Close(frame)) => {
                ended = Ended::ClosedByServer(format!("close frame {frame:?}"));
                break;
            }
            Ok(_) => {}
            Err(e) if read_timed_out(&e) => {}
            Err(e) => {
                ended = Ended::ClosedByServer(format!("read: {e}"));
                break;
            }
        }
    }
    ended
}

/// A read that found nothing within the socket's read timeout (not an error).
fn read_timed_out(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io)
        if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

/// Closes our side and reads until the server's close answer (or 1 s).
fn close(mut ws: Ws) {
    let _ = ws.close(None);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(_) => {}
            Err(e) if read_timed_out(&e) => {}
            Err(_) => break,
        }
    }
}

fn streaming_client(
    i: usize,
    addr: String,
    frames: Arc<Vec<Vec<u8>>>,
    shared: Arc<Shared>,
    started: Instant,
) {
    let mut ws = connect(&addr);
    loop {
        match stream_for(&mut ws, &frames, &shared, started, None, true, true) {
            Ended::Stopped => break,
            Ended::ClosedByServer(why) => {
                shared.behaving_disconnects.fetch_add(1, Ordering::Relaxed);
                shared.note(format!(
                    "streaming client {i} disconnected by the server at {:.0} s: {why}",
                    started.elapsed().as_secs_f64()
                ));
                ws = connect(&addr);
            }
        }
    }
    close(ws);
}

fn churning_client(addr: String, frames: Arc<Vec<Vec<u8>>>, shared: Arc<Shared>, started: Instant) {
    let mut period_start = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let mut ws = connect(&addr);
        shared.churn_sessions.fetch_add(1, Ordering::Relaxed);
        let until = period_start + CHURN_STREAMING;
        if let Ended::ClosedByServer(why) = stream_for(
            &mut ws,
            &frames,
            &shared,
            started,
            Some(until),
            false,
            false,
        ) {
            shared.behaving_disconnects.fetch_add(1, Ordering::Relaxed);
            shared.note(format!(
                "the churning client was disconnected by the server: {why}"
            ));
        }
        close(ws);
        period_start += CHURN_PERIOD;
        while Instant::now() < period_start && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends frames at 30 frames/s and never reads; when the server gives up on it, connects again.
fn never_reading_client(addr: String, frames: Arc<Vec<Vec<u8>>>, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let mut ws = connect(&addr);
        ws.get_ref()
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let opened = Instant::now();
        let mut seq = 0_u64;
        while !shared.stop.load(Ordering::Relaxed) {
            seq += 1;
            let ts = opened.elapsed().as_secs_f64() * 1e3;
            let frame = &frames[seq as usize % frames.len()];
            if ws
                .send(Message::binary(binary_from_frame(seq, ts, frame)))
                .is_err()
            {
                shared.never_reader_closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            shared.never_reader_frames.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_secs_f64(1.0 / CAMERA_FPS));
        }
        drop(ws);
        std::thread::sleep(Duration::from_secs(1));
    }
}

struct Sample {
    t_s: f64,
    rss_mib: f64,
    fds: u64,
    threads: u64,
    results_per_s: f64,
    rtt_p50_ms: f64,
    rtt_p95_ms: f64,
    inference_mean_ms: f64,
    server_cores: f64,
}

fn sorted_rtts(rtts: &[(f64, f64)], from_s: f64, to_s: f64) -> Vec<f64> {
    let mut window: Vec<f64> = rtts
        .iter()
        .filter(|(t, _)| *t >= from_s && *t < to_s)
        .map(|&(_, ms)| ms)
        .collect();
    window.sort_by(f64::total_cmp);
    window
}

fn write_csv(path: &std::path::Path, samples: &[Sample]) {
    let mut csv = String::from(
        "t_s,rss_mib,open_fds,threads,results_per_s,rtt_p50_ms,rtt_p95_ms,inference_mean_ms,server_cpu_cores\n",
    );
    for s in samples {
        writeln!(
            csv,
            "{:.1},{:.2},{},{},{:.2},{:.1},{:.1},{:.1},{:.2}",
            s.t_s,
            s.rss_mib,
            s.fds,
            s.threads,
            s.results_per_s,
            s.rtt_p50_ms,
            s.rtt_p95_ms,
            s.inference_mean_ms,
            s.server_cores
        )
        .unwrap();
    }
    std::fs::write(path, csv).unwrap();
}

fn plot(dir: &std::path::Path, samples: &[Sample], title: &str) {
    let minutes = |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        samples.iter().map(|s| (s.t_s / 60.0, f(s))).collect()
    };
    let series = |label: &str, colour: RGBColor, f: fn(&Sample) -> f64| Series {
        label: label.into(),
        colour,
        points: minutes(f),
    };
    let (pink, blue, green, orange) = (
        RGBColor(214, 39, 120),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
    );
    let charts = [
        line_chart(
            "Resident memory of livepose serve",
            "time (min)",
            "MiB",
            &[series("RSS", pink, |s| s.rss_mib)],
        ),
        line_chart(
            "Open file descriptors and threads",
            "time (min)",
            "count",
            &[
                series("descriptors", blue, |s| s.fds as f64),
                series("threads", orange, |s| s.threads as f64),
            ],
        ),
        line_chart(
            "Results/s of the 4 streaming clients",
            "time (min)",
            "results/s",
            &[series("results/s", green, |s| s.results_per_s)],
        ),
        line_chart(
            "Round trip (10 s windows)",
            "time (min)",
            "ms",
            &[
                series("p50", blue, |s| s.rtt_p50_ms),
                series("p95", pink, |s| s.rtt_p95_ms),
                series("inference (engine, mean)", green, |s| s.inference_mean_ms),
            ],
        ),
    ];
    let mut html = format!(
        "<!doctype html><meta charset=utf-8><title>soak</title><style>body{{margin:8px;font:14px \
         sans-serif}} div{{display:grid;grid-template-columns:1fr 1fr;gap:4px}}</style><h3>{title}</h3><div>"
    );
    for chart in charts {
        html.push_str(&chart.unwrap());
    }
    html.push_str("</div>");
    let html_path = dir.join("soak.html");
    std::fs::write(&html_path, html).unwrap();
    let png = dir.join("soak.png");
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--window-size=1860,640",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html_path.display()))
        .output();
    match output {
        Ok(o) if png.is_file() => {
            let _ = o;
            println!("soak: plot {}", png.display());
        }
        Ok(o) => eprintln!(
            "soak: Chromium made no PNG ({}); the plot is in {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or(""),
            html_path.display()
        ),
        Err(e) => eprintln!(
            "soak: cannot run chromium ({e}); the plot is in {}",
            html_path.display()
        ),
    }
}

fn main() -> std::process::ExitCode {
    let minutes: f64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("SOAK_MINUTES").ok())
        .map_or(30.0, |m| {
            m.parse().expect("SOAK_MINUTES: a number of minutes")
        });
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let warmup_s = (duration.as_secs_f64() / 10.0).min(60.0);
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak");
    std::fs::create_dir_all(&out_dir).unwrap();
    let frames = clip_frames("carphone_640.mjpeg");

    let server = ServerProcess::start(&[]);
    let pid = server.pid().to_string();
    // Let the server settle after start (models loaded before the address is printed).
    std::thread::sleep(Duration::from_secs(2));
    let (baseline_fds, baseline_threads) = (server.open_fds(), server.threads());
    println!(
        "soak: {minutes} min against livepose serve at {} (pid {pid}); baseline {baseline_fds} descriptors, \
         {baseline_threads} threads, {:.1} MiB",
        server.addr,
        server.rss_mib()
    );

    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let spawn = |name: String, run: ClientThread| {
        let (addr, frames, shared) = (
            server.addr.clone(),
            Arc::clone(&frames),
            Arc::clone(&shared),
        );
        std::thread::Builder::new()
            .name(name)
            .spawn(move || run(addr, frames, shared))
            .unwrap()
    };
    let mut threads: Vec<_> = (0..STREAMING_CLIENTS)
        .map(|i| {
            spawn(
                format!("soak-stream-{i}"),
                Box::new(move |addr, frames, shared| {
                    streaming_client(i, addr, frames, shared, started)
                }),
            )
        })
        .collect();
    threads.push(spawn(
        "soak-churn".into(),
        Box::new(move |addr, frames, shared| churning_client(addr, frames, shared, started)),
    ));
    threads.push(spawn(
        "soak-never-reads".into(),
        Box::new(never_reading_client),
    ));

    println!(
        "{:>7} {:>9} {:>5} {:>7} {:>10} {:>8} {:>8} {:>9} {:>6}",
        "t (s)", "RSS MiB", "fds", "threads", "results/s", "p50 ms", "p95 ms", "engine ms", "cores"
    );
    let mut samples = Vec::new();
    let (mut last_results, mut last_cpu, mut last_t) = (0_u64, cpu_seconds(&pid), 0.0_f64);
    let mut next = started + SAMPLE_EVERY;
    while next <= started + duration + Duration::from_millis(1) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let t_s = started.elapsed().as_secs_f64();
        let results = shared.results.load(Ordering::Relaxed);
        let cpu = cpu_seconds(&pid);
        let window = sorted_rtts(&shared.rtts.lock().unwrap(), last_t, t_s);
        let inference = sorted_rtts(&shared.inference_ms.lock().unwrap(), last_t, t_s);
        let sample = Sample {
            t_s,
            rss_mib: server.rss_mib(),
            fds: server.open_fds(),
            threads: server.threads(),
            results_per_s: (results - last_results) as f64 / (t_s - last_t),
            rtt_p50_ms: percentile(&window, 0.5),
            rtt_p95_ms: percentile(&window, 0.95),
            inference_mean_ms: inference.iter().sum::<f64>() / inference.len().max(1) as f64,
            server_cores: (cpu - last_cpu) / (t_s - last_t),
        };
        println!(
            "{:>7.0} {:>9.1} {:>5} {:>7} {:>10.1} {:>8.1} {:>8.1} {:>9.1} {:>6.2}",
            sample.t_s,
            sample.rss_mib,
            sample.fds,
            sample.threads,
            sample.results_per_s,
            sample.rtt_p50_ms,
            sample.rtt_p95_ms,
            sample.inference_mean_ms,
            sample.server_cores
        );
        (last_results, last_cpu, last_t) = (results, cpu, t_s);
        samples.push(sample);
        write_csv(&out_dir.join("soak.csv"), &samples);
        next += SAMPLE_EVERY;
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    // Every client is gone: give the server a moment to close its side, then compare with the baseline.
    let settle_deadline = Instant::now() + Duration::from_secs(15);
    let (mut end_fds, mut end_threads) = (server.open_fds(), server.threads());
    while (end_fds != baseline_fds || end_threads != baseline_threads)
        && Instant::now() < settle_deadline
    {
        std::thread::sleep(Duration::from_millis(250));
        (end_fds, end_threads) = (server.open_fds(), server.threads());
    }
    let server_alive = server_is_alive(&pid);

    // Verdict.
    let mut failures = Vec::new();
    let total_s = duration.as_secs_f64();
    let after_warmup: Vec<&Sample> = samples.iter().filter(|s| s.t_s > warmup_s + 1e-6).collect();
    let warm_rss = samples
        .iter()
        .rfind(|s| s.t_s <= warmup_s + SAMPLE_EVERY.as_secs_f64() / 2.0)
        .or(samples.first())
        .map_or(f64::NAN, |s| s.rss_mib);
    let max_rss = after_warmup
        .iter()
        .map(|s| s.rss_mib)
        .fold(warm_rss, f64::max);
    let growth = max_rss - warm_rss;
    if growth.is_nan() || growth >= MAX_MEMORY_GROWTH_MIB {
        failures.push(format!(
            "resident memory grew by {growth:.2} MiB after the warm-up (limit {MAX_MEMORY_GROWTH_MIB})"
        ));
    }
    if end_fds != baseline_fds {
        failures.push(format!(
            "{end_fds} descriptors at the end, {baseline_fds} at the start"
        ));
    }
    if end_threads != baseline_threads {
        failures.push(format!(
            "{end_threads} threads at the end, {baseline_threads} at the start"
        ));
    }
    let window_s = (5.0 * 60.0_f64).min((total_s - warmup_s) / 2.0);
    let rtts = shared.rtts.lock().unwrap().clone();
    let first = sorted_rtts(&rtts, warmup_s, warmup_s + window_s);
    let last = sorted_rtts(&rtts, total_s - window_s, total_s + 1.0);
    let (p95_first, p95_last) = (percentile(&first, 0.95), percentile(&last, 0.95));
    if p95_last.is_nan() || p95_first.is_nan() || p95_last > MAX_P95_RATIO * p95_first {
        failures.push(format!(
            "round-trip p95 of the last {:.1} min {p95_last:.1} ms is over {MAX_P95_RATIO}× the first's \
             {p95_first:.1} ms",
            window_s / 60.0
        ));
    }
    let behaving_disconnects = shared.behaving_disconnects.load(Ordering::Relaxed);
    if behaving_disconnects > 0 {
        failures.push(format!(
            "{behaving_disconnects} disconnections of clients that behave"
        ));
    }
    let (bad_sent, bad_answered) = (
        shared.malformed_sent.load(Ordering::Relaxed),
        shared.malformed_answered.load(Ordering::Relaxed),
    );
    if bad_answered != bad_sent {
        failures.push(format!(
            "{bad_answered} of {bad_sent} malformed messages answered with an error"
        ));
    }
    let unexpected = shared.unexpected_errors.load(Ordering::Relaxed);
    if unexpected > 0 {
        failures.push(format!("{unexpected} unexpected error messages"));
    }
    if !server_alive {
        failures.push("the server process died".into());
    }

    let results = shared.results.load(Ordering::Relaxed);
    let all_sorted = sorted_rtts(&rtts, 0.0, total_s + 1.0);
    let summary = format!(
        "{minutes} min: {results} results to the 4 streaming clients ({:.1}/s), round trip p50/p95 \
         {:.0}/{:.0} ms over the run, p95 of the first {:.1} min after the warm-up {p95_first:.1} ms, last {p95_last:.1} ms \
         ({:.2}×); RSS {warm_rss:.1} MiB after the warm-up, at most {max_rss:.1} (growth {growth:.2} MiB), \
         {:.1} at the end; descriptors {baseline_fds} → {end_fds}, threads {baseline_threads} → \
         {end_threads}; malformed {bad_sent} sent, {bad_answered} answered; churning client: {} sessions, \
         {} results; never-reading client: closed by the server {} times, {} frames sent; disconnections \
         of clients that behave: {behaving_disconnects}",
        results as f64 / total_s,
        percentile(&all_sorted, 0.5),
        percentile(&all_sorted, 0.95),
        window_s / 60.0,
        p95_last / p95_first,
        server.rss_mib(),
        shared.churn_sessions.load(Ordering::Relaxed),
        shared.churn_results.load(Ordering::Relaxed),
        shared.never_reader_closed.load(Ordering::Relaxed),
        shared.never_reader_frames.load(Ordering::Relaxed),
    );
    println!("soak: {summary}");
    let verdict = if failures.is_empty() { "PASS" } else { "FAIL" };
    std::fs::write(
        out_dir.join("soak-summary.txt"),
        format!("{verdict}: {summary}\n{}\n", failures.join("\n")),
    )
    .unwrap();
    write_csv(&out_dir.join("soak.csv"), &samples);
    plot(
        &out_dir,
        &samples,
        &format!("livepose serve soak, {minutes} min: {verdict}"),
    );
    println!("soak: CSV {}", out_dir.join("soak.csv").display());
    if failures.is_empty() {
        println!("soak: PASS");
        std::process::ExitCode::SUCCESS
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        std::process::ExitCode::FAILURE
    }
}

fn server_is_alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}
