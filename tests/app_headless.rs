//! The real app, headless: under Xvfb with Mesa's software Vulkan (lavapipe), on the demo clip, until
//! enough results arrived; then it saves a screenshot and its own state. Asserts that results arrived,
//! that the overlay was drawn where the landmarks are (the screenshot has the body colour there), that
//! the 3D view shows the avatar, and that the angle panel shows numbers.
//!
//! Needs `xvfb-run` and `mesa-vulkan-drivers` (`scripts/setup.sh` installs them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;
use std::time::{Duration, Instant};

fn is_body_colour(p: &image::Rgb<u8>) -> bool {
    p[0] > 190 && p[1] < 150 && p[2] > 100 && p[0] > p[1] + 80
}

#[test]
fn app_tracks_the_demo_clip_and_draws_on_the_person() {
    let dir = std::env::temp_dir().join(format!("livepose-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let screenshot = dir.join("app.png");
    let state_path = dir.join("state.json");
    let xvfb = which("xvfb-run")
        .expect("xvfb-run is missing: run scripts/setup.sh (installs xvfb, mesa-vulkan-drivers)");
    let mut child = Command::new(xvfb)
        .args(["-a", "-s", "-screen 0 1280x1024x24"])
        .arg(env!("CARGO_BIN_EXE_livepose"))
        .args([
            "--source",
            "demo",
            "--no-server",
            "--window",
            "1100x560",
            "--capture-after",
            "4",
            "--min-results",
            "15",
        ])
        .arg("--screenshot")
        .arg(&screenshot)
        .arg("--state")
        .arg(&state_path)
        .env("WGPU_BACKEND", "vulkan")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the app did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "app exit status {status}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&state).unwrap());

    // Results arrived, from the demo clip, with the frame it was computed on.
    assert!(
        state["results_received"].as_u64().unwrap() >= 15,
        "results: {}",
        state["results_received"]
    );
    assert!(state["source"].as_str().unwrap().contains("kenburns_messi"));
    assert_eq!(state["video_frame_size"], serde_json::json!([640, 480]));
    assert!(state["inference_error"].is_null());
    assert_eq!(
        state["newest_pose_landmarks_px"].as_array().unwrap().len(),
        33
    );

    // The overlay was drawn inside the video rectangle, where the screenshot shows the body colour.
    let png = image::open(&screenshot).unwrap().to_rgb8();
    let rect: Vec<f32> = state["video_rect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let points = state["overlay"]["body_points_in_window"]
        .as_array()
        .unwrap();
    assert!(
        points.len() >= 15,
        "only {} body points drawn",
        points.len()
    );
    let mut coloured = 0;
    for p in points {
        let (x, y) = (
            p[1][0].as_f64().unwrap() as f32,
            p[1][1].as_f64().unwrap() as f32,
        );
        assert!(
            x >= rect[0] && x <= rect[0] + rect[2] && y >= rect[1] && y <= rect[1] + rect[3],
            "point ({x}, {y}) outside the video"
        );
        let near = (-4..=4)
            .flat_map(|dy| (-4..=4).map(move |dx| (x as i64 + dx, y as i64 + dy)))
            .any(|(px, py)| {
                px >= 0
                    && py >= 0
                    && (px as u32) < png.width()
                    && (py as u32) < png.height()
                    && is_body_colour(png.get_pixel(px as u32, py as u32))
            });
        coloured += usize::from(near);
    }
    assert!(
        coloured * 10 >= points.len() * 8,
        "body colour at only {coloured} of {} drawn points",
        points.len()
    );

    // The 3D view shows the avatar in the body colour.
    let view: Vec<u32> = state["view3d_rect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as u32)
        .collect();
    let avatar_pixels = (view[1]..(view[1] + view[3]).min(png.height()))
        .flat_map(|y| (view[0]..(view[0] + view[2]).min(png.width())).map(move |x| (x, y)))
        .filter(|&(x, y)| is_body_colour(png.get_pixel(x, y)))
        .count();
    assert!(
        avatar_pixels > 200,
        "avatar: {avatar_pixels} body-coloured pixels in the 3D view"
    );

    // The angle panel shows numbers in degrees.
    let rows = state["panel"]["angle_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let with_numbers = rows
        .iter()
        .filter(|r| r[1].as_str().unwrap().ends_with('°'))
        .count();
    assert!(with_numbers >= 8, "only {with_numbers} angles shown");
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}
