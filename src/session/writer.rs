//! The recorder: a subscriber of one stream that writes a session folder (see the module above) on its
//! own named thread (`livepose-recorder`). Capture and inference never wait for it: it reads a bounded
//! mailbox of the stream's results ([`RECORDER_QUEUE`]), and what overflows while the disk is slow is
//! counted (`not_written`), never queued without bound. A write error (a full disk, a folder that went
//! away) stops the writing, is reported in [`RecorderStatus::error`] and in `session.json`, and leaves
//! what was written readable; the stream and its other subscribers go on.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::frame::{EncodedFormat, Payload};
use crate::schema::{FrameJson, frame_json};
use crate::service::{StreamHandle, StreamResult, Subscription};
use crate::session::{
    FRAME_INDEX_FILE, FRAMES_FILE, FrameEntry, INFO_FILE, ModelHash, RESULTS_FILE, SESSION_FORMAT,
    SessionError, SessionInfo, SessionSettings, SessionSource, is_disk_full, rfc3339_utc,
};
use crate::vision::{PersonId, RgbImage};

/// Results the recorder may have waiting: ~4 s at 30 frames/s. A disk that stalls longer loses the
/// oldest (counted), so memory stays bounded (each holds its frame).
pub const RECORDER_QUEUE: usize = 120;
/// How often `session.json`'s counts are brought up to date while recording.
const INFO_INTERVAL: Duration = Duration::from_secs(1);
/// How long the thread sleeps waiting for a result before it checks whether to stop.
const POLL: Duration = Duration::from_millis(100);

/// What to record, and how it was tracked.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// The session folder (created; must not hold a session already).
    pub dir: PathBuf,
    pub source: SessionSource,
    pub settings: SessionSettings,
    pub models: Vec<ModelHash>,
}

/// How a recording is going (read by the panel and the command line).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecorderStatus {
    pub dir: PathBuf,
    /// Frames (each with its result, when it had one) written.
    pub frames: u64,
    /// Results lost: the queue overflowed, or writing had stopped on an error.
    pub not_written: u64,
    /// The write error that stopped the recording.
    pub error: Option<String>,
    /// False once the thread has finished (stopped, or the stream closed).
    pub running: bool,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    status: Mutex<RecorderStatus>,
    /// The person the app follows, written with each result ([`Recorder::follow`]).
    followed: Mutex<Option<PersonId>>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut RecorderStatus)) {
        f(&mut crate::sync::lock(&self.status));
    }
}

/// A running recording. Dropping it (or [`Recorder::stop`]) writes what is queued, completes
/// `session.json` and joins the thread.
#[derive(Debug)]
pub struct Recorder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> SessionError + '_ {
    move |source| SessionError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Describes a write error for people: a full disk says so.
fn describe(path: &Path, e: &std::io::Error) -> String {
    if is_disk_full(e) {
        format!("the disk is full: {} could not be written", path.display())
    } else {
        format!("cannot write {}: {e}", path.display())
    }
}

