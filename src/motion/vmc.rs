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
//! The sender that follows a stream is `crate::outputs::vmc`; this module only makes bundles. OSC encoding is the `rosc` crate's (OSC 1.0, pure Rust, one small dependency), not hand-written.

use std::net::{SocketAddr, ToSocketAddrs};

use glam::{Quat, Vec3};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::motion::skeleton::{Bone, HumanoidPose, RestPose};

/// The VMC receivers' default port.
pub const DEFAULT_PORT: u16 = 39539;

/// Why a VMC target or bundle is not usable.
#[derive(Debug, thiserror::Error)]
pub enum VmcError {
    #[error("VMC target {0:?}: expected HOST:PORT, HOST or :PORT")]
    Target(String),
    #[error("VMC target {target}: {source}")]
    Resolve {
        target: String,
        source: std::io::Error,
    },
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
