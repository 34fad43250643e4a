//! A client of the server, whatever carries its messages (a WebSocket at `/ws`, or a Socket.IO session
//! over long-polling or WebSocket).
//!
//! [`Client`]: incoming frames are checked (size, format, dimensions from the header, sequence and
//! timestamp order, rate) and put in the client's latest-wins slot; results and errors are taken from it
//! to be written back. The transports (`super::websocket`, `super::socketio`) turn their messages into
//! [`Client::on_frame`] calls and send what [`Client::take_outgoing`] gives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::signal::Signal;
use super::wire::{self, ErrorCode, FrameMessage, HelloMessage, ResultCounters, ServerTimes};
use super::{RosterEntry, ServerShared};
use crate::frame::{ClockMapper, FrameInput, FrameMeta, Payload};
use crate::mailbox::Ring;
use crate::service::{Delivery, FrameError, StreamKind, StreamResult, StreamSpec};

/// Errors kept for a client that is not reading; older ones are dropped beyond this.
const MAX_QUEUED_ERRORS: usize = 8;
/// At most one `rate_limited` error per this interval (every refused frame is still counted).
const RATE_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// Which protocol a client speaks (shown in the client list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// livepose's own WebSocket protocol at `/ws`.
    Livepose,
    /// Socket.IO v5 over Engine.IO v4 at `/socket.io/`.
    SocketIo,
}

/// The kind of message a client gets (the Socket.IO event name, and the native `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Hello,
    Error,
    PoseResult,
}

impl Event {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::Hello => "hello",
            Event::Error => "error",
            Event::PoseResult => "pose_result",
        }
    }
}

/// `max_clients` are connected already.
pub(crate) struct TooManyClients(usize);

impl TooManyClients {
    /// The `error` message that says so.
    pub(crate) fn error_json(&self) -> String {
        wire::error_json(
            ErrorCode::TooManyClients,
            &format!("the server already has {} clients", self.0),
            None,
        )
    }
}

/// Order checks on accepted frames.
#[derive(Default)]
struct FrameOrder {
    last_sequence: Option<u64>,
    last_timestamp_us: Option<i64>,
}

/// A token bucket: `rate` frames per second, bursts of up to one second's worth.
struct RateLimiter {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    last_error: Option<Instant>,
}

