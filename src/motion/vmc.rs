//! Live motion over the VMC protocol (Virtual Motion Capture: OSC 1.0 over UDP), as VSeeFace, Warudo,
//! VMagicMirror, VRChat tools and EVMC4U in Unity receive it.
//!
//! One OSC bundle per result of the followed stream, sent to `--vmc HOST:PORT` (the receivers' default
//! port is 39539), holding:
//! - `/VMC/Ext/Root/Pos "root" px py pz qx qy qz qw`: the avatar's root on the floor under the hips
//!   (height 0), unrotated;
//! - `/VMC/Ext/Bone/Pos NAME px py pz qx qy qz qw` for every humanoid bone (Unity's `HumanBodyBones`
//!   names): its local position (the rest pose's offset from its parent; the hips': their height) and
//!   local rotation from the T-pose;
//! - `/VMC/Ext/OK loaded calibration_state calibration_mode tracking_status`: loaded and tracking are 1
//!   while a person is tracked and 0 while no one is (the bones then ease to neutral), calibration is
//!   always "calibrated" (3), mode normal (0). Receivers that know only the first argument (VMC < 2.5)
//!   ignore the rest;
//! - `/VMC/Ext/T time`: seconds since the sender started.
//!
//! Unity's space is left-handed, y up, the avatar facing +z: positions are `(−x, y, z)` and rotations
//! `(x, −y, −z, w)` of skeleton space's ([`crate::motion`]), a mirror in x.
//!
//! The sender is a subscriber like any other: a named thread (`livepose-vmc`) with a one-result
//! subscription (a slow sender skips results, never slows inference), a non-blocking UDP socket (a
//! receiver that is absent or slow costs one failed `send_to`), and the solver of the stream it follows.
//! OSC encoding is the `rosc` crate's (OSC 1.0, pure Rust, one small dependency), not hand-written.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use glam::{Quat, Vec3};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::motion::skeleton::{Bone, HumanoidPose, RestPose};
use crate::motion::solver::Solver;
use crate::service::{Service, StreamId, StreamKind, Subscription};

/// The VMC receivers' default port.
pub const DEFAULT_PORT: u16 = 39539;
/// How long the sender waits for a result before it looks at the streams again.
const POLL: Duration = Duration::from_millis(100);

/// Why VMC output could not start or a bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VmcError {
    #[error("VMC target {0:?}: expected HOST:PORT, HOST or :PORT")]
    Target(String),
    #[error("VMC target {target}: {source}")]
    Resolve {
        target: String,
        source: std::io::Error,
    },
    #[error("VMC socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot start the VMC thread: {0}")]
    Thread(std::io::Error),
    #[error("OSC encoding: {0}")]
    Encode(String),
}

/// Parses `HOST:PORT`, `HOST` (port 39539) or `:PORT` (localhost).
pub fn parse_target(text: &str) -> Result<SocketAddr, VmcError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(VmcError::Target(text.to_owned()));
    }
    let with_port = if text.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{text}]:{DEFAULT_PORT}")
    } else if let Some(port) = text.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else if text
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        text.to_owned()
    } else if text.contains(':') && !text.starts_with('[') {
        return Err(VmcError::Target(text.to_owned()));
    } else {
        format!("{text}:{DEFAULT_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|source| VmcError::Resolve {
            target: text.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| VmcError::Target(text.to_owned()))
}

/// Skeleton space to Unity's (a mirror in x).
pub fn unity_position(v: Vec3) -> [f32; 3] {
    [-v.x, v.y, v.z]
}

/// Skeleton space to Unity's (a mirror in x): `(x, −y, −z, w)`.
pub fn unity_rotation(q: Quat) -> [f32; 4] {
    [q.x, -q.y, -q.z, q.w]
}

fn finite(v: f32) -> f32 {
    if v.is_finite() { v } else { 0.0 }
}

fn transform_args(name: &str, pos: [f32; 3], rot: [f32; 4]) -> Vec<OscType> {
    let mut args = Vec::with_capacity(8);
    args.push(OscType::String(name.to_owned()));
    args.extend(pos.iter().map(|v| OscType::Float(finite(*v))));
    args.extend(rot.iter().map(|v| OscType::Float(finite(*v))));
    args
}

fn message(addr: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage {
        addr: addr.to_owned(),
        args,
    })
}

