//! One stream inside the service: its input slot, its tracker (the pose half and the hand half, each
//! locked only by the job of its branch), the frames in flight, and its subscribers.
//!
//! A frame's life: [`StreamHandle::publish`] puts it in the input slot (latest wins, or the producer
//! waits in lossless mode). When the pose branch is free and the hand branch is at most one frame behind,
//! the frame moves into `in_flight` and a pose job is queued. That job decodes the frame, hands it to the
//! hand branch if the hand branch is free (inline when the hand branch has nothing to do this frame), and
//! runs the pose branch. When both halves of the oldest frame in flight are done, its result is assembled
//! and delivered to every subscriber, in capture order.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Branch, Job, ServiceShared};
use crate::frame::{FrameInput, FrameMeta, Payload};
use crate::mailbox::Mailbox;
use crate::sync::lock;
use crate::vision::assemble::assemble;
use crate::vision::engine::{HandsOutput, PoseOutput};
use crate::vision::hands::HandFromPose;
use crate::vision::tracker::{HandsTrack, PoseTrack};
use crate::vision::{FrameResult, PoseModel, RgbImage, TrackerConfig};

/// Frames of one stream in flight at once: one in the pose branch, one in the hand branch (the second
/// only while no job of another stream waits).
const MAX_IN_FLIGHT: usize = 2;

/// Longest sleep of a producer or waiter between checks that the stream or the service stopped.
pub(super) const PROGRESS_POLL: Duration = Duration::from_millis(100);

/// A stream's identity within the process (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct StreamId(pub u64);

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What produces a stream's frames.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamKind {
    Camera,
    /// A clip, image folder or image played by the app.
    File,
    /// Frames sent by another program or device (a browser tab, a phone) from this address; how they
    /// travel (WebSocket, Socket.IO) is the server's business.
    Remote {
        peer: SocketAddr,
    },
    /// A file analysed from the command line.
    Analysis,
}

/// How the input slot treats a frame published while another waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The new frame replaces it (counted as dropped): live sources, latency never builds up.
    LatestWins,
    /// The producer waits until it is taken: every frame is processed (`analyze`).
    Lossless,
}

/// What to open.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    /// Shown to the user ("camera 0", "demo: kenburns_messi.mjpeg", "#3 127.0.0.1:51234").
    pub name: String,
    pub kind: StreamKind,
    pub tracker: TrackerConfig,
    pub delivery: Delivery,
}

/// Why a frame was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    #[error("the stream is closed")]
    Closed,
    #[error("the inference service has stopped")]
    ServiceStopped,
    #[error("frame timestamp {got_us} µs is not after the previous frame's {previous_us} µs")]
    NonMonotonicTimestamp { previous_us: i64, got_us: i64 },
}

/// Why a frame produced no landmarks.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("cannot decode the frame: {0}")]
    Decode(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A stream's result for one frame, with the frame it was computed on.
#[derive(Clone, Debug)]
pub struct StreamResult {
    pub stream: StreamId,
    pub meta: FrameMeta,
    /// When the frame entered the stream's input slot.
    pub received_at: Instant,
    /// When inference took it from the slot.
    pub started_at: Instant,
    /// When the result was assembled.
    pub finished_at: Instant,
    /// Decoding the frame, ms (0 for frames that arrived decoded).
    pub decode_ms: f32,
    /// The decoded frame (`None` when it could not be decoded).
    pub image: Option<Arc<RgbImage>>,
    /// The frame's bytes exactly as they arrived, when it arrived encoded.
    pub payload: Payload,
    /// The pose model of the engine that ran the pose branch.
    pub model: PoseModel,
    pub outcome: Result<Arc<FrameResult>, FrameError>,
}

/// Counters of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamStats {
    /// Frames published.
    pub received: u64,
    /// Frames replaced in the input slot before inference took them.
    pub dropped: u64,
    /// Results delivered (including failed frames).
    pub results: u64,
    /// Frames that could not be decoded or processed.
    pub failed: u64,
    /// Frames taken by inference and not finished yet.
    pub in_flight: usize,
    pub subscribers: usize,
}

/// A stream as listed by [`super::Service::streams`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct StreamInfo {
    pub id: StreamId,
    pub name: String,
    pub kind: StreamKind,
    pub stats: StreamStats,
}

