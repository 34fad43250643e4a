//! End to end from another device: Chromium in a network namespace (a second host on a veth pair)
//! opens the page over HTTPS with the pairing token and streams its fake camera (`super::browser_e2e`
//! has the page and the checks this shares).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::sync::Arc;

use super::browser_e2e::{
    Browser, PAGE_ANSWERED, errors_against_mediapipe, fake_camera, stream_from,
};
use crate::common::read_jsonl;
use livepose::server::{Server, ServerConfig};
use livepose::service::{Service, ServiceConfig};
use livepose::vision::EngineConfig;

/// Two network namespaces' worth of "another device": a namespace for Chromium and a veth pair from it
/// to this one, with addresses of their own (10.231.N.1 here, 10.231.N.2 there). Removed when dropped.
struct OtherDevice {
    namespace: String,
    server_ip: std::net::Ipv4Addr,
}

impl OtherDevice {
    fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let namespace = format!("lp{pid}");
        let (here, there) = (format!("lpv{pid}a"), format!("lpv{pid}b"));
        let n = (pid % 250) as u8;
        let server_ip = std::net::Ipv4Addr::new(10, 231, n, 1);
        let device_ip = std::net::Ipv4Addr::new(10, 231, n, 2);
        let ip = |args: &[&str]| -> Result<(), String> {
            let output = std::process::Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        };
        ip(&["netns", "add", &namespace])?;
        let device = Self {
            namespace: namespace.clone(),
            server_ip,
        };
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
        ip(&["link", "set", &there, "netns", &namespace])?;
        ip(&["addr", "add", &format!("{server_ip}/30"), "dev", &here])?;
        ip(&["link", "set", &here, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", namespace.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{device_ip}/30"), "dev", &there])?;
        inside(&["link", "set", &there, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(device)
    }
}

impl Drop for OtherDevice {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and so the pair.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what Chromium's
/// `--ignore-certificate-errors-spki-list` pins (as a phone's user accepting the certificate does).
fn spki_pin(cert_pem: &Path) -> String {
    use rustls::pki_types::pem::PemObject as _;
    use sha2::Digest as _;
    let pem = std::fs::read(cert_pem).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    data_encoding::BASE64.encode(&sha2::Sha256::digest(cert.public_key().raw))
}

/// Another device: Chromium in its own network namespace, reaching this machine only over a veth pair,
/// loads `https://<server address>:PORT/?token=…` (the self-signed certificate, pinned by its key as a
/// user accepting it would), has the camera API (a secure context), streams, and gets results within
/// the tolerances of the loopback test above. Without the token the page is refused (401).
#[test]
fn chromium_on_another_device_streams_over_https_with_the_token() {
    let _serial = crate::common::heavy();
    let device = match OtherDevice::create() {
        Ok(device) => device,
        Err(e) => {
            eprintln!(
                "SKIPPED chromium_on_another_device_streams_over_https_with_the_token: cannot make a \
                 network namespace here ({e}); run as root on Linux with `ip netns`"
            );
            return;
        }
    };
    let (clip, y4m) = fake_camera("carphone_640.mjpeg", "carphone_640_remote.y4m");
    let refs = read_jsonl("carphone_640.static.ref.jsonl");
    let cert_dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("remote-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cert_dir);
    let tls =
        livepose::server::tls::self_signed(&cert_dir, &livepose::server::tls::machine_names())
            .unwrap();
    assert!(
        tls.info.names.contains(&device.server_ip.to_string()),
        "the certificate names the veth address: {:?}",
        tls.info.names
    );
    let token = livepose::server::pairing::generate_token().unwrap();
    let browser = Browser {
        prefix: vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            device.namespace.clone(),
        ],
        chromium_args: format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_pin(&tls.info.cert_path)
        ),
        ..Browser::default()
    };
    let listen = std::net::SocketAddr::from((device.server_ip, 0));
    let configure = |c: &mut ServerConfig| {
        c.listen = listen;
        c.tls = Some(tls.clone());
        c.token = Some(token.clone());
    };

    // Without the token: refused.
    let service =
        Arc::new(Service::start(ServiceConfig::new(EngineConfig::default(), 1, 1)).unwrap());
    let mut config = ServerConfig::default();
    configure(&mut config);
    let server = Server::start(config, service).unwrap();
    let url = format!("https://{}/", server.local_addr());
    let refused = browser.run_once(
        ("E2E_STATUS_ONLY", "1"),
        [url.as_str(), y4m.to_str().unwrap(), "0", "/dev/null"],
    );
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(
        refused["body"].as_str().unwrap().contains("pairing token"),
        "{refused}"
    );
    drop(server);

    // With it: the page streams from the other namespace.
    let session = stream_from(&y4m, "browser_remote", &browser, configure, |server| {
        format!("https://{}/?token={token}&autostart=1", server.local_addr())
    });
    assert_eq!(
        session.summary["isSecureContext"], true,
        "{}",
        session.summary
    );
    assert_eq!(session.summary["mediaDevices"], true, "{}", session.summary);
    let errors = errors_against_mediapipe(&session, &clip, &refs, PAGE_ANSWERED);
    let median = errors[errors.len() / 2];
    let p90 = errors[errors.len() * 9 / 10];
    assert!(
        median <= 2.0,
        "other device, JPEG: median {median} px from MediaPipe"
    );
    assert!(
        p90 <= 6.0,
        "other device, JPEG: 90th percentile {p90} px from MediaPipe"
    );
    eprintln!(
        "other device over HTTPS: page round trip p50 {} ms, p95 {} ms",
        session.summary["rttP50"], session.summary["rttP95"]
    );
    let _ = std::fs::remove_dir_all(&cert_dir);
}
