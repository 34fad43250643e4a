//! Test mode (`--screenshot-after`, hidden from `--help`): once enough results have arrived, save a
//! screenshot of the window and a JSON dump of the app's own state (results, what the overlay drew and
//! where, what the angle panel shows, the measured rates), then exit. Used by the headless integration
//! test, `make screenshot` and `make bench-app`. Only in this mode do the overlay and the avatar record
//! what they drew (the plugin adds [`OverlayDrawn`] and [`AvatarDrawn`]); otherwise nothing is kept.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use crate::app::avatar::{AvatarDrawn, AvatarDump};
use crate::app::browser::BrowserServer;
use crate::app::overlay::{Layout, OverlayDrawn, Video};
use crate::app::results::{Inference, Results};
use crate::app::source::ActiveSource;
use crate::app::stats::{Stats, percentiles};
use crate::app::ui::PanelText;
use crate::app::view3d::View3dCamera;
use crate::app::{AppSettings, AppSystems, SourceChoice};
use crate::vision::timings::Stage;

/// What to capture and when.
#[derive(Clone, Debug, PartialEq)]
pub struct ScreenshotRequest {
    /// Wait at least this long after start…
    pub after: Duration,
    /// …and for at least this many results (giving up after `after × 6`).
    pub min_results: u64,
    pub screenshot: PathBuf,
    pub state: PathBuf,
}

#[derive(Resource)]
struct ScreenshotState {
    started: Instant,
    requested: bool,
    /// The overlay as drawn in the update whose frame the screenshot shows.
    overlay: Option<OverlayDrawn>,
    /// The sequence number of the video frame on screen in that update.
    shown_frame_seq: Option<u64>,
    /// The avatar's pose and the 3D camera in that update.
    avatar: Option<AvatarDump>,
    camera3d: Option<Camera3dDump>,
    /// Every result the app took: its frame and everyone in it (id, hip centre in image px).
    people_seen: crate::mailbox::Ring<PeopleSeen>,
}

/// One result's people, as the app took them.
#[derive(Clone, Debug, serde::Serialize)]
struct PeopleSeen {
    frame_seq: u64,
    /// (id, hip centre, the 33 landmarks; image px), in id order.
    people: Vec<(crate::vision::PersonId, [f32; 2], Vec<[f32; 2]>)>,
    followed: Option<crate::vision::PersonId>,
}

/// Results remembered for the dump (10 s at 30 results/s).
const PEOPLE_SEEN: usize = 300;

/// Notes every result's people (test mode only).
fn note_people(
    results: Res<Results>,
    followed: Res<crate::app::results::Followed>,
    mut state: ResMut<ScreenshotState>,
) {
    if !results.changed() || state.requested {
        return;
    }
    let Some(newest) = &results.newest else {
        return;
    };
    let people = newest
        .result
        .people
        .iter()
        .filter_map(|p| {
            let body = crate::vision::people::BodyInImage::from_landmarks(&p.pose.landmarks)?;
            let landmarks = p.pose.landmarks.iter().map(|l| l.pos_in_image).collect();
            Some((p.id, body.hips_in_image, landmarks))
        })
        .collect();
    state.people_seen.push(PeopleSeen {
        frame_seq: newest.meta.seq,
        people,
        followed: followed.current,
    });
}

/// The 3D view's camera as it renders the screenshot: where it is, how it projects, its viewport.
#[derive(Clone, Debug, serde::Serialize)]
struct Camera3dDump {
    translation: [f32; 3],
    rotation_xyzw: [f32; 4],
    /// Vertical field of view (radians) and near plane (m) of the perspective projection.
    fov_y: f32,
    near_m: f32,
    /// The viewport in logical window pixels: x, y, width, height.
    viewport: [f32; 4],
    /// Bevy's own projection of each avatar joint (`Camera::world_to_viewport`: logical window px), by
    /// bone name; a cross-check for the test's projection.
    joints_in_viewport: Vec<(String, [f32; 2])>,
}

