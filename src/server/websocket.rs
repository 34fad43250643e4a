//! The WebSocket transport: the upgrade, and [`pump`], which runs a WebSocket connection for any
//! [`Endpoint`] (livepose's own protocol at `/ws`, [`NativeEndpoint`], or a Socket.IO session's WebSocket
//! transport). The thread sleeps in `poll(2)` on the socket and the client's [`Signal`], so nothing spins
//! and a client that stops reading only ever holds one unsent result.

use std::io::Read as _;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::client::Client;
use super::http;
use super::signal::Signal;
use super::tls::Conn;
use super::wire::{self, ErrorCode, Limits, WireError};
use super::{STOP_POLL, ServerShared};

/// SO_SNDBUF of a WebSocket connection (Linux doubles it for its own bookkeeping).
const SEND_BUFFER_BYTES: usize = 128 * 1024;
/// Messages up to this many times the configured limit are read and answered with
/// `message_too_large`; anything larger closes the connection (1009), so memory stays bounded.
pub(crate) const HARD_LIMIT_FACTOR: usize = 4;

/// Sleeps in `poll(2)` until one of `fds` is ready or `timeout` passes; returns how many are ready. An
/// interrupted or failed poll only ends the wait early (0 ready): every caller loops and looks at its
/// sockets and flags again.
pub(crate) fn poll_wait(fds: &mut [PollFd<'_>], timeout: Duration) -> usize {
    rustix::event::poll(fds, Some(&timespec(timeout))).unwrap_or(0)
}

/// Sleeps until `fd` is readable or `timeout` passes.
pub(crate) fn wait_readable(fd: &impl AsFd, timeout: Duration) {
    poll_wait(&mut [PollFd::new(fd, PollFlags::IN)], timeout);
}

pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
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
pub(crate) struct NativeEndpoint {
    pub(crate) core: Client,
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
        // A refused frame is already queued for the client as an `error`; the outcome itself is for
        // Socket.IO's acknowledgements, which this protocol does not have.
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
    super::best_effort(
        ws.close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })),
        "close frame",
    );
    let deadline = Instant::now() + LINGER;
    while let Err(e) = ws.flush() {
        if !would_block(&e) || Instant::now() >= deadline {
            break;
        }
        poll_wait(&mut [PollFd::new(ws.get_ref(), PollFlags::OUT)], STOP_POLL);
    }
    let socket = ws.get_mut();
    socket.close_notify();
    super::best_effort(socket.tcp().shutdown(std::net::Shutdown::Write), "shutdown");
    let mut sink = [0_u8; 16 * 1024];
    let mut discarded = 0;
    while Instant::now() < deadline && discarded < LINGER_MAX_BYTES {
        match socket.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                poll_wait(&mut [PollFd::new(&*socket, PollFlags::IN)], STOP_POLL);
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
        poll_wait(&mut fds, wait);
    }
}

fn wire_error(e: WireError) -> (ErrorCode, String) {
    (e.code(), e.to_string())
}