impl RateLimiter {
    fn new(max_fps: f32) -> Self {
        let rate = f64::from(max_fps.max(0.1));
        Self {
            rate,
            tokens: rate.max(1.0),
            refilled: Instant::now(),
            last_error: None,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether to tell the client (at most once per [`RATE_ERROR_INTERVAL`]).
    fn should_report(&mut self, now: Instant) -> bool {
        let report = self
            .last_error
            .is_none_or(|t| now.saturating_duration_since(t) >= RATE_ERROR_INTERVAL);
        if report {
            self.last_error = Some(now);
        }
        report
    }
}

/// One connected client, whatever carries its messages (a WebSocket at `/ws`, or a Socket.IO session
/// over long-polling or WebSocket): its stream in the inference service and its subscription, the
/// checks on its frames (limits, order, rate), and what it is owed (`hello`, errors, the newest
/// result). The transport turns frames into [`Client::on_frame`] calls and sends what
/// [`Client::take_outgoing`] gives. Dropping it unregisters the client and closes its stream (and
/// finishes its recording).
pub(crate) struct Client {
    shared: Arc<ServerShared>,
    client: Arc<RosterEntry>,
    /// Messages of this connection's own (hello, errors) not sent yet; bounded, oldest errors dropped.
    outbox: Ring<(Event, String)>,
    order: FrameOrder,
    rate: RateLimiter,
    clock: ClockMapper,
    /// `serve --record`: subscribed before the first frame; finishes its session when dropped.
    _recorder: Option<crate::session::Recorder>,
}

impl Client {
    /// Opens the client's stream, subscribes to it (each result rings `signal`) and registers the
    /// client, unless `max_clients` are connected. Its first message is `hello`.
    pub(crate) fn open(
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        protocol: Protocol,
        signal: &Arc<Signal>,
    ) -> Result<Client, TooManyClients> {
        let limits = shared.config.limits;
        let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        let stream = shared.service.open_stream(StreamSpec {
            name: format!("browser #{id} ({peer})"),
            kind: StreamKind::Remote { peer },
            tracker: shared.tracker_config(),
            delivery: Delivery::LatestWins,
        });
        let ring = Arc::clone(signal);
        let results = stream.subscribe_with_notify(1, Box::new(move || ring.notify()));
        let client = Arc::new(RosterEntry {
            id,
            peer,
            protocol,
            stream,
            results,
            rejected: AtomicU64::new(0),
            results_sent: AtomicU64::new(0),
            people_in_view: AtomicU64::new(0),
        });
        if !shared.register(Arc::clone(&client)) {
            return Err(TooManyClients(limits.max_clients));
        }
        let recorder = shared
            .config
            .record_dir
            .as_deref()
            .and_then(|dir| start_recorder(shared, &client.stream, dir, id, peer, protocol));
        let engine = shared.service.engine_config();
        let hello = HelloMessage {
            kind: "hello",
            protocol: wire::PROTOCOL_VERSION,
            server: concat!("livepose ", env!("CARGO_PKG_VERSION")),
            client_id: id,
            limits,
            model: engine.pose_model.name(),
            hands: engine.hands,
        };
        let mut outbox = Ring::new(MAX_QUEUED_ERRORS);
        outbox.push((
            Event::Hello,
            serde_json::to_string(&hello).unwrap_or_default(),
        ));
        Ok(Client {
            shared: Arc::clone(shared),
            client,
            outbox,
            order: FrameOrder::default(),
            rate: RateLimiter::new(limits.max_fps),
            clock: ClockMapper::default(),
            _recorder: recorder,
        })
    }

    /// The client's id (`hello.client_id`).
    pub(crate) fn id(&self) -> u64 {
        self.client.id
    }

    /// The error for a message of `len` bytes when it is over the limit.
    pub(crate) fn check_size(&self, len: usize) -> Result<(), (ErrorCode, String)> {
        let limit = self.shared.config.limits.max_message_bytes;
        if len > limit {
            return Err((
                ErrorCode::MessageTooLarge,
                format!("message of {len} bytes exceeds the {limit}-byte limit"),
            ));
        }
        Ok(())
    }

    /// Everything the client is owed now: its own messages first, then the newest result.
    pub(crate) fn take_outgoing(&mut self) -> Vec<(Event, String)> {
        let result = self
            .client
            .results
            .take_newest()
            .map(|r| self.result_json(&r));
        self.outbox.drain().chain(result).collect()
    }

    /// A `pose_result`, or an `error` for a frame that failed.
    fn result_json(&self, result: &StreamResult) -> (Event, String) {
        let sequence = result.meta.seq;
        let frame = match &result.outcome {
            Ok(frame) => frame,
            Err(e) => {
                self.client.rejected.fetch_add(1, Ordering::Relaxed);
                let code = match e {
                    FrameError::Decode(_) => ErrorCode::BadImage,
                    FrameError::Inference(_) => ErrorCode::InferenceFailed,
                };
                self.shared.metrics.rejected(code.name());
                return (
                    Event::Error,
                    wire::error_json(code, &format!("frame {sequence}: {e}"), Some(sequence)),
                );
            }
        };
        let times = ServerTimes {
            received_ms: self.shared.ms_since_start(result.received_at),
            started_ms: self.shared.ms_since_start(result.started_at),
            sent_ms: self.shared.ms_since_start(Instant::now()),
            decode_ms: f64::from(result.decode_ms),
        };
        let stream = self.client.stream.stats();
        let counters = ResultCounters {
            received: stream.received,
            dropped: stream.dropped,
            rejected: self.client.rejected.load(Ordering::Relaxed),
            results_skipped: self.client.results.superseded(),
        };
        let timestamp_ms = result
            .meta
            .client_timestamp_ms
            .unwrap_or(result.meta.timestamp_us as f64 / 1e3);
        self.client.results_sent.fetch_add(1, Ordering::Relaxed);
        let people = frame.people.len() as u64;
        self.client.people_in_view.store(people, Ordering::Relaxed);
        let metrics = &self.shared.metrics;
        metrics.results.inc();
        metrics.person_results.inc_by(people);
        metrics.inference_seconds.observe(
            result
                .finished_at
                .saturating_duration_since(result.started_at)
                .as_secs_f64(),
        );
        metrics
            .round_trip_seconds
            .observe(result.received_at.elapsed().as_secs_f64());
        match wire::pose_result_json(
            sequence,
            timestamp_ms,
            frame,
            result.model.name(),
            times,
            counters,
        ) {
            Ok(json) => (Event::PoseResult, json),
            Err(e) => (
                Event::Error,
                wire::error_json(ErrorCode::InferenceFailed, &e.to_string(), Some(sequence)),
            ),
        }
    }

    fn push_error(&mut self, code: ErrorCode, message: &str, sequence: Option<u64>) {
        self.outbox
            .push((Event::Error, wire::error_json(code, message, sequence)));
    }

    /// A frame as the transport parsed it (or why it could not): checked, then published into the
    /// client's stream; a refusal is counted and queued as an `error` (rate-limit errors at most once
    /// a second). Returns the frame's sequence number, or the refusal (for a Socket.IO acknowledgement).
    pub(crate) fn on_frame(
        &mut self,
        parsed: Result<FrameMessage, (ErrorCode, String)>,
    ) -> Result<u64, (ErrorCode, String)> {
        let sequence = parsed.as_ref().ok().map(|frame| frame.sequence);
        let outcome = parsed
            .and_then(|frame| self.check_frame(frame))
            .and_then(|frame| {
                self.shared.frames_received.fetch_add(1, Ordering::Relaxed);
                self.shared.metrics.frames_received.inc();
                let seq = frame.meta.seq;
                match self.client.stream.publish(frame) {
                    Ok(true) => {
                        self.shared.metrics.frames_dropped.inc();
                        Ok(seq)
                    }
                    Ok(false) => Ok(seq),
                    Err(e) => Err((ErrorCode::InferenceFailed, e.to_string())),
                }
            });
        if let Err((code, message)) = &outcome {
            self.client.rejected.fetch_add(1, Ordering::Relaxed);
            self.shared.metrics.rejected(code.name());
            if *code != ErrorCode::RateLimited || self.rate.should_report(Instant::now()) {
                self.push_error(*code, message, sequence);
            }
        }
        outcome
    }

    /// Limits and order, from the header only (the image is decoded by inference, if it gets there).
    fn check_frame(&mut self, frame: FrameMessage) -> Result<FrameInput, (ErrorCode, String)> {
        let now = Instant::now();
        let limits = self.shared.config.limits;
        let seq = frame.sequence;
        let with_seq = |code, message: String| (code, format!("frame {seq}: {message}"));
        if let Some(last) = self.order.last_sequence
            && seq <= last
        {
            return Err(with_seq(
                ErrorCode::SequenceBackwards,
                format!("sequence must increase (previous {last})"),
            ));
        }
        // Whole µs; a timestamp that does not advance by at least 1 µs is not after the previous one.
        let timestamp_us = (frame.timestamp_ms * 1e3).round();
        if !timestamp_us.is_finite() || timestamp_us.abs() >= 9.0e15 {
            return Err(with_seq(
                ErrorCode::BadMessage,
                "timestamp out of range".into(),
            ));
        }
        let timestamp_us = timestamp_us as i64;
        if let Some(last) = self.order.last_timestamp_us
            && timestamp_us <= last
        {
            return Err(with_seq(
                ErrorCode::TimestampBackwards,
                format!(
                    "timestamp {} ms is not after the previous frame's {} ms",
                    frame.timestamp_ms,
                    last as f64 / 1e3
                ),
            ));
        }
        let (format, width, height) =
            wire::image_dimensions(&frame.image).map_err(|e| with_seq(e.code(), e.to_string()))?;
        if width > limits.max_width || height > limits.max_height || width == 0 || height == 0 {
            return Err(with_seq(
                ErrorCode::ImageTooLarge,
                format!(
                    "image is {width}×{height}; the limit is {}×{}",
                    limits.max_width, limits.max_height
                ),
            ));
        }
        if !self.rate.allow(now) {
            return Err((
                ErrorCode::RateLimited,
                format!(
                    "more than {} frames per second; frames dropped",
                    limits.max_fps
                ),
            ));
        }
        self.order.last_sequence = Some(seq);
        self.order.last_timestamp_us = Some(timestamp_us);
        Ok(FrameInput {
            meta: FrameMeta {
                seq,
                timestamp_us,
                captured_at: self.clock.captured_at(timestamp_us, now),
                client_timestamp_ms: Some(frame.timestamp_ms),
            },
            payload: Payload::Encoded {
                format,
                bytes: frame.image,
            },
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.unregister(self.client.id);
    }
}

/// Starts recording one connection's stream into `<dir>/client-<id>-<peer>`; a folder that cannot be
/// written is logged and the connection goes on unrecorded.
fn start_recorder(
    shared: &ServerShared,
    stream: &crate::service::StreamHandle,
    dir: &std::path::Path,
    id: u64,
    peer: SocketAddr,
    protocol: Protocol,
) -> Option<crate::session::Recorder> {
    let engine = shared.service.engine_config();
    let folder = dir.join(format!(
        "client-{id:04}-{}",
        peer.to_string().replace([':', '[', ']'], "_")
    ));
    let config = crate::session::RecorderConfig {
        dir: folder,
        source: crate::session::SessionSource {
            name: stream.name().to_owned(),
            kind: match protocol {
                Protocol::Livepose => "websocket",
                Protocol::SocketIo => "socket.io",
            }
            .into(),
        },
        settings: crate::session::SessionSettings::new(&engine, stream.tracker_config()),
        models: crate::session::model_hashes(&engine),
    };
    match crate::session::Recorder::start(stream, config) {
        Ok(recorder) => Some(recorder),
        Err(e) => {
            tracing::error!("client #{id}: not recording: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limiter_allows_its_rate_and_a_one_second_burst() {
        let mut limiter = RateLimiter::new(10.0);
        let start = limiter.refilled;
        // A burst of 10 passes, the 11th in the same instant does not.
        assert_eq!((0..11).filter(|_| limiter.allow(start)).count(), 10);
        // Over the next second at 100 frames/s, about 10 more pass.
        let passed = (1..=100)
            .filter(|i| limiter.allow(start + Duration::from_millis(10 * i)))
            .count();
        assert!((9..=11).contains(&passed), "{passed}");
        assert!(limiter.should_report(start));
        assert!(!limiter.should_report(start + Duration::from_millis(500)));
        assert!(limiter.should_report(start + Duration::from_millis(1500)));
    }
}
