//! Socket.IO v5 over Engine.IO v4 at `/socket.io/`, so the prototype's frontend (and any
//! `socket.io-client` or `python-socketio` program) connects unchanged: `socket.emit('frame', {image,
//! timestamp, sequence})` in, `pose_result` events out. Written here over the server's own threads
//! rather than with a crate: the Rust Socket.IO servers (socketioxide and the like) run on tokio/hyper,
//! a second runtime beside the blocking, `poll(2)`-driven threads every other connection uses.
//!
//! An Engine.IO **session** ([`Session`], keyed by its `sid`) outlives the HTTP requests that carry
//! it. Its state sits behind one mutex, and every request of the session works on it:
//! - long-polling: a `GET` (on its connection thread) waits on the session's [`Signal`] until there is
//!   something to send, or a heartbeat is due, then answers with every packet waiting; a `POST` reads
//!   its body, then hands the packets to the session;
//! - WebSocket: one connection thread runs [`client::pump`] with [`WsTransport`], either from the
//!   start (`transport=websocket` without a `sid`) or as the upgrade of a long-polling session (the
//!   `2probe`/`3probe`/`5` exchange; the pending `GET` is answered `6` (noop) so the client lets go of
//!   it).
//!
//! The Socket.IO **socket** of the default namespace is a [`ClientCore`], opened by the client's
//! `CONNECT`: its own stream in the inference service, the same limits, order checks and per-stream
//! tracking as a `/ws` client. Its `hello`, `error` and `pose_result` messages become events of those
//! names carrying the same JSON objects (`docs/PROTOCOL.md`).
//!
//! The server sends a `ping` every `ping_interval` and closes a session whose `pong` has not come
//! `ping_timeout` later, or that has not connected its socket within `connect_timeout`. A timer thread
//! (`livepose-socketio`) does this for sessions no request is waiting on, and closes every session when
//! the server drains.

pub mod packet;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use self::packet::{Packet, SocketIoPacket, SocketIoType};
use super::client::{self, ClientCore, Closing, Endpoint, HARD_LIMIT_FACTOR, Protocol};
use super::http::{self, Request};
use super::signal::Signal;
use super::tls::Conn;
use super::wire::{self, ErrorCode};
use super::{STOP_POLL, ServerShared, lock};

/// Socket.IO's timings, announced in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketIoConfig {
    /// The server pings every session this often.
    pub ping_interval: Duration,
    /// A session whose `pong` has not come this long after a `ping` is closed.
    pub ping_timeout: Duration,
    /// A session whose client has not connected to the namespace this long after the handshake is closed.
    pub connect_timeout: Duration,
    /// A WebSocket probing a long-polling session must complete the upgrade (`5`) within this; otherwise
    /// it is closed and the session stays on long-polling.
    pub upgrade_timeout: Duration,
}

impl Default for SocketIoConfig {
    /// The socket.io server's defaults (v4: `pingInterval` 25 s, `pingTimeout` 20 s, `connectTimeout` 45 s,
    /// `upgradeTimeout` 10 s).
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(45),
            upgrade_timeout: Duration::from_secs(10),
        }
    }
}

/// Engine.IO sessions at most, connected to the namespace or not (beyond: `503`).
fn max_sessions(shared: &ServerShared) -> usize {
    shared.config.limits.max_clients + super::EXTRA_CONNECTIONS
}

/// A long-polling `POST` body must arrive within this.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Packets queued for a client that does not poll; beyond, its session is closed.
const MAX_QUEUED_PACKETS: usize = 256;
/// Random bytes in an Engine.IO or Socket.IO session id (120 bits, 20 characters of base64url).
const SID_BYTES: usize = 15;

/// Why a session ended (logged; a client sees its transport close).
type CloseReason = &'static str;
/// The client sent Engine.IO's `close`.
const CLIENT_CLOSED: CloseReason = "the client closed the session";
/// The server drains or stops.
const SHUTTING_DOWN: CloseReason = "server shutting down";

/// Every Engine.IO session of the server.
#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Registry {
    fn insert(&self, session: Arc<Session>, max: usize) -> bool {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= max {
            return false;
        }
        sessions.insert(session.sid.clone(), session);
        true
    }

    fn get(&self, sid: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(sid).cloned()
    }

    fn remove(&self, sid: &str) {
        lock(&self.sessions).remove(sid);
    }

    fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Closes and forgets every session. A connected session holds its client, which holds the server's
    /// shared state: the server calls this when it stops, so nothing is left in that cycle.
    pub(crate) fn close_all(&self) {
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        for session in sessions {
            lock(&session.state).close(SHUTTING_DOWN);
            session.signal.notify();
        }
    }

    /// Sessions open now (the `/metrics` gauge).
    pub(crate) fn len(&self) -> usize {
        lock(&self.sessions).len()
    }
}

