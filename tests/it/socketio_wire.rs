//! Socket.IO on the wire, with raw requests: the handshake, errors for bad parameters and unknown
//! sessions, Origin and CORS, a second long-poll or a malformed packet ending the session, the heartbeat
//! (ping, pong, and the end of a session whose pong is late), the namespace, size limits, the client
//! limit, draining, the pairing token; and round trips over loopback, one frame at a time, the same
//! frames in the same run: livepose's WebSocket, Socket.IO on long-polling and after the upgrade, over
//! HTTP and over HTTPS. The real clients are in `super::socketio`, whose helpers this module shares.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::socketio::{
    READ_TIMEOUT, assert_engine_result, frames_dir, node_client, run_client, start,
    start_with_heartbeat,
};
use crate::common::mjpeg_frames;
use serde_json::Value;

// ---- the protocol on the wire ----

/// One HTTP/1.1 request; the status, the headers (lower-case names) and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http(addr, "GET", path, &[], b"");
    (status, String::from_utf8(body).unwrap())
}

fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body.as_bytes(),
    );
    (status, String::from_utf8(body).unwrap())
}

/// Opens a long-polling session; its sid and handshake.
fn handshake(addr: SocketAddr) -> (String, Value) {
    let (status, body) = get(addr, "/socket.io/?EIO=4&transport=polling&t=abc");
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    (open["sid"].as_str().unwrap().to_owned(), open)
}

/// A long-polling GET on its own thread (it waits until the server answers).
fn get_in_background(addr: SocketAddr, path: String) -> std::thread::JoinHandle<(u16, String)> {
    std::thread::Builder::new()
        .name("background-poll".into())
        .spawn(move || get(addr, &path))
        .unwrap()
}

fn polling(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

/// Long-polls until a packet whose text starts with `prefix` arrives (answering pings); all packets seen.
fn poll_until(addr: SocketAddr, sid: &str, prefix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    while Instant::now() < deadline {
        let (status, body) = get(addr, &polling(sid));
        assert_eq!(status, 200, "{body}");
        for packet in body.split('\x1e') {
            if packet == "2" {
                assert_eq!(post(addr, &polling(sid), "3").0, 200);
            }
            seen.push(packet.to_owned());
            if packet.starts_with(prefix) {
                return seen;
            }
        }
    }
    panic!("no packet starting with {prefix:?}; saw {seen:?}");
}

/// A long-polling session connected to the default namespace (its `40{sid}` and `hello` read).
fn connected(addr: SocketAddr) -> String {
    let (sid, _) = handshake(addr);
    assert_eq!(post(addr, &polling(&sid), "40"), (200, "ok".into()));
    let seen = poll_until(addr, &sid, "42[\"hello\"");
    assert!(
        seen.iter().any(|p| p.starts_with("40{\"sid\":")),
        "{seen:?}"
    );
    sid
}

#[test]
fn the_handshake_and_bad_requests_answer_as_engine_io_specifies() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let (sid, open) = handshake(addr);
    assert_eq!(sid.len(), 20);
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["pingTimeout"], 20000);
    assert_eq!(
        open["maxPayload"],
        livepose::server::Limits::default().max_message_bytes
    );
    for (path, code) in [
        ("/socket.io/?transport=polling", 5),
        ("/socket.io/?EIO=3&transport=polling", 5),
        ("/socket.io/?EIO=4", 0),
        ("/socket.io/?EIO=4&transport=abc", 0),
        ("/socket.io/?EIO=4&transport=polling&sid=nosuchsession", 1),
        // transport=websocket without an Upgrade header
        ("/socket.io/?EIO=4&transport=websocket", 3),
    ] {
        let (status, body) = get(addr, path);
        assert_eq!(status, 400, "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["code"], code, "{path}: {body}");
    }
    // A handshake is a GET.
    let (status, body) = post(addr, "/socket.io/?EIO=4&transport=polling", "40");
    assert_eq!((status, body.contains("\"code\":2")), (400, true));
    // A session without CONNECT holds no client; the namespace connects on "40".
    assert!(server.stats().clients.is_empty());
    let sid = connected(addr);
    let clients = server.stats().clients;
    assert_eq!(clients.len(), 1);
    assert_eq!(
        clients[0].protocol,
        Some(livepose::server::Protocol::SocketIo)
    );
    // An unknown namespace is refused, the session goes on.
    assert_eq!(post(addr, &polling(&sid), "40/admin,").0, 200);
    let seen = poll_until(addr, &sid, "44/admin,");
    assert!(
        seen.last().unwrap().contains("Invalid namespace"),
        "{seen:?}"
    );
    // An unknown event gets an `error` event.
    assert_eq!(post(addr, &polling(&sid), "42[\"hi\",1]").0, 200);
    let seen = poll_until(addr, &sid, "42[\"error\"");
    assert!(seen.last().unwrap().contains("unknown_type"), "{seen:?}");
    // The client's close ends the session and unregisters its client.
    assert_eq!(post(addr, &polling(&sid), "1"), (200, "ok".into()));
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    assert!(server.stats().clients.is_empty());
}

