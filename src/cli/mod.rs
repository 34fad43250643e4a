//! The `livepose` command line.

pub mod analyze;
pub mod annotate;
pub mod export;
pub mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::vision::PoseModel;
use crate::vision::pose::{DEFAULT_REFINE_KERNEL, LEGACY_REFINE_KERNEL};
use crate::vision::smoothing::{OneEuroTuning, PROTOTYPE_EMA_ALPHA, SmoothingMethod};

#[derive(Debug, Parser)]
#[command(
    name = "livepose",
    version,
    about = "Real-time body and hand tracking (MediaPipe BlazePose + Hands on ONNX Runtime)"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of the live app (used when no command is given).
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Track people in images, image folders, MJPEG and video files; write JSON (and annotated PNGs).
    Analyze(AnalyzeArgs),
    /// Serve the browser client and its WebSocket without a window, for any number of clients.
    Serve(serve::ServeArgs),
    /// Write a recorded session as CSV, TRC (OpenSim), BVH or JSONL (all four when none is named).
    Export(export::ExportArgs),
    /// Write one self-contained HTML report of a recorded session: joint angles over time, range of
    /// motion, presence, timings and dropped frames.
    Report(export::ReportArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    Lite,
    Full,
    Heavy,
}

impl From<ModelArg> for PoseModel {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Lite => PoseModel::Lite,
            ModelArg::Full => PoseModel::Full,
            ModelArg::Heavy => PoseModel::Heavy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SmoothingArg {
    /// MediaPipe's One Euro filters.
    OneEuro,
    /// The prototype's exponential moving average (see --ema-alpha).
    Ema,
    Off,
}

/// Landmark smoothing, for every command that tracks video.
#[derive(Debug, Clone, Args)]
pub struct SmoothingArgs {
    /// Landmark smoothing for video.
    #[arg(long, value_enum, default_value_t = SmoothingArg::OneEuro)]
    pub smoothing: SmoothingArg,
    /// EMA weight of the newest value (with --smoothing ema).
    #[arg(long, default_value_t = PROTOTYPE_EMA_ALPHA)]
    pub ema_alpha: f32,
    /// One Euro: multiply MediaPipe's min_cutoff by this (below 1: steadier when still, more lag).
    #[arg(long, default_value_t = 1.0)]
    pub one_euro_min_cutoff: f64,
    /// One Euro: multiply MediaPipe's beta by this (above 1: less lag in fast motion, more jitter).
    #[arg(long, default_value_t = 1.0)]
    pub one_euro_beta: f64,
}

impl SmoothingArgs {
    pub fn method(&self) -> SmoothingMethod {
        match self.smoothing {
            SmoothingArg::OneEuro => SmoothingMethod::OneEuro(OneEuroTuning {
                min_cutoff_scale: self.one_euro_min_cutoff,
                beta_scale: self.one_euro_beta,
            }),
            SmoothingArg::Ema => SmoothingMethod::Ema {
                alpha: self.ema_alpha.clamp(0.0, 1.0),
            },
            SmoothingArg::Off => SmoothingMethod::Off,
        }
    }
}

/// Models, inference budget and smoothing: what every command that tracks shares (the app, `analyze`,
/// `serve`).
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Pose landmark model.
    #[arg(long, value_enum, default_value_t = ModelArg::Full)]
    pub model: ModelArg,
    /// Body only: do not run the hand models.
    #[arg(long)]
    pub no_hands: bool,
    /// Folder holding the ONNX models [default: $LIVEPOSE_MODELS, ./models, or the build's models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// ONNX Runtime threads for inference, the whole process's budget [default: the app: half the
    /// cores, so the rest is left to rendering; analyze and serve: the cores, at most 4].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Option<u32>,
    /// People tracked at most, each with an id of their own (each costs one pose model run per frame)
    /// [default: analyze 3, serve 2, the app 2; see the user guide for why].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub max_people: Option<u32>,
    /// Where a hand not tracked yet is looked for: `pose`, each person's wrist, index and pinky
    /// landmarks of the previous frame (MediaPipe Holistic; the palm detector only while nobody is in
    /// view); `palm`, the palm detector over the whole frame (MediaPipe Hands), each hand then given to
    /// the person whose wrist it is at. Static mode and --legacy use the palm detector.
    #[arg(long, value_enum, default_value_t = HandRegionsArg::Pose)]
    pub hand_regions: HandRegionsArg,
    #[command(flatten)]
    pub smoothing: SmoothingArgs,
}