/// How the session's packets travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Polling,
    /// A WebSocket answered the probe; long-polling is being let go.
    Upgrading,
    WebSocket,
}

/// The default namespace's socket.
enum Socket {
    AwaitingConnect { deadline: Instant },
    Connected(Box<ClientCore>),
    Closed,
}

/// A `BINARY_EVENT` (or `BINARY_ACK`) whose attachments are still arriving.
struct PartialPacket {
    packet: SocketIoPacket,
    attachments: Vec<Bytes>,
    /// Bytes of the packet's text and its attachments so far.
    bytes: usize,
}

/// One Engine.IO session.
pub(crate) struct Session {
    sid: String,
    peer: SocketAddr,
    signal: Arc<Signal>,
    state: Mutex<State>,
}

struct State {
    config: SocketIoConfig,
    /// The most bytes one packet may hold with its attachments (four times the message limit, as a
    /// WebSocket message or a long-polling body).
    max_packet_bytes: usize,
    transport: Transport,
    get_active: bool,
    post_active: bool,
    /// A WebSocket connection holds the session (probing or upgraded).
    websocket_attached: bool,
    queue: VecDeque<Packet>,
    next_ping_at: Instant,
    pong_deadline: Option<Instant>,
    socket: Socket,
    partial: Option<PartialPacket>,
    closed: Option<CloseReason>,
}

