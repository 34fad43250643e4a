//! `livepose serve`'s life: `/healthz`, `/metrics` checked by Prometheus's own `promtool check metrics`
//! (Debian's `prometheus` package, installed by `scripts/setup.sh`), and a clean shutdown on SIGTERM
//! while 4 clients stream: every client sees close code 1001 (going away), the process exits 0 within
//! 2 s, and each client's recording is completed (`session.json` says `complete`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::mjpeg_frames;
use livepose::server::wire::binary_from_frame;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

const CLIENTS: usize = 4;
const READ_TIMEOUT: Duration = Duration::from_secs(30);

fn get(addr: &str, path: &str) -> (u16, String) {
    crate::common::http_get(addr, path).expect("the server answers")
}

/// Streams `frames` in a loop (one in flight) until the server closes; returns the close code and the
/// results received.
fn stream_until_closed(
    addr: &str,
    frames: &[Vec<u8>],
    streaming: &AtomicBool,
) -> (Option<CloseCode>, u64) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    let mut results = 0;
    for (seq, jpeg) in frames.iter().cycle().enumerate() {
        if ws
            .send(Message::binary(binary_from_frame(
                seq as u64,
                seq as f64 * 33.3,
                jpeg,
            )))
            .is_err()
        {
            break;
        }
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    if text.as_str().contains("\"pose_result\"") {
                        results += 1;
                        streaming.store(true, Ordering::Relaxed);
                        break;
                    }
                }
                Ok(Message::Close(frame)) => return (frame.map(|f| f.code), results),
                Ok(_) => {}
                Err(_) => return (None, results),
            }
        }
    }
    (None, results)
}

#[test]
fn sigterm_while_four_clients_stream_closes_them_with_1001_and_exits_0_within_2_s() {
    let record = crate::common::temp_dir("lifecycle").join("record");
    let mut serve =
        crate::common::start_serve(&["--threads", "2", "--record", record.to_str().unwrap()]);
    let addr = serve.addr.clone();
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_owned()));
    let frames = Arc::new(mjpeg_frames("carphone_640.mjpeg"));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addr, frames) = (addr.clone(), Arc::clone(&frames));
            let streaming = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&streaming);
            let thread = std::thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || stream_until_closed(&addr, &frames, &flag))
                .unwrap();
            (thread, streaming)
        })
        .collect();
    let deadline = Instant::now() + READ_TIMEOUT;
    while !clients.iter().all(|(_, s)| s.load(Ordering::Relaxed)) {
        assert!(Instant::now() < deadline, "not every client got a result");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed();
    println!("SIGTERM → exit: {took:?}, status {status}");
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    for (thread, _) in clients {
        let (code, results) = thread.join().unwrap();
        assert_eq!(
            code,
            Some(CloseCode::Away),
            "close code after {results} results"
        );
        assert!(results > 0);
    }
    // Each client's session was completed on the way out.
    let sessions: Vec<_> = std::fs::read_dir(&record)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sessions.len(), CLIENTS);
    for dir in sessions {
        let session = livepose::session::RecordedSession::open(&dir).unwrap();
        let info = session.info.unwrap();
        assert!(info.complete, "{}: not completed", dir.display());
        assert_eq!(info.frames as usize, session.frames.len());
        assert!(session.warnings.is_empty(), "{:?}", session.warnings);
    }
    let _ = std::fs::remove_dir_all(&record);
}

#[test]
fn metrics_pass_promtool_and_count_what_happened() {
    let mut serve = crate::common::start_serve(&["--threads", "2"]);
    let addr = serve.addr.clone();
    let frames = mjpeg_frames("carphone_640.mjpeg");
    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    let mut results = 0;
    for (seq, jpeg) in frames.iter().take(5).enumerate() {
        ws.send(Message::binary(binary_from_frame(
            seq as u64,
            seq as f64 * 33.3,
            jpeg,
        )))
        .unwrap();
        loop {
            if let Message::Text(text) = ws.read().unwrap()
                && text.as_str().contains("\"pose_result\"")
            {
                results += 1;
                break;
            }
        }
    }
    // One frame that is not an image: rejected as bad_image once inference tries to decode it.
    ws.send(Message::binary(binary_from_frame(
        5,
        5.0 * 33.3,
        b"\xff\xd8 not a jpeg",
    )))
    .unwrap();
    loop {
        if let Message::Text(text) = ws.read().unwrap()
            && text.as_str().contains("\"error\"")
        {
            break;
        }
    }
    let (status, body) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    println!("{body}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/setup.sh installs Debian's prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let value = |name: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    // The bad frame is refused from its header, before inference: 5 received, 1 rejected.
    assert_eq!(value("livepose_frames_received_total"), 5.0);
    assert_eq!(value("livepose_results_total"), f64::from(results));
    assert_eq!(
        value("livepose_frames_rejected_total{reason=\"bad_image\"}"),
        1.0
    );
    assert_eq!(
        value("livepose_inference_seconds_count"),
        f64::from(results)
    );
    assert_eq!(
        value("livepose_round_trip_seconds_count"),
        f64::from(results)
    );
    assert_eq!(value("livepose_clients"), 1.0);
    assert_eq!(value("livepose_workers"), 2.0);
    assert_eq!(value("livepose_engine_reloads_total"), 0.0);
    drop(ws);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status();
    assert!(serve.child.wait().unwrap().success());
}

#[test]
fn a_draining_server_answers_503_and_refuses_new_websockets() {
    let service = livepose::service::Service::start(livepose::service::ServiceConfig::new(
        livepose::vision::EngineConfig::default(),
        1,
        1,
    ))
    .unwrap();
    let server = livepose::server::Server::start(
        livepose::server::ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        Arc::new(service),
    )
    .unwrap();
    let addr = server.local_addr().to_string();
    assert_eq!(get(&addr, "/healthz").0, 200);
    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    let _hello = ws.read().unwrap();
    let client = std::thread::Builder::new()
        .name("draining-client".into())
        .spawn(move || {
            loop {
                match ws.read() {
                    Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .unwrap();
    assert!(
        server.drain(Duration::from_secs(2)),
        "the client's connection closed in time"
    );
    assert_eq!(client.join().unwrap(), Some(CloseCode::Away));
    assert_eq!(get(&addr, "/healthz"), (503, "draining\n".to_owned()));
    let stream = TcpStream::connect(&addr).unwrap();
    let refused = tungstenite::client(format!("ws://{addr}/ws"), stream);
    match refused {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("a new WebSocket while draining: {:?}", other.map(|_| ())),
    }
}

/// Before the models are loaded (`serve` binds first), every request — `/healthz` included — gets
/// `503 starting`; once ready, the same listener goes to the server.
#[test]
fn a_starting_server_answers_503_starting_then_serves_on_the_same_port() {
    let config = livepose::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let listener = livepose::server::Server::bind(&config).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let ready = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ready);
    let answering = std::thread::Builder::new()
        .name("starting".into())
        .spawn(move || livepose::server::answer_starting(listener, &flag).unwrap())
        .unwrap();
    assert_eq!(get(&addr, "/healthz"), (503, "starting\n".to_owned()));
    assert_eq!(get(&addr, "/").0, 503);
    ready.store(true, Ordering::Relaxed);
    let listener = answering.join().unwrap();
    let service = livepose::service::Service::start(livepose::service::ServiceConfig::new(
        livepose::vision::EngineConfig::default(),
        1,
        1,
    ))
    .unwrap();
    let _server = livepose::server::Server::start_on(listener, config, Arc::new(service)).unwrap();
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_owned()));
}
