//! File sources that keep their own timing: a video file (`crate::video`, frames at their presentation
//! times, looping) and a recorded session (`crate::session`, frames at their recorded capture times),
//! each on its own named thread publishing into its stream. A session replay can be paused, sought and
//! sped up from the panel through its [`ReplayControl`], and either tracked again with the app's current
//! settings (another model, other smoothing), as a live source would be, or shown with the results
//! recorded with them (`StreamHandle::publish_recorded`: the same stream and subscriptions, no engine).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::frame::{EncodedFormat, FrameInput, FrameMeta, Payload};
use crate::service::StreamHandle;
use crate::session::RecordedSession;
use crate::source::{FpsMeter, SourceError, SourceHandle, SourceShared};
use crate::video::VideoReader;

/// Slowest and fastest replay speeds the panel offers.
pub const MIN_SPEED: f32 = 0.1;
pub const MAX_SPEED: f32 = 8.0;
/// How often a paused replay checks for a seek or a resume.
const PAUSE_POLL: Duration = Duration::from_millis(20);

/// Live controls of a replay, shared between its thread and the panel.
#[derive(Debug)]
pub struct ReplayControl {
    paused: AtomicBool,
    /// `f32` bits.
    speed: AtomicU32,
    seek_to: Mutex<Option<usize>>,
    position: AtomicU64,
    /// Show the recorded results instead of tracking the frames again.
    show_recorded: AtomicBool,
    /// The session has results to show.
    pub has_results: bool,
    pub frames: usize,
    /// Recorded length, s.
    pub duration_s: f64,
}