impl Session {
    fn new(
        shared: &ServerShared,
        peer: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> std::io::Result<Session> {
        let config = shared.config.socketio;
        Ok(Session {
            sid: new_sid()?,
            peer,
            signal: Arc::new(Signal::new()?),
            state: Mutex::new(State::new(
                config,
                shared
                    .config
                    .limits
                    .max_message_bytes
                    .saturating_mul(HARD_LIMIT_FACTOR),
                transport,
                now,
            )),
        })
    }

    fn open_packet(&self, shared: &ServerShared, upgrades: &[&str]) -> Packet {
        let config = shared.config.socketio;
        let open = serde_json::json!({
            "sid": self.sid,
            "upgrades": upgrades,
            "pingInterval": config.ping_interval.as_millis(),
            "pingTimeout": config.ping_timeout.as_millis(),
            "maxPayload": shared.config.limits.max_message_bytes,
        });
        Packet::Open(open.to_string())
    }

    /// Closes the session (if `reason`), forgets it and wakes whoever waits on it.
    fn close(&self, shared: &ServerShared, reason: CloseReason) {
        lock(&self.state).close(reason);
        self.forget_if_closed(shared);
    }

    /// Takes a closed session out of the registry (its requests then get `400 Session ID unknown`) and
    /// wakes its waiting request.
    fn forget_if_closed(&self, shared: &ServerShared) {
        let closed = lock(&self.state).closed;
        if let Some(reason) = closed {
            shared.socketio.remove(&self.sid);
            tracing::debug!("socket.io session {} ({}): {reason}", self.sid, self.peer);
            self.signal.notify();
        }
    }
}

fn new_sid() -> std::io::Result<String> {
    let mut bytes = [0_u8; SID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

impl State {
    fn new(
        config: SocketIoConfig,
        max_packet_bytes: usize,
        transport: Transport,
        now: Instant,
    ) -> State {
        State {
            config,
            max_packet_bytes,
            transport,
            get_active: false,
            post_active: false,
            websocket_attached: transport == Transport::WebSocket,
            queue: VecDeque::new(),
            next_ping_at: now + config.ping_interval,
            pong_deadline: None,
            socket: Socket::AwaitingConnect {
                deadline: now + config.connect_timeout,
            },
            partial: None,
            closed: None,
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
        // Unregisters the client and closes its stream (its recording is completed).
        self.socket = Socket::Closed;
        self.queue.clear();
        self.partial = None;
    }

    fn push(&mut self, packet: Packet) {
        if self.queue.len() >= MAX_QUEUED_PACKETS {
            self.close("too many packets waiting for a client that does not poll");
            return;
        }
        self.queue.push_back(packet);
    }

    /// Timers: a `ping` when one is due, and the end of a session whose `pong` or `CONNECT` is late.
    /// True when something changed that a waiting request should see.
    fn tick(&mut self, now: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        if let Socket::AwaitingConnect { deadline } = self.socket
            && now >= deadline
        {
            self.close("no CONNECT to the namespace within the connect timeout");
            return true;
        }
        match self.pong_deadline {
            Some(deadline) if now >= deadline => {
                self.close("ping timeout");
                true
            }
            Some(_) => false,
            None if now >= self.next_ping_at => {
                self.push(Packet::Ping(String::new()));
                self.pong_deadline = Some(now + self.config.ping_timeout);
                true
            }
            None => false,
        }
    }

    /// When the timers next need looking at.
    fn deadline(&self) -> Instant {
        let heartbeat = self.pong_deadline.unwrap_or(self.next_ping_at);
        match self.socket {
            Socket::AwaitingConnect { deadline } => heartbeat.min(deadline),
            _ => heartbeat,
        }
    }

    /// Everything waiting for the client: queued packets, then the socket's messages as events.
    fn take_outgoing(&mut self) -> Vec<Packet> {
        let mut packets: Vec<Packet> = self.queue.drain(..).collect();
        if let Socket::Connected(core) = &mut self.socket {
            packets.extend(
                core.take_outgoing()
                    .into_iter()
                    .map(|(event, json)| Packet::Text(packet::encode_event(event.name(), &json))),
            );
        }
        packets
    }

    /// A packet from the client (over either transport). `Err`: a protocol error, which ends the session.
    fn on_packet(
        &mut self,
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        signal: &Arc<Signal>,
        packet: Packet,
        now: Instant,
    ) -> Result<(), CloseReason> {
        match packet {
            Packet::Pong(_) => {
                self.pong_deadline = None;
                self.next_ping_at = now + self.config.ping_interval;
                Ok(())
            }
            Packet::Close => Err(CLIENT_CLOSED),
            Packet::Noop => Ok(()),
            Packet::Text(text) => self.on_socketio_text(shared, peer, signal, &text),
            Packet::Binary(bytes) => self.on_attachment(bytes),
            // The probe and the upgrade belong to the WebSocket transport ([`WsTransport`]).
            Packet::Open(_) | Packet::Ping(_) | Packet::Upgrade => {
                Err("unexpected Engine.IO packet from the client")
            }
        }
    }

    fn on_socketio_text(
        &mut self,
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        signal: &Arc<Signal>,
        text: &str,
    ) -> Result<(), CloseReason> {
        if self.partial.is_some() {
            return Err("text packet while binary attachments were due");
        }
        let packet = packet::decode_socketio(text).map_err(|e| {
            tracing::debug!("socket.io parse error: {e}");
            "Socket.IO parse error"
        })?;
        if packet.namespace != packet::DEFAULT_NAMESPACE {
            if packet.kind == SocketIoType::Connect {
                self.push(Packet::Text(packet::encode_socketio(
                    SocketIoType::ConnectError,
                    &packet.namespace,
                    None,
                    Some(r#"{"message":"Invalid namespace"}"#),
                )));
            }
            // Packets for a namespace the client could not join are ignored, as socket.io does.
            return Ok(());
        }
        match packet.kind {
            SocketIoType::Connect => {
                if matches!(self.socket, Socket::AwaitingConnect { .. }) {
                    self.connect(shared, peer, signal);
                }
                Ok(())
            }
            SocketIoType::Disconnect => {
                self.socket = Socket::AwaitingConnect {
                    deadline: Instant::now() + self.config.connect_timeout,
                };
                Ok(())
            }
            SocketIoType::Event | SocketIoType::Ack => {
                self.on_complete(packet, Vec::new(), text.len())
            }
            SocketIoType::BinaryEvent | SocketIoType::BinaryAck => {
                if packet.attachments == 0 {
                    return self.on_complete(packet, Vec::new(), text.len());
                }
                self.partial = Some(PartialPacket {
                    attachments: Vec::with_capacity(packet.attachments),
                    packet,
                    bytes: text.len(),
                });
                Ok(())
            }
            SocketIoType::ConnectError => Err("CONNECT_ERROR from a client"),
        }
    }

    fn on_attachment(&mut self, bytes: Bytes) -> Result<(), CloseReason> {
        let Some(mut partial) = self.partial.take() else {
            return Err("binary data without a binary event");
        };
        partial.bytes += bytes.len();
        if partial.bytes > self.max_packet_bytes {
            return Err("binary attachments over the hard limit");
        }
        partial.attachments.push(bytes);
        if partial.attachments.len() < partial.packet.attachments {
            self.partial = Some(partial);
            return Ok(());
        }
        self.on_complete(partial.packet, partial.attachments, partial.bytes)
    }

    fn connect(&mut self, shared: &Arc<ServerShared>, peer: SocketAddr, signal: &Arc<Signal>) {
        match ClientCore::open(shared, peer, Protocol::SocketIo, signal) {
            Ok(core) => {
                let sid = new_sid().unwrap_or_else(|_| format!("client-{}", core.id()));
                self.push(Packet::Text(packet::encode_socketio(
                    SocketIoType::Connect,
                    packet::DEFAULT_NAMESPACE,
                    None,
                    Some(&serde_json::json!({ "sid": sid }).to_string()),
                )));
                self.socket = Socket::Connected(Box::new(core));
            }
            Err(refused) => {
                // The client gets `connect_error` with the native error in `err.data`; the session
                // ends at the connect timeout unless the client closes it first.
                let message = serde_json::json!({
                    "message": "too many clients",
                    "data": serde_json::from_str::<serde_json::Value>(&refused.error_json())
                        .unwrap_or_default(),
                });
                self.push(Packet::Text(packet::encode_socketio(
                    SocketIoType::ConnectError,
                    packet::DEFAULT_NAMESPACE,
                    None,
                    Some(&message.to_string()),
                )));
            }
        }
    }

    /// A whole event (or acknowledgement) of the default namespace, with its attachments; `bytes`: its
    /// size on the wire.
    fn on_complete(
        &mut self,
        packet: SocketIoPacket,
        attachments: Vec<Bytes>,
        bytes: usize,
    ) -> Result<(), CloseReason> {
        if matches!(packet.kind, SocketIoType::Ack | SocketIoType::BinaryAck) {
            // The server asks for no acknowledgements; one that comes is dropped.
            return Ok(());
        }
        let Socket::Connected(core) = &mut self.socket else {
            return Err("an event before CONNECT");
        };
        let args = packet
            .data
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let outcome = match args.first().and_then(serde_json::Value::as_str) {
            Some("frame") => {
                let parsed = core.check_size(bytes).and_then(|()| {
                    wire::frame_from_event(args.get(1), &attachments)
                        .map_err(|e| (e.code(), e.to_string()))
                });
                core.on_frame(parsed)
            }
            name => core.on_frame(Err((
                ErrorCode::UnknownType,
                format!(
                    "unknown event {:?}: the server takes `frame` events",
                    name.unwrap_or_default()
                ),
            ))),
        };
        if let Some(id) = packet.ack_id {
            let answer = match outcome {
                Ok(sequence) => serde_json::json!([{ "accepted": true, "sequence": sequence }]),
                Err((code, message)) => {
                    serde_json::json!([{ "accepted": false, "code": code.name(), "message": message }])
                }
            };
            self.push(Packet::Text(packet::encode_socketio(
                SocketIoType::Ack,
                packet::DEFAULT_NAMESPACE,
                Some(id),
                Some(&answer.to_string()),
            )));
        }
        Ok(())
    }
}

/// The timer thread: heartbeats and timeouts of sessions nobody is waiting on, and the end of every
/// session when the server drains.
pub(crate) fn timer_loop(shared: &Arc<ServerShared>) {
    while !shared.stopping() {
        std::thread::sleep(STOP_POLL);
        let draining = shared.draining() || shared.stopping();
        let now = Instant::now();
        for session in shared.socketio.all() {
            let changed = {
                let mut state = lock(&session.state);
                if draining {
                    state.close(SHUTTING_DOWN);
                    true
                } else {
                    state.tick(now)
                }
            };
            if changed {
                session.signal.notify();
            }
            session.forget_if_closed(shared);
        }
    }
    shared.socketio.close_all();
}

/// Engine.IO's error answers (`{"code":N,"message":…}`, as the reference server words them).
fn engine_error(code: u8) -> (&'static str, String) {
    let message = match code {
        0 => "Transport unknown",
        1 => "Session ID unknown",
        2 => "Bad handshake method",
        3 => "Bad request",
        4 => "Forbidden",
        _ => "Unsupported protocol version",
    };
    let status = if code == 4 {
        "403 Forbidden"
    } else {
        "400 Bad Request"
    };
    (
        status,
        serde_json::json!({ "code": code, "message": message }).to_string(),
    )
}

/// The query parameters Engine.IO reads.
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(target: &'a str) -> Self {
        let param = |name| super::pairing::query_param(target, name);
        Self {
            eio: param("EIO"),
            transport: param("transport"),
            sid: param("sid"),
        }
    }
}

/// One HTTP request to `/socket.io/` (the connection's thread, after the accept thread's checks).
pub(crate) fn handle_request(
    mut stream: Conn,
    peer: SocketAddr,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
) {
    let mut answer = Answer {
        stream: &mut stream,
        cors: String::new(),
    };
    let result = match route(&mut answer, peer, request, rest, shared) {
        Ok(Next::WebSocket(upgrade)) => run_websocket(stream, *upgrade, shared),
        done => {
            stream.close_notify();
            done.map(|_| ())
        }
    };
    if let Err(e) = result {
        tracing::debug!("socket.io request from {peer}: {e}");
    }
}

/// What is left to do after [`route`].
enum Next {
    Done,
    /// Upgrade the connection to a session's WebSocket.
    WebSocket(Box<WsUpgrade>),
}

struct WsUpgrade {
    key: String,
    rest: Vec<u8>,
    session: Arc<Session>,
    phase: Phase,
}

/// Where a `/socket.io/` answer goes, with the CORS headers the request earns.
struct Answer<'a> {
    stream: &'a mut Conn,
    cors: String,
}

impl Answer<'_> {
    fn text(&mut self, body: &str) -> std::io::Result<()> {
        http::respond_with(
            self.stream,
            "200 OK",
            "text/plain; charset=UTF-8",
            &self.cors,
            body.as_bytes(),
        )
    }

    fn error(&mut self, code: u8) -> std::io::Result<()> {
        let (status, body) = engine_error(code);
        http::respond_with(
            self.stream,
            status,
            "application/json",
            &self.cors,
            body.as_bytes(),
        )
    }

    fn status(&mut self, status: &str, why: &str) -> std::io::Result<()> {
        http::respond_with(
            self.stream,
            status,
            "text/plain",
            &self.cors,
            format!("{why}\n").as_bytes(),
        )
    }
}

fn route(
    answer: &mut Answer<'_>,
    peer: SocketAddr,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
) -> Result<Next, client::ConnError> {
    let done =
        |result: std::io::Result<()>| result.map(|()| Next::Done).map_err(client::ConnError::from);
    // The Origin rule of `/ws` applies; an allowed cross-origin page (`--allow-origin`) may read the
    // answers of long-polling.
    let origin = request.origin.as_deref();
    if !shared.origin_allowed(origin, request.host.as_deref()) {
        return done(answer.error(4));
    }
    if let Some(origin) = origin {
        answer.cors = format!(
            "Access-Control-Allow-Origin: {origin}\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
        );
    }
    if request.method == "OPTIONS" {
        let headers = request
            .cors_request_headers
            .as_deref()
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" ,-_".contains(&b))
            })
            .unwrap_or("content-type");
        answer.cors.push_str(&format!(
            "Access-Control-Allow-Methods: GET, POST\r\nAccess-Control-Allow-Headers: {headers}\r\nAccess-Control-Max-Age: 600\r\n"
        ));
        return done(http::respond_with(
            answer.stream,
            "204 No Content",
            "text/plain",
            &answer.cors,
            b"",
        ));
    }
    let query = Query::parse(&request.path);
    if query.eio != Some("4") {
        return done(answer.error(5));
    }
    let websocket = match query.transport {
        Some("polling") => false,
        Some("websocket") => true,
        _ => return done(answer.error(0)),
    };
    if websocket != request.upgrade_websocket {
        return done(answer.error(3));
    }
    if shared.draining() || shared.stopping() {
        return done(answer.status(
            "503 Service Unavailable",
            "the server is shutting down; connect again (another server may take you)",
        ));
    }
    let now = Instant::now();
    let session = match query.sid {
        Some(sid) => match shared.socketio.get(sid) {
            Some(session) => Some(session),
            None => return done(answer.error(1)),
        },
        None => None,
    };
    match (websocket, session) {
        (true, session) => websocket_session(answer, peer, request, rest, shared, session),
        (false, None) if request.method == "GET" => {
            let session = Arc::new(Session::new(shared, peer, Transport::Polling, now)?);
            if !shared
                .socketio
                .insert(Arc::clone(&session), max_sessions(shared))
            {
                return done(answer.status(
                    "503 Service Unavailable",
                    "too many Socket.IO sessions; try again later",
                ));
            }
            let open = session.open_packet(shared, &["websocket"]);
            done(answer.text(&open.to_text()))
        }
        (false, None) => done(answer.error(2)),
        (false, Some(session)) if request.method == "GET" => {
            poll(answer, shared, &session).map(|()| Next::Done)
        }
        (false, Some(session)) if request.method == "POST" => {
            post(answer, request, rest, shared, &session).map(|()| Next::Done)
        }
        (false, Some(_)) => done(answer.error(3)),
    }
}