impl ModelArgs {
    /// The engine these flags ask for (threads are set by the service from its budget).
    pub fn engine_config(&self) -> crate::vision::EngineConfig {
        let mut config = crate::vision::EngineConfig {
            pose_model: self.model.into(),
            hands: !self.no_hands,
            ..Default::default()
        };
        if let Some(dir) = &self.models {
            config.models_dir = dir.clone();
        }
        config
    }

    /// `--threads`, or `default`.
    pub fn threads_or(&self, default: usize) -> usize {
        self.threads.map_or(default, |t| t as usize).max(1)
    }

    /// `--max-people`, or `default`.
    pub fn max_people_or(&self, default: usize) -> usize {
        self.max_people.map_or(default, |n| n as usize).max(1)
    }
}

/// `analyze`'s default `--max-people`: files are analysed offline, where every person in view matters
/// more than speed (each more person costs one pose model run per frame; see the user guide).
pub const ANALYZE_MAX_PEOPLE: usize = 3;
/// `serve`'s: every client's stream shares the server's cores, and a tab or phone usually films one or
/// two people.
pub const SERVE_MAX_PEOPLE: usize = 2;

/// Engine settings of the commands that run the models without a window (`analyze`, `serve`).
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Inference workers, each with its own engine and an equal share of --threads [default: one per
    /// thread].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: Option<u32>,
    /// Pose heatmap refinement window (7 = MediaPipe's graph; 9 = the legacy Python API).
    #[arg(long, default_value_t = DEFAULT_REFINE_KERNEL)]
    pub refine_kernel: usize,
    /// Reproduce the legacy `mp.solutions` Python API exactly: one person, MediaPipe's video-mode
    /// tracker, refinement kernel 9, hands not smoothed, palm detector every frame while fewer than two
    /// hands are tracked (implies --max-people 1).
    #[arg(long, conflicts_with = "max_people")]
    pub legacy: bool,
    /// Frames are mirrored (selfie view); decides which hand is the person's left.
    #[arg(long)]
    pub mirrored: bool,
    /// While fewer than two hands are tracked, run the palm detector every N frames (1 = every frame,
    /// as MediaPipe; --legacy sets 1).
    #[arg(long, default_value_t = crate::vision::config::DEFAULT_PALM_DETECTION_EVERY, value_parser = clap::value_parser!(u32).range(1..))]
    pub palm_every: u32,
}

/// `--hand-regions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HandRegionsArg {
    Palm,
    Pose,
}

impl From<HandRegionsArg> for crate::vision::config::HandRegions {
    fn from(arg: HandRegionsArg) -> Self {
        match arg {
            HandRegionsArg::Palm => Self::Palm,
            HandRegionsArg::Pose => Self::Pose,
        }
    }
}

impl EngineArgs {
    pub fn engine_config(&self) -> crate::vision::EngineConfig {
        crate::vision::EngineConfig {
            refine_kernel: if self.legacy {
                LEGACY_REFINE_KERNEL
            } else {
                self.refine_kernel
            },
            input_is_mirrored: self.mirrored,
            ..self.model.engine_config()
        }
    }

    /// The inference service: `--threads` (default: the cores, at most 4) over `--workers` (default:
    /// one per thread).
    pub fn service_config(&self) -> crate::service::ServiceConfig {
        let threads = self
            .model
            .threads_or(crate::vision::config::default_threads());
        let workers = self.workers.map_or(threads, |w| w as usize);
        crate::service::ServiceConfig::new(self.engine_config(), threads, workers)
    }

    pub fn smoothing(&self) -> SmoothingMethod {
        self.model.smoothing.method()
    }

    /// How a stream is tracked in video mode; `default_max_people` unless `--max-people` (`--legacy`:
    /// one, MediaPipe's tracker).
    pub fn video_tracker_config(&self, default_max_people: usize) -> crate::vision::TrackerConfig {
        crate::vision::TrackerConfig {
            smoothing: self.smoothing(),
            smooth_hands: !self.legacy,
            palm_detection_every: if self.legacy { 1 } else { self.palm_every },
            legacy: self.legacy,
            hand_regions: if self.legacy {
                crate::vision::config::HandRegions::Palm
            } else {
                self.model.hand_regions.into()
            },
            ..crate::vision::TrackerConfig::VIDEO
        }
        .with_max_people(self.max_people(default_max_people))
    }