impl ReplayControl {
    fn new(frames: usize, duration_s: f64, has_results: bool) -> Self {
        Self {
            paused: AtomicBool::new(false),
            show_recorded: AtomicBool::new(false),
            has_results,
            speed: AtomicU32::new(1.0_f32.to_bits()),
            seek_to: Mutex::new(None),
            position: AtomicU64::new(0),
            frames,
            duration_s,
        }
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Showing the recorded results (true) or tracking the frames again with the current settings.
    pub fn show_recorded(&self) -> bool {
        self.show_recorded.load(Ordering::Relaxed)
    }

    pub fn set_show_recorded(&self, recorded: bool) {
        self.show_recorded
            .store(recorded && self.has_results, Ordering::Relaxed);
    }

    pub fn speed(&self) -> f32 {
        f32::from_bits(self.speed.load(Ordering::Relaxed))
    }

    pub fn set_speed(&self, speed: f32) {
        let speed = if speed.is_finite() { speed } else { 1.0 };
        self.speed.store(
            speed.clamp(MIN_SPEED, MAX_SPEED).to_bits(),
            Ordering::Relaxed,
        );
    }

    /// Jump to frame `index` (clamped to the session).
    pub fn seek(&self, index: usize) {
        *crate::sync::lock(&self.seek_to) = Some(index.min(self.frames.saturating_sub(1)));
    }

    /// The frame published last.
    pub fn position(&self) -> usize {
        self.position.load(Ordering::Relaxed) as usize
    }

    fn take_seek(&self) -> Option<usize> {
        crate::sync::lock(&self.seek_to).take()
    }
}

/// Publishes one frame; false when the stream has closed (the thread then ends).
fn publish(
    stream: &StreamHandle,
    shared: &SourceShared,
    meter: &mut FpsMeter,
    seq: &mut u64,
    payload: Payload,
) -> bool {
    let meta = FrameMeta::captured_now(*seq);
    let published = stream.publish(FrameInput { meta, payload }).map(|_| ());
    count_published(published, meta, shared, meter, seq)
}

/// Counts a frame handed to the stream (or says why it could not be); false when the stream is gone.
fn count_published(
    published: Result<(), crate::service::PublishError>,
    meta: FrameMeta,
    shared: &SourceShared,
    meter: &mut FpsMeter,
    seq: &mut u64,
) -> bool {
    match published {
        Ok(()) => {
            *seq += 1;
            let fps = meter.tick(meta.captured_at);
            let frames = *seq;
            shared.update(|s| {
                s.capture_fps = fps;
                s.frames = frames;
                s.error = None;
            });
            true
        }
        Err(e) => {
            shared.update(|s| s.error = Some(format!("stopped: {e}")));
            false
        }
    }
}

/// Publishes a frame with its recorded result (decoded here: subscribers show the frame).
#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the replay loop's state"
)]
fn publish_recorded(
    stream: &StreamHandle,
    shared: &SourceShared,
    meter: &mut FpsMeter,
    seq: &mut u64,
    payload: Payload,
    format: EncodedFormat,
    model: crate::vision::PoseModel,
    recorded: &crate::session::RecordedResult,
) -> bool {
    let Payload::Encoded { bytes, .. } = &payload else {
        return false;
    };
    let image = match crate::vision::image::rgb_image_from_bytes(bytes) {
        Ok(image) => Arc::new(image),
        Err(e) => {
            shared.update(|s| s.error = Some(format!("frame skipped ({format:?}): {e}")));
            return true;
        }
    };
    let meta = FrameMeta::captured_now(*seq);
    let result = crate::vision::FrameResult {
        timestamp_us: meta.timestamp_us,
        ..recorded.result.clone()
    };
    let published = stream.publish_recorded(meta, payload, Some(image), model, result);
    count_published(published, meta, shared, meter, seq)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Plays a video file at its own timing, looping, into `stream` (frames decoded, not re-encoded). The
/// file is opened on the source's thread (FFmpeg's scaler cannot move between threads); this waits until
/// it opened and its first frame decoded, so a bad file is reported here.
pub fn spawn_video(path: &Path, stream: Arc<StreamHandle>) -> Result<SourceHandle, SourceError> {
    let media_err = |reason: String| SourceError::Media {
        path: path.to_owned(),
        reason,
    };
    let shared = Arc::new(SourceShared::default());
    shared.update(|s| s.name = format!("video: {}", file_name(path)));
    let thread_shared = Arc::clone(&shared);
    let thread_stream = Arc::clone(&stream);
    let thread_path = path.to_owned();
    let (opened_tx, opened_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let thread = std::thread::Builder::new()
        .name("livepose-video-source".into())
        .spawn(move || {
            // Whether the file opened and gave a first frame, for the opener, which may have stopped
            // waiting (its timeout): then nobody is to be told.
            let tell = |outcome: Result<(), String>| {
                let _ = opened_tx.send(outcome);
            };
            let mut reader = match VideoReader::open(&thread_path) {
                Ok(reader) => reader,
                Err(e) => return tell(Err(e.to_string())),
            };
            let first = match reader.next_frame() {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return tell(Err(e.to_string())),
                None => return tell(Err("no frame could be decoded".into())),
            };
            tell(Ok(()));
            play_video(reader, first, &thread_path, &thread_stream, &thread_shared);
        })?;
    let handle = SourceHandle::new(shared, stream, thread);
    match opened_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(reason)) => Err(media_err(reason)),
        Err(_) => Err(media_err(
            "the video thread ended before opening the file".into(),
        )),
    }
}

fn play_video(
    mut reader: VideoReader,
    first: crate::video::VideoFrame,
    path: &Path,
    stream: &StreamHandle,
    shared: &SourceShared,
) {
    let mut meter = FpsMeter::default();
    let mut seq = 0_u64;
    let mut pending = Some(first);
    let mut loop_start = Instant::now();
    loop {
        if shared.stopping() {
            break;
        }
        let frame = match pending.take().map(Ok).or_else(|| reader.next_frame()) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                shared.update(|s| s.error = Some(format!("frame skipped: {e}")));
                continue;
            }
            None => {
                // The end (or damage that ends the file): start again from the top.
                if let Some(e) = reader.ended_early() {
                    shared.update(|s| s.error = Some(format!("{e}; looping")));
                }
                match VideoReader::open(path) {
                    Ok(again) if reader.frames_read() > 0 => {
                        reader = again;
                        loop_start = Instant::now();
                        continue;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        shared.update(|s| s.error = Some(e.to_string()));
                        break;
                    }
                }
            }
        };
        let pts = Duration::from_micros(u64::try_from(frame.pts_us).unwrap_or(0));
        let due = loop_start + pts;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_millis(500) {
            // Far behind (a slow machine, a paused process): play on from here, not catch up.
            loop_start = now.checked_sub(pts).unwrap_or(now);
        }
        let payload = Payload::Decoded(Arc::new(frame.image));
        if !publish(stream, shared, &mut meter, &mut seq, payload) {
            break;
        }
    }
}