/// The two kinds of long-polling request, each allowed once at a time per session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Polling {
    Get,
    Post,
}

/// Marks a long-polling request of `which` kind as in progress. False when the session is on WebSocket
/// already, or when one of that kind is in progress (then the protocol ends the session).
fn claim(shared: &ServerShared, session: &Session, which: Polling) -> bool {
    let mut state = lock(&session.state);
    if state.transport == Transport::WebSocket {
        return false;
    }
    let active = match which {
        Polling::Get => &mut state.get_active,
        Polling::Post => &mut state.post_active,
    };
    if *active {
        state.close(match which {
            Polling::Get => "two long-polling GETs at once",
            Polling::Post => "two long-polling POSTs at once",
        });
        drop(state);
        session.forget_if_closed(shared);
        return false;
    }
    *active = true;
    true
}

/// A long-polling `GET`: waits until there is something to send (or a heartbeat is due), then sends
/// every packet waiting. A second `GET` while one waits ends the session (the protocol's rule).
fn poll(
    answer: &mut Answer<'_>,
    shared: &Arc<ServerShared>,
    session: &Arc<Session>,
) -> Result<(), client::ConnError> {
    if !claim(shared, session, Polling::Get) {
        return Ok(answer.error(3)?);
    }
    let packets = loop {
        let seen = session.signal.generation();
        let wait = {
            let mut state = lock(&session.state);
            let now = Instant::now();
            state.tick(now);
            if state.closed.is_some() {
                break vec![Packet::Close];
            }
            let packets = state.take_outgoing();
            if !packets.is_empty() {
                break packets;
            }
            if state.transport != Transport::Polling {
                // Upgrading: let the client's long-polling go.
                break vec![Packet::Noop];
            }
            state.deadline().saturating_duration_since(now)
        };
        if shared.stopping() {
            break vec![Packet::Close];
        }
        session
            .signal
            .wait_past(seen, wait.clamp(Duration::from_millis(1), STOP_POLL));
    };
    lock(&session.state).get_active = false;
    session.forget_if_closed(shared);
    Ok(answer.text(&packet::encode_payload(&packets))?)
}