#[test]
fn a_frame_over_long_polling_gets_its_result_and_bad_frames_get_errors() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let frames = mjpeg_frames("carphone_640.mjpeg");
    let sid = connected(addr);
    let b64 = data_encoding::BASE64.encode(&frames[10]);
    let frame = format!(
        "42[\"frame\",{{\"image\":\"data:image/jpeg;base64,{b64}\",\"timestamp\":1000.5,\"sequence\":7}}]"
    );
    assert_eq!(post(addr, &polling(&sid), &frame), (200, "ok".into()));
    let seen = poll_until(addr, &sid, "42[\"pose_result\"");
    let event: Value =
        serde_json::from_str(seen.last().unwrap().strip_prefix("42").unwrap()).unwrap();
    assert_eq!(event[0], "pose_result");
    assert_eq!(event[1]["sequence"], 7);
    assert_eq!(event[1]["timestamp"], 1000.5);
    assert_engine_result(&event[1], 10, "long-polling frame");

    // The same frame as a binary attachment (`b` + base64 in the body), with an acknowledgement.
    let attachment = format!(
        "451-13[\"frame\",{{\"image\":{{\"_placeholder\":true,\"num\":0}},\"timestamp\":1001,\"sequence\":8}}]\x1eb{b64}"
    );
    assert_eq!(post(addr, &polling(&sid), &attachment).0, 200);
    let seen = poll_until(addr, &sid, "42[\"pose_result\"");
    let ack = seen
        .iter()
        .find(|p| p.starts_with("4313"))
        .unwrap_or_else(|| panic!("no ack: {seen:?}"));
    assert_eq!(ack, "4313[{\"accepted\":true,\"sequence\":8}]");

    // Bad frames: an error event (with an ack saying why), the session goes on.
    for (body, code) in [
        (
            "427[\"frame\",{\"image\":\"bm90IGFuIGltYWdl\",\"timestamp\":1002,\"sequence\":9}]"
                .to_owned(),
            "bad_image",
        ),
        (
            format!("42[\"frame\",{{\"image\":\"{b64}\",\"timestamp\":1003,\"sequence\":2}}]"),
            "sequence_backwards",
        ),
        (
            "42[\"frame\",{\"image\":\"AAAA\",\"sequence\":10}]".to_owned(),
            "bad_message",
        ),
    ] {
        assert_eq!(post(addr, &polling(&sid), &body).0, 200);
        let seen = poll_until(addr, &sid, "42[\"error\"");
        assert!(seen.last().unwrap().contains(code), "{code}: {seen:?}");
    }
    // A frame over the size limit: message_too_large, the session goes on.
    drop(server);
    let server = start(|c| c.limits.max_message_bytes = 64 * 1024);
    let addr = server.local_addr();
    let sid = connected(addr);
    let big = format!(
        "42[\"frame\",{{\"image\":\"{}\",\"timestamp\":1,\"sequence\":1}}]",
        "A".repeat(100 * 1024)
    );
    assert_eq!(post(addr, &polling(&sid), &big).0, 200);
    let seen = poll_until(addr, &sid, "42[\"error\"");
    assert!(
        seen.last().unwrap().contains("message_too_large"),
        "{seen:?}"
    );
    // A body over four times the limit is refused (413) and ends the session.
    let huge = "4".repeat(300 * 1024);
    assert_eq!(post(addr, &polling(&sid), &huge).0, 413);
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    // Attachments that add up to more than four times the limit, each in a body of its own, end it too.
    let sid = connected(addr);
    let attachment = format!("b{}", data_encoding::BASE64.encode(&vec![0_u8; 150 * 1024]));
    let header = "452-[\"frame\",{\"image\":{\"_placeholder\":true,\"num\":0},\"timestamp\":1,\"sequence\":1}]";
    assert_eq!(
        post(addr, &polling(&sid), &format!("{header}\x1e{attachment}")).0,
        200
    );
    assert_eq!(post(addr, &polling(&sid), &attachment).0, 400);
    assert_eq!(get(addr, &polling(&sid)).0, 400);
}