    /// Every frame on its own (MediaPipe's static mode), up to the same number of people.
    pub fn static_tracker_config(&self, default_max_people: usize) -> crate::vision::TrackerConfig {
        crate::vision::TrackerConfig::STATIC.with_max_people(self.max_people(default_max_people))
    }

    fn max_people(&self, default: usize) -> usize {
        if self.legacy {
            1
        } else {
            self.model.max_people_or(default)
        }
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Image files (PNG, JPEG, WebP), folders of images, .mjpeg files (concatenated JPEG frames), or
    /// video files (MP4, MOV, MKV, WebM, AVI, …; decoded by FFmpeg, stamped with their own timestamps).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder for <stem>.json (images) and <stem>.jsonl (clips).
    #[arg(long)]
    pub out: PathBuf,
    /// Treat every video frame on its own: no tracking, no smoothing (MediaPipe's static_image_mode).
    #[arg(long)]
    pub r#static: bool,
    /// Also write PNGs with the skeleton drawn (clips: <stem>/NNNNN.png).
    #[arg(long)]
    pub annotate: bool,
    /// Clips: also solve the humanoid skeleton and write its motion to <stem>.bvh (centimetres, y up,
    /// ZXY rotations, resampled at --fps), and print how closely it follows the landmarks.
    #[arg(long)]
    pub bvh: bool,
    /// Clips: also write <stem>.landmarks.csv (every landmark's image and world coordinates) and
    /// <stem>.angles.csv (each joint angle in degrees with its confidence), one row per frame.
    #[arg(long)]
    pub csv: bool,
    /// Clips: also write <stem>.trc, OpenSim's marker format (the 33 world landmarks in mm, y up).
    #[arg(long)]
    pub trc: bool,
    /// Frame rate of .mjpeg inputs, for timestamps (videos use their own presentation times) (frame k is stamped (k+1)·round(1e6/fps) µs, as the
    /// MediaPipe references).
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Live motion out (the app and `serve`).
#[derive(Debug, Clone, Args)]
pub struct MotionArgs {
    /// Send the solved skeleton over VMC (OSC over UDP) to HOST:PORT, one bundle per result; `--vmc`
    /// alone sends to 127.0.0.1:39539 (VSeeFace's, Warudo's and EVMC4U's default).
    #[arg(long, value_name = "HOST:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:39539",
          value_parser = parse_vmc)]
    pub vmc: Option<std::net::SocketAddr>,
    /// With --vmc: send every person (up to --max-people), each to a port of their own: the first to
    /// --vmc's port, the next to the port after it, and so on (one VSeeFace, Warudo or Unity receiver
    /// per person). Without it, --vmc sends the followed person only.
    #[arg(long, requires = "vmc")]
    pub vmc_every_person: bool,
}

fn parse_vmc(text: &str) -> Result<std::net::SocketAddr, String> {
    crate::motion::vmc::parse_target(text).map_err(|e| e.to_string())
}

/// `--view3d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View3dArg {
    Avatar,
    Landmarks,
    Both,
}

#[cfg(feature = "app")]
impl From<View3dArg> for crate::app::View3d {
    fn from(arg: View3dArg) -> Self {
        Self {
            avatar: arg != View3dArg::Landmarks,
            landmarks: arg != View3dArg::Avatar,
        }
    }
}