/// A long-polling `POST`: reads the body (bounded in size and time), then hands its packets to the
/// session. A malformed body, or a second `POST` while one is read, ends the session.
fn post(
    answer: &mut Answer<'_>,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
    session: &Arc<Session>,
) -> Result<(), client::ConnError> {
    if request.transfer_encoded {
        return Ok(answer.status("411 Length Required", "send the body with a Content-Length")?);
    }
    let length = request.content_length.unwrap_or(rest.len());
    let hard_limit = shared
        .config
        .limits
        .max_message_bytes
        .saturating_mul(HARD_LIMIT_FACTOR);
    if length > hard_limit {
        session.close(shared, "POST body over the hard limit");
        return Ok(answer.status(
            "413 Payload Too Large",
            &format!("a body may hold at most {hard_limit} bytes"),
        )?);
    }
    if !claim(shared, session, Polling::Post) {
        return Ok(answer.error(3)?);
    }
    let body = read_body(answer.stream, rest, length);
    let outcome = body.map(|body| {
        let packets = packet::decode_payload(&body);
        let mut state = lock(&session.state);
        state.post_active = false;
        let result = packets
            .map_err(|e| {
                tracing::debug!("socket.io: {e}");
                "invalid Engine.IO packet"
            })
            .and_then(|packets| {
                let now = Instant::now();
                packets.into_iter().try_for_each(|packet| {
                    state.on_packet(shared, session.peer, &session.signal, packet, now)
                })
            });
        if let Err(reason) = result {
            state.close(reason);
        }
        result
    });
    if outcome.is_err() {
        lock(&session.state).post_active = false;
    }
    // The GET may have something to send now (a CONNECT answer, an error, an acknowledgement).
    session.signal.notify();
    session.forget_if_closed(shared);
    match outcome? {
        Ok(()) => Ok(answer.text("ok")?),
        Err(CLIENT_CLOSED) => Ok(answer.text("ok")?),
        Err(_) => Ok(answer.error(3)?),
    }
}

