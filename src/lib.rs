//! livepose: real-time body and hand tracking.
//!
//! Modules, each using only those listed before it:
//! - [`vision`]: the engine (MediaPipe BlazePose + Hands on ONNX Runtime), no Bevy types.
//! - [`mailbox`], [`frame`]: the one bounded drop-oldest buffer between threads; frames and the clock.
//! - [`motion`]: the humanoid skeleton solved from the landmarks, BVH files; no Bevy types.
//! - [`schema`]: the JSON schema of results (files, `pose_result`, recordings).
//! - [`service`]: the inference service: streams of frames in, subscriptions to results out, one pool of
//!   workers for the whole process.
//! - [`interpolation`]: blending between the last two results for display.
//! - [`video`]: video files through FFmpeg's libraries (frames with their presentation times).
//! - [`session`]: recording a stream's frames and results to a session folder, and reading one back.
//! - [`source`]: the camera, file, video and replay sources, each publishing into a stream.
//! - [`server`]: the browser client's HTTP + WebSocket server over the service (`livepose serve`, and
//!   inside the app).
//! - [`app`]: the Bevy app (video + overlay, 3D avatar, angle panel), a client of the service (feature
//!   `app`, on by default, with the native camera source).
//! - [`cli`]: the command line.

// Library code logs through `tracing` (Bevy's log in the app); only `main.rs` prints to stderr.
#![warn(clippy::print_stderr)]

#[cfg(feature = "app")]
pub mod app;
pub mod cli;
pub mod export;
pub mod frame;
pub mod interpolation;
pub mod mailbox;
pub mod motion;
pub mod schema;
pub mod server;
pub mod service;
pub mod session;
pub mod source;
pub mod video;
pub mod vision;