/// The bundle of one solved pose (see the module's documentation). `time_s`: `/VMC/Ext/T`.
pub fn bundle(rest: &RestPose, pose: &HumanoidPose, time_s: f32) -> OscBundle {
    let mut content = Vec::with_capacity(crate::motion::BONE_COUNT + 3);
    let root = pose.root_pos_m;
    content.push(message(
        "/VMC/Ext/Root/Pos",
        transform_args(
            "root",
            unity_position(Vec3::new(root.x, 0.0, root.z)),
            [0.0, 0.0, 0.0, 1.0],
        ),
    ));
    for bone in Bone::all() {
        let i = bone.index();
        let local_pos = if bone == Bone::HIPS {
            Vec3::Y * root.y
        } else {
            rest.offsets_m[i]
        };
        content.push(message(
            "/VMC/Ext/Bone/Pos",
            transform_args(
                &bone.name(),
                unity_position(local_pos),
                unity_rotation(pose.local[i].normalize()),
            ),
        ));
    }
    let tracked = i32::from(pose.tracked);
    content.push(message(
        "/VMC/Ext/OK",
        vec![
            OscType::Int(tracked),
            OscType::Int(3),
            OscType::Int(0),
            OscType::Int(tracked),
        ],
    ));
    content.push(message("/VMC/Ext/T", vec![OscType::Float(time_s)]));
    OscBundle {
        // "Immediately", as every VMC sender.
        timetag: OscTime {
            seconds: 0,
            fractional: 1,
        },
        content,
    }
}

/// Encodes a bundle as one UDP datagram.
pub fn encode(bundle: OscBundle) -> Result<Vec<u8>, VmcError> {
    rosc::encoder::encode(&OscPacket::Bundle(bundle)).map_err(|e| VmcError::Encode(e.to_string()))
}

/// Which stream's results are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// The stream set by [`VmcSender::follow`] (the app: its selected source).
    Chosen,
    /// The oldest open WebSocket stream: the first browser client still connected (`serve`).
    OldestClient,
}

/// Counters of a sender.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VmcStats {
    /// Results taken from the subscription.
    pub results: u64,
    /// Bundles handed to the socket.
    pub sent: u64,
    /// Bundles the socket refused (no receiver, buffer full, network down).
    pub send_failures: u64,
    /// Results the sender had no time for (superseded in its one-result mailbox).
    pub skipped: u64,
    /// Mean and largest time to solve, encode and send one result, µs.
    pub mean_cost_us: f64,
    pub max_cost_us: f64,
    /// Size of the last bundle, bytes.
    pub bundle_bytes: usize,
}

#[derive(Default)]
struct Counters {
    results: AtomicU64,
    sent: AtomicU64,
    send_failures: AtomicU64,
    cost_ns: AtomicU64,
    max_cost_ns: AtomicU64,
    bundle_bytes: AtomicU64,
}

struct Shared {
    stop: AtomicBool,
    chosen: Mutex<Option<StreamId>>,
    counters: Counters,
    skipped: AtomicU64,
}

/// A running VMC output. Dropping it stops its thread.
pub struct VmcSender {
    shared: Arc<Shared>,
    target: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl VmcSender {
    /// Starts sending the results of the stream chosen by `follow` to `target`.
    pub fn start(
        service: Arc<Service>,
        target: SocketAddr,
        follow: Follow,
    ) -> Result<Self, VmcError> {
        let bind: SocketAddr = if target.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).map_err(VmcError::Socket)?;
        socket.set_nonblocking(true).map_err(VmcError::Socket)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            chosen: Mutex::new(None),
            counters: Counters::default(),
            skipped: AtomicU64::new(0),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("livepose-vmc".into())
                .spawn(move || run(&service, &shared, &socket, target, follow))
                .map_err(VmcError::Thread)?
        };
        tracing::info!("VMC: sending to {target} (OSC over UDP)");
        Ok(Self {
            shared,
            target,
            thread: Some(thread),
        })
    }

    /// With [`Follow::Chosen`]: send this stream's results from now on (`None`: none).
    pub fn follow(&self, stream: Option<StreamId>) {
        if let Ok(mut chosen) = self.shared.chosen.lock() {
            *chosen = stream;
        }
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn stats(&self) -> VmcStats {
        let c = &self.shared.counters;
        let results = c.results.load(Ordering::Relaxed);
        VmcStats {
            results,
            sent: c.sent.load(Ordering::Relaxed),
            send_failures: c.send_failures.load(Ordering::Relaxed),
            skipped: self.shared.skipped.load(Ordering::Relaxed),
            mean_cost_us: if results == 0 {
                0.0
            } else {
                c.cost_ns.load(Ordering::Relaxed) as f64 / results as f64 / 1e3
            },
            max_cost_us: c.max_cost_ns.load(Ordering::Relaxed) as f64 / 1e3,
            bundle_bytes: c.bundle_bytes.load(Ordering::Relaxed) as usize,
        }
    }
}