/// A frame taken by inference.
pub(super) struct InFlight {
    serial: u64,
    meta: FrameMeta,
    received_at: Instant,
    started_at: Instant,
    config: TrackerConfig,
    /// Taken by the pose job to decode.
    payload: Option<Payload>,
    /// The payload again, for the result (cheap: reference-counted bytes).
    kept: Payload,
    image: Option<Arc<RgbImage>>,
    decode_ms: f32,
    model: PoseModel,
    pose: Option<PoseOutput>,
    hands: Option<HandsOutput>,
    error: Option<FrameError>,
    /// The previous frame's hands as its poses place them, taken when this frame is decoded (the pose
    /// branch of the previous frame is done by then): where the hand branch looks for new hands with
    /// `HandRegions::Pose`.
    hands_from_pose: Vec<HandFromPose>,
}

impl InFlight {
    fn complete(&self) -> bool {
        self.error.is_some() || (self.pose.is_some() && self.hands.is_some())
    }
}

pub(super) struct StreamState {
    pub(super) input: Option<(FrameInput, Instant)>,
    pub(super) last_timestamp_us: Option<i64>,
    pub(super) config: TrackerConfig,
    /// The frame (serial) each branch is running, if any.
    pub(super) pose_running: Option<u64>,
    pub(super) hands_running: Option<u64>,
    pub(super) in_flight: VecDeque<InFlight>,
    pub(super) next_serial: u64,
    pub(super) closed: bool,
}

impl StreamState {
    /// A stream's timestamps must increase.
    pub(super) fn check_timestamp(&self, got_us: i64) -> Result<(), PublishError> {
        match self.last_timestamp_us {
            Some(previous_us) if got_us <= previous_us => {
                Err(PublishError::NonMonotonicTimestamp {
                    previous_us,
                    got_us,
                })
            }
            _ => Ok(()),
        }
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) results: AtomicU64,
    pub(super) failed: AtomicU64,
}

pub(crate) struct StreamShared {
    pub(crate) id: StreamId,
    pub(super) name: String,
    pub(super) kind: StreamKind,
    pub(super) delivery: Delivery,
    pub(super) state: Mutex<StreamState>,
    /// Signalled when the input slot empties (lossless producers wait on it) and when in-flight frames
    /// finish (for [`StreamHandle::wait_idle`]).
    pub(super) progress: Condvar,
    pub(crate) pose_track: Mutex<PoseTrack>,
    pub(crate) hands_track: Mutex<HandsTrack>,
    pub(super) subscribers: Mutex<Vec<Arc<Mailbox<StreamResult>>>>,
    pub(super) counters: Counters,
}

/// What a pose job does once its frame is decoded.
pub(crate) enum AfterDecode {
    /// The frame failed (and was delivered with its error), or is gone: the job ends (`pose_again`: the
    /// caller runs the stream's next pose job).
    Failed { pose_again: bool },
    /// Run the pose branch; and the hand branch's next frame, if it is free (run it inline when it has
    /// nothing to do, else queue it).
    Continue(Option<HandsWork>),
}

/// What a pose job needs to start.
pub(crate) struct PoseWork {
    pub serial: u64,
    pub payload: Payload,
    pub timestamp_us: i64,
    pub config: TrackerConfig,
}

/// What a hand job needs.
pub(crate) struct HandsWork {
    pub serial: u64,
    pub image: Arc<RgbImage>,
    pub timestamp_us: i64,
    pub config: TrackerConfig,
    pub from_pose: Vec<HandFromPose>,
}

