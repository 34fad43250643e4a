//! Live VMC output, received by an independent OSC implementation: `python-osc` 1.10.2 from PyPI
//! (`tests/vmc/receive.py`, in the venv `scripts/setup.sh` makes). The sender follows a stream of the
//! inference service like any subscriber; the stream plays 30 frames of `kenburns_messi` (a person) and
//! then 10 empty frames (no one in view).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::mjpeg_frames;
use livepose::frame::{EncodedFormat, FrameInput, FrameMeta, Payload};
use livepose::outputs::vmc::{Follow, VmcSender};
use livepose::service::{Delivery, Service, ServiceConfig, StreamKind, StreamSpec};
use livepose::vision::{EngineConfig, TrackerConfig};
use serde_json::Value;

const PERSON_FRAMES: usize = 30;
const EMPTY_FRAMES: usize = 10;

#[test]
fn python_osc_receives_one_valid_vmc_bundle_per_result() {
    let mut receiver = Command::new(crate::common::test_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vmc/receive.py"))
        .args(["--idle", "3", "--max", "300"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();

    let service = Arc::new(
        Service::start(ServiceConfig::new(EngineConfig::default(), 2, 1))
            .expect("the service starts (models present: run `make setup`)"),
    );
    let stream = service.open_stream(StreamSpec {
        name: "vmc test".into(),
        kind: StreamKind::Analysis,
        tracker: TrackerConfig::VIDEO,
        delivery: Delivery::Lossless,
    });
    let ours = stream.subscribe(64);
    let sender = VmcSender::start(
        Arc::clone(&service),
        format!("127.0.0.1:{port}").parse().unwrap(),
        Follow::Chosen,
    )
    .unwrap();
    sender.follow(Some(stream.id()));
    wait_for_sender(&stream);

    let mut frames: Vec<Payload> = mjpeg_frames("kenburns_messi.mjpeg")
        .into_iter()
        .take(PERSON_FRAMES)
        .map(|jpeg| Payload::Encoded {
            format: EncodedFormat::Jpeg,
            bytes: jpeg.into(),
        })
        .collect();
    let empty = Arc::new(
        livepose::vision::image::RgbImage::from_raw(640, 480, vec![90; 640 * 480 * 3]).unwrap(),
    );
    frames.extend((0..EMPTY_FRAMES).map(|_| Payload::Decoded(Arc::clone(&empty))));
    let mut tracked = Vec::new();
    for (i, payload) in frames.into_iter().enumerate() {
        let result = publish_one(&stream, &ours, &sender, i, payload);
        tracked.push(result.pose.is_some());
    }
    let stats = sender.stats();
    drop(sender);
    let summary: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    receiver.wait().unwrap();
    println!(
        "VMC: {} results, {} sent, {:.0} µs per result (solve + encode + send; max {:.0}), {} bytes per bundle",
        stats.results, stats.sent, stats.mean_cost_us, stats.max_cost_us, stats.bundle_bytes
    );

    let problems = summary["problems"].as_array().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    let bundles = summary["bundles"].as_array().unwrap();
    assert_eq!(stats.results, tracked.len() as u64);
    assert_eq!(stats.skipped, 0);
    assert_eq!(bundles.len(), tracked.len(), "one bundle per result");
    assert!(
        tracked[..5].iter().all(|t| *t),
        "the person is found at once"
    );
    assert!(
        tracked[PERSON_FRAMES..].iter().all(|t| !t),
        "no one in an empty frame"
    );
    let names: Vec<&str> = bundles[0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), livepose::motion::BONE_COUNT);
    for name in ["Hips", "Head", "LeftHand", "RightToes", "LeftLittleDistal"] {
        assert!(names.contains(&name), "{name}");
    }
    let mut previous_t = f64::NEG_INFINITY;
    for (i, (bundle, tracked)) in bundles.iter().zip(&tracked).enumerate() {
        assert_eq!(bundle["bones"], livepose::motion::BONE_COUNT, "bundle {i}");
        let ok = bundle["ok"].as_array().unwrap();
        let expected = i64::from(*tracked);
        assert_eq!(ok[0].as_i64(), Some(expected), "bundle {i}: OK {ok:?}");
        assert_eq!(
            ok[3].as_i64(),
            Some(expected),
            "bundle {i}: tracking status {ok:?}"
        );
        let t = bundle["t"].as_f64().unwrap();
        assert!(t >= previous_t, "bundle {i}: time went back");
        previous_t = t;
    }
}

/// `serve --vmc` follows the oldest connected client, and the next one when it leaves.
#[test]
fn serve_follows_the_oldest_client_stream() {
    let service = Arc::new(
        Service::start(ServiceConfig::new(EngineConfig::default(), 1, 1))
            .expect("the service starts (models present: run `make setup`)"),
    );
    let client = |id: u64| StreamSpec {
        name: format!("#{id}"),
        kind: StreamKind::Remote {
            peer: format!("127.0.0.1:{}", 1000 + id).parse().unwrap(),
        },
        tracker: TrackerConfig::VIDEO,
        delivery: Delivery::LatestWins,
    };
    let local = service.open_stream(StreamSpec {
        name: "camera".into(),
        kind: StreamKind::Camera,
        tracker: TrackerConfig::VIDEO,
        delivery: Delivery::LatestWins,
    });
    let first = service.open_stream(client(1));
    let second = service.open_stream(client(2));
    // Nobody listens on the discard port: sending fails or vanishes, and costs nothing here.
    let sender = VmcSender::start(
        Arc::clone(&service),
        "127.0.0.1:9".parse().unwrap(),
        Follow::OldestClient,
    )
    .unwrap();
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("follows the first client", &|| {
        first.stats().subscribers == 1
    });
    assert_eq!(second.stats().subscribers, 0);
    assert_eq!(local.stats().subscribers, 0, "not a client's stream");
    drop(first);
    wait_for("moves to the second client", &|| {
        second.stats().subscribers == 1
    });
    drop(sender);
    assert_eq!(
        second.stats().subscribers,
        0,
        "dropping the sender unsubscribes"
    );
}

/// Starts `tests/vmc/receive.py` on `port` (0: any); returns it and its output lines (the first, the port,
/// already read).
/// Waits until the VMC sender has subscribed to `stream` (beside the test's own subscription).
fn wait_for_sender(stream: &livepose::service::StreamHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream.stats().subscribers < 2 {
        assert!(Instant::now() < deadline, "the VMC sender never subscribed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Publishes frame `i` and returns its result once the sender has taken it too: one frame at a time,
/// as a 30 frames/s source would be served, each result reaching the sender before the next exists.
fn publish_one(
    stream: &livepose::service::StreamHandle,
    ours: &livepose::service::Subscription,
    sender: &VmcSender,
    i: usize,
    payload: Payload,
) -> Arc<livepose::vision::FrameResult> {
    stream
        .publish(FrameInput {
            meta: FrameMeta {
                timestamp_us: (i as i64 + 1) * 33_333,
                ..FrameMeta::captured_now(i as u64)
            },
            payload,
        })
        .unwrap();
    let done = ours.recv_timeout(Duration::from_secs(120)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sender.stats().results < i as u64 + 1 {
        assert!(
            Instant::now() < deadline,
            "the sender did not take result {i}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    done.outcome.unwrap()
}

fn receiver_on(
    port: u16,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    u16,
) {
    let mut receiver = Command::new(crate::common::test_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vmc/receive.py"))
        .args(["--idle", "3", "--max", "300", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    (receiver, lines, port)
}

/// `--vmc-every-person`: on a clip with two people crossing (`mp_cross2`), each person goes to a port of
/// their own (the first seen to the target's port, the next to the port after it), each port gets valid
/// bundles from python-osc's point of view, and a person hidden behind the other is sent with tracking
/// off rather than moved to another port.
#[test]
fn every_person_goes_to_a_port_of_their_own() {
    // Two consecutive free ports.
    let (first, second) = loop {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            drop(a);
            break (port, port + 1);
        }
    };
    let (mut rx_first, mut lines_first, _) = receiver_on(first);
    let (mut rx_second, mut lines_second, _) = receiver_on(second);
    let service = Arc::new(
        Service::start(ServiceConfig::new(
            EngineConfig {
                hands: false,
                ..EngineConfig::default()
            },
            2,
            1,
        ))
        .expect("the service starts (models present: run `make setup`)"),
    );
    let stream = service.open_stream(StreamSpec {
        name: "vmc people".into(),
        kind: StreamKind::Analysis,
        tracker: TrackerConfig::VIDEO.with_max_people(3),
        delivery: Delivery::Lossless,
    });
    let ours = stream.subscribe(256);
    let sender = livepose::outputs::vmc::VmcSender::start_for(
        Arc::clone(&service),
        format!("127.0.0.1:{first}").parse().unwrap(),
        Follow::Chosen,
        livepose::outputs::vmc::Whom::Everyone { max: 3 },
    )
    .unwrap();
    sender.follow(Some(stream.id()));
    wait_for_sender(&stream);
    let frames = mjpeg_frames("multiperson/mp_cross2.mjpeg");
    let mut people_per_result = Vec::new();
    for (i, jpeg) in frames.into_iter().enumerate() {
        let payload = Payload::Encoded {
            format: EncodedFormat::Jpeg,
            bytes: jpeg.into(),
        };
        let result = publish_one(&stream, &ours, &sender, i, payload);
        people_per_result.push(result.people.len());
    }
    drop(sender);
    let first_summary: Value = serde_json::from_str(&lines_first.next().unwrap().unwrap()).unwrap();
    let second_summary: Value =
        serde_json::from_str(&lines_second.next().unwrap().unwrap()).unwrap();
    rx_first.wait().unwrap();
    rx_second.wait().unwrap();
    let tracked = |s: &Value| {
        s["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["ok"][3].as_i64() == Some(1))
            .count()
    };
    let (b1, b2) = (
        first_summary["bundles"].as_array().unwrap().len(),
        second_summary["bundles"].as_array().unwrap().len(),
    );
    let two = people_per_result.iter().filter(|n| **n >= 2).count();
    println!(
        "VMC every person: {} results ({two} with two people); port {first}: {b1} bundles, {} tracked; \
         port {second}: {b2} bundles, {} tracked",
        people_per_result.len(),
        tracked(&first_summary),
        tracked(&second_summary)
    );
    for summary in [&first_summary, &second_summary] {
        let problems = summary["problems"].as_array().unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }
    assert!(two >= 30, "two people in {two} results");
    // Each port gets a bundle for every result from the one its person was first seen in on.
    assert!(b1 >= two && b2 >= two, "{b1} and {b2} bundles");
    assert!(tracked(&first_summary) >= 30 && tracked(&second_summary) >= 30);
    // A hidden person stays on their port with tracking off (the crossing hides one of them).
    assert!(
        tracked(&first_summary) < b1 || tracked(&second_summary) < b2,
        "somebody is hidden in the crossing"
    );
}
