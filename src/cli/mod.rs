//! The `livepose` command line.

pub mod analyze;
pub mod annotate;
pub mod output;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::vision::engine::PoseModel;
use crate::vision::pose::{DEFAULT_REFINE_KERNEL, LEGACY_REFINE_KERNEL};
use crate::vision::smoothing::{PROTOTYPE_EMA_ALPHA, SmoothingMethod};

#[derive(Debug, Parser)]
#[command(
    name = "livepose",
    version,
    about = "Real-time body and hand tracking (MediaPipe BlazePose + Hands on ONNX Runtime)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Track people in images, image folders and MJPEG files; write JSON (and annotated PNGs).
    Analyze(AnalyzeArgs),
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

/// Engine settings shared by every command that runs the models.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Pose landmark model.
    #[arg(long, value_enum, default_value_t = ModelArg::Full)]
    pub model: ModelArg,
    /// Body only: do not run the hand models.
    #[arg(long)]
    pub no_hands: bool,
    /// Folder holding the ONNX models [default: $LIVEPOSE_MODELS, ./models, or the build's models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Pose heatmap refinement window (7 = MediaPipe's graph; 9 = the legacy Python API).
    #[arg(long, default_value_t = DEFAULT_REFINE_KERNEL)]
    pub refine_kernel: usize,
    /// Reproduce the legacy `mp.solutions` Python API: refinement kernel 9, hands not smoothed, palm
    /// detector every frame while fewer than two hands are tracked.
    #[arg(long)]
    pub legacy: bool,
    /// CPU threads for inference [default: cores, at most 4].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run the hand branch after the pose branch instead of beside it.
    #[arg(long)]
    pub sequential: bool,
    /// Frames are mirrored (selfie view); decides which hand is the person's left.
    #[arg(long)]
    pub mirrored: bool,
    /// Landmark smoothing for video.
    #[arg(long, value_enum, default_value_t = SmoothingArg::OneEuro)]
    pub smoothing: SmoothingArg,
    /// EMA weight of the newest value (with --smoothing ema).
    #[arg(long, default_value_t = PROTOTYPE_EMA_ALPHA)]
    pub ema_alpha: f32,
    /// While fewer than two hands are tracked, run the palm detector every N frames (1 = every frame,
    /// as MediaPipe; --legacy sets 1).
    #[arg(long, default_value_t = crate::vision::engine::DEFAULT_PALM_DETECTION_EVERY, value_parser = clap::value_parser!(u32).range(1..))]
    pub palm_every: u32,
}

impl EngineArgs {
    pub fn engine_config(&self) -> crate::vision::EngineConfig {
        let mut config = crate::vision::EngineConfig {
            pose_model: self.model.into(),
            hands: !self.no_hands,
            refine_kernel: if self.legacy {
                LEGACY_REFINE_KERNEL
            } else {
                self.refine_kernel
            },
            threads: self
                .threads
                .unwrap_or_else(crate::vision::engine::default_threads)
                .max(1),
            parallel_branches: !self.sequential,
            input_is_mirrored: self.mirrored,
            ..Default::default()
        };
        if let Some(dir) = &self.models {
            config.models_dir = dir.clone();
        }
        config
    }

    pub fn smoothing(&self) -> SmoothingMethod {
        match self.smoothing {
            SmoothingArg::OneEuro => SmoothingMethod::OneEuro,
            SmoothingArg::Ema => SmoothingMethod::Ema {
                alpha: self.ema_alpha.clamp(0.0, 1.0),
            },
            SmoothingArg::Off => SmoothingMethod::Off,
        }
    }

    pub fn video_tracker_config(&self) -> crate::vision::TrackerConfig {
        crate::vision::TrackerConfig {
            smoothing: self.smoothing(),
            smooth_hands: !self.legacy,
            palm_detection_every: if self.legacy { 1 } else { self.palm_every },
            ..crate::vision::TrackerConfig::VIDEO
        }
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Image files (PNG, JPEG, WebP), folders of images, or .mjpeg files (concatenated JPEG frames).
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
    /// Frame rate of .mjpeg inputs, for timestamps (frame k is stamped (k+1)·round(1e6/fps) µs, as the
    /// MediaPipe references).
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
}