/// The live app's settings (`livepose` with no command).
#[derive(Debug, Clone, Args)]
pub struct AppArgs {
    /// Where frames come from: `auto` (camera 0, else the bundled demo clip), `camera`, `demo`,
    /// `browser` (a tab streaming to the built-in server), or the path of an .mjpeg clip, a video file
    /// (MP4, MOV, MKV, WebM, AVI, …), an image folder or an image (played looping), or a recorded
    /// session folder (replayed at its recorded timing; pause, seek and speed in the panel).
    #[arg(long, default_value = "auto")]
    pub source: String,
    /// Camera index (with --source auto or camera).
    #[arg(long, default_value_t = 0)]
    pub camera: u32,
    /// Camera resolution, WIDTHxHEIGHT (the closest the camera offers is used; MJPEG preferred).
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    pub resolution: (u32, u32),
    /// Camera frame rate, and the playback rate of files.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub fps: u32,
    /// List the cameras and exit.
    #[arg(long)]
    pub list_cameras: bool,
    /// Models, threads and smoothing (the model, hands and smoothing can also be changed in the panel).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Draw the newest result as is instead of blending the last two.
    #[arg(long)]
    pub no_interpolation: bool,
    /// How the window updates: `smooth` renders at the display's rate and blends the last two results;
    /// `immediate` draws each result once, as soon as it is ready (lowest latency and power). Also in
    /// the panel.
    #[arg(long, value_enum, default_value_t = DisplayModeArg::Smooth)]
    pub display_mode: DisplayModeArg,
    /// Show the video mirrored (selfie view).
    #[arg(long)]
    pub mirror: bool,
    /// Window size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    pub window: (u32, u32),
    /// What the 3D view shows: the rigged avatar (the solved skeleton, as BVH and VMC send it), the world
    /// landmarks as joints and bones, or both (also switchable in the panel).
    #[arg(long, value_enum, default_value_t = View3dArg::Avatar)]
    pub view3d: View3dArg,
    /// Record the shown stream (frames as they arrived, results, settings) into this session folder;
    /// the panel's Record button records into livepose-sessions/ instead. Replay one with --source DIR.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// With --source SESSION_DIR: start by showing the recorded results instead of tracking the
    /// frames again (switchable in the panel).
    #[arg(long)]
    pub replay_recorded: bool,
    /// Do not serve the browser client.
    #[arg(long)]
    pub no_server: bool,
    #[command(flatten)]
    pub motion: MotionArgs,
    #[command(flatten)]
    pub server: serve::ServerArgs,
    /// Test mode (hidden from --help; `make screenshot`, the headless tests, `make bench-app`): after
    /// this many seconds save --screenshot and --state, then exit.
    #[arg(long, hide = true, requires_all = ["screenshot", "state"])]
    pub screenshot_after: Option<f32>,
    /// Test mode: also wait for this many results (at most 6× --screenshot-after).
    #[arg(long, hide = true, default_value_t = 1)]
    pub min_results: u64,
    /// Test mode: where to save the screenshot (PNG).
    #[arg(long, hide = true, requires = "screenshot_after")]
    pub screenshot: Option<PathBuf>,
    /// Test mode: where to save the app state (JSON), with what was drawn where.
    #[arg(long, hide = true, requires = "screenshot_after")]
    pub state: Option<PathBuf>,
    /// Measuring (hidden): Bevy's pipelined rendering on (off by default).
    #[arg(long, hide = true)]
    pub pipelined_rendering: bool,
    /// Measuring (hidden): the swap chain's maximum frame latency (default 1; Bevy's is 2).
    #[arg(long, hide = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub frame_latency: u32,
    /// Measuring (hidden): the present mode (default: the display mode's).
    #[arg(long, hide = true, value_enum)]
    pub present_mode: Option<PresentModeArg>,
}

/// `--display-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DisplayModeArg {
    Smooth,
    Immediate,
}

/// `--present-mode` (hidden).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresentModeArg {
    Fifo,
    Mailbox,
    Immediate,
    AutoVsync,
    AutoNoVsync,
}

#[cfg(feature = "app")]
impl From<DisplayModeArg> for crate::app::present::DisplayMode {
    fn from(arg: DisplayModeArg) -> Self {
        match arg {
            DisplayModeArg::Smooth => Self::Smooth,
            DisplayModeArg::Immediate => Self::Immediate,
        }
    }
}

#[cfg(feature = "app")]
impl From<PresentModeArg> for bevy::window::PresentMode {
    fn from(arg: PresentModeArg) -> Self {
        match arg {
            PresentModeArg::Fifo => Self::Fifo,
            PresentModeArg::Mailbox => Self::Mailbox,
            PresentModeArg::Immediate => Self::Immediate,
            PresentModeArg::AutoVsync => Self::AutoVsync,
            PresentModeArg::AutoNoVsync => Self::AutoNoVsync,
        }
    }
}

