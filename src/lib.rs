//! livepose: real-time body and hand tracking.
//!
//! - [`vision`]: the engine (MediaPipe BlazePose + Hands on ONNX Runtime), no Bevy types.
//! - [`frame`], [`frame_slot`], [`source`]: frames, the latest-wins slot, and the sources (camera, demo).
//! - [`interpolation`]: blending between the last two results for display.
//! - [`server`]: the browser client's HTTP + WebSocket server (`livepose serve`, and inside the app).
//! - [`app`]: the Bevy app (video + overlay, 3D avatar, angle panel).
//! - [`cli`]: the command line.

pub mod app;
pub mod cli;
pub mod frame;
pub mod frame_slot;
pub mod interpolation;
pub mod server;
pub mod source;
pub mod vision;