#[test]
fn protocol_violations_end_the_session() {
    let server = start(|_| {});
    let addr = server.local_addr();
    // A malformed Engine.IO packet.
    let (sid, _) = handshake(addr);
    assert_eq!(post(addr, &polling(&sid), "abc").0, 400);
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    // An event before CONNECT.
    let (sid, _) = handshake(addr);
    assert_eq!(post(addr, &polling(&sid), "42[\"frame\",{}]").0, 400);
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    // Two long-polling GETs at once: the first gets `close`, the second 400, and the session is gone.
    let (sid, _) = handshake(addr);
    let first = get_in_background(addr, polling(&sid));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    assert_eq!(first.join().unwrap(), (200, "1".into()));
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    assert!(server.stats().clients.is_empty());
}

#[test]
fn the_heartbeat_pings_and_a_late_pong_ends_the_session() {
    let server = start_with_heartbeat(300, 200, 2);
    let addr = server.local_addr();
    let (sid, open) = handshake(addr);
    assert_eq!(
        (&open["pingInterval"], &open["pingTimeout"]),
        (&300.into(), &200.into())
    );
    assert_eq!(post(addr, &polling(&sid), "40").0, 200);
    let _ = poll_until(addr, &sid, "42[\"hello\"");
    // Three pings, each answered: the session lives on.
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(get(addr, &polling(&sid)), (200, "2".into()));
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(post(addr, &polling(&sid), "3").0, 200);
    }
    assert_eq!(server.stats().clients.len(), 1);
    // No pong: the session ends about 300 + 200 ms later, and its client with it.
    assert_eq!(get(addr, &polling(&sid)), (200, "2".into()));
    let started = Instant::now();
    let (status, body) = get(addr, &polling(&sid));
    assert_eq!((status, body.as_str()), (200, "1"));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    assert!(server.stats().clients.is_empty());
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    // A session that never polls again is ended by the server's timer all the same.
    let sid = connected(addr);
    assert_eq!(server.stats().clients.len(), 1);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(server.stats().clients.is_empty());
    assert_eq!(get(addr, &polling(&sid)).0, 400);
    // And one that never connects its socket ends at the connect timeout.
    let (sid, _) = handshake(addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(addr, &polling(&sid));
        if status == 400 {
            break;
        }
        if body == "2" {
            assert_eq!(post(addr, &polling(&sid), "3").0, 200);
        }
        assert!(Instant::now() < deadline, "still open after 5 s");
    }
}

#[test]
fn origin_rules_and_cors_apply_to_every_request() {
    let server = start(|c| c.allowed_origins = vec!["http://localhost:3000".into()]);
    let addr = server.local_addr();
    let path = "/socket.io/?EIO=4&transport=polling";
    let (status, _, body) = http(addr, "GET", path, &[("Origin", "http://evil.example")], b"");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // The prototype's page on its own dev server: allowed with --allow-origin, and may read answers.
    let origin = [("Origin", "http://localhost:3000")];
    let (status, headers, body) = http(addr, "GET", path, &origin, b"");
    assert_eq!(status, 200);
    assert!(body.starts_with(b"0{"));
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some("http://localhost:3000")
    );
    assert_eq!(
        headers
            .get("access-control-allow-credentials")
            .map(String::as_str),
        Some("true")
    );
    let (status, headers, _) = http(
        addr,
        "OPTIONS",
        path,
        &[
            ("Origin", "http://localhost:3000"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    );
    assert_eq!(status, 204);
    assert!(headers["access-control-allow-methods"].contains("POST"));
    // The server's own page's origin is allowed as for /ws.
    let own = format!("http://127.0.0.1:{}", addr.port());
    assert_eq!(http(addr, "GET", path, &[("Origin", &own)], b"").0, 200);
}

/// A WebSocket client to `/socket.io/` (raw Engine.IO frames).
fn ws_connect(addr: SocketAddr, query: &str) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{query}");
    tungstenite::client(url, stream).unwrap().0
}

fn ws_text(ws: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => return t.as_str().to_owned(),
            tungstenite::Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// Reads until the server closes the WebSocket (a close frame, or the connection's end); a read that times
/// out fails the test.
fn wait_for_close(ws: &mut tungstenite::WebSocket<TcpStream>) {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(_)) => return,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server did not close the WebSocket within {READ_TIMEOUT:?}")
            }
            Err(_) => return,
        }
    }
}

