//! One connection: the HTTP request, then (for `/ws`) the WebSocket session of one client, or (for
//! `/socket.io/`) one request of a Socket.IO session (`super::socketio`).
//!
//! [`ClientCore`] is a client whatever its transport: incoming frames are checked (size, format,
//! dimensions from the header, sequence and timestamp order, rate) and put in the client's latest-wins
//! slot; results and errors are taken from it to be written back. [`pump`] runs a WebSocket connection
//! for any [`Endpoint`]: the thread sleeps in `poll(2)` on the socket and the client's [`Signal`], so
//! nothing spins and a client that stops reading only ever holds one unsent result.

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::http::{self, Request};
use super::signal::Signal;
use super::tls::Conn;
use super::wire::{
    self, ClientCounters, ErrorCode, FrameMessage, HelloMessage, Limits, ServerTimes, WireError,
};
use super::{ClientEntry, STOP_POLL, ServerShared};
use crate::frame::{ClockMapper, FrameInput, FrameMeta, Payload};
use crate::service::{Delivery, FrameError, StreamKind, StreamResult, StreamSpec};

/// SO_SNDBUF of a WebSocket connection (Linux doubles it for its own bookkeeping).
const SEND_BUFFER_BYTES: usize = 128 * 1024;
/// Errors kept for a client that is not reading; older ones are dropped beyond this.
const MAX_QUEUED_ERRORS: usize = 8;
/// Messages up to this many times the configured limit are read and answered with
/// `message_too_large`; anything larger closes the connection (1009), so memory stays bounded.
pub(crate) const HARD_LIMIT_FACTOR: usize = 4;
/// At most one `rate_limited` error per this interval (every refused frame is still counted).
const RATE_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// Sleeps until `fd` is readable or `timeout` passes.
pub(crate) fn wait_readable(fd: &impl AsFd, timeout: Duration) {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let _ = rustix::event::poll(&mut fds, Some(&timespec(timeout)));
}

pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// One connection whose request head has arrived (`rest`: the bytes that came after it).
/// `set_cookie`: a `Set-Cookie` header line for a page answer (a browser pairing with the token).
pub(crate) fn handle_connection(
    mut stream: Conn,
    peer: SocketAddr,
    request: Request,
    rest: Vec<u8>,
    set_cookie: Option<String>,
    shared: &Arc<ServerShared>,
) {
    let path = request.path.split('?').next().unwrap_or_default();
    if matches!(path, "/socket.io/" | "/socket.io") {
        super::socketio::handle_request(stream, peer, &request, rest, shared);
        return;
    }
    if !request.upgrade_websocket && matches!(path, "/healthz" | "/metrics") {
        let _ = serve_status(&mut stream, &request, path, shared);
        stream.close_notify();
        return;
    }
    if !request.upgrade_websocket {
        let _ = http::serve_file(&mut stream, &request, set_cookie.as_deref().unwrap_or(""));
        stream.close_notify();
        return;
    }
    if let Err(e) = serve_websocket(stream, peer, &request, rest, shared) {
        tracing::info!("client {peer}: {e}");
    }
}

/// `/healthz` (200 ready, 503 starting or draining) and `/metrics` (Prometheus text format).
fn serve_status(
    stream: &mut Conn,
    request: &Request,
    path: &str,
    shared: &ServerShared,
) -> std::io::Result<()> {
    if request.method != "GET" && request.method != "HEAD" {
        return http::respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n",
        );
    }
    if path == "/healthz" {
        return match shared.health() {
            Ok(()) => http::respond(stream, "200 OK", "text/plain", b"ok\n"),
            Err(why) => http::respond(
                stream,
                "503 Service Unavailable",
                "text/plain",
                format!("{why}\n").as_bytes(),
            ),
        };
    }
    match shared.metrics.render(
        &shared.service.stats(),
        shared.clients_connected(),
        shared.socketio.len(),
    ) {
        Ok(body) => http::respond(stream, "200 OK", super::metrics::CONTENT_TYPE, &body),
        Err(e) => http::respond(
            stream,
            "500 Internal Server Error",
            "text/plain",
            format!("{e}\n").as_bytes(),
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("closed: the client read no results for {0:?}")]
    Stalled(Duration),
}

fn serve_websocket(
    mut stream: Conn,
    peer: SocketAddr,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
) -> Result<(), ConnError> {
    let key = match http::check_upgrade(request, shared.draining(), |origin, host| {
        shared.origin_allowed(origin, host)
    }) {
        Ok(key) => key,
        Err(refusal) => {
            return Ok(http::respond(
                &mut stream,
                refusal.status,
                "text/plain",
                format!("{}\n", refusal.why).as_bytes(),
            )?);
        }
    };
    let mut ws = upgrade(stream, key, rest, shared.config.limits)?;
    let signal = Arc::new(Signal::new()?);
    let core = match ClientCore::open(shared, peer, Protocol::Livepose, &signal) {
        Ok(core) => core,
        Err(refused) => {
            let _ = ws.send(Message::text(refused.error_json()));
            let _ = ws.close(Some(CloseFrame {
                code: CloseCode::Again,
                reason: "too many clients".into(),
            }));
            let _ = ws.flush();
            return Ok(());
        }
    };
    pump(&mut ws, &signal, shared, &mut NativeEndpoint { core })
}