/// The body of a request: `rest` (read with the head) and the remaining bytes up to `length`.
fn read_body(stream: &mut Conn, mut rest: Vec<u8>, length: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    stream.tcp().set_read_timeout(Some(BODY_TIMEOUT))?;
    rest.truncate(length);
    let have = rest.len();
    rest.resize(length, 0);
    stream.read_exact(&mut rest[have..])?;
    Ok(rest)
}

/// A WebSocket to `/socket.io/`: a new session over WebSocket only (no `sid`), or the upgrade of a
/// long-polling session. Checks the upgrade and claims the session; [`run_websocket`] does the rest.
fn websocket_session(
    answer: &mut Answer<'_>,
    peer: SocketAddr,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
    existing: Option<Arc<Session>>,
) -> Result<Next, client::ConnError> {
    let key = match http::check_upgrade(request, shared.draining(), |origin, host| {
        shared.origin_allowed(origin, host)
    }) {
        Ok(key) => key.to_owned(),
        Err(refusal) => {
            answer.status(refusal.status, &refusal.why)?;
            return Ok(Next::Done);
        }
    };
    let (session, phase) = match existing {
        Some(session) => {
            let mut state = lock(&session.state);
            if state.transport != Transport::Polling || state.websocket_attached {
                drop(state);
                answer.error(3)?;
                return Ok(Next::Done);
            }
            state.websocket_attached = true;
            drop(state);
            (
                session,
                Phase::Probing {
                    answered: false,
                    until: Instant::now() + shared.config.socketio.upgrade_timeout,
                },
            )
        }
        None => {
            let session = Arc::new(Session::new(
                shared,
                peer,
                Transport::WebSocket,
                Instant::now(),
            )?);
            if !shared
                .socketio
                .insert(Arc::clone(&session), max_sessions(shared))
            {
                answer.status(
                    "503 Service Unavailable",
                    "too many Socket.IO sessions; try again later",
                )?;
                return Ok(Next::Done);
            }
            let open = session.open_packet(shared, &[]);
            lock(&session.state).queue.push_front(open);
            (session, Phase::Open)
        }
    };
    Ok(Next::WebSocket(Box::new(WsUpgrade {
        key,
        rest,
        session,
        phase,
    })))
}