/// Writes `session.json` whole: a temporary file, then a rename over the old one.
fn write_info(dir: &Path, info: &SessionInfo) -> std::io::Result<()> {
    let tmp = dir.join(format!("{INFO_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, dir.join(INFO_FILE))
}

impl Recorder {
    /// Creates the session folder, writes `session.json` and starts recording `stream`'s results from
    /// its next one.
    pub fn start(stream: &StreamHandle, config: RecorderConfig) -> Result<Self, SessionError> {
        let subscription = stream.subscribe(RECORDER_QUEUE);
        Self::start_with(subscription, config)
    }

    /// As [`Self::start`], with a subscription already made.
    pub fn start_with(
        subscription: Subscription,
        config: RecorderConfig,
    ) -> Result<Self, SessionError> {
        let dir = config.dir.clone();
        if dir.join(FRAME_INDEX_FILE).exists() {
            return Err(SessionError::Write {
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the folder already holds a session; choose another",
                ),
            });
        }
        std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let info = SessionInfo {
            format: SESSION_FORMAT.to_owned(),
            livepose_version: env!("CARGO_PKG_VERSION").to_owned(),
            source: config.source,
            settings: config.settings,
            models: config.models,
            started_at: rfc3339_utc(now),
            started_at_unix_s: now,
            frames: 0,
            results: 0,
            not_written: 0,
            dropped_by_stream: 0,
            complete: false,
            error: None,
        };
        write_info(&dir, &info).map_err(write_err(&dir.join(INFO_FILE)))?;
        let open = |name: &str| {
            let path = dir.join(name);
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(write_err(&path))
        };
        let files = SessionFiles {
            frames: open(FRAMES_FILE)?,
            index: open(FRAME_INDEX_FILE)?,
            results: open(RESULTS_FILE)?,
        };
        let shared = Arc::new(Shared::default());
        shared.update(|s| {
            s.dir = dir.clone();
            s.running = true;
        });
        let mut writer = SessionWriter {
            dir,
            files,
            info,
            offset: 0,
            first_capture: None,
            line: Vec::with_capacity(64 * 1024),
            png: Vec::new(),
            failed: 0,
        };
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("livepose-recorder".into())
            .spawn(move || writer.run(&subscription, &thread_shared))
            .map_err(SessionError::Thread)?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> RecorderStatus {
        crate::sync::lock(&self.shared.status).clone()
    }

    /// The person followed from now on (`None`: the lowest id in view), written with each result as
    /// `followed`: the exports and the report read that person at the top level.
    pub fn follow(&self, person: Option<PersonId>) {
        *crate::sync::lock(&self.shared.followed) = person;
    }

    /// Writes what is queued, completes `session.json`, and returns the final status.
    pub fn stop(mut self) -> RecorderStatus {
        self.finish();
        self.status()
    }

    fn finish(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            crate::sync::join(thread);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

struct SessionFiles {
    frames: std::fs::File,
    index: std::fs::File,
    results: std::fs::File,
}

/// One line of `results.jsonl`: `analyze`'s schema and the recording's own keys.
#[derive(Serialize)]
struct RecordedLine {
    #[serde(flatten)]
    result: FrameJson,
    seq: u64,
    /// Capture time since the session's first frame, ms.
    t_ms: f64,
    /// Waiting in the stream's slot, ms.
    queue_ms: f64,
    /// Capture to result, ms.
    round_trip_ms: f64,
    /// Frames the stream's slot had replaced (never tracked) up to this result.
    dropped_by_stream: u64,
    /// The person followed in the app when this result was recorded (absent: the lowest id).
    #[serde(skip_serializing_if = "Option::is_none")]
    followed: Option<PersonId>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

struct SessionWriter {
    dir: PathBuf,
    files: SessionFiles,
    info: SessionInfo,
    offset: u64,
    first_capture: Option<Instant>,
    line: Vec<u8>,
    png: Vec<u8>,
    /// Results lost to a write error.
    failed: u64,
}

impl SessionWriter {
    fn run(&mut self, subscription: &Subscription, shared: &Shared) {
        let mut last_info = Instant::now();
        loop {
            let stopping = shared.stop.load(Ordering::Relaxed);
            if stopping && subscription.pending() == 0 {
                break;
            }
            match subscription.recv_timeout(POLL) {
                Some(result) => {
                    let dropped = subscription.stream_stats().dropped;
                    let followed = *crate::sync::lock(&shared.followed);
                    self.record(&result, dropped, followed, shared);
                }
                None if subscription.is_closed() => break,
                None => {}
            }
            if last_info.elapsed() >= INFO_INTERVAL {
                last_info = Instant::now();
                self.update_info(subscription, shared);
            }
        }
        self.info.complete = true;
        self.update_info(subscription, shared);
        shared.update(|s| s.running = false);
    }

    fn update_info(&mut self, subscription: &Subscription, shared: &Shared) {
        self.info.not_written = subscription.superseded() + self.failed;
        self.info.dropped_by_stream = subscription.stream_stats().dropped;
        let not_written = self.info.not_written;
        shared.update(|s| s.not_written = not_written);
        if let Err(e) = write_info(&self.dir, &self.info) {
            // The frames already written stay readable without an up-to-date session.json.
            let message = describe(&self.dir.join(INFO_FILE), &e);
            if self.info.error.is_none() {
                tracing::error!("recording: {message}");
                shared.update(|s| s.error = Some(message));
            }
        }
    }

    fn record(
        &mut self,
        result: &StreamResult,
        dropped: u64,
        followed: Option<PersonId>,
        shared: &Shared,
    ) {
        if self.info.error.is_some() {
            self.failed += 1;
            return;
        }
        if let Err((path, e)) = self.write(result, dropped, followed) {
            let message = describe(&path, &e);
            tracing::error!("recording stopped: {message}");
            self.failed += 1;
            self.info.error = Some(message.clone());
            shared.update(|s| s.error = Some(message));
            return;
        }
        let frames = self.info.frames;
        shared.update(|s| s.frames = frames);
    }

    fn write(
        &mut self,
        result: &StreamResult,
        dropped: u64,
        followed: Option<PersonId>,
    ) -> Result<(), (PathBuf, std::io::Error)> {
        let at = |name: &str| self.dir.join(name);
        let (format, bytes, encoded_by_recorder): (EncodedFormat, &[u8], bool) =
            match &result.payload {
                Payload::Encoded { format, bytes } => (*format, bytes, false),
                Payload::Decoded(image) => {
                    encode_png(image, &mut self.png).map_err(|e| (at(FRAMES_FILE), e))?;
                    (EncodedFormat::Png, &self.png, true)
                }
            };
        let first = *self.first_capture.get_or_insert(result.meta.captured_at);
        let t_ms = ms(result.meta.captured_at.saturating_duration_since(first));
        let index = self.info.frames as usize;
        let entry = FrameEntry {
            frame: index,
            seq: result.meta.seq,
            timestamp_us: result.meta.timestamp_us,
            t_ms,
            format,
            encoded_by_recorder,
            offset: self.offset,
            len: bytes.len() as u64,
        };
        // Bytes first, then the line that points at them: a torn end never points past the data.
        self.files
            .frames
            .write_all(bytes)
            .map_err(|e| (at(FRAMES_FILE), e))?;
        self.offset += bytes.len() as u64;
        self.line.clear();
        serde_json::to_writer(&mut self.line, &entry)
            .map_err(|e| (at(FRAME_INDEX_FILE), std::io::Error::other(e)))?;
        self.line.push(b'\n');
        self.files
            .index
            .write_all(&self.line)
            .map_err(|e| (at(FRAME_INDEX_FILE), e))?;
        self.info.frames += 1;
        if let Ok(frame) = &result.outcome {
            let line = RecordedLine {
                result: frame_json(
                    &self.info.source.name,
                    Some(index),
                    frame,
                    result.model.file_stem(),
                ),
                seq: result.meta.seq,
                t_ms,
                queue_ms: ms(result
                    .started_at
                    .saturating_duration_since(result.received_at)),
                round_trip_ms: ms(result
                    .finished_at
                    .saturating_duration_since(result.meta.captured_at)),
                dropped_by_stream: dropped,
                followed,
            };
            self.line.clear();
            serde_json::to_writer(&mut self.line, &line)
                .map_err(|e| (at(RESULTS_FILE), std::io::Error::other(e)))?;
            self.line.push(b'\n');
            self.files
                .results
                .write_all(&self.line)
                .map_err(|e| (at(RESULTS_FILE), e))?;
            self.info.results += 1;
        }
        Ok(())
    }
}

/// Lossless PNG of a decoded frame (fast compression: the recorder runs beside capture and inference).
fn encode_png(image: &RgbImage, out: &mut Vec<u8>) -> std::io::Result<()> {
    use image::ImageEncoder as _;
    out.clear();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut *out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    )
    .write_image(
        &image.data,
        image.width,
        image.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(std::io::Error::other)
}
