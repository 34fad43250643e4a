//! livepose: real-time body and hand tracking.
//!
//! - [`vision`]: the engine (MediaPipe BlazePose + Hands on ONNX Runtime), no Bevy types.
//! - [`cli`]: the `livepose analyze` command for images, folders and MJPEG files.

pub mod cli;
pub mod vision;
