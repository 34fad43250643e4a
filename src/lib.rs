//! livepose: real-time body and hand tracking.
//!
//! Modules, each using only those listed before it (modules on one line are one level and may use each
//! other's level too); `scripts/check_layout.py` holds this order in `make test`:
//! - [`vision`]: the engine (MediaPipe BlazePose + Hands on ONNX Runtime), no Bevy types.
//! - [`sync`], [`mailbox`], [`frame`]: the one lock helper; the one bounded drop-oldest buffer
//!   ([`mailbox::Ring`], shared between threads as a [`mailbox::Mailbox`]); frames and the clock.
//! - [`motion`], [`schema`], [`interpolation`], [`video`], [`export`]: the humanoid skeleton solved from
//!   the landmarks, BVH and VMC bundles; the JSON schema of results (files, `pose_result`, recordings);
//!   blending between the last two results for display; video files through FFmpeg's libraries; CSV
//!   and OpenSim TRC exports. None of them knows streams.
//! - [`service`]: the inference service: streams of frames in, subscriptions to results out, one pool of
//!   workers for the whole process.
//! - [`outputs`], [`session`]: subscribers that send a stream's motion live (VMC); recording a stream's
//!   frames and results to a session folder, reading one back, and its report.
//! - [`source`]: the camera, file, video and replay sources, each publishing into a stream.
//! - [`server`]: the browser client's HTTP, WebSocket and Socket.IO server over the service (`livepose
//!   serve`, and inside the app).
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
pub mod outputs;
pub mod schema;
pub mod server;
pub mod service;
pub mod session;
pub mod source;
pub mod sync;
pub mod video;
pub mod vision;
