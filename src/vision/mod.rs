//! The vision engine: MediaPipe BlazePose + Hands on ONNX Runtime, in plain Rust (no Bevy types), so it
//! can be tested, benchmarked and run from the command line without a window.
//!
//! Module order (each uses only those above it): `error`, `image`, `roi`, `timings`, `landmarks` →
//! `angles`, `smoothing`, `crop`, `detection`, `model`, `people` → `pose`, `hands` → `lanes`, `result`,
//! `config`, `tracker`, `assemble` → `engine`.

pub mod angles;
pub mod assemble;
pub mod config;
pub mod crop;
pub mod detection;
pub mod engine;
pub mod error;
pub mod hands;
pub mod image;
pub mod landmarks;
pub mod lanes;
pub mod model;
pub mod people;
pub mod pose;
pub mod result;
pub mod roi;
pub mod smoothing;
pub mod timings;
pub mod tracker;

pub use config::{EngineConfig, PoseModel, TrackerConfig};
pub use engine::Engine;
pub use error::{DecodeError, ModelError, VisionError};
pub use image::RgbImage;
pub use landmarks::{Hand, Handedness, ImageLandmark, Pose, WorldLandmark};
pub use people::PersonId;
pub use result::{FrameResult, Person};
pub use tracker::Tracker;
