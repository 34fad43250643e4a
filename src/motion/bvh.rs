//! BVH (Biovision hierarchy) files of solved poses.
//!
//! - Space: BVH's usual one, which is skeleton space: right-handed, y up, the person facing +z at rest.
//!   Units: **centimetres** (what Blender, MotionBuilder and most importers expect).
//! - HIERARCHY: the humanoid bones by their `HumanBodyBones` names, OFFSETs from the rest pose, an `End
//!   Site` at the head top, toe tips and finger tips. The root (Hips) has 6 channels `Xposition
//!   Yposition Zposition Zrotation Xrotation Yrotation`, every other joint 3 channels `Zrotation
//!   Xrotation Yrotation`: a joint's rotation is `Rz·Rx·Ry`, angles in degrees.
//! - MOTION: a constant `Frame Time` of 1/fps. Frames are resampled from the poses' timestamps (root
//!   interpolated linearly, rotations by slerp), so irregular capture times give a regular file.
//! - Blender imports it with its own importer (`File > Import > Motion Capture (.bvh)`, defaults); it
//!   turns BVH's (x, y, z) into its (x, −z, y), so the person stands on Blender's floor facing −y.

use std::io::Write;

use glam::{EulerRot, Quat, Vec3};

use crate::motion::skeleton::{Bone, HumanoidPose, RestPose, children};

/// Metres to the file's centimetres.
const CM_PER_M: f32 = 100.0;

/// The poses resampled at a constant rate from the first timestamp to the last.
pub fn resample(poses: &[HumanoidPose], fps: f64) -> Vec<HumanoidPose> {
    let (Some(first), Some(last)) = (poses.first(), poses.last()) else {
        return Vec::new();
    };
    let step_us = 1e6 / fps.max(1e-3);
    let span_us = (last.timestamp_us - first.timestamp_us) as f64;
    // Rounded: capture clocks in whole µs make a 30 frames/s clip 30.0003 frames/s, and its last frame
    // must not be lost to the rounding (times past the last pose hold it).
    let frames = (span_us / step_us).round() as usize + 1;
    let mut out = Vec::with_capacity(frames);
    let mut i = 0;
    for k in 0..frames {
        let t = first.timestamp_us as f64 + k as f64 * step_us;
        while i + 1 < poses.len() && (poses[i + 1].timestamp_us as f64) <= t {
            i += 1;
        }
        let a = &poses[i];
        let pose = match poses.get(i + 1) {
            Some(b) if b.timestamp_us > a.timestamp_us => {
                let w = ((t - a.timestamp_us as f64) / (b.timestamp_us - a.timestamp_us) as f64)
                    .clamp(0.0, 1.0) as f32;
                let mut p = a.clone();
                p.timestamp_us = t.round() as i64;
                p.root_pos_m = a.root_pos_m.lerp(b.root_pos_m, w);
                for (q, qb) in p.local.iter_mut().zip(&b.local) {
                    *q = q.slerp(*qb, w).normalize();
                }
                p
            }
            _ => {
                let mut p = a.clone();
                p.timestamp_us = t.round() as i64;
                p
            }
        };
        out.push(pose);
    }
    out
}

/// The bones in the order the file lists them (depth first), which is the order of MOTION's channels.
pub fn file_order() -> Vec<Bone> {
    fn visit(bone: Bone, out: &mut Vec<Bone>) {
        out.push(bone);
        for child in children(bone) {
            visit(child, out);
        }
    }
    let mut out = Vec::new();
    visit(Bone::HIPS, &mut out);
    out
}

