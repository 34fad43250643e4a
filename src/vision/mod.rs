//! The vision engine: MediaPipe BlazePose + Hands on ONNX Runtime, in plain Rust (no Bevy types), so it
//! can be tested, benchmarked and run from the command line without a window.

pub mod angles;
pub mod crop;
pub mod detection;
pub mod engine;
pub mod error;
pub mod hands;
pub mod image;
pub mod landmarks;
pub mod model;
pub mod pose;
pub mod roi;
pub mod smoothing;
pub mod timings;

pub use engine::{Engine, EngineConfig, PoseModel, Tracker, TrackerConfig};
pub use error::{DecodeError, ModelError, VisionError};
pub use image::RgbImage;
pub use landmarks::{FrameResult, Hand, Handedness, ImageLandmark, Pose, WorldLandmark};