fn camera_dump(
    camera: &Camera,
    transform: &Transform,
    projection: &Projection,
    layout: &Layout,
    avatar: &AvatarDrawn,
) -> Option<Camera3dDump> {
    let Projection::Perspective(perspective) = projection else {
        return None;
    };
    let global = GlobalTransform::from(*transform);
    // The camera renders into a texture at a fraction of the view's size, shown over the view's
    // rectangle: its viewport coordinates, scaled to the rectangle and moved to its corner, are window px.
    let scale = camera
        .logical_viewport_size()
        .map_or(Vec2::ONE, |size| layout.view3d_size / size.max(Vec2::ONE));
    let joints_in_viewport = joint_positions(avatar)
        .into_iter()
        .filter_map(|(name, p)| {
            camera
                .world_to_viewport(&global, p)
                .ok()
                .map(|v| (name, (layout.view3d_min + v * scale).to_array()))
        })
        .collect();
    Some(Camera3dDump {
        translation: transform.translation.to_array(),
        rotation_xyzw: transform.rotation.to_array(),
        fov_y: perspective.fov,
        near_m: perspective.near,
        viewport: [
            layout.view3d_min.x,
            layout.view3d_min.y,
            layout.view3d_size.x,
            layout.view3d_size.y,
        ],
        joints_in_viewport,
    })
}

/// Forward kinematics of the drawn pose: each joint's position, by bone name.
fn joint_positions(avatar: &AvatarDrawn) -> Vec<(String, Vec3)> {
    use crate::motion::skeleton::{Bone, forward};
    let (Some(pose), Some(rest)) = (&avatar.pose, &avatar.rest) else {
        return Vec::new();
    };
    Bone::all()
        .map(Bone::name)
        .zip(forward(rest, pose).pos_m)
        .collect()
}

#[allow(
    clippy::too_many_arguments,
    reason = "snapshots every drawn state of the update"
)]
fn maybe_screenshot(
    mut commands: Commands,
    settings: Res<AppSettings>,
    results: Res<Results>,
    overlay: Res<OverlayDrawn>,
    video: Res<Video>,
    avatar: Res<AvatarDrawn>,
    layout: Res<Layout>,
    camera3d: Query<(&Camera, &Transform, &Projection), With<View3dCamera>>,
    mut state: ResMut<ScreenshotState>,
) {
    let Some(request) = &settings.screenshot else {
        return;
    };
    if state.requested {
        return;
    }
    let elapsed = state.started.elapsed();
    let enough = results.received >= request.min_results;
    if elapsed >= request.after && (enough || elapsed >= request.after * 6) {
        state.requested = true;
        state.overlay = Some(overlay.clone());
        state.shown_frame_seq = video.frame_seq;
        state.avatar = Some(avatar.dump());
        state.camera3d = camera3d
            .single()
            .ok()
            .and_then(|(c, t, p)| camera_dump(c, t, p, &layout, &avatar));
        commands
            .spawn(Screenshot::primary_window())
            .observe(on_captured);
    }
}