/// Writes a BVH file of `poses` (resampled at `fps`) on `rest`.
pub fn write(
    out: &mut impl Write,
    rest: &RestPose,
    poses: &[HumanoidPose],
    fps: f64,
) -> std::io::Result<()> {
    let frames = resample(poses, fps);
    writeln!(out, "HIERARCHY")?;
    write_joint(out, rest, Bone::HIPS, 0)?;
    writeln!(out, "MOTION")?;
    writeln!(out, "Frames: {}", frames.len())?;
    writeln!(out, "Frame Time: {:.6}", 1.0 / fps.max(1e-3))?;
    let order = file_order();
    let mut line = String::with_capacity(order.len() * 30);
    for pose in &frames {
        line.clear();
        let root = pose.root_pos_m * CM_PER_M;
        push_values(&mut line, &[root.x, root.y, root.z]);
        for bone in &order {
            let [z, x, y] = euler_zxy_deg(pose.local[bone.index()]);
            push_values(&mut line, &[z, x, y]);
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn push_values(line: &mut String, values: &[f32]) {
    use std::fmt::Write as _;
    for v in values {
        let v = if v.is_finite() { *v } else { 0.0 };
        // Writing into a String cannot fail.
        let _ = write!(line, "{v:.5} ");
    }
}

/// The ZXY Euler angles (degrees: the file's unit) of a rotation `Rz·Rx·Ry`.
pub fn euler_zxy_deg(q: Quat) -> [f32; 3] {
    let (z, x, y) = q.to_euler(EulerRot::ZXY);
    [z.to_degrees(), x.to_degrees(), y.to_degrees()]
}

fn write_joint(
    out: &mut impl Write,
    rest: &RestPose,
    bone: Bone,
    depth: usize,
) -> std::io::Result<()> {
    let pad = "\t".repeat(depth);
    let offset = rest.offsets_m[bone.index()] * CM_PER_M;
    if depth == 0 {
        writeln!(out, "ROOT {}", bone.name())?;
    } else {
        writeln!(out, "{pad}JOINT {}", bone.name())?;
    }
    writeln!(out, "{pad}{{")?;
    writeln!(out, "{pad}\tOFFSET {}", triple(offset))?;
    if depth == 0 {
        writeln!(
            out,
            "{pad}\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
        )?;
    } else {
        writeln!(out, "{pad}\tCHANNELS 3 Zrotation Xrotation Yrotation")?;
    }
    let mut any_child = false;
    for child in children(bone) {
        any_child = true;
        write_joint(out, rest, child, depth + 1)?;
    }
    if !any_child {
        let end = rest.end_sites_m[bone.index()].unwrap_or(Vec3::Y * 0.01) * CM_PER_M;
        writeln!(out, "{pad}\tEnd Site")?;
        writeln!(out, "{pad}\t{{")?;
        writeln!(out, "{pad}\t\tOFFSET {}", triple(end))?;
        writeln!(out, "{pad}\t}}")?;
    }
    writeln!(out, "{pad}}}")
}

fn triple(v: Vec3) -> String {
    format!("{:.5} {:.5} {:.5}", v.x, v.y, v.z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxy_euler_angles_compose_back_to_the_rotation() {
        let q =
            Quat::from_rotation_z(0.7) * Quat::from_rotation_x(-0.4) * Quat::from_rotation_y(1.1);
        let [z, x, y] = euler_zxy_deg(q);
        let back = Quat::from_rotation_z(z.to_radians())
            * Quat::from_rotation_x(x.to_radians())
            * Quat::from_rotation_y(y.to_radians());
        assert!(back.angle_between(q) < 1e-4, "{back:?} vs {q:?}");
        assert!((z - 0.7_f32.to_degrees()).abs() < 1e-3);
    }

    #[test]
    fn resampling_spaces_irregular_frames_evenly() {
        let mut a = HumanoidPose::rest(0, Vec3::ZERO);
        let mut b = HumanoidPose::rest(50_000, Vec3::X);
        let mut c = HumanoidPose::rest(100_000, Vec3::X * 2.0);
        a.local[3] = Quat::IDENTITY;
        b.local[3] = Quat::from_rotation_y(1.0);
        c.local[3] = Quat::from_rotation_y(1.0);
        let frames = resample(&[a, b, c], 40.0);
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[1].timestamp_us, 25_000);
        assert!((frames[1].root_pos_m.x - 0.5).abs() < 1e-5);
        assert!((frames[1].local[3].angle_between(Quat::IDENTITY) - 0.5).abs() < 1e-4);
        assert!((frames[4].root_pos_m.x - 2.0).abs() < 1e-5);
    }
}