impl Drop for VmcSender {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let s = self.stats();
        tracing::info!(
            "VMC: {} result(s), {} bundle(s) sent to {}, {} refused by the socket; {:.0} µs per result \
             (max {:.0})",
            s.results,
            s.sent,
            self.target,
            s.send_failures,
            s.mean_cost_us,
            s.max_cost_us
        );
    }
}

fn wanted_stream(service: &Service, shared: &Shared, follow: Follow) -> Option<StreamId> {
    match follow {
        Follow::Chosen => shared.chosen.lock().ok().and_then(|c| *c),
        Follow::OldestClient => service
            .streams()
            .into_iter()
            .find(|s| matches!(s.kind, StreamKind::WebSocket { .. }))
            .map(|s| s.id),
    }
}

fn run(service: &Service, shared: &Shared, socket: &UdpSocket, target: SocketAddr, follow: Follow) {
    let started = Instant::now();
    let mut current: Option<Subscription> = None;
    let mut solver = Solver::new();
    let mut warned = false;
    while !shared.stop.load(Ordering::Acquire) {
        let wanted = wanted_stream(service, shared, follow);
        if current.as_ref().map(Subscription::stream) != wanted {
            if let Some(old) = current.take() {
                shared
                    .skipped
                    .fetch_add(old.superseded(), Ordering::Relaxed);
            }
            current = wanted.and_then(|id| service.subscribe(id, 1));
            // Another stream is another person (or the same one elsewhere): measure them again.
            solver = Solver::new();
        }
        let Some(subscription) = &current else {
            std::thread::sleep(POLL);
            continue;
        };
        let Some(done) = subscription.recv_timeout(POLL) else {
            if subscription.is_closed()
                && let Some(old) = current.take()
            {
                shared
                    .skipped
                    .fetch_add(old.superseded(), Ordering::Relaxed);
            }
            continue;
        };
        let Ok(result) = &done.outcome else {
            continue;
        };
        let begin = Instant::now();
        let pose = solver.solve(result);
        let rest = solver.rest_pose();
        let counters = &shared.counters;
        counters.results.fetch_add(1, Ordering::Relaxed);
        match encode(bundle(&rest, &pose, started.elapsed().as_secs_f32())) {
            Ok(bytes) => {
                counters
                    .bundle_bytes
                    .store(bytes.len() as u64, Ordering::Relaxed);
                match socket.send_to(&bytes, target) {
                    Ok(_) => {
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counters.send_failures.fetch_add(1, Ordering::Relaxed);
                        if !warned {
                            warned = true;
                            tracing::warn!(
                                "VMC: cannot send to {target}: {e} (counted from now on)"
                            );
                        }
                    }
                }
            }
            Err(e) => {
                if !warned {
                    warned = true;
                    tracing::warn!("VMC: {e}");
                }
            }
        }
        let cost_ns = begin.elapsed().as_nanos() as u64;
        counters.cost_ns.fetch_add(cost_ns, Ordering::Relaxed);
        counters.max_cost_ns.fetch_max(cost_ns, Ordering::Relaxed);
    }
    if let Some(old) = current {
        shared
            .skipped
            .fetch_add(old.superseded(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_and_without_a_port() {
        assert_eq!(
            parse_target("127.0.0.1:39540").unwrap(),
            "127.0.0.1:39540".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(parse_target("127.0.0.1").unwrap().port(), DEFAULT_PORT);
        assert_eq!(parse_target(":4000").unwrap().port(), 4000);
        assert_eq!(parse_target("::1").unwrap().port(), DEFAULT_PORT);
        assert_eq!(
            parse_target("[::1]:4000").unwrap(),
            "[::1]:4000".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_target("").is_err());
        assert!(parse_target("127.0.0.1:notaport").is_err());
    }

    #[test]
    fn unity_space_mirrors_x_for_positions_and_rotations() {
        // A rotation about y by +90° turns +z to +x in skeleton space; mirrored, it turns +z to −x.
        let q = Quat::from_rotation_y(std::f32::consts::FRAC_PI_2);
        let [x, y, z, w] = unity_rotation(q);
        let u = Quat::from_xyzw(x, y, z, w);
        let turned = u * Vec3::Z;
        let mirrored = Vec3::from(unity_position(q * Vec3::Z));
        assert!(
            (turned - mirrored).length() < 1e-6,
            "{turned} vs {mirrored}"
        );
    }
}