/// Answers the upgrade and runs the session's WebSocket until it closes.
fn run_websocket(
    stream: Conn,
    upgrade: WsUpgrade,
    shared: &Arc<ServerShared>,
) -> Result<(), client::ConnError> {
    let WsUpgrade {
        key,
        rest,
        session,
        phase,
    } = upgrade;
    let mut ws = match client::upgrade(stream, &key, rest, shared.config.limits) {
        Ok(ws) => ws,
        Err(e) => {
            release_websocket(shared, &session, phase);
            return Err(e);
        }
    };
    let mut transport = WsTransport {
        shared: Arc::clone(shared),
        session: Arc::clone(&session),
        phase,
    };
    let outcome = client::pump(&mut ws, &session.signal, shared, &mut transport);
    release_websocket(shared, &session, transport.phase);
    outcome
}

/// After a session's WebSocket ends: an upgraded (or WebSocket-only) session ends with it; a probe
/// that did not complete leaves the session on long-polling.
fn release_websocket(shared: &ServerShared, session: &Session, phase: Phase) {
    {
        let mut state = lock(&session.state);
        state.websocket_attached = false;
        match phase {
            Phase::Open => state.close("transport close"),
            Phase::Probing { .. } => {
                if state.transport == Transport::Upgrading {
                    state.transport = Transport::Polling;
                }
            }
        }
    }
    session.forget_if_closed(shared);
}

/// Where a session's WebSocket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Upgrading from long-polling: `answered` once `3probe` is due (until it is sent); the upgrade must
    /// be complete `until` then.
    Probing { answered: bool, until: Instant },
    /// The session's transport.
    Open,
}

/// A session's WebSocket transport, for [`client::pump`]: each Engine.IO packet one frame (binary
/// attachments as binary frames).
struct WsTransport {
    shared: Arc<ServerShared>,
    session: Arc<Session>,
    phase: Phase,
}

impl WsTransport {
    fn on_probe_packet(&mut self, packet: Packet) -> Result<(), Closing> {
        let mut state = lock(&self.session.state);
        match packet {
            Packet::Ping(data) if data == "probe" => {
                state.transport = Transport::Upgrading;
                if let Phase::Probing { answered, .. } = &mut self.phase {
                    *answered = true;
                }
                drop(state);
                // The pending GET answers `6` (noop) and the client stops polling.
                self.session.signal.notify();
                Ok(())
            }
            Packet::Upgrade if state.transport == Transport::Upgrading => {
                state.transport = Transport::WebSocket;
                self.phase = Phase::Open;
                Ok(())
            }
            _ => Err(Closing {
                code: CloseCode::Protocol,
                reason: "expected the upgrade probe",
            }),
        }
    }
}

