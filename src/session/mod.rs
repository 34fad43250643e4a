//! Sessions: what a stream tracked, kept on disk so that it outlasts the window (record, replay, export,
//! report). A [`Recorder`] is one more subscriber of a stream's results; it writes a **session folder**:
//!
//! | file | what | written |
//! |---|---|---|
//! | `session.json` | [`SessionInfo`]: source, settings, livepose version, model hashes, start time, counts | at start, every second, at the end (each time whole, through a temporary file and a rename) |
//! | `frames.bin` | every tracked frame's bytes back to back, exactly as they arrived (a camera's MJPEG, a browser's JPEG); frames that arrived decoded (a video file, a raw camera format) are encoded once, as lossless PNG | appended, one `write` per frame |
//! | `frames.jsonl` | one line per frame: [`FrameEntry`] (its place in `frames.bin`, format, size, sequence, capture times) | after the frame's bytes |
//! | `results.jsonl` | one line per result, in `analyze`'s schema (`crate::schema`), plus the frame's index, sequence, capture time since the start (`t_ms`), queue and round-trip times, the stream's dropped-frame count and, from the app, the person `followed` (read back at the top level: the exports and the report follow them) | after the frame's line |
//!
//! A frame is recorded when its result is (the frames the latest-wins slot replaced were never tracked
//! and are only counted), so re-tracking a session with the same settings sees the same frames in the
//! same order. A JPEG-only session's `frames.bin` is a plain MJPEG stream (`ffplay -f mjpeg`).
//!
//! **Crash safety.** Each frame is written with plain `write`s in the order bytes → frame line → result
//! line, so a killed process leaves, at worst, one torn record at the end of each file, which every
//! reader here ignores ([`RecordedSession::open`]); `session.json` is always whole (rename). Nothing is
//! buffered in the process between frames.

pub mod reader;
pub mod report;
pub mod writer;

use serde::{Deserialize, Serialize};

pub use reader::{RecordedResult, RecordedSession};
pub use writer::{Recorder, RecorderConfig, RecorderStatus};

use crate::frame::EncodedFormat;
use crate::vision::model::ModelFile;
use crate::vision::{EngineConfig, TrackerConfig};

/// `session.json`'s `format`.
pub const SESSION_FORMAT: &str = "livepose-session/1";
pub const INFO_FILE: &str = "session.json";
pub const FRAMES_FILE: &str = "frames.bin";
pub const FRAME_INDEX_FILE: &str = "frames.jsonl";
pub const RESULTS_FILE: &str = "results.jsonl";

/// True when `path` is a session folder.
pub fn is_session_dir(path: &std::path::Path) -> bool {
    path.join(INFO_FILE).is_file() || path.join(FRAME_INDEX_FILE).is_file()
}

/// Why a session cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot write the session in {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a livepose session: {reason}")]
    NotASession {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{path}: line {line}: {reason}")]
    BadLine {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    #[error("frame {index} is not in the session ({count} frames)")]
    NoSuchFrame { index: usize, count: usize },
    #[error("cannot start the recorder thread: {0}")]
    Thread(std::io::Error),
}

/// Is the path's error a full disk (ENOSPC) or a quota (EDQUOT)?
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122)) || e.kind() == std::io::ErrorKind::StorageFull
}

/// Where a session's frames came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSource {
    /// The stream's name ("camera 0: …", "demo: kenburns_messi.mjpeg", "#3 192.168.1.20:51234").
    pub name: String,
    /// camera, file, websocket, analysis, replay.
    pub kind: String,
}

/// A model file the engine used, with its SHA-256 (from `models/SHA256SUMS`, checked at load).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelHash {
    pub file: String,
    pub sha256: String,
}

/// Settings of the engine that tracked the session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSettings {
    /// lite, full, heavy.
    pub model: crate::vision::PoseModel,
    pub hands: bool,
    pub max_hands: usize,
    pub min_detection_confidence: f32,
    pub min_tracking_confidence: f32,
    pub refine_kernel: usize,
    /// Frames are mirrored (selfie view): decides which hand is the person's left.
    pub mirrored: bool,
    /// Tracking and smoothing (method and parameters) of the stream at the start.
    pub tracker: TrackerConfig,
}

impl SessionSettings {
    pub fn new(engine: &EngineConfig, tracker: TrackerConfig) -> Self {
        Self {
            model: engine.pose_model,
            hands: engine.hands,
            max_hands: engine.max_hands,
            min_detection_confidence: engine.min_detection_confidence,
            min_tracking_confidence: engine.min_tracking_confidence,
            refine_kernel: engine.refine_kernel,
            mirrored: engine.input_is_mirrored,
            tracker,
        }
    }

    /// The engine these settings describe, with the rest (models folder, threads) from `base`.
    pub fn engine_config(&self, base: &EngineConfig) -> EngineConfig {
        EngineConfig {
            pose_model: self.model,
            hands: self.hands,
            max_hands: self.max_hands,
            min_detection_confidence: self.min_detection_confidence,
            min_tracking_confidence: self.min_tracking_confidence,
            refine_kernel: self.refine_kernel,
            input_is_mirrored: self.mirrored,
            ..base.clone()
        }
    }
}

/// `session.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// [`SESSION_FORMAT`].
    pub format: String,
    pub livepose_version: String,
    pub source: SessionSource,
    pub settings: SessionSettings,
    pub models: Vec<ModelHash>,
    /// Wall-clock start, RFC 3339 UTC, and the same in seconds since the Unix epoch.
    pub started_at: String,
    pub started_at_unix_s: f64,
    /// Frames and results written so far (equal: one result per frame).
    pub frames: u64,
    pub results: u64,
    /// Results the recorder could not write in time (its queue overflowed) or at all (a write failed).
    pub not_written: u64,
    /// Frames the stream's latest-wins slot replaced before inference (never tracked, not recorded).
    pub dropped_by_stream: u64,
    /// True once the recording ended normally (false while it runs, and after a crash).
    pub complete: bool,
    /// The write error that stopped the recording, if one did.
    pub error: Option<String>,
}

/// The model files an engine with these settings loads.
pub fn model_hashes(engine: &EngineConfig) -> Vec<ModelHash> {
    let mut files = vec![ModelFile::PoseDetection, engine.pose_model.file()];
    if engine.hands {
        files.extend([ModelFile::PalmDetectionFull, ModelFile::HandLandmarkFull]);
    }
    files
        .into_iter()
        .map(|f| ModelHash {
            file: f.file_name().to_owned(),
            sha256: f.expected_sha256().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// One line of `frames.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameEntry {
    /// 0-based index in the session.
    pub frame: usize,
    /// The producer's sequence number.
    pub seq: u64,
    /// Capture time on the stream's clock, µs.
    pub timestamp_us: i64,
    /// Capture time since the session started, ms (drives replay's timing).
    pub t_ms: f64,
    pub format: EncodedFormat,
    /// True when the source delivered decoded pixels and the recorder encoded them (PNG).
    pub encoded_by_recorder: bool,
    /// Byte range in `frames.bin`.
    pub offset: u64,
    pub len: u64,
}

/// RFC 3339 UTC for seconds since the epoch (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339_utc(unix_s: f64) -> String {
    let secs = unix_s.floor() as i64;
    let millis = ((unix_s - secs as f64) * 1000.0).floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_utc(0.0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1796299200.25 +%FT%T` → 2026-12-03T12:00:00.
        assert_eq!(rfc3339_utc(1_796_299_200.25), "2026-12-03T12:00:00.250Z");
        assert_eq!(rfc3339_utc(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn disk_full_is_recognised() {
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(28)));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(13)));
    }
}