#[test]
fn the_upgrade_from_long_polling_and_a_websocket_only_session() {
    let server = start_with_heartbeat(1000, 500, 5);
    let addr = server.local_addr();
    let frames = mjpeg_frames("carphone_640.mjpeg");
    // Upgrade: a GET waits while the probe goes over the WebSocket; it is let go with a noop.
    let sid = connected(addr);
    let waiting = get_in_background(addr, polling(&sid));
    std::thread::sleep(Duration::from_millis(50));
    let mut ws = ws_connect(addr, &format!("&sid={sid}"));
    ws.send(tungstenite::Message::text("2probe")).unwrap();
    assert_eq!(ws_text(&mut ws), "3probe");
    let (status, body) = waiting.join().unwrap();
    assert_eq!(status, 200);
    // A noop, unless a heartbeat was due first (then it is answered before the upgrade completes).
    match body.as_str() {
        "6" => {}
        "2" => assert_eq!(post(addr, &polling(&sid), "3").0, 200),
        other => panic!("the pending GET got {other:?}"),
    }
    ws.send(tungstenite::Message::text("5")).unwrap();
    // Long-polling is over for this session. A GET that overtakes the "5" finds the session still
    // upgrading and is let go at once with a noop; once the server has taken the "5", it is refused.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match get(addr, &polling(&sid)) {
            (400, _) => break,
            (200, body) if body == "6" && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => panic!("a GET after the upgrade got {other:?}"),
        }
    }
    // A frame as a binary attachment in its own WebSocket frame; the heartbeat continues on the socket.
    ws.send(tungstenite::Message::text(
        "451-[\"frame\",{\"image\":{\"_placeholder\":true,\"num\":0},\"timestamp\":5,\"sequence\":1}]",
    ))
    .unwrap();
    ws.send(tungstenite::Message::binary(frames[20].clone()))
        .unwrap();
    let mut pings = 0;
    let result = loop {
        let text = ws_text(&mut ws);
        if text == "2" {
            pings += 1;
            ws.send(tungstenite::Message::text("3")).unwrap();
        } else if let Some(event) = text.strip_prefix("42[\"pose_result\",") {
            break serde_json::from_str::<Value>(event.strip_suffix(']').unwrap()).unwrap();
        }
    };
    // The heartbeat goes on over the WebSocket: a ping at least every second. (The result is checked
    // once the session is over: checking it runs the engine, longer than the 500 ms pong timeout.)
    let started = Instant::now();
    while pings < 2 {
        let text = ws_text(&mut ws);
        if text == "2" {
            pings += 1;
            ws.send(tungstenite::Message::text("3")).unwrap();
        }
    }
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(server.stats().clients.len(), 1);
    // Not answering pings ends the session: the server closes the WebSocket.
    wait_for_close(&mut ws);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !server.stats().clients.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.stats().clients.is_empty());
    assert_engine_result(&result, 20, "attachment over the upgraded WebSocket");

    // WebSocket only (no sid): the open packet comes first, with no upgrades.
    let mut ws = ws_connect(addr, "");
    let open = ws_text(&mut ws);
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]));
    ws.send(tungstenite::Message::text("40")).unwrap();
    assert!(ws_text(&mut ws).starts_with("40{\"sid\":"));
    assert!(ws_text(&mut ws).starts_with("42[\"hello\","));
    // A malformed packet closes it.
    ws.send(tungstenite::Message::text("x")).unwrap();
    wait_for_close(&mut ws);
}

#[test]
fn the_client_limit_refuses_with_connect_error_and_draining_closes_sessions() {
    let server = start(|c| c.limits.max_clients = 1);
    let addr = server.local_addr();
    let sid = connected(addr);
    let (other, _) = handshake(addr);
    assert_eq!(post(addr, &polling(&other), "40").0, 200);
    let seen = poll_until(addr, &other, "44");
    assert!(
        seen.last().unwrap().contains("too_many_clients"),
        "{seen:?}"
    );
    // Draining: a waiting GET gets `close`, new handshakes 503, and the server's clients are gone.
    let waiting = get_in_background(addr, polling(&sid));
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.drain(Duration::from_secs(5)));
    assert_eq!(waiting.join().unwrap(), (200, "1".into()));
    assert_eq!(get(addr, "/socket.io/?EIO=4&transport=polling").0, 503);
}

