//! Frame sources. Each runs on its own named thread and publishes into its stream of the inference
//! service (`crate::service`); a [`SourceHandle`] owns the thread and stops it when dropped (the stream
//! closes with it). The WebSocket server's connections are streams of the same service.

#[cfg(feature = "app")]
pub mod camera;
pub mod demo;
pub mod replay;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::service::StreamHandle;

/// What a source reports about itself (read by the UI).
#[derive(Clone, Debug, Default)]
pub struct SourceStatus {
    /// Human-readable name ("demo: kenburns_messi.mjpeg", "camera 0: …").
    pub name: String,
    /// Frames published per second, measured over the last second.
    pub capture_fps: f32,
    /// The last problem, if the source is struggling (camera gone, unreadable file, …).
    pub error: Option<String>,
    /// Frames published since start.
    pub frames: u64,
}

/// State shared between a source thread and its owner.
#[derive(Debug, Default)]
pub struct SourceShared {
    pub stop: AtomicBool,
    pub status: Mutex<SourceStatus>,
}

impl SourceShared {
    pub fn status(&self) -> SourceStatus {
        crate::sync::lock(&self.status).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut crate::sync::lock(&self.status));
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A running source. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct SourceHandle {
    pub shared: Arc<SourceShared>,
    /// The stream the source publishes into.
    pub stream: Arc<StreamHandle>,
    /// Pause, seek and speed, for a session replay.
    pub replay: Option<Arc<replay::ReplayControl>>,
    thread: Option<JoinHandle<()>>,
}

impl SourceHandle {
    pub fn new(
        shared: Arc<SourceShared>,
        stream: Arc<StreamHandle>,
        thread: JoinHandle<()>,
    ) -> Self {
        Self {
            shared,
            stream,
            replay: None,
            thread: Some(thread),
        }
    }

    pub fn with_replay(mut self, control: Arc<replay::ReplayControl>) -> Self {
        self.replay = Some(control);
        self
    }

    pub fn status(&self) -> SourceStatus {
        self.shared.status()
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            crate::sync::join(thread);
        }
    }
}

/// Measures frames per second over a sliding one-second window.
#[derive(Debug, Default)]
pub struct FpsMeter {
    window_start: Option<std::time::Instant>,
    frames: u32,
    fps: f32,
}

impl FpsMeter {
    pub fn tick(&mut self, now: std::time::Instant) -> f32 {
        let start = *self.window_start.get_or_insert(now);
        self.frames += 1;
        let elapsed = now.saturating_duration_since(start).as_secs_f32();
        if elapsed >= 1.0 {
            self.fps = self.frames as f32 / elapsed;
            self.frames = 0;
            self.window_start = Some(now);
        }
        self.fps
    }
}

/// Plays a file: a recorded session folder (its recorded timing, with pause, seek and speed), a
/// video file (its own timing), or an `.mjpeg` clip, image folder or image (at `fps`), looping.
pub fn spawn_file(
    path: &std::path::Path,
    fps: f32,
    stream: Arc<StreamHandle>,
) -> Result<SourceHandle, SourceError> {
    if crate::session::is_session_dir(path) {
        replay::spawn_session(path, stream)
    } else if crate::video::is_video_path(path) {
        replay::spawn_video(path, stream)
    } else {
        demo::spawn_demo(path, fps, stream)
    }
}

/// Errors starting a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {reason}")]
    Media {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("camera: {0}")]
    Camera(String),
    #[error("cannot start the source thread: {0}")]
    Thread(#[from] std::io::Error),
}