pub(crate) fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X', '*'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| (16..=8192).contains(v))
    };
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!(
            "expected WIDTHxHEIGHT with sides 16..=8192, got {s:?}"
        )),
    }
}

#[cfg(feature = "app")]
impl AppArgs {
    /// The app settings these flags ask for.
    pub fn settings(&self) -> anyhow::Result<crate::app::AppSettings> {
        use crate::app::{AppSettings, ScreenshotRequest, SourceChoice};
        use crate::source::camera::CameraRequest;
        let camera = CameraRequest {
            index: self.camera,
            width: self.resolution.0,
            height: self.resolution.1,
            fps: self.fps,
        };
        let source = match self.source.as_str() {
            "auto" => SourceChoice::Auto(camera),
            "camera" => SourceChoice::Camera(camera),
            "demo" => SourceChoice::File(crate::source::demo::bundled_demo_clip()),
            "browser" => {
                anyhow::ensure!(
                    !self.no_server,
                    "--source browser needs the server (drop --no-server)"
                );
                SourceChoice::Browser
            }
            path => {
                let path = PathBuf::from(path);
                anyhow::ensure!(
                    path.exists(),
                    "--source {}: no such file or folder (use auto, camera, demo or a path)",
                    path.display()
                );
                SourceChoice::File(path)
            }
        };
        let screenshot = match (self.screenshot_after, &self.screenshot, &self.state) {
            (Some(after), Some(screenshot), Some(state)) => {
                anyhow::ensure!(
                    after.is_finite() && after >= 0.0,
                    "--screenshot-after must be a number of seconds"
                );
                Some(ScreenshotRequest {
                    after: std::time::Duration::from_secs_f32(after),
                    min_results: self.min_results,
                    screenshot: screenshot.clone(),
                    state: state.clone(),
                })
            }
            _ => None,
        };
        let smoothing = self.model.smoothing.method();
        let threads = self.model.threads_or(crate::app::default_app_threads());
        // The app sets the server's engine and tracker from its own settings (`app::browser`).
        let server = if self.no_server {
            None
        } else {
            self.server.warn_if_remote();
            Some(
                self.server
                    .server_config(crate::vision::TrackerConfig::VIDEO)?,
            )
        };
        Ok(AppSettings {
            source,
            file_fps: self.fps as f32,
            engine: self.model.engine_config(),
            max_people: self.model.max_people_or(crate::app::APP_MAX_PEOPLE),
            hand_regions: self.model.hand_regions.into(),
            smoothing,
            interpolation: !self.no_interpolation,
            mirror: self.mirror,
            threads,
            window_size: self.window,
            screenshot,
            server,
            vmc: self.motion.vmc,
            vmc_every_person: self.motion.vmc_every_person,
            view3d: self.view3d.into(),
            record_dir: self.record.clone(),
            replay_recorded: self.replay_recorded,
            display_mode: self.display_mode.into(),
            render: crate::app::RenderTuning {
                pipelined: self.pipelined_rendering,
                frame_latency: self.frame_latency,
                present_mode: self.present_mode.map(Into::into),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use crate::vision::config::HandRegions;

    fn analyze(args: &[&str]) -> AnalyzeArgs {
        let mut all = vec!["livepose", "analyze", "clip.mjpeg", "--out", "out"];
        all.extend(args);
        match Cli::try_parse_from(all).unwrap().command {
            Some(Command::Analyze(a)) => a,
            other => panic!("not analyze: {other:?}"),
        }
    }

    #[test]
    fn hand_regions_default_to_the_pose_and_legacy_keeps_the_palm_detector() {
        let regions = |args: &[&str]| analyze(args).engine.video_tracker_config(3).hand_regions;
        assert_eq!(regions(&[]), HandRegions::Pose);
        assert_eq!(regions(&["--hand-regions", "palm"]), HandRegions::Palm);
        assert_eq!(regions(&["--hand-regions", "pose"]), HandRegions::Pose);
        assert_eq!(regions(&["--legacy"]), HandRegions::Palm);
        assert!(Cli::try_parse_from(["livepose", "--hand-regions", "elbow"]).is_err());
        let app = Cli::try_parse_from(["livepose", "--hand-regions", "palm"]).unwrap();
        assert_eq!(app.app.model.hand_regions, HandRegionsArg::Palm);
    }
}