#[test]
fn round_trips_of_websocket_and_socket_io_over_http_and_https() {
    let frames = 40;
    let _ = frames_dir();
    let plain = start(|_| {});
    let report = run_client(node_client("roundtrip", &plain.url(), frames), "roundtrip");
    drop(plain);
    let dir = crate::common::temp_dir("socketio-tls");
    let setup = livepose::server::tls::self_signed(&dir, &["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let cert = setup.info.cert_path.clone();
    let tls = start(|c| c.tls = Some(setup));
    let mut command = node_client("roundtrip", &tls.url(), frames);
    command.env("NODE_EXTRA_CA_CERTS", &cert);
    let tls_report = run_client(command, "roundtrip over TLS");
    for (scheme, report) in [("http", &report), ("https", &tls_report)] {
        for transport in ["websocket", "socketio_polling", "socketio_websocket"] {
            let s = &report[transport];
            assert_eq!(s["n"], frames, "{scheme} {transport}: {report}");
            eprintln!(
                "{scheme} {transport}: round trip p50 {:.1} ms, p95 {:.1} ms ({} frames one at a time)",
                s["p50_ms"].as_f64().unwrap(),
                s["p95_ms"].as_f64().unwrap(),
                s["n"]
            );
        }
    }
}

#[test]
fn another_device_needs_the_pairing_token_for_socket_io_too() {
    let Some(lan) = livepose::server::tls::interface_addresses()
        .into_iter()
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
    else {
        eprintln!(
            "SKIPPED another_device_needs_the_pairing_token_for_socket_io_too: this machine has no \
             non-loopback IPv4 address to stand in for another device"
        );
        return;
    };
    let _ = frames_dir();
    let token = livepose::server::pairing::generate_token().unwrap();
    let dir = crate::common::temp_dir("socketio-paired");
    let setup = livepose::server::tls::self_signed(&dir, &[lan.to_string()]).unwrap();
    let cert = setup.info.cert_path.clone();
    let server = start(|c| {
        c.listen = SocketAddr::new(std::net::IpAddr::from([0, 0, 0, 0]), 0);
        c.token = Some(token.clone());
        c.tls = Some(setup);
    });
    let port = server.local_addr().port();
    // Without the token: refused before anything else (the client sees the handshake fail).
    let mut command = node_client("paired", &format!("https://{lan}:{port}/"), 3);
    command.env("NODE_EXTRA_CA_CERTS", &cert);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("(HTTP 401)"), "{stderr}");
    assert!(server.stats().clients.is_empty());
    // With it in the address, as the QR code gives it: every request of the session carries it.
    let mut command = node_client("paired", &format!("https://{lan}:{port}/?token={token}"), 5);
    command.env("NODE_EXTRA_CA_CERTS", &cert);
    let report = run_client(command, "socket.io-client with the token");
    assert_eq!(report["opened_on"], "polling", "{report}");
    assert_eq!(report["n"], 5, "{report}");
}

#[test]
fn stopping_the_server_frees_its_sessions_and_their_clients() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let _sid = connected(addr);
    let (_unconnected, _) = handshake(addr);
    assert_eq!(server.stats().clients.len(), 1);
    // A connected session holds its client, which holds the server's state and its service: once the
    // server is dropped, nothing may keep them alive.
    let service = std::sync::Arc::downgrade(server.service());
    drop(server);
    assert!(
        service.upgrade().is_none(),
        "the service outlived its server"
    );
}

#[test]
fn a_probe_that_never_completes_leaves_the_session_on_long_polling() {
    let server = start_with_heartbeat(5000, 5000, 10);
    let addr = server.local_addr();
    let sid = connected(addr);
    let mut ws = ws_connect(addr, &format!("&sid={sid}"));
    ws.send(tungstenite::Message::text("2probe")).unwrap();
    assert_eq!(ws_text(&mut ws), "3probe");
    // No `5`: after the upgrade timeout (1 s here) the server closes the WebSocket ...
    let started = Instant::now();
    wait_for_close(&mut ws);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // ... and the session goes on over long-polling: a frame still gets its result.
    let frames = mjpeg_frames("carphone_640.mjpeg");
    let b64 = data_encoding::BASE64.encode(&frames[0]);
    let frame = format!("42[\"frame\",{{\"image\":\"{b64}\",\"timestamp\":1,\"sequence\":1}}]");
    assert_eq!(post(addr, &polling(&sid), &frame), (200, "ok".into()));
    let seen = poll_until(addr, &sid, "42[\"pose_result\"");
    let event: Value =
        serde_json::from_str(seen.last().unwrap().strip_prefix("42").unwrap()).unwrap();
    assert_engine_result(&event[1], 0, "long-polling after a failed upgrade");
}
