//! The livepose app: sources → latest-wins slot → inference on Bevy's async compute pool → video with
//! the 2D skeleton, 3D avatar and joint-angle panel. One plugin per stage; one ordering chain:
//! `Capture → Infer → Present → Ui`.

mod avatar;
pub mod browser;
mod headless;
mod overlay;
pub mod pipeline;
mod stats;
mod ui;

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::window::WindowResolution;

use crate::vision::engine::PoseModel;
use crate::vision::smoothing::SmoothingMethod;

/// Where frames come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceChoice {
    /// This camera if there is one, else the bundled demo clip.
    Auto(crate::source::camera::CameraRequest),
    /// A camera by index.
    Camera(crate::source::camera::CameraRequest),
    /// A clip (`.mjpeg`), an image folder or an image, looping.
    File(PathBuf),
    /// The selected client of the built-in server (a browser tab streaming its camera).
    Browser,
}

/// Everything the user can set, from the command line and live from the panel.
#[derive(Clone, Debug, PartialEq, Resource)]
pub struct AppSettings {
    pub source: SourceChoice,
    /// Frame rate for file sources.
    pub file_fps: f32,
    pub pose_model: PoseModel,
    pub hands: bool,
    pub smoothing: SmoothingMethod,
    pub interpolation: bool,
    pub mirror: bool,
    /// Inference threads (ONNX Runtime); the rest of the CPU is left to rendering.
    pub threads: usize,
    pub models_dir: Option<PathBuf>,
    pub window_size: (u32, u32),
    /// Test mode: after this many seconds, save a screenshot and the app state, then exit.
    pub capture: Option<headless::CaptureRequest>,
    /// The browser client's server (`None`: not serving).
    pub server: Option<crate::server::ServerConfig>,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            source: SourceChoice::Auto(crate::source::camera::CameraRequest::default()),
            file_fps: 30.0,
            pose_model: PoseModel::Full,
            hands: true,
            smoothing: SmoothingMethod::ONE_EURO,
            interpolation: true,
            mirror: false,
            threads: default_app_threads(),
            models_dir: None,
            window_size: (1280, 720),
            capture: None,
            server: None,
        }
    }
}

/// Half the cores (at least 1) for inference, so rendering is never starved.
pub fn default_app_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .div_euclid(2)
        .max(1)
}

pub use headless::CaptureRequest;

/// The stages of a frame, run in this order every update.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppSystems {
    /// Start/stop sources.
    Capture,
    /// Collect a finished inference, start the next.
    Infer,
    /// Update the video texture, overlay and avatar.
    Present,
}

/// Builds and runs the app until the window closes.
pub fn run(settings: AppSettings) -> AppExit {
    let (w, h) = settings.window_size;
    App::new()
        .add_plugins(
            DefaultPlugins
                .set(WindowPlugin {
                    primary_window: Some(Window {
                        title: "livepose".into(),
                        resolution: WindowResolution::new(w, h),
                        ..default()
                    }),
                    ..default()
                })
                .set(pipeline::task_pool_plugin()),
        )
        .add_plugins(bevy_egui::EguiPlugin::default())
        // The panel's context goes on the full-window 2D camera (`overlay`), not on whichever camera is
        // found first: on the 3D camera it would be confined to the 3D viewport.
        .insert_resource(bevy_egui::EguiGlobalSettings {
            auto_create_primary_context: false,
            ..default()
        })
        .insert_resource(settings)
        .insert_resource(ClearColor(Color::srgb(0.08, 0.08, 0.1)))
        .configure_sets(
            Update,
            (AppSystems::Capture, AppSystems::Infer, AppSystems::Present).chain(),
        )
        .add_plugins((
            pipeline::plugin,
            stats::plugin,
            overlay::plugin,
            avatar::plugin,
            browser::plugin,
            ui::plugin,
            headless::plugin,
        ))
        .run()
}
