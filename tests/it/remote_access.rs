//! Another device's view of the server: HTTPS and WSS with the self-signed certificate (a rustls client
//! that trusts only that certificate, as a phone does once its user accepts it), plain HTTP on the TLS
//! port, certificate configurations that must fail at start with a clear error, and the pairing token
//! for clients that are not on loopback (the machine's own non-loopback address stands in for another
//! device: the server sees that address as the peer).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livepose::server::tls::{self, TlsSetup};
use livepose::server::wire::binary_from_frame;
use livepose::server::{Server, ServerConfig};
use serde_json::Value;
use tungstenite::Message;

const READ_TIMEOUT: Duration = Duration::from_secs(20);

fn start(adjust: impl FnOnce(&mut ServerConfig)) -> Server {
    crate::common::start_server(adjust)
}

fn self_signed(dir: &std::path::Path) -> TlsSetup {
    tls::self_signed(dir, &["localhost".into(), "127.0.0.1".into()]).unwrap()
}

/// A rustls client that trusts exactly the server's certificate.
fn client_config(setup: &TlsSetup) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let pem = std::fs::read(&setup.info.cert_path).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn read_all(stream: &mut impl std::io::Read) -> String {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn https_get(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, path: &str) -> String {
    let mut stream = tls_connect(addr, config);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_all(&mut stream)
}

fn next_json<S: std::io::Read + std::io::Write>(ws: &mut tungstenite::WebSocket<S>) -> Value {
    loop {
        match ws.read().expect("a message before the watchdog") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// Streams `frames` one at a time (each after the previous result); the results and round trips (ms).
fn stream_frames<S: std::io::Read + std::io::Write>(
    ws: &mut tungstenite::WebSocket<S>,
    frames: &[Vec<u8>],
) -> (Vec<Value>, Vec<f64>) {
    let (mut results, mut rtts) = (Vec::new(), Vec::new());
    for (k, frame) in frames.iter().enumerate() {
        let seq = k as u64 + 1;
        let sent = Instant::now();
        ws.send(Message::binary(binary_from_frame(
            seq,
            seq as f64 * 33.3,
            frame,
        )))
        .unwrap();
        loop {
            let message = next_json(ws);
            if message["type"] == "pose_result" && message["sequence"] == seq {
                rtts.push(sent.elapsed().as_secs_f64() * 1e3);
                results.push(message);
                break;
            }
            assert_ne!(message["type"], "error", "{message}");
        }
    }
    (results, rtts)
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

#[test]
fn https_and_wss_serve_the_page_and_the_same_results() {
    let dir = crate::common::temp_dir("tls");
    let setup = self_signed(&dir);
    assert!(setup.info.generated && setup.info.self_signed);
    assert!(
        setup.info.names.contains(&"127.0.0.1".to_owned()),
        "{:?}",
        setup.info.names
    );
    assert_eq!(setup.info.fingerprint_sha256.len(), 32 * 3 - 1);
    // The key is the user's only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second start keeps the same certificate.
    let again = self_signed(&dir);
    assert!(!again.info.generated);
    assert_eq!(again.info.fingerprint_sha256, setup.info.fingerprint_sha256);

    let client = client_config(&setup);
    let secure = start(|c| c.tls = Some(setup.clone()));
    let plain = start(|_| {});
    assert!(secure.url().starts_with("https://"), "{}", secure.url());

    let page = https_get(secure.local_addr(), &client, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.200}");
    assert!(page.contains("<title>livepose"), "the page over HTTPS");
    let health = https_get(secure.local_addr(), &client, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health:.200}");

    // The same 40 frames over WSS and over plain WebSocket, in the same run.
    let frames: Vec<Vec<u8>> = crate::common::mjpeg_frames("carphone_640.mjpeg")
        .into_iter()
        .take(40)
        .collect();
    let addr = secure.local_addr();
    let (mut wss, _) =
        tungstenite::client(format!("wss://{addr}/ws"), tls_connect(addr, &client)).unwrap();
    assert_eq!(next_json(&mut wss)["type"], "hello");
    let (secure_results, secure_rtts) = stream_frames(&mut wss, &frames);
    let addr = plain.local_addr();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), tcp).unwrap();
    assert_eq!(next_json(&mut ws)["type"], "hello");
    let (plain_results, plain_rtts) = stream_frames(&mut ws, &frames);
    for (a, b) in secure_results.iter().zip(&plain_results) {
        assert_eq!(
            a["pose"], b["pose"],
            "frame {}: same landmarks over WSS",
            a["sequence"]
        );
        assert_eq!(a["hands"], b["hands"]);
    }
    let ((s50, s95), (p50, p95)) = (percentiles(secure_rtts), percentiles(plain_rtts));
    println!(
        "round trip over 40 frames, one at a time: WSS p50 {s50:.1} ms p95 {s95:.1} ms; plain WebSocket \
         p50 {p50:.1} ms p95 {p95:.1} ms"
    );
}

#[test]
fn plain_http_to_the_tls_port_gets_a_redirect() {
    let dir = crate::common::temp_dir("tls-plain");
    let secure = start(|c| c.tls = Some(self_signed(&dir)));
    let addr = secure.local_addr();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(tcp, "GET /?x=1 HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 301"), "{response}");
    assert!(
        response.contains(&format!("Location: https://{addr}/?x=1\r\n")),
        "{response}"
    );
    assert!(response.contains("this port speaks HTTPS"));
}

#[test]
fn bad_certificate_configurations_are_clear_errors_at_start() {
    let dir = crate::common::temp_dir("tls-bad");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // An expired certificate (made here with rcgen: valid 2020-01-01 to 2021-01-01) and its key.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = write("expired.pem", &params.self_signed(&key).unwrap().pem());
    let key_path = write("key.pem", &key.serialize_pem());
    let other_key = write(
        "other-key.pem",
        &rcgen::KeyPair::generate().unwrap().serialize_pem(),
    );
    let good = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let good = write("good.pem", &good.pem());
    let garbage = write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");

    let message = |cert: &std::path::Path, key: &std::path::Path| match tls::load(cert, key) {
        Ok(_) => panic!("{} with {} loaded", cert.display(), key.display()),
        Err(e) => e.to_string(),
    };
    let m = message(&expired, &key_path);
    assert!(m.contains("expired on") && m.contains("2021"), "{m}");
    let m = message(&good, &other_key);
    assert!(m.contains("does not belong to the certificate"), "{m}");
    let m = message(&garbage, &key_path);
    assert!(m.contains("no PEM certificate"), "{m}");
    let m = message(&dir.join("missing.pem"), &key_path);
    assert!(
        m.contains("cannot read") && m.contains("missing.pem"),
        "{m}"
    );
    tls::load(&good, &key_path).expect("the good pair loads");

    // The same through the command line: exit status 1 and the message, no panic.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_livepose"))
        .args(["serve", "--listen", "127.0.0.1:0", "--cert"])
        .arg(&expired)
        .arg("--key")
        .arg(&key_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("expired on") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// This machine's first non-loopback IPv4 address, which stands in for another device.
fn lan_address() -> Option<IpAddr> {
    tls::interface_addresses()
        .into_iter()
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

fn raw_get(addr: SocketAddr, head: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response);
    response
}

#[test]
fn off_loopback_every_request_needs_the_pairing_token() {
    let Some(lan) = lan_address() else {
        eprintln!(
            "SKIPPED off_loopback_every_request_needs_the_pairing_token: this machine has no \
             non-loopback IPv4 address to stand in for another device"
        );
        return;
    };
    let token = livepose::server::pairing::generate_token().unwrap();
    let server = start(|c| {
        c.listen = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0);
        c.token = Some(token.clone());
    });
    let addr = SocketAddr::new(lan, server.local_addr().port());
    assert!(
        server
            .remote_urls()
            .iter()
            .any(|u| u.contains(&format!("{lan}:")) && u.ends_with(&format!("/?token={token}"))),
        "{:?}",
        server.remote_urls()
    );
    let host = format!("Host: {addr}\r\n");
    // No token: 401 for the page, its script, the health check and the WebSocket upgrade.
    for path in ["/", "/client.js", "/healthz", "/metrics"] {
        let r = raw_get(addr, &format!("GET {path} HTTP/1.1\r\n{host}\r\n"));
        assert!(r.starts_with("HTTP/1.1 401"), "{path}: {r}");
    }
    let upgrade = format!(
        "GET /ws HTTP/1.1\r\n{host}Connection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let r = raw_get(addr, &upgrade);
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    assert_eq!(server.stats().frames_received, 0, "nothing was processed");

    // The page with the token in its query: 200 and the cookie; the cookie alone then opens the script
    // and the WebSocket.
    let r = raw_get(addr, &format!("GET /?token={token} HTTP/1.1\r\n{host}\r\n"));
    assert!(r.starts_with("HTTP/1.1 200"), "{r:.300}");
    let cookie_line = r
        .lines()
        .find(|l| l.starts_with("Set-Cookie: "))
        .expect("a Set-Cookie header");
    assert!(
        cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"),
        "{cookie_line}"
    );
    let cookie = cookie_line["Set-Cookie: ".len()..]
        .split(';')
        .next()
        .unwrap();
    let r = raw_get(
        addr,
        &format!("GET /client.js HTTP/1.1\r\n{host}Cookie: {cookie}\r\n\r\n"),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r:.200}");
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/ws"))
            .unwrap();
    request
        .headers_mut()
        .insert("Cookie", cookie.parse().unwrap());
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(request, tcp).unwrap();
    assert_eq!(next_json(&mut ws)["type"], "hello");
    let frames = crate::common::mjpeg_frames("carphone_640.mjpeg");
    let (results, _) = stream_frames(&mut ws, &frames[..2]);
    assert_eq!(results.len(), 2);
    // The query string works for the WebSocket too (clients that are not browsers).
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws2, _) = tungstenite::client(format!("ws://{addr}/ws?token={token}"), tcp).unwrap();
    assert_eq!(next_json(&mut ws2)["type"], "hello");
    // Loopback keeps working without a token.
    let local = SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    let r = raw_get(local, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200"), "{r:.200}");

    // Wrong tokens: counted per address (the 5 refusals above count too), then 429 even with the right
    // one.
    let mut statuses = Vec::new();
    for _ in 0..livepose::server::pairing::MAX_FAILURES - 5 + 2 {
        let r = raw_get(addr, &format!("GET /?token=wrong HTTP/1.1\r\n{host}\r\n"));
        statuses.push(r.split_whitespace().nth(1).unwrap_or("").to_owned());
    }
    assert!(
        statuses[..statuses.len() - 2].iter().all(|s| s == "401"),
        "{statuses:?}"
    );
    assert!(
        statuses[statuses.len() - 2..].iter().all(|s| s == "429"),
        "{statuses:?}"
    );
    let r = raw_get(addr, &format!("GET /?token={token} HTTP/1.1\r\n{host}\r\n"));
    assert!(
        r.starts_with("HTTP/1.1 429") && r.contains("Retry-After: 60"),
        "{r:.200}"
    );
}
