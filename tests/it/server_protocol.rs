//! The WebSocket protocol over loopback (port 0), with the real engine: results for good frames, an
//! `error` for every kind of bad input with the connection and server staying up, the limits, the
//! Origin check, concurrent clients, and a client that never reads.
//!
//! Landmark checks compare with the MediaPipe 0.10.21 static references of `carphone_640` (the server
//! runs in static mode with the legacy refinement kernel, as `tests/it/golden_clips.rs`), tolerance 0.1 px:
//! the frames travel unchanged, so only the engine's own 0.007 px difference remains.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{fixture, mjpeg_frames, pose_json_error, read_jsonl};
use livepose::server::wire::binary_from_frame;
use livepose::server::{Limits, Server, ServerConfig};
use livepose::vision::{EngineConfig, TrackerConfig};
use serde_json::Value;
use tungstenite::client::IntoClientRequest as _;
use tungstenite::{Message, WebSocket};

/// No single read may take longer (a watchdog: a hung server fails the test instead of hanging it).
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The engine of the references: legacy refinement kernel 9.
fn legacy() -> EngineConfig {
    EngineConfig {
        refine_kernel: 9,
        ..Default::default()
    }
}

/// A server over its own service (`crate::common::start_server`).
fn start(adjust: impl FnOnce(&mut ServerConfig)) -> Server {
    crate::common::start_server(adjust)
}

type Ws = WebSocket<TcpStream>;

fn try_connect(server: &Server, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let addr = server.local_addr();
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("blocking handshake interrupted")
        }
    }
}

/// Connects and reads the `hello`.
fn connect(server: &Server) -> (Ws, Value) {
    let mut ws = try_connect(server, None).unwrap();
    let hello = next_json(&mut ws);
    assert_eq!(hello["type"], "hello");
    (ws, hello)
}

fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("a message before the watchdog") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("connection closed: {frame:?}"),
            _ => {}
        }
    }
}

fn send_frame(ws: &mut Ws, sequence: u64, timestamp_ms: f64, image: &[u8]) {
    ws.send(Message::binary(binary_from_frame(
        sequence,
        timestamp_ms,
        image,
    )))
    .unwrap();
}

/// Reads until a `pose_result` for `sequence` (errors before it are returned too).
fn result_for(ws: &mut Ws, sequence: u64) -> (Value, Vec<Value>) {
    let mut errors = Vec::new();
    loop {
        let message = next_json(ws);
        match message["type"].as_str() {
            Some("pose_result") if message["sequence"] == sequence => return (message, errors),
            Some("pose_result") => {}
            Some("error") => errors.push(message),
            other => panic!("unexpected message type {other:?}"),
        }
    }
}

/// Reads until an `error` arrives; returns it.
fn next_error(ws: &mut Ws) -> Value {
    loop {
        let message = next_json(ws);
        if message["type"] == "error" {
            return message;
        }
    }
}

fn carphone() -> (Vec<Vec<u8>>, Vec<Value>) {
    (
        mjpeg_frames("carphone_640.mjpeg"),
        read_jsonl("carphone_640.static.ref.jsonl"),
    )
}

#[test]
fn binary_and_prototype_json_frames_get_faithful_results() {
    let server = start(|_| {});
    let (frames, refs) = carphone();
    let (mut ws, hello) = connect(&server);
    assert_eq!(hello["protocol"], 1);
    assert_eq!(
        hello["limits"]["max_message_bytes"],
        Limits::default().max_message_bytes
    );

    for (k, seq) in [(0_usize, 1_u64), (40, 2), (80, 3)] {
        send_frame(&mut ws, seq, seq as f64 * 33.3, &frames[k]);
        let (result, errors) = result_for(&mut ws, seq);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            (result["width"].as_u64(), result["height"].as_u64()),
            (Some(640), Some(480))
        );
        // (serde_json's default float parsing may differ in the last bit.)
        assert!((result["timestamp"].as_f64().unwrap() - seq as f64 * 33.3).abs() < 1e-9);
        let error = pose_json_error(&result["pose"], &refs[k]["pose"]);
        assert!(error < 0.1, "frame {k}: {error} px from MediaPipe");
        assert!(result["angles"]["left_elbow"]["radians"].is_number());
        assert!(result["timings_ms"]["total"].as_f64().unwrap() > 0.0);
        let server_times = &result["server"];
        assert!(server_times["sent_ms"].as_f64() >= server_times["received_ms"].as_f64());
    }

    // The prototype's message, unchanged.
    let image = format!(
        "data:image/jpeg;base64,{}",
        data_encoding::BASE64.encode(&frames[100])
    );
    let text =
        serde_json::json!({"type": "frame", "image": image, "timestamp": 9999.0, "sequence": 4});
    ws.send(Message::text(text.to_string())).unwrap();
    let (result, _) = result_for(&mut ws, 4);
    let error = pose_json_error(&result["pose"], &refs[100]["pose"]);
    assert!(error < 0.1, "JSON frame: {error} px from MediaPipe");
}