/// Answers a WebSocket upgrade (`key`: the checked `Sec-WebSocket-Key`) and sets the socket up for
/// [`pump`]: non-blocking, no Nagle delay, a small fixed send buffer, and size limits from `limits`.
pub(crate) fn upgrade(
    mut stream: Conn,
    key: &str,
    rest: Vec<u8>,
    limits: Limits,
) -> Result<WebSocket<Conn>, ConnError> {
    http::accept_websocket(&mut stream, key)?;
    let hard_limit = limits.max_message_bytes.saturating_mul(HARD_LIMIT_FACTOR);
    let config = WebSocketConfig::default()
        .max_message_size(Some(hard_limit))
        .max_frame_size(Some(hard_limit))
        .write_buffer_size(0);
    let tcp = stream.tcp();
    tcp.set_read_timeout(None)?;
    tcp.set_nonblocking(true)?;
    tcp.set_nodelay(true)?;
    // A fixed send buffer: results are small and frequent, so this is ample for any healthy client, and a
    // client that stops reading backs up after ~0.25 MiB of kernel memory instead of megabytes.
    rustix::net::sockopt::set_socket_send_buffer_size(stream.tcp(), SEND_BUFFER_BYTES)
        .map_err(std::io::Error::from)?;
    // Bytes a client sent right after its upgrade request (before our answer) are its first frames.
    Ok(WebSocket::from_partially_read(
        stream,
        rest,
        Role::Server,
        Some(config),
    ))
}

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
/// result). The transport turns frames into [`ClientCore::on_frame`] calls and sends what
/// [`ClientCore::take_outgoing`] gives. Dropping it unregisters the client and closes its stream (and
/// finishes its recording).
pub(crate) struct ClientCore {
    shared: Arc<ServerShared>,
    client: Arc<ClientEntry>,
    /// Messages of this connection's own (hello, errors) not sent yet; bounded, oldest errors dropped.
    outbox: VecDeque<(Event, String)>,
    order: FrameOrder,
    rate: RateLimiter,
    clock: ClockMapper,
    /// `serve --record`: subscribed before the first frame; finishes its session when dropped.
    _recorder: Option<crate::session::Recorder>,
}