/// Replays a recorded session at its recorded timing (looping), with the panel's pause, seek and speed.
pub fn spawn_session(dir: &Path, stream: Arc<StreamHandle>) -> Result<SourceHandle, SourceError> {
    let media_err = |reason: String| SourceError::Media {
        path: dir.to_owned(),
        reason,
    };
    let session = RecordedSession::open(dir).map_err(|e| media_err(e.to_string()))?;
    if session.frames.is_empty() {
        return Err(media_err("the session has no frames".into()));
    }
    for warning in &session.warnings {
        tracing::warn!("{}: {warning}", dir.display());
    }
    let duration_s = session.frames.last().map_or(0.0, |f| f.t_ms / 1e3);
    let control = Arc::new(ReplayControl::new(
        session.frames.len(),
        duration_s,
        !session.results.is_empty(),
    ));
    let shared = Arc::new(SourceShared::default());
    shared.update(|s| s.name = format!("replay: {}", session.name()));
    let thread_shared = Arc::clone(&shared);
    let thread_stream = Arc::clone(&stream);
    let thread_control = Arc::clone(&control);
    let thread = std::thread::Builder::new()
        .name("livepose-replay".into())
        .spawn(move || replay(&session, &thread_stream, &thread_shared, &thread_control))?;
    Ok(SourceHandle::new(shared, stream, thread).with_replay(control))
}

fn replay(
    session: &RecordedSession,
    stream: &StreamHandle,
    shared: &SourceShared,
    control: &ReplayControl,
) {
    let mut meter = FpsMeter::default();
    let mut seq = 0_u64;
    let mut index = 0_usize;
    // Replay time: recorded ms `anchor_ms` at `anchor_at`, advancing at the current speed.
    let mut anchor_ms = 0.0_f64;
    let mut anchor_at = Instant::now();
    // Paused: the frame on screen was published (false right after a seek, so it is shown once).
    let mut shown = false;
    // Each frame's recorded result, if it has one.
    let mut recorded_of: Vec<Option<usize>> = vec![None; session.frames.len()];
    for (i, r) in session.results.iter().enumerate() {
        if let Some(slot) = recorded_of.get_mut(r.frame) {
            *slot = Some(i);
        }
    }
    let model = session
        .info
        .as_ref()
        .map_or(crate::vision::PoseModel::Full, |i| i.settings.model);
    loop {
        if shared.stopping() {
            break;
        }
        if let Some(target) = control.take_seek() {
            index = target;
            shown = false;
        }
        let now = Instant::now();
        let advance = if control.paused() {
            anchor_ms = session.frames[index].t_ms;
            anchor_at = now;
            if shown {
                std::thread::sleep(PAUSE_POLL);
                continue;
            }
            false
        } else {
            let speed = f64::from(control.speed());
            let due_in_ms = (session.frames[index].t_ms - anchor_ms) / speed;
            let due = anchor_at + Duration::from_secs_f64(due_in_ms.max(0.0) / 1e3);
            if due > now {
                std::thread::sleep((due - now).min(PAUSE_POLL));
                continue;
            }
            // Re-anchor on every frame, so a speed change applies from here; never run to catch up
            // more than half a second.
            anchor_ms = session.frames[index].t_ms;
            anchor_at = due.max(now - Duration::from_millis(500));
            true
        };
        let entry = &session.frames[index];
        let (payload, format) = match session.frame_bytes(index) {
            Ok(bytes) => {
                let format = EncodedFormat::sniff(&bytes).unwrap_or(entry.format);
                (
                    Payload::Encoded {
                        format,
                        bytes: bytes.into(),
                    },
                    format,
                )
            }
            Err(e) => {
                shared.update(|s| s.error = Some(e.to_string()));
                break;
            }
        };
        let recorded = recorded_of[index].filter(|_| control.show_recorded());
        let published = match recorded {
            Some(r) => publish_recorded(
                stream,
                shared,
                &mut meter,
                &mut seq,
                payload,
                format,
                model,
                &session.results[r],
            ),
            None => publish(stream, shared, &mut meter, &mut seq, payload),
        };
        if !published {
            break;
        }
        control.position.store(index as u64, Ordering::Relaxed);
        shown = true;
        if advance {
            index += 1;
            if index >= session.frames.len() {
                index = 0;
                anchor_ms = 0.0;
            }
        }
    }
}