#[derive(serde::Serialize)]
struct StateDump<'a> {
    /// Results the app took from the stream shown.
    results_received: u64,
    /// The stream shown: frames published into it, dropped by its latest-wins slot, results.
    frames_published: u64,
    frames_dropped: u64,
    stream_results: u64,
    /// The inference service: engines loaded, workers, ONNX Runtime thread budget, reloads.
    service: Option<crate::service::ServiceStats>,
    /// Every stream of the process (the app's source and each browser tab).
    streams: Vec<crate::service::StreamInfo>,
    /// The video frame on screen when the screenshot was taken (its source's sequence number).
    shown_frame_seq: Option<u64>,
    source: String,
    source_note: Option<String>,
    inference_error: Option<String>,
    render_fps: f32,
    inference_fps: f32,
    capture_fps: f32,
    /// Capture to the video texture written (in `Update`), ms.
    latency_ms_p50: f32,
    latency_ms_p95: f32,
    /// Capture to the frame that first shows it handed to the display (`app::present`), ms.
    present_latency_ms_p50: f32,
    present_latency_ms_p95: f32,
    /// Window frames presented, and video frames presented, since the start.
    frames_presented: u64,
    video_frames_presented: u64,
    display_mode: &'static str,
    /// Updates in which the 3D view was rendered (something in it changed), of all updates.
    view3d_renders: u64,
    view3d_updates: u64,
    /// Pipelined rendering, the swap chain's maximum frame latency, the present mode asked for.
    render_tuning: String,
    inference_total_ms_p50: f32,
    inference_total_ms_p95: f32,
    window: [f32; 2],
    video_rect: [f32; 4],
    view3d_rect: [f32; 4],
    video_frame_size: [u32; 2],
    overlay: &'a OverlayDrawn,
    /// The avatar's pose drawn in the screenshot's update, and the 3D camera.
    avatar: Option<&'a AvatarDump>,
    camera3d: Option<&'a Camera3dDump>,
    panel: &'a PanelText,
    newest_pose_landmarks_px: Option<Vec<[f32; 2]>>,
    newest_hands: usize,
    /// Every result the app took (up to the last 300): its frame and everyone in it.
    people_seen: Vec<PeopleSeen>,
    /// Avatars drawn in the 3D view.
    avatars: usize,
    /// WebSocket clients connected to the built-in server.
    browser_clients: usize,
    /// Seconds since the app started, and the CPU seconds each thread name used in that time (Linux:
    /// `/proc/self/task`; empty elsewhere; names are cut to 15 characters by Linux). The service's
    /// "livepose-infer-N" workers run inference (ONNX Runtime's pool threads, if any, inherit that name);
    /// the main thread, "Compute Task Po…" and Mesa's "llvmpipe-N" render; "livepose-conn-N" are the
    /// built-in server's connections.
    wall_seconds: f64,
    cpu_seconds_by_thread: std::collections::BTreeMap<String, f64>,
    /// The recording, if one runs: its folder, frames written, results not written, error.
    recording: Option<RecordingDump>,
    /// A session replay's controls, if the source is one.
    replay: Option<ReplayDump>,
}

#[derive(serde::Serialize)]
struct RecordingDump {
    dir: std::path::PathBuf,
    frames: u64,
    not_written: u64,
    error: Option<String>,
}

#[derive(serde::Serialize)]
struct ReplayDump {
    frames: usize,
    position: usize,
    paused: bool,
    speed: f32,
    show_recorded: bool,
}

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on every Linux architecture Rust targets
/// here).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) used by this process's threads, summed by thread name.
fn cpu_seconds_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let Some((_, after_name)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            // "Compute Task Pool (1)" and "llvmpipe-3" are grouped by their name without the number.
            let name = name
                .trim()
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == ')' || c == '(' || c == '-')
                .trim_end()
                .to_owned();
            *by_name.entry(name).or_insert(0.0) += (user + system) / USER_HZ;
        }
    }
    by_name
}