impl ClientCore {
    /// Opens the client's stream, subscribes to it (each result rings `signal`) and registers the
    /// client, unless `max_clients` are connected. Its first message is `hello`.
    pub(crate) fn open(
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        protocol: Protocol,
        signal: &Arc<Signal>,
    ) -> Result<ClientCore, TooManyClients> {
        let limits = shared.config.limits;
        let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        let stream = shared.service.open_stream(StreamSpec {
            name: format!("browser #{id} ({peer})"),
            kind: StreamKind::WebSocket {
                client_id: id,
                peer,
            },
            tracker: shared.tracker_config(),
            delivery: Delivery::LatestWins,
        });
        let ring = Arc::clone(signal);
        let results = stream.subscribe_with_notify(1, Box::new(move || ring.notify()));
        let client = Arc::new(ClientEntry {
            id,
            peer,
            protocol,
            stream,
            results,
            rejected: AtomicU64::new(0),
            results_sent: AtomicU64::new(0),
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
        Ok(ClientCore {
            shared: Arc::clone(shared),
            client,
            outbox: VecDeque::from([(
                Event::Hello,
                serde_json::to_string(&hello).unwrap_or_default(),
            )]),
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
        self.outbox.drain(..).chain(result).collect()
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
        let counters = ClientCounters {
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
        let metrics = &self.shared.metrics;
        metrics.results.inc();
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
        if self.outbox.len() == MAX_QUEUED_ERRORS {
            self.outbox.pop_front();
        }
        self.outbox
            .push_back((Event::Error, wire::error_json(code, message, sequence)));
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

impl Drop for ClientCore {
    fn drop(&mut self) {
        self.shared.unregister(self.client.id);
    }
}

/// How a WebSocket connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Closing {
    pub code: CloseCode,
    pub reason: &'static str,
}

/// What runs over a WebSocket connection: livepose's protocol ([`NativeEndpoint`]) or a Socket.IO
/// session's WebSocket transport. [`pump`] does the socket work for both.
pub(crate) trait Endpoint {
    /// A message from the client; `Err` closes the connection.
    fn on_message(&mut self, message: Message, now: Instant) -> Result<(), Closing>;
    /// The messages to send now.
    fn outgoing(&mut self, now: Instant) -> Vec<Message>;
    /// The latest time to look again even if nothing happens (a heartbeat); None: no timer.
    fn deadline(&self) -> Option<Instant>;
    /// Whether the endpoint has ended on its own (a session closed elsewhere, a heartbeat missed).
    fn finished(&mut self, now: Instant) -> Option<Closing>;
}

/// livepose's own protocol (`docs/PROTOCOL.md`): binary or JSON frames in, JSON text messages out.
struct NativeEndpoint {
    core: ClientCore,
}

impl Endpoint for NativeEndpoint {
    fn on_message(&mut self, message: Message, _now: Instant) -> Result<(), Closing> {
        let parsed = match message {
            Message::Binary(bytes) => self
                .core
                .check_size(bytes.len())
                .and_then(|()| wire::frame_from_binary(bytes).map_err(wire_error)),
            Message::Text(text) => self
                .core
                .check_size(text.len())
                .and_then(|()| wire::frame_from_text(text.as_str()).map_err(wire_error)),
            // Pings are answered by tungstenite; a close is seen by the next read.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                return Ok(());
            }
        };
        let _ = self.core.on_frame(parsed);
        Ok(())
    }

    fn outgoing(&mut self, _now: Instant) -> Vec<Message> {
        self.core
            .take_outgoing()
            .into_iter()
            .map(|(_, json)| Message::text(json))
            .collect()
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn finished(&mut self, _now: Instant) -> Option<Closing> {
        None
    }
}

/// How long a closing connection waits for its close frame to go out and for the client's bytes to
/// stop coming, and how much of them it reads away meanwhile.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 16 << 20;

/// Sends a close frame with `code` and lingers: the frame is flushed, the write side shut, and what
/// the client still sends is read and discarded (bounded in time and bytes) before the socket closes.
/// Closing with unread bytes would make the kernel send a reset, and the client would see a broken
/// connection instead of `code` (1009 after an oversized message).
fn close_and_linger(ws: &mut WebSocket<Conn>, code: CloseCode, reason: &str) {
    let _ = ws.close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }));
    let deadline = Instant::now() + LINGER;
    while let Err(e) = ws.flush() {
        if !would_block(&e) || Instant::now() >= deadline {
            break;
        }
        let mut fds = [PollFd::new(ws.get_ref(), PollFlags::OUT)];
        let _ = rustix::event::poll(&mut fds, Some(&timespec(STOP_POLL)));
    }
    let socket = ws.get_mut();
    socket.close_notify();
    let _ = socket.tcp().shutdown(std::net::Shutdown::Write);
    let mut sink = [0_u8; 16 * 1024];
    let mut discarded = 0;
    while Instant::now() < deadline && discarded < LINGER_MAX_BYTES {
        match socket.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(&*socket, PollFlags::IN)];
                let _ = rustix::event::poll(&mut fds, Some(&timespec(STOP_POLL)));
            }
            Err(_) => break,
        }
    }
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

/// Runs a WebSocket connection until it closes: reads everything the client sent into `endpoint`, writes
/// what the endpoint has (unless the socket is still backed up), and sleeps in `poll(2)` on the socket
/// and `signal` (and no longer than the endpoint's deadline). A client whose output cannot be written for
/// `stall_timeout` is disconnected; on shutdown the connection is closed with 1001 (going away).
pub(crate) fn pump(
    ws: &mut WebSocket<Conn>,
    signal: &Signal,
    shared: &ServerShared,
    endpoint: &mut impl Endpoint,
) -> Result<(), ConnError> {
    // Unflushed bytes are waiting in the socket's direction (the client is not reading).
    let mut backlog_since: Option<Instant> = None;
    loop {
        if shared.stopping() || shared.draining() {
            close_and_linger(ws, CloseCode::Away, "server shutting down");
            return Ok(());
        }
        // Everything the client sent so far.
        loop {
            match ws.read() {
                Ok(message) => {
                    if let Err(closing) = endpoint.on_message(message, Instant::now()) {
                        close_and_linger(ws, closing.code, closing.reason);
                        return Ok(());
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(());
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    // Beyond the hard limit: the stream cannot be resynchronised, so close (1009).
                    close_and_linger(ws, CloseCode::Size, "message too large");
                    return Err(ConnError::WebSocket(tungstenite::Error::Capacity(e)));
                }
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let now = Instant::now();
        if let Some(closing) = endpoint.finished(now) {
            close_and_linger(ws, closing.code, closing.reason);
            return Ok(());
        }
        // Drain the wake-ups, then send what the endpoint has unless the socket is still backed up.
        signal.drain();
        if backlog_since.is_none() {
            for message in endpoint.outgoing(now) {
                match ws.write(message) {
                    Ok(()) => {}
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        match ws.flush() {
            Ok(()) => backlog_since = None,
            Err(e) if would_block(&e) => {
                let since = *backlog_since.get_or_insert(now);
                let timeout = shared.config.stall_timeout;
                if since.elapsed() >= timeout {
                    return Err(ConnError::Stalled(timeout));
                }
            }
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let mut socket_events = PollFlags::IN;
        if backlog_since.is_some() {
            socket_events |= PollFlags::OUT;
        }
        let wait = endpoint
            .deadline()
            .map_or(STOP_POLL, |at| {
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            })
            .min(STOP_POLL);
        let mut fds = [
            PollFd::new(ws.get_ref(), socket_events),
            PollFd::new(signal.fd(), PollFlags::IN),
        ];
        let _ = rustix::event::poll(&mut fds, Some(&timespec(wait)));
    }
}

fn wire_error(e: WireError) -> (ErrorCode, String) {
    (e.code(), e.to_string())
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
