//! The livepose app: a client of the process's inference service (`crate::service`). The source stage
//! opens a stream for the local source (camera or clip); the built-in server opens one per browser tab;
//! the receive stage subscribes to the selected stream and takes its newest result; the present stage
//! draws the video with the 2D skeleton, the 3D view (the rigged avatar and the world landmarks) and
//! the joint-angle panel. One plugin per stage; one ordering chain: `ActiveSource → Infer → Present`, then the
//! panel in egui's pass. See `docs/ARCHITECTURE.md`.

mod avatar;
mod avatar_body;
pub mod browser;
mod headless;
mod overlay;
pub mod present;
pub mod record;
pub mod results;
mod scene3d;
mod source;
mod stats;
mod ui;
mod view3d;

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::window::WindowResolution;

use crate::vision::EngineConfig;
use crate::vision::config::HandRegions;
use crate::vision::smoothing::SmoothingMethod;

/// The app's default `--max-people`: one inference thread beside rendering; two people (a coach and an
/// athlete, a patient and a therapist) without halving the rate.
pub const APP_MAX_PEOPLE: usize = 2;

/// Where frames come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceChoice {
    /// This camera if there is one, else the bundled demo clip.
    Auto(crate::source::camera::CameraRequest),
    /// A camera by index.
    Camera(crate::source::camera::CameraRequest),
    /// A clip (`.mjpeg`), a video file, an image folder, an image (looping), or a recorded session
    /// folder (replayed at its recorded timing, with pause, seek and speed).
    File(PathBuf),
    /// A tab streaming to the built-in server (the one selected in the panel, else the newest).
    Browser,
}

/// Everything the user can set, from the command line and live from the panel.
#[derive(Clone, Debug, PartialEq, Resource)]
pub struct AppSettings {
    pub source: SourceChoice,
    /// Frame rate for file sources.
    pub file_fps: f32,
    /// The models the app's service runs: the command line's (`cli::ModelArgs::engine_config`, the same
    /// as `analyze` and `serve`); the panel changes the pose model and hands.
    pub engine: EngineConfig,
    /// People tracked at most (`--max-people`, and in the panel).
    pub max_people: usize,
    /// Where new hands are looked for (`--hand-regions`, and in the panel).
    pub hand_regions: HandRegions,
    pub smoothing: SmoothingMethod,
    pub interpolation: bool,
    pub mirror: bool,
    /// Inference threads (ONNX Runtime), the whole budget of the process (the app's own source and
    /// every browser tab); the rest of the CPU is left to rendering.
    pub threads: usize,
    pub window_size: (u32, u32),
    /// Test mode: after this many seconds, save a screenshot and the app state, then exit.
    pub screenshot: Option<headless::ScreenshotRequest>,
    /// The browser client's server (`None`: not serving).
    pub server: Option<crate::server::ServerConfig>,
    /// Where to send the shown stream's motion over VMC (`None`: not sending).
    pub vmc: Option<std::net::SocketAddr>,
    /// `--vmc-every-person`: every person to a port of their own (else the followed person).
    pub vmc_every_person: bool,
    /// What the 3D view shows.
    pub view3d: View3d,
    /// `--record DIR`: record the first stream shown into this session folder.
    pub record_dir: Option<PathBuf>,
    /// A session replay starts by showing its recorded results (else it tracks the frames again).
    pub replay_recorded: bool,
    /// Smooth (the display's rate, blending) or immediate (each result once, as soon as it is ready).
    pub display_mode: present::DisplayMode,
    /// How frames reach the display (fixed at start; hidden options, for measuring).
    pub render: RenderTuning,
}

/// How frames reach the display. The defaults were chosen by measurement (docs/MEASUREMENTS.md, "What
/// the user sees"); the hidden command-line options restore Bevy's own, for comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderTuning {
    /// Bevy's pipelined rendering: the render of update N runs beside update N + 1 (more throughput,
    /// one more frame of latency). Off by default.
    pub pipelined: bool,
    /// The swap chain's maximum frame latency (frames queued ahead of the display): 1 by default (Bevy: 2).
    pub frame_latency: u32,
    /// The present mode; `None`: the display mode's ([`present::present_mode`]).
    pub present_mode: Option<bevy::window::PresentMode>,
}

impl Default for RenderTuning {
    fn default() -> Self {
        Self {
            pipelined: false,
            frame_latency: 1,
            present_mode: None,
        }
    }
}