#[allow(clippy::too_many_arguments, reason = "a dump of the whole app state")]
fn on_captured(
    captured: On<ScreenshotCaptured>,
    settings: Res<AppSettings>,
    results: Res<Results>,
    inference: Res<Inference>,
    source: Res<ActiveSource>,
    stats: Res<Stats>,
    layout: Res<Layout>,
    video: Res<Video>,
    capture: Res<ScreenshotState>,
    panel: Res<PanelText>,
    browser: Res<BrowserServer>,
    recording: Res<crate::app::record::Recording>,
    present: Res<crate::app::present::PresentClock>,
    view3d: Res<crate::app::view3d::View3dTarget>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(request) = &settings.screenshot else {
        return;
    };
    let mut ok = true;
    match captured.image.clone().try_into_dynamic() {
        Ok(image) => {
            if let Err(e) = image.to_rgb8().save(&request.screenshot) {
                error!("cannot save {}: {e}", request.screenshot.display());
                ok = false;
            }
        }
        Err(e) => {
            error!("cannot convert the screenshot: {e}");
            ok = false;
        }
    }
    let (latency_p50, latency_p95) = percentiles(&stats.latency_ms);
    let (present_p50, present_p95) = percentiles(&present.latency_ms());
    let (frames_presented, video_frames_presented) = present.counts();
    let (total_p50, total_p95) = stats.stage(Stage::Total);
    let status = source.status();
    let stream = inference.stream_stats().unwrap_or_default();
    let empty = OverlayDrawn::default();
    let dump = StateDump {
        results_received: results.received,
        frames_published: stream.received,
        frames_dropped: stream.dropped,
        stream_results: stream.results,
        service: inference.service.as_ref().map(|s| s.stats()),
        streams: inference
            .service
            .as_ref()
            .map(|s| s.streams())
            .unwrap_or_default(),
        shown_frame_seq: capture.shown_frame_seq,
        source: if source.choice == Some(SourceChoice::Browser) {
            "browser".to_owned()
        } else {
            status.name
        },
        source_note: source.note.clone(),
        inference_error: inference.error.clone(),
        render_fps: stats.render_fps(),
        inference_fps: stats.inference_fps(),
        capture_fps: status.capture_fps,
        latency_ms_p50: latency_p50,
        latency_ms_p95: latency_p95,
        present_latency_ms_p50: present_p50,
        present_latency_ms_p95: present_p95,
        frames_presented,
        video_frames_presented,
        display_mode: settings.display_mode.name(),
        view3d_renders: view3d.renders,
        view3d_updates: view3d.updates,
        render_tuning: format!("{:?}", settings.render),
        inference_total_ms_p50: total_p50,
        inference_total_ms_p95: total_p95,
        window: layout.window.to_array(),
        video_rect: [
            layout.video_min.x,
            layout.video_min.y,
            layout.video_size.x,
            layout.video_size.y,
        ],
        view3d_rect: [
            layout.view3d_min.x,
            layout.view3d_min.y,
            layout.view3d_size.x,
            layout.view3d_size.y,
        ],
        video_frame_size: video.frame_size.to_array(),
        overlay: capture.overlay.as_ref().unwrap_or(&empty),
        avatar: capture.avatar.as_ref(),
        camera3d: capture.camera3d.as_ref(),
        panel: &panel,
        newest_pose_landmarks_px: results
            .newest
            .as_ref()
            .and_then(|n| n.result.pose.as_ref())
            .map(|p| p.landmarks.iter().map(|l| l.pos_in_image).collect()),
        newest_hands: results.newest.as_ref().map_or(0, |n| n.result.hands.len()),
        people_seen: capture.people_seen.iter().cloned().collect(),
        avatars: capture.avatar.as_ref().map_or(0, |a| a.avatars),
        browser_clients: browser.stats.as_ref().map_or(0, |s| s.clients.len()),
        wall_seconds: capture.started.elapsed().as_secs_f64(),
        cpu_seconds_by_thread: cpu_seconds_by_thread(),
        recording: recording.status().map(|r| RecordingDump {
            dir: r.dir,
            frames: r.frames,
            not_written: r.not_written,
            error: r.error,
        }),
        replay: source
            .handle
            .as_ref()
            .and_then(|h| h.replay.as_ref())
            .map(|c| ReplayDump {
                frames: c.frames,
                position: c.position(),
                paused: c.paused(),
                speed: c.speed(),
                show_recorded: c.show_recorded(),
            }),
    };
    match serde_json::to_vec_pretty(&dump) {
        Ok(bytes) => {
            if let Err(e) = std::fs::write(&request.state, bytes) {
                error!("cannot write {}: {e}", request.state.display());
                ok = false;
            }
        }
        Err(e) => {
            error!("cannot serialise the state: {e}");
            ok = false;
        }
    }
    info!(
        "capture done: {} results, screenshot {}",
        results.received,
        request.screenshot.display()
    );
    exit.write(if ok {
        AppExit::Success
    } else {
        AppExit::error()
    });
}

pub(super) fn plugin(app: &mut App) {
    if app.world().resource::<AppSettings>().screenshot.is_none() {
        return;
    }
    // What was drawn is recorded only now, for the dump.
    app.init_resource::<OverlayDrawn>()
        .init_resource::<AvatarDrawn>();
    app.insert_resource(ScreenshotState {
        started: Instant::now(),
        requested: false,
        overlay: None,
        shown_frame_seq: None,
        avatar: None,
        camera3d: None,
        people_seen: crate::mailbox::Ring::new(PEOPLE_SEEN),
    })
    .add_systems(
        Update,
        note_people
            .after(AppSystems::Receive)
            .before(AppSystems::Present),
    )
    .add_systems(Update, maybe_screenshot.after(AppSystems::Present));
}
