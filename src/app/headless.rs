//! Test mode (`--capture-after`): once enough results have arrived, save a screenshot of the window and a
//! JSON dump of the app's own state (results, what the overlay drew and where, what the angle panel
//! shows, the measured rates), then exit. Used by the headless integration test and the README command.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use crate::app::overlay::{Layout, OverlayDrawn, Video};
use crate::app::pipeline::{ActiveSource, Inference, Results, SharedSlot};
use crate::app::stats::{Stats, percentiles};
use crate::app::ui::PanelText;
use crate::app::{AppSettings, AppSystems};
use crate::vision::timings::Stage;

/// What to capture and when.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureRequest {
    /// Wait at least this long after start…
    pub after: Duration,
    /// …and for at least this many results (giving up after `after × 6`).
    pub min_results: u64,
    pub screenshot: PathBuf,
    pub state: PathBuf,
}

#[derive(Resource)]
struct CaptureState {
    started: Instant,
    requested: bool,
    /// The overlay as drawn in the update whose frame the screenshot shows.
    overlay: Option<OverlayDrawn>,
}

fn maybe_capture(
    mut commands: Commands,
    settings: Res<AppSettings>,
    results: Res<Results>,
    overlay: Res<OverlayDrawn>,
    mut state: ResMut<CaptureState>,
) {
    let Some(request) = &settings.capture else {
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
        commands
            .spawn(Screenshot::primary_window())
            .observe(on_captured);
    }
}

#[derive(serde::Serialize)]
struct StateDump<'a> {
    results_received: u64,
    frames_dispatched: u64,
    results_superseded: u64,
    frames_published: u64,
    frames_dropped: u64,
    source: String,
    source_note: Option<String>,
    inference_error: Option<String>,
    render_fps: f32,
    inference_fps: f32,
    capture_fps: f32,
    latency_ms_p50: f32,
    latency_ms_p95: f32,
    inference_total_ms_p50: f32,
    inference_total_ms_p95: f32,
    window: [f32; 2],
    video_rect: [f32; 4],
    view3d_rect: [f32; 4],
    video_frame_size: [u32; 2],
    overlay: &'a OverlayDrawn,
    panel: &'a PanelText,
    newest_pose_landmarks_px: Option<Vec<[f32; 2]>>,
    newest_hands: usize,
}

#[allow(clippy::too_many_arguments, reason = "a dump of the whole app state")]
fn on_captured(
    captured: On<ScreenshotCaptured>,
    settings: Res<AppSettings>,
    results: Res<Results>,
    inference: Res<Inference>,
    slot: Res<SharedSlot>,
    source: Res<ActiveSource>,
    stats: Res<Stats>,
    layout: Res<Layout>,
    video: Res<Video>,
    capture: Res<CaptureState>,
    panel: Res<PanelText>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(request) = &settings.capture else {
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
    let (total_p50, total_p95) = stats.stage(Stage::Total);
    let status = source.status();
    let empty = OverlayDrawn::default();
    let dump = StateDump {
        results_received: results.received,
        frames_dispatched: inference.frames_dispatched(),
        results_superseded: inference.results_superseded(),
        frames_published: slot.0.published(),
        frames_dropped: slot.0.dropped(),
        source: status.name,
        source_note: source.note.clone(),
        inference_error: inference.error.clone(),
        render_fps: stats.render_fps(),
        inference_fps: stats.inference_fps(),
        capture_fps: status.capture_fps,
        latency_ms_p50: latency_p50,
        latency_ms_p95: latency_p95,
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
        panel: &panel,
        newest_pose_landmarks_px: results
            .newest
            .as_ref()
            .and_then(|n| n.result.pose.as_ref())
            .map(|p| p.landmarks.iter().map(|l| l.pos_in_image).collect()),
        newest_hands: results.newest.as_ref().map_or(0, |n| n.result.hands.len()),
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
    app.insert_resource(CaptureState {
        started: Instant::now(),
        requested: false,
        overlay: None,
    })
    .add_systems(Update, maybe_capture.after(AppSystems::Present));
}