impl Endpoint for WsTransport {
    fn on_message(&mut self, message: Message, now: Instant) -> Result<(), Closing> {
        let packet = match message {
            Message::Text(text) => packet::decode_text(text.as_str()),
            Message::Binary(bytes) => Ok(Packet::Binary(bytes)),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                return Ok(());
            }
        };
        let protocol_error = |reason| Closing {
            code: CloseCode::Protocol,
            reason,
        };
        let packet = match packet {
            Ok(packet) => packet,
            Err(_) => {
                self.session.close(&self.shared, "invalid Engine.IO packet");
                return Err(protocol_error("invalid Engine.IO packet"));
            }
        };
        if let Phase::Probing { .. } = self.phase {
            return self.on_probe_packet(packet);
        }
        let result = {
            let mut state = lock(&self.session.state);
            let result = state.on_packet(
                &self.shared,
                self.session.peer,
                &self.session.signal,
                packet,
                now,
            );
            if let Err(reason) = result {
                state.close(reason);
            }
            result
        };
        self.session.forget_if_closed(&self.shared);
        result.map_err(|reason| Closing {
            code: CloseCode::Normal,
            reason,
        })
    }

    fn outgoing(&mut self, now: Instant) -> Vec<Message> {
        match self.phase {
            Phase::Probing {
                answered: true,
                until,
            } => {
                self.phase = Phase::Probing {
                    answered: false,
                    until,
                };
                vec![Message::text(Packet::Pong("probe".into()).to_text())]
            }
            Phase::Probing {
                answered: false, ..
            } => Vec::new(),
            Phase::Open => {
                let mut state = lock(&self.session.state);
                state.tick(now);
                state
                    .take_outgoing()
                    .into_iter()
                    .map(|packet| match packet {
                        Packet::Binary(bytes) => Message::Binary(bytes),
                        other => Message::text(other.to_text()),
                    })
                    .collect()
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open => Some(lock(&self.session.state).deadline()),
            Phase::Probing { until, .. } => Some(until),
        }
    }

    fn finished(&mut self, now: Instant) -> Option<Closing> {
        if let Phase::Probing { until, .. } = self.phase
            && now >= until
        {
            // The session goes on over long-polling (`release_websocket`).
            return Some(Closing {
                code: CloseCode::Normal,
                reason: "upgrade timeout",
            });
        }
        let mut state = lock(&self.session.state);
        if self.phase == Phase::Open {
            state.tick(now);
        }
        let reason = state.closed?;
        drop(state);
        self.session.forget_if_closed(&self.shared);
        Some(Closing {
            code: if reason == SHUTTING_DOWN {
                CloseCode::Away
            } else {
                CloseCode::Normal
            },
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(now: Instant) -> State {
        let config = SocketIoConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(1),
            upgrade_timeout: Duration::from_secs(1),
        };
        State::new(config, 1 << 20, Transport::Polling, now)
    }

    #[test]
    fn the_heartbeat_pings_then_closes_without_a_pong() {
        let t0 = Instant::now();
        let mut s = state(t0);
        assert!(!s.tick(t0 + Duration::from_millis(299)));
        assert!(s.tick(t0 + Duration::from_millis(300)));
        assert_eq!(s.take_outgoing(), vec![Packet::Ping(String::new())]);
        assert_eq!(s.deadline(), t0 + Duration::from_millis(500));
        // No second ping while one is unanswered; the pong deadline closes the session.
        assert!(!s.tick(t0 + Duration::from_millis(450)));
        assert!(s.tick(t0 + Duration::from_millis(500)));
        assert_eq!(s.closed, Some("ping timeout"));
        assert!(s.take_outgoing().is_empty());
    }

    #[test]
    fn a_session_that_never_connects_its_socket_ends() {
        let t0 = Instant::now();
        let mut s = state(t0);
        // Heartbeats answered, but no CONNECT.
        for k in 1..=3 {
            s.pong_deadline = None;
            s.next_ping_at = t0 + Duration::from_millis(300 * k);
            s.tick(t0 + Duration::from_millis(300 * k));
        }
        assert!(s.closed.is_none());
        assert!(s.tick(t0 + Duration::from_secs(1)));
        assert_eq!(
            s.closed,
            Some("no CONNECT to the namespace within the connect timeout")
        );
    }

    #[test]
    fn a_client_that_never_polls_cannot_queue_without_bound() {
        let t0 = Instant::now();
        let mut s = state(t0);
        for _ in 0..MAX_QUEUED_PACKETS {
            s.push(Packet::Noop);
        }
        assert!(s.closed.is_none());
        s.push(Packet::Noop);
        assert!(s.closed.is_some());
        assert!(s.queue.is_empty());
    }
}
