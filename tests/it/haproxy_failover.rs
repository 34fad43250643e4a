//! Two `livepose serve` processes behind HAProxy (Debian's `haproxy` 2.6, `deploy/haproxy.cfg` exactly as
//! committed), on loopback. Six clients stream `carphone_640` through HAProxy (one frame in flight each,
//! reconnecting when closed). Then one backend gets SIGTERM.
//!
//! Asserted: HAProxy spreads the clients over both backends (`leastconn`); every client of the stopped
//! backend sees close code 1001 (going away) and, reconnecting through HAProxy, ends up on the other
//! backend and gets results again; no client of the other backend is closed or stalls; after the
//! failover the survivor has all six. Results/s before, during and after are printed (docs/MEASUREMENTS.md's
//! "More than one machine" figures).
//!
//! Socket.IO through the same HAProxy: a session's long-polling requests all reach the backend that holds
//! it (socket.io-client on long-polling only, then with the upgrade, frames one at a time).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livepose::server::wire::binary_from_frame;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

const CLIENTS: usize = 6;
const TIMEOUT: Duration = Duration::from_secs(20);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    crate::common::http_get(addr, path)
}

fn clients_on(addr: &str) -> usize {
    get(addr, "/metrics")
        .and_then(|(_, body)| {
            body.lines()
                .find_map(|l| l.strip_prefix("livepose_clients "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// When each result arrived.
    results: Vec<Instant>,
    /// Close codes the server sent, in order.
    closes: Vec<Option<CloseCode>>,
}

fn client(front: String, frames: Arc<Vec<Vec<u8>>>, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let mut seq = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(&front) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let Ok((mut ws, _)) = tungstenite::client(format!("ws://{front}/ws"), stream) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        'connection: while !stop.load(Ordering::Relaxed) {
            let jpeg = &frames[seq as usize % frames.len()];
            seq += 1;
            if ws
                .send(Message::binary(binary_from_frame(
                    seq,
                    seq as f64 * 33.3,
                    jpeg,
                )))
                .is_err()
            {
                break;
            }
            loop {
                match ws.read() {
                    Ok(Message::Text(text)) if text.as_str().contains("\"pose_result\"") => {
                        seen.lock().unwrap().results.push(Instant::now());
                        break;
                    }
                    Ok(Message::Close(frame)) => {
                        seen.lock().unwrap().closes.push(frame.map(|f| f.code));
                        break 'connection;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        seen.lock().unwrap().closes.push(None);
                        break 'connection;
                    }
                }
            }
        }
    }
}

fn rate(all: &[Arc<Mutex<Seen>>], from: Instant, to: Instant) -> f64 {
    let n: usize = all
        .iter()
        .map(|s| {
            s.lock()
                .unwrap()
                .results
                .iter()
                .filter(|t| **t >= from && **t < to)
                .count()
        })
        .sum();
    n as f64 / (to - from).as_secs_f64()
}

/// HAProxy with `deploy/haproxy.cfg` in front of two backends, once both are healthy; its address.
fn start_haproxy(addr_a: &str, addr_b: &str) -> (Killed, String) {
    let front = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
    let haproxy = Killed(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .env("LIVEPOSE_LISTEN", &front)
            .env("LIVEPOSE_BACKEND_A", addr_a)
            .env("LIVEPOSE_BACKEND_B", addr_b)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy runs (scripts/setup.sh installs Debian's haproxy)"),
    );
    // Both backends healthy, and HAProxy's checks have seen them (rise 2 × 500 ms).
    let deadline = Instant::now() + TIMEOUT;
    while get(&front, "/healthz").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "HAProxy never answered /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1200));
    (haproxy, front)
}

#[test]
fn a_backend_stopped_behind_haproxy_hands_its_clients_to_the_other() {
    let _serial = crate::common::heavy();
    let mut a = crate::common::start_serve(&["--threads", "1"]);
    let b = crate::common::start_serve(&["--threads", "1"]);
    let (addr_a, addr_b) = (a.addr.clone(), b.addr.clone());
    let (_haproxy, front) = start_haproxy(&addr_a, &addr_b);

    let frames = Arc::new(crate::common::mjpeg_frames("carphone_640.mjpeg"));
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let threads: Vec<_> = seen
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (front, frames, stop, s) = (
                front.clone(),
                Arc::clone(&frames),
                Arc::clone(&stop),
                Arc::clone(s),
            );
            std::thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || client(front, frames, stop, s))
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + TIMEOUT;
    while !seen.iter().all(|s| !s.lock().unwrap().results.is_empty()) {
        assert!(Instant::now() < deadline, "not every client got a result");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    let on_a = clients_on(&addr_a);
    let on_b = clients_on(&addr_b);
    println!("before: {on_a} clients on A, {on_b} on B");
    assert_eq!(on_a + on_b, CLIENTS);
    assert!(
        on_a >= 1 && on_b >= 1,
        "leastconn spreads the clients: {on_a} / {on_b}"
    );
    // Which clients were on A: those that will see the close. Remember each one's result count.
    let closes_before: Vec<usize> = seen
        .iter()
        .map(|s| s.lock().unwrap().closes.len())
        .collect();

    let killed_at = Instant::now();
    Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    let status = a.child.wait().unwrap();
    let stopped_in = killed_at.elapsed();
    assert!(status.success(), "backend A exit status {status}");
    std::thread::sleep(Duration::from_secs(3));
    let after_start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let end = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let on_b_after = clients_on(&addr_b);
    for thread in threads {
        thread.join().unwrap();
    }

    let before = rate(&seen, killed_at - Duration::from_secs(3), killed_at);
    let during = rate(&seen, killed_at, after_start);
    let after = rate(&seen, after_start, end);
    println!(
        "results/s through HAProxy: before {before:.1}, during the failover (3 s) {during:.1}, after {after:.1}; \
         backend A stopped in {stopped_in:?}"
    );
    assert_eq!(
        on_b_after, CLIENTS,
        "every client is on B after the failover"
    );
    let mut moved = 0;
    for (i, s) in seen.iter().enumerate() {
        let s = s.lock().unwrap();
        let new_closes = &s.closes[closes_before[i]..];
        let results_after = s.results.iter().filter(|t| **t >= after_start).count();
        assert!(
            results_after > 0,
            "client {i} got no results after the failover"
        );
        if new_closes.is_empty() {
            // On B all along: never closed, and no gap longer than the failover's own disturbance.
            let gaps = s
                .results
                .windows(2)
                .filter(|w| w[0] >= killed_at - Duration::from_secs(3));
            let worst = gaps.map(|w| w[1] - w[0]).max().unwrap_or_default();
            assert!(
                worst < Duration::from_secs(2),
                "client {i} on B stalled for {worst:?}"
            );
        } else {
            assert_eq!(new_closes, [Some(CloseCode::Away)], "client {i} closes");
            moved += 1;
        }
    }
    assert_eq!(moved, on_a, "the clients of A moved");
}

#[test]
fn socket_io_sessions_stay_on_one_backend_behind_haproxy() {
    let _serial = crate::common::heavy();
    let a = crate::common::start_serve(&["--threads", "1"]);
    let b = crate::common::start_serve(&["--threads", "1"]);
    let (_haproxy, front) = start_haproxy(&a.addr, &b.addr);
    let frames = crate::common::clip_frames_dir("carphone_640.mjpeg", 20);
    // Long-polling only, then with the upgrade, then livepose's WebSocket: every frame answered.
    let report = crate::common::run_json_client(
        crate::common::socketio_node_client("roundtrip", &format!("http://{front}/"), &frames, 20),
        "socket.io-client through HAProxy",
    );
    for transport in ["websocket", "socketio_polling", "socketio_websocket"] {
        assert_eq!(report[transport]["n"], 20, "{transport}: {report}");
    }
    println!("through HAProxy: {report}");
}