#[test]
fn bad_input_gets_an_error_and_the_connection_stays_up() {
    let server = start(|c| c.limits.max_message_bytes = 256 * 1024);
    let (frames, refs) = carphone();
    let (mut ws, _) = connect(&server);
    let jpeg = &frames[0];
    let mut seq = 0_u64;
    let mut next = || {
        seq += 1;
        seq
    };

    let expect = |ws: &mut Ws, message: Message, code: &str| {
        ws.send(message).unwrap();
        let error = next_error(ws);
        assert_eq!(error["code"], code, "{error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    };
    // Non-image bytes behind a valid header.
    let s = next();
    expect(
        &mut ws,
        Message::binary(binary_from_frame(s, s as f64, b"definitely not a picture")),
        "bad_image",
    );
    // A header too short, a wrong magic.
    expect(&mut ws, Message::binary(vec![1_u8, 2, 3]), "bad_message");
    expect(
        &mut ws,
        Message::binary(b"XX\x01\x01aaaaaaaaaaaaaaaaaaaa".to_vec()),
        "bad_message",
    );
    // Malformed JSON, a JSON message of an unknown type, a frame with a non-numeric timestamp.
    expect(
        &mut ws,
        Message::text("{\"type\": \"frame\", "),
        "bad_message",
    );
    expect(
        &mut ws,
        Message::text(r#"{"type":"subscribe"}"#),
        "unknown_type",
    );
    expect(
        &mut ws,
        Message::text(r#"{"type":"frame","image":"","timestamp":"now","sequence":1}"#),
        "bad_message",
    );
    // A truncated JPEG: the header is fine, decoding fails (reported with the frame's sequence).
    let s = next();
    ws.send(Message::binary(binary_from_frame(
        s,
        s as f64,
        &jpeg[..jpeg.len() / 3],
    )))
    .unwrap();
    let error = next_error(&mut ws);
    assert_eq!(error["code"], "bad_image", "{error}");
    assert_eq!(error["sequence"], s);
    // Oversized: above the configured 256 KiB limit, read and refused, the connection stays.
    let s = next();
    let mut big = jpeg.clone();
    big.resize(300 * 1024, 0);
    expect(
        &mut ws,
        Message::binary(binary_from_frame(s, s as f64, &big)),
        "message_too_large",
    );
    // A decompression bomb: a JPEG whose header claims 60000×60000, refused before decoding.
    let s = next();
    expect(
        &mut ws,
        Message::binary(binary_from_frame(
            s,
            s as f64,
            &with_jpeg_size(jpeg, 60000, 60000),
        )),
        "image_too_large",
    );

    // A good frame still works, then sequence and timestamp going backwards are refused.
    let good = next();
    send_frame(&mut ws, good, 1000.0, jpeg);
    let (result, _) = result_for(&mut ws, good);
    assert!(pose_json_error(&result["pose"], &refs[0]["pose"]) < 0.1);
    expect(
        &mut ws,
        Message::binary(binary_from_frame(good, 2000.0, jpeg)),
        "sequence_backwards",
    );
    expect(
        &mut ws,
        Message::binary(binary_from_frame(good + 1, 1000.0, jpeg)),
        "timestamp_backwards",
    );
    send_frame(&mut ws, good + 2, 1033.0, &frames[1]);
    let (result, _) = result_for(&mut ws, good + 2);
    assert!(pose_json_error(&result["pose"], &refs[1]["pose"]) < 0.1);
    assert!(result["counters"]["rejected"].as_u64().unwrap() >= 11);

    // Beyond the hard limit (4× the configured size) the connection is closed with 1009; the server stays.
    let mut huge = jpeg.clone();
    huge.resize(1100 * 1024, 0);
    let _ = ws.send(Message::binary(binary_from_frame(good + 3, 2000.0, &huge)));
    let closed = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    assert_eq!(
        closed,
        Some(1009),
        "the close code must be 1009 (message too big)"
    );
    let (mut again, _) = connect(&server);
    send_frame(&mut again, 1, 1.0, jpeg);
    result_for(&mut again, 1);
}

/// Rewrites the size in a baseline JPEG's SOF0 segment.
fn with_jpeg_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let sof = out
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG");
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

#[test]
fn image_size_and_frame_rate_limits_are_enforced() {
    let server = start(|c| {
        c.limits.max_width = 320;
        c.limits.max_height = 240;
        c.limits.max_fps = 5.0;
    });
    let (frames, _) = carphone();
    let small = std::fs::read(fixture("messi5.jpg")).unwrap(); // 548×342: too large here
    let (mut ws, hello) = connect(&server);
    assert_eq!(hello["limits"]["max_fps"], 5.0);
    send_frame(&mut ws, 1, 1.0, &small);
    assert_eq!(next_error(&mut ws)["code"], "image_too_large");
    send_frame(&mut ws, 2, 2.0, &frames[0]);
    assert_eq!(next_error(&mut ws)["code"], "image_too_large");

    let server = start(|c| c.limits.max_fps = 5.0);
    let (mut ws, _) = connect(&server);
    // 20 frames at once: a one-second burst (5) passes, the rest are refused with (one) rate_limited.
    for seq in 1..=20_u64 {
        send_frame(&mut ws, seq, seq as f64, &frames[seq as usize]);
    }
    let error = next_error(&mut ws);
    assert_eq!(error["code"], "rate_limited");
    std::thread::sleep(Duration::from_millis(1500));
    send_frame(&mut ws, 21, 21.0, &frames[21]);
    let (result, _) = result_for(&mut ws, 21);
    let counters = &result["counters"];
    // Five in the burst (one more for every 200 ms the 20 sends took: allow two on a loaded machine),
    // then frame 21 after the pause.
    let received = counters["received"].as_u64().unwrap();
    assert!((6..=8).contains(&received), "{counters}");
    assert_eq!(
        counters["rejected"].as_u64(),
        Some(21 - received),
        "{counters}"
    );
}

#[test]
fn the_origin_is_checked() {
    let server = start(|c| c.allowed_origins = vec!["https://trusted.example".into()]);
    let port = server.local_addr().port();
    let refused = try_connect(&server, Some("http://evil.example")).err();
    match refused {
        Some(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // The server's own page (by any loopback name), an allowed origin, and non-browser clients.
    for origin in [
        Some(format!("http://127.0.0.1:{port}")),
        Some(format!("http://localhost:{port}")),
        Some("https://trusted.example".to_owned()),
        None,
    ] {
        let mut ws = try_connect(&server, origin.as_deref()).unwrap();
        assert_eq!(next_json(&mut ws)["type"], "hello");
    }
    // Another port of localhost is another origin.
    assert!(try_connect(&server, Some(&format!("http://127.0.0.1:{}", port + 1))).is_err());
    // Listening on a non-loopback address needs the explicit flag.
    let refused = Server::start(
        ServerConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            ..ServerConfig::default()
        },
        std::sync::Arc::clone(server.service()),
    );
    assert!(matches!(
        refused,
        Err(livepose::server::ServerError::RemoteNotAllowed(_))
    ));
}

#[test]
fn the_page_is_served_over_http() {
    use std::io::{Read as _, Write as _};
    let server = start(|_| {});
    let get = |path: &str| {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let page = get("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("client.js"));
    assert!(get("/client.js").contains("requestAnimationFrame"));
    assert!(get("/nope").starts_with("HTTP/1.1 404"));
}

#[test]
fn concurrent_clients_each_get_their_own_results_and_too_many_are_refused() {
    let server = start(|c| {
        c.limits.max_clients = 3;
        c.tracker = TrackerConfig::VIDEO;
    });
    let (frames, _) = carphone();
    let photo = std::fs::read(fixture("messi5.jpg")).unwrap();
    let mut clients: Vec<Ws> = (0..3).map(|_| connect(&server).0).collect();
    // A fourth is told why and closed.
    let mut fourth = try_connect(&server, None).unwrap();
    let refusal = next_json(&mut fourth);
    assert_eq!(refusal["code"], "too_many_clients");

    // Clients 0 and 1 stream the clip, client 2 the photo, interleaved; each result matches its sender.
    let started = Instant::now();
    for seq in 1..=15_u64 {
        for (c, ws) in clients.iter_mut().enumerate() {
            let image = if c == 2 {
                &photo
            } else {
                &frames[seq as usize]
            };
            send_frame(ws, seq, seq as f64 * 33.3, image);
        }
        std::thread::sleep(Duration::from_millis(33));
    }
    for (c, ws) in clients.iter_mut().enumerate() {
        let (result, errors) = result_for(ws, 15);
        assert!(errors.is_empty(), "client {c}: {errors:?}");
        let expected = if c == 2 { (548, 342) } else { (640, 480) };
        assert_eq!(
            (
                result["width"].as_u64().unwrap(),
                result["height"].as_u64().unwrap()
            ),
            expected
        );
        assert!(result["pose"].is_object(), "client {c} has a pose");
    }
    let stats = server.stats();
    assert_eq!(stats.clients.len(), 3);
    // Fair share: every client had frames processed.
    assert!(
        stats.clients.iter().all(|c| c.processed >= 2),
        "{:?}",
        stats.clients
    );
    assert!(started.elapsed() < READ_TIMEOUT);
}

/// A WebSocket client whose socket has a 4 KiB receive buffer, so a client that does not read backs the
/// server up after a few results instead of after megabytes.
fn connect_with_small_receive_buffer(server: &Server) -> Ws {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    sockopt::set_socket_recv_buffer_size(&fd, 4096).unwrap();
    rustix::net::connect(&fd, &server.local_addr()).unwrap();
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://{}/ws", server.local_addr()), stream).unwrap();
    ws
}

#[test]
fn a_client_that_never_reads_holds_one_result_and_is_closed_after_10_s() {
    // The default stall timeout (10 s), as documented.
    let server = start(|c| c.tracker = TrackerConfig::VIDEO);
    assert_eq!(
        ServerConfig::default().stall_timeout,
        Duration::from_secs(10)
    );
    let (frames, _) = carphone();
    let mut silent = connect_with_small_receive_buffer(&server);
    let started = Instant::now();
    let silent_id = loop {
        if let Some(c) = server.stats().clients.first() {
            break c.id;
        }
        assert!(
            started.elapsed() < READ_TIMEOUT,
            "the client never registered"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    // The silent client streams at 30 frames/s and never reads a byte.
    let flood = std::thread::Builder::new()
        .name("test-silent-client".into())
        .spawn(move || {
            for seq in 1..=600_u64 {
                let frame = &frames[(seq as usize) % frames.len()];
                let sent = silent.send(Message::binary(binary_from_frame(
                    seq,
                    seq as f64 * 33.3,
                    frame,
                )));
                if sent.is_err() {
                    break; // closed by the server
                }
                std::thread::sleep(Duration::from_millis(33));
            }
            silent
        })
        .unwrap();
    // Meanwhile a client that reads gets every result, in time.
    let (frames, _) = carphone();
    let (mut reader, _) = connect(&server);
    for seq in 1..=20_u64 {
        let k = seq as usize * 5;
        send_frame(&mut reader, seq, seq as f64 * 33.3, &frames[k]);
        let (result, errors) = result_for(&mut reader, seq);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(result["pose"].is_object());
    }
    // While it is connected, the server holds at most one result for it (newer ones replace it).
    let mut closed_after = None;
    let mut max_pending = 0;
    let mut skipped = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let stats = server.stats();
        match stats.clients.iter().find(|c| c.id == silent_id) {
            Some(c) => {
                if std::env::var_os("LIVEPOSE_TEST_VERBOSE").is_some() {
                    eprintln!("{:?}: {c:?}", started.elapsed());
                }
                max_pending = max_pending.max(c.results_pending);
                skipped = c.results_skipped;
            }
            None => {
                closed_after = Some(started.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        max_pending <= 1,
        "{max_pending} results held for a client that does not read"
    );
    assert!(
        skipped > 0,
        "no result was ever replaced: the client was never backed up"
    );
    let closed_after = closed_after.expect("the silent client was never closed");
    // Closed 10 s after the backlog began; the backlog begins within a second or two of the start.
    assert!(
        closed_after >= Duration::from_secs(10) && closed_after <= Duration::from_secs(14),
        "closed after {closed_after:?}"
    );
    drop(flood.join().unwrap());
    // The reader is still served.
    send_frame(&mut reader, 21, 21.0 * 33.3, &carphone().0[0]);
    result_for(&mut reader, 21);
}

#[test]
fn model_hands_and_smoothing_change_while_serving() {
    let server = start(|_| {});
    let photo = std::fs::read(fixture("messi5.jpg")).unwrap();
    let reference: Value =
        serde_json::from_slice(&std::fs::read(fixture("messi5.ref.json")).unwrap()).unwrap();
    let (mut ws, hello) = connect(&server);
    assert_eq!(
        (&hello["model"], &hello["hands"]),
        (&"full".into(), &true.into())
    );
    send_frame(&mut ws, 1, 1.0, &photo);
    let (full, _) = result_for(&mut ws, 1);
    assert_eq!(full["model"], "full");
    assert!(pose_json_error(&full["pose"], &reference["pose"]) < 0.1);
    assert_eq!(full["hands"].as_array().unwrap().len(), 1);

    // Lite without hands, from the next frame on, on the same connection.
    let lite = EngineConfig {
        pose_model: livepose::vision::PoseModel::Lite,
        hands: false,
        ..legacy()
    };
    server.service().reconfigure(lite.clone());
    send_frame(&mut ws, 2, 2.0, &photo);
    let (result, _) = result_for(&mut ws, 2);
    assert_eq!(result["model"], "lite");
    assert!(pose_json_error(&result["pose"], &reference["pose_lite"]) < 0.1);
    assert!(result["hands"].as_array().unwrap().is_empty());
    assert_eq!(connect(&server).1["model"], "lite");

    // Models that cannot be loaded: the error is reported, the server keeps serving with what it had.
    server.service().reconfigure(EngineConfig {
        models_dir: "/nonexistent/models".into(),
        ..lite
    });
    send_frame(&mut ws, 3, 3.0, &photo);
    let (result, errors) = result_for(&mut ws, 3);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(result["model"], "lite");
    let error = server
        .service()
        .stats()
        .reconfigure_error
        .expect("the failure is reported");
    assert!(error.contains("/nonexistent/models"), "{error}");
}

#[test]
fn idle_connections_hold_no_thread_and_time_out() {
    use std::io::Read as _;
    let server = start(|c| c.limits.max_clients = 1);
    // 200 connections that never send a request head. Before the accept path read heads in one poll,
    // each held a thread and every new client got 503 for up to 5 s.
    let opened = Instant::now();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (mut ws, _) = connect(&server);
    let (frames, _) = carphone();
    send_frame(&mut ws, 1, 1.0, &frames[0]);
    result_for(&mut ws, 1);
    // Each gets 408: after 1 s while more than 64 are pending, after 5 s for the last 64.
    let mut answered_s = Vec::new();
    for mut stream in idle {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
        answered_s.push(opened.elapsed().as_secs_f64());
    }
    let last = answered_s.iter().copied().fold(0.0, f64::max);
    assert!(
        last < 7.0,
        "idle connections were answered after {last:.1} s"
    );
}

/// Slowloris: 500 connections each send a request head one byte at a time (and connect again when the
/// server gives up on them). Meanwhile real clients connect, one every 100 ms: each WebSocket handshake
/// and `hello` must take under 1 s (the issue's bound), and the page loads.
#[test]
fn slow_heads_do_not_lock_out_real_clients() {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const SLOW: usize = 500;
    let server = start(|_| {});
    let addr = server.local_addr();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let reconnects = std::sync::Arc::new(AtomicU64::new(0));
    let trickler = {
        let (stop, reconnects) = (stop.clone(), reconnects.clone());
        std::thread::Builder::new()
            .name("slowloris".into())
            .spawn(move || {
                let head =
                    format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: slowloris\r\n\r\n");
                let open = || {
                    let s = TcpStream::connect(addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    (s, 0_usize)
                };
                let mut conns: Vec<(TcpStream, usize)> = (0..SLOW).map(|_| open()).collect();
                while !stop.load(Ordering::Relaxed) {
                    for conn in conns.iter_mut() {
                        // One byte per connection per round; never the last one of the head.
                        let byte = head.as_bytes()[conn.1 % (head.len() - 1)];
                        if conn.0.write_all(&[byte]).is_err() {
                            *conn = open();
                            reconnects.fetch_add(1, Ordering::Relaxed);
                        } else {
                            conn.1 += 1;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(1500));
    let mut times_ms = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let (ws, hello) = connect(&server);
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(hello["type"], "hello");
        drop(ws);
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = Instant::now();
    let mut page = TcpStream::connect(addr).unwrap();
    page.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    page.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    page.read_to_string(&mut response).unwrap();
    let page_ms = started.elapsed().as_secs_f64() * 1e3;
    stop.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.80}");
    times_ms.sort_by(f64::total_cmp);
    println!(
        "with {SLOW} slow heads ({} reconnects): WebSocket connect + hello p50 {:.1} ms, max {:.1} ms; \
         page {page_ms:.1} ms",
        reconnects.load(Ordering::Relaxed),
        times_ms[times_ms.len() / 2],
        times_ms[times_ms.len() - 1]
    );
    assert!(
        times_ms[times_ms.len() - 1] < 1000.0 && page_ms < 1000.0,
        "a real client waited {:.0} ms (page {page_ms:.0} ms)",
        times_ms[times_ms.len() - 1]
    );
}