impl StreamShared {
    pub(crate) fn new(id: StreamId, spec: StreamSpec) -> Self {
        Self {
            id,
            name: spec.name,
            kind: spec.kind,
            delivery: spec.delivery,
            state: Mutex::new(StreamState {
                input: None,
                last_timestamp_us: None,
                config: spec.tracker,
                pose_running: None,
                hands_running: None,
                in_flight: VecDeque::new(),
                next_serial: 0,
                closed: false,
            }),
            progress: Condvar::new(),
            pose_track: Mutex::new(PoseTrack::new(spec.tracker)),
            hands_track: Mutex::new(HandsTrack::new(spec.tracker)),
            subscribers: Mutex::new(Vec::new()),
            counters: Counters::default(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Sleeps until the stream progresses (its slot empties or a frame finishes), at most `timeout`.
    pub(super) fn wait_progress<'a>(
        &self,
        state: std::sync::MutexGuard<'a, StreamState>,
        timeout: Duration,
    ) -> std::sync::MutexGuard<'a, StreamState> {
        self.progress
            .wait_timeout(state, timeout.min(PROGRESS_POLL))
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
    }

    pub(crate) fn info(&self) -> StreamInfo {
        StreamInfo {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind.clone(),
            stats: self.stats(),
        }
    }

    pub(super) fn stats(&self) -> StreamStats {
        let in_flight = lock(&self.state).in_flight.len();
        StreamStats {
            received: self.counters.received.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            results: self.counters.results.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            in_flight,
            subscribers: lock(&self.subscribers).len(),
        }
    }

    pub(crate) fn close_subscribers(&self) {
        for mailbox in lock(&self.subscribers).iter() {
            mailbox.close();
        }
    }

    /// Starts the pose branch on the waiting frame, if the branches allow it. Called with the state
    /// locked.
    /// With `direct` (called by a worker that has just finished a job of this stream) and no other job
    /// waiting, the pose job is not queued: the caller runs it itself (returns true), so a stream's pose
    /// branch stays on one worker while nothing else needs it (its sessions and buffers stay warm).
    pub(super) fn try_start_pose(
        self: &Arc<Self>,
        state: &mut StreamState,
        service: &ServiceShared,
        direct: bool,
    ) -> bool {
        if state.closed || state.pose_running.is_some() || state.in_flight.len() >= MAX_IN_FLIGHT {
            return false;
        }
        // A second frame in flight only when a worker is idle to take it: otherwise it would only wait in
        // the queue (latency), behind other streams' jobs or this stream's own hand branch.
        if !state.in_flight.is_empty() && !service.has_idle_worker() {
            return false;
        }
        let Some((frame, received_at)) = state.input.take() else {
            return false;
        };
        let serial = state.next_serial;
        state.next_serial += 1;
        state.in_flight.push_back(InFlight {
            serial,
            meta: frame.meta,
            received_at,
            started_at: Instant::now(),
            config: state.config,
            kept: frame.payload.clone(),
            payload: Some(frame.payload),
            image: None,
            decode_ms: 0.0,
            model: service.live().0.pose_model,
            pose: None,
            hands: None,
            error: None,
            hands_from_pose: Vec::new(),
        });
        state.pose_running = Some(serial);
        self.progress.notify_all();
        if direct && service.queue_is_empty() {
            return true;
        }
        service.push_job(Job {
            stream: Arc::clone(self),
            branch: Branch::Pose,
        });
        false
    }

    /// The frame the pose job is for, and what it needs.
    pub(crate) fn pose_work(&self) -> Option<PoseWork> {
        let mut state = lock(&self.state);
        let serial = state.pose_running?;
        let frame = state.in_flight.iter_mut().find(|f| f.serial == serial)?;
        Some(PoseWork {
            serial: frame.serial,
            payload: frame.payload.take()?,
            timestamp_us: frame.meta.timestamp_us,
            config: frame.config,
        })
    }

    /// Records the decoded frame (or why it could not be decoded: the frame is then finished, with its
    /// error, and the pose job ends).
    pub(crate) fn decoded(
        self: &Arc<Self>,
        serial: u64,
        decoded: Result<Arc<RgbImage>, FrameError>,
        decode_ms: f32,
        hands_from_pose: Vec<HandFromPose>,
        service: &ServiceShared,
    ) -> AfterDecode {
        let mut state = lock(&self.state);
        let Some(frame) = state.in_flight.iter_mut().find(|f| f.serial == serial) else {
            return AfterDecode::Failed { pose_again: false };
        };
        frame.decode_ms = decode_ms;
        frame.hands_from_pose = hands_from_pose;
        match decoded {
            Ok(image) => frame.image = Some(image),
            Err(e) => {
                frame.error = Some(e);
                state.pose_running = None;
                let pose_again = self.finish(&mut state, service, true);
                return AfterDecode::Failed { pose_again };
            }
        }
        AfterDecode::Continue(self.next_hands_work(&mut state))
    }

    /// The hand branch's next frame, if the branch is free and the frame is decoded; marks it running.
    fn next_hands_work(&self, state: &mut StreamState) -> Option<HandsWork> {
        if state.hands_running.is_some() {
            return None;
        }
        let frame = state
            .in_flight
            .iter()
            .find(|f| f.hands.is_none() && f.error.is_none())?;
        let work = HandsWork {
            serial: frame.serial,
            image: Arc::clone(frame.image.as_ref()?),
            timestamp_us: frame.meta.timestamp_us,
            config: frame.config,
            from_pose: frame.hands_from_pose.clone(),
        };
        state.hands_running = Some(work.serial);
        Some(work)
    }

    /// Queues a hand job for work returned by [`Self::decoded`] or [`Self::hands_done`].
    pub(crate) fn queue_hands(self: &Arc<Self>, service: &ServiceShared) {
        service.push_job(Job {
            stream: Arc::clone(self),
            branch: Branch::Hands,
        });
    }

    /// The work of a queued hand job, if its frame is still in flight.
    pub(crate) fn hands_work(self: &Arc<Self>, service: &ServiceShared) -> Option<HandsWork> {
        let mut state = lock(&self.state);
        let serial = state.hands_running?;
        let Some(frame) = state
            .in_flight
            .iter()
            .find(|f| f.serial == serial && f.error.is_none())
        else {
            // Its frame failed in the pose branch meanwhile and was delivered.
            state.hands_running = None;
            self.finish(&mut state, service, false);
            return None;
        };
        Some(HandsWork {
            serial: frame.serial,
            image: Arc::clone(frame.image.as_ref()?),
            timestamp_us: frame.meta.timestamp_us,
            config: frame.config,
            from_pose: frame.hands_from_pose.clone(),
        })
    }

    /// Records the pose branch's output and moves the stream on; returns true when the caller should
    /// run the stream's next pose job itself.
    pub(crate) fn pose_done(
        self: &Arc<Self>,
        serial: u64,
        output: Result<PoseOutput, FrameError>,
        model: PoseModel,
        service: &ServiceShared,
    ) -> bool {
        let mut state = lock(&self.state);
        if let Some(frame) = state.in_flight.iter_mut().find(|f| f.serial == serial) {
            frame.model = model;
            match output {
                Ok(pose) => frame.pose = Some(pose),
                Err(e) => frame.error = Some(e),
            }
        }
        state.pose_running = None;
        self.finish(&mut state, service, true)
    }

    /// Records the hand branch's output; returns the hand branch's next frame, if there is one to run.
    pub(crate) fn hands_done(
        self: &Arc<Self>,
        serial: u64,
        output: Result<HandsOutput, FrameError>,
        service: &ServiceShared,
    ) -> Option<HandsWork> {
        let mut state = lock(&self.state);
        if let Some(frame) = state.in_flight.iter_mut().find(|f| f.serial == serial) {
            match output {
                Ok(hands) => frame.hands = Some(hands),
                Err(e) => frame.error = Some(e),
            }
        }
        state.hands_running = None;
        let next = self.next_hands_work(&mut state);
        // The pose job a finished hand branch unblocks is queued (this worker may have hands to do).
        self.finish(&mut state, service, false);
        next
    }

    /// Delivers every finished frame at the front, in order, and starts the next frame if possible.
    /// (`direct` and the result: see [`Self::try_start_pose`].)
    fn finish(
        self: &Arc<Self>,
        state: &mut StreamState,
        service: &ServiceShared,
        direct: bool,
    ) -> bool {
        while state.in_flight.front().is_some_and(InFlight::complete) {
            let Some(frame) = state.in_flight.pop_front() else {
                break;
            };
            let result = self.result_of(frame);
            if result.outcome.is_err() {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            self.counters.results.fetch_add(1, Ordering::Relaxed);
            for mailbox in lock(&self.subscribers).iter() {
                mailbox.push(result.clone());
            }
        }
        let again = self.try_start_pose(state, service, direct);
        if state.closed && state.in_flight.is_empty() {
            self.close_subscribers();
        }
        self.progress.notify_all();
        again
    }

    fn result_of(&self, frame: InFlight) -> StreamResult {
        let finished_at = Instant::now();
        let outcome = match (frame.error, frame.pose, frame.hands, &frame.image) {
            (Some(e), _, _, _) => Err(e),
            (None, Some(pose), Some(hands), Some(image)) => Ok(Arc::new(assemble(
                image.width,
                image.height,
                frame.meta.timestamp_us,
                frame.config,
                pose,
                hands,
                finished_at.saturating_duration_since(frame.started_at),
            ))),
            _ => Err(FrameError::Inference("the frame was not finished".into())),
        };
        StreamResult {
            stream: self.id,
            meta: frame.meta,
            received_at: frame.received_at,
            started_at: frame.started_at,
            finished_at,
            decode_ms: frame.decode_ms,
            image: frame.image,
            payload: frame.kept,
            model: frame.model,
            outcome,
        }
    }
}
