//! The app's 3D view checked from its screenshot: the avatar is drawn where the forward kinematics of
//! the pose it dumped puts it (used by the headless app tests in `super::app_headless`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

/// Anything the avatar draws: its saturated colours (pink body, teal hands, yellow nose) or its bright
/// ones (joints, the grey of unseen bones, lit). Not the 3D view's background (31, 31, 38) or its grid
/// (89, 89, 102), both grey.
fn is_avatar_colour(p: &image::Rgb<u8>) -> bool {
    let max = p.0.iter().copied().max().unwrap_or(0);
    let min = p.0.iter().copied().min().unwrap_or(0);
    (max >= 60 && max - min >= 30) || max >= 130
}

pub(crate) fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The avatar drawn in the screenshot is where forward kinematics of its dumped pose puts it: projected
/// with the dumped camera (position, rotation, vertical field of view, viewport) by a plain pinhole model
/// written here, every ball joint and the head have the avatar's colour within 4 px, and every
/// avatar-coloured pixel of the 3D view lies within 0.2 m (projected at the bone's depth, + 3 px) of a
/// projected bone: the bulkiest part, the torso box (31 × 17 cm), reaches 0.18 m from its bone line.
/// Bevy's own projection of the joints agrees within 1 px. An avatar drawn mirrored, on another pose, or
/// off its kinematics fails both.
pub(crate) fn assert_avatar_drawn_where_its_kinematics_says(
    state: &serde_json::Value,
    png: &image::RgbImage,
) {
    use glam::{Quat, Vec2, Vec3};
    use livepose::motion::skeleton::{BONE_COUNT, Bone, HumanoidPose, RestPose, forward};
    let avatar = &state["avatar"];
    assert_eq!(avatar["shown"], true, "avatar: {avatar}");
    let mut pose = HumanoidPose::rest(0, Vec3::from_slice(&f32s(&avatar["root_pos_m"])));
    let mut rest = RestPose {
        offsets_m: [Vec3::ZERO; BONE_COUNT],
        end_sites_m: [None; BONE_COUNT],
        hip_height_m: 0.0,
    };
    for i in 0..BONE_COUNT {
        pose.local[i] = Quat::from_slice(&f32s(&avatar["local_xyzw"][i]));
        rest.offsets_m[i] = Vec3::from_slice(&f32s(&avatar["offsets_m"][i]));
        if !avatar["end_sites_m"][i].is_null() {
            rest.end_sites_m[i] = Some(Vec3::from_slice(&f32s(&avatar["end_sites_m"][i])));
        }
    }
    let fk = forward(&rest, &pose);

    let camera = &state["camera3d"];
    let eye = Vec3::from_slice(&f32s(&camera["translation"]));
    let turn = Quat::from_slice(&f32s(&camera["rotation_xyzw"]));
    let fov_y = camera["fov_y"].as_f64().unwrap() as f32;
    let viewport = f32s(&camera["viewport"]);
    let aspect = viewport[2] / viewport[3];
    let focal = 1.0 / (fov_y * 0.5).tan();
    // Camera space: looking down −z, y up. Window: y down from the viewport's top-left corner.
    // Pixels per metre at one metre from the camera.
    let focal_px = focal * viewport[3] * 0.5;
    let depth = |p: Vec3| -(turn.inverse() * (p - eye)).z;
    let project = |p: Vec3| -> Option<Vec2> {
        let c = turn.inverse() * (p - eye);
        (c.z < -0.05).then(|| {
            let ndc = Vec2::new(c.x / -c.z * focal / aspect, c.y / -c.z * focal);
            Vec2::new(
                viewport[0] + (ndc.x + 1.0) * 0.5 * viewport[2],
                viewport[1] + (1.0 - ndc.y) * 0.5 * viewport[3],
            )
        })
    };

    // Bevy's projection of the same joints (window px) agrees with this one.
    let names: Vec<String> = Bone::all().map(Bone::name).collect();
    let bevy_joints = camera["joints_in_viewport"].as_array().unwrap();
    assert!(bevy_joints.len() >= 20, "{camera}");
    for joint in bevy_joints {
        let name = joint[0].as_str().unwrap();
        let bone = names.iter().position(|n| n == name).unwrap();
        let bevy = Vec2::from_slice(&f32s(&joint[1]));
        let ours = project(fk.pos_m[bone]).unwrap();
        assert!(
            (bevy - ours).length() <= 1.0,
            "{name}: Bevy projects it at {bevy}, the pinhole model at {ours}"
        );
    }

    // Every joint shown as a ball, and the head, have the avatar's colour at their projection.
    let balls = [
        "Hips",
        "Spine",
        "Chest",
        "UpperChest",
        "Neck",
        "Head",
        "LeftUpperArm",
        "LeftLowerArm",
        "LeftHand",
        "RightUpperArm",
        "RightLowerArm",
        "RightHand",
        "LeftUpperLeg",
        "LeftLowerLeg",
        "LeftFoot",
        "RightUpperLeg",
        "RightLowerLeg",
        "RightFoot",
    ];
    let mut checked = 0;
    for name in balls {
        let bone = names.iter().position(|n| n == name).unwrap();
        let Some(p) = project(fk.pos_m[bone]) else {
            continue;
        };
        let inside = p.x >= viewport[0]
            && p.y >= viewport[1]
            && p.x < viewport[0] + viewport[2]
            && p.y < viewport[1] + viewport[3];
        if inside {
            assert!(
                crate::app_headless::colour_near(png, p.to_array(), 4, is_avatar_colour),
                "no avatar colour at {name} ({p})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} joints in the 3D view");

    // Every avatar-coloured pixel of the view is near a projected bone.
    // (start, end, allowed distance in px) of each projected bone.
    let mut bones: Vec<(Vec2, Vec2, f32)> = Vec::new();
    for bone in Bone::all() {
        let i = bone.index();
        let tip = rest.end_sites_m[i].map(|e| fk.pos_m[i] + fk.global[i] * e);
        let ends = Bone::all()
            .filter(|c| c.parent() == Some(bone))
            .map(|c| fk.pos_m[c.index()])
            .chain(tip);
        for end in ends {
            if let (Some(a), Some(b)) = (project(fk.pos_m[i]), project(end)) {
                let nearest_m = depth(fk.pos_m[i]).min(depth(end));
                bones.push((a, b, 0.2 * focal_px / nearest_m + 3.0));
            }
        }
    }
    // How far past its bone's allowance a pixel is (≤ 0: within it).
    let beyond = |p: Vec2, (a, b, allowed): (Vec2, Vec2, f32)| {
        let ab = b - a;
        let t = ((p - a).dot(ab) / ab.length_squared().max(1e-6)).clamp(0.0, 1.0);
        (a + ab * t - p).length() - allowed
    };
    let (x0, y0) = (viewport[0] as u32, viewport[1] as u32);
    let (x1, y1) = (
        ((viewport[0] + viewport[2]) as u32).min(png.width()),
        ((viewport[1] + viewport[3]) as u32).min(png.height()),
    );
    let mut avatar_pixels = 0;
    let mut far = Vec::new();
    for y in y0..y1 {
        for x in x0..x1 {
            if !is_avatar_colour(png.get_pixel(x, y)) {
                continue;
            }
            avatar_pixels += 1;
            let p = Vec2::new(x as f32 + 0.5, y as f32 + 0.5);
            let nearest = bones
                .iter()
                .map(|b| beyond(p, *b))
                .fold(f32::INFINITY, f32::min);
            if nearest > 0.0 {
                far.push((x, y, nearest));
            }
        }
    }
    eprintln!(
        "avatar: {checked} joints checked, {avatar_pixels} avatar pixels, {} far from every bone",
        far.len()
    );
    assert!(avatar_pixels > 1000, "{avatar_pixels} avatar pixels");
    assert!(
        far.is_empty(),
        "{} avatar pixels far from every projected bone, e.g. (x, y, px beyond) {:?}",
        far.len(),
        &far[..far.len().min(5)]
    );
}