impl AppSettings {
    /// Whether the drawing blends the last two results: interpolation on, in smooth mode (immediate
    /// mode draws each result as it is).
    pub fn blends(&self) -> bool {
        self.interpolation && self.display_mode == present::DisplayMode::Smooth
    }
}

/// What the 3D view shows: the rigged avatar (the solved skeleton), the world landmarks as joints and
/// bones, or both (the landmarks over the avatar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View3d {
    pub avatar: bool,
    pub landmarks: bool,
}

impl Default for View3d {
    fn default() -> Self {
        Self {
            avatar: true,
            landmarks: false,
        }
    }
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            source: SourceChoice::Auto(crate::source::camera::CameraRequest::default()),
            file_fps: 30.0,
            engine: EngineConfig::default(),
            max_people: APP_MAX_PEOPLE,
            hand_regions: HandRegions::default(),
            smoothing: SmoothingMethod::ONE_EURO,
            interpolation: true,
            mirror: false,
            threads: default_app_threads(),
            window_size: (1280, 720),
            screenshot: None,
            server: None,
            vmc: None,
            vmc_every_person: false,
            view3d: View3d::default(),
            record_dir: None,
            replay_recorded: false,
            display_mode: present::DisplayMode::default(),
            render: RenderTuning::default(),
        }
    }
}

/// Half the cores (at least 1) for inference, so rendering is never starved: on 2 cores, one worker with
/// one thread, and the other core renders.
pub fn default_app_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .div_euclid(2)
        .max(1)
}

pub use headless::ScreenshotRequest;
pub use overlay::{PERSON_COLORS, person_color};

/// The stages of a frame, run in this order every update; every system set of the app is declared
/// here, once, and ordered in [`configure_sets`].
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppSystems {
    /// Start/stop sources (each a stream of the inference service) and the built-in server.
    Source,
    /// Take the newest results of the stream shown (inference runs in the service, not here).
    Receive,
    /// Update the video texture, overlay, avatar and 3D view.
    Present,
}

/// Inside [`AppSystems::Present`]: the avatar is solved and drawn first, then the 3D view's landmarks
/// and camera, which follow the avatar's drawn root (`scene3d::AvatarRoot`).
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresentSystems {
    Avatar,
    View3d,
}

/// Orders every system set of the app (also used by the plugin tests, so they run the same order).
pub fn configure_sets(app: &mut App) {
    app.configure_sets(
        Update,
        (AppSystems::Source, AppSystems::Receive, AppSystems::Present).chain(),
    )
    .configure_sets(
        Update,
        (PresentSystems::Avatar, PresentSystems::View3d)
            .chain()
            .in_set(AppSystems::Present),
    );
}

/// Whether a window can be opened: an X11 or Wayland display is set.
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}

/// Builds and runs the app until the window closes. Check [`display_available`] first.
pub fn run(settings: AppSettings) -> AppExit {
    let (w, h) = settings.window_size;
    let render = settings.render;
    let mut plugins = DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "livepose".into(),
            resolution: WindowResolution::new(w, h),
            present_mode: render
                .present_mode
                .unwrap_or_else(|| present::present_mode(settings.display_mode)),
            desired_maximum_frame_latency: std::num::NonZeroU32::new(render.frame_latency),
            ..default()
        }),
        ..default()
    });
    type Pipelined = bevy::render::pipelined_rendering::PipelinedRenderingPlugin;
    if !render.pipelined && plugins.contains::<Pipelined>() {
        plugins = plugins.disable::<Pipelined>();
    }
    App::new()
        .add_plugins(plugins)
        .add_plugins(bevy_egui::EguiPlugin::default())
        // The panel's context goes on the full-window 2D camera (`overlay`), not on whichever camera is
        // found first: on the 3D camera it would be confined to the 3D viewport.
        .insert_resource(bevy_egui::EguiGlobalSettings {
            auto_create_primary_context: false,
            ..default()
        })
        .insert_resource(settings)
        .insert_resource(ClearColor(Color::srgb(0.08, 0.08, 0.1)))
        .add_plugins(configure_sets)
        .add_plugins((
            results::plugin,
            source::plugin,
            stats::plugin,
            overlay::plugin,
            present::plugin,
            avatar::plugin,
            view3d::plugin,
            browser::plugin,
            record::plugin,
            ui::plugin,
            headless::plugin,
        ))
        .run()
}
