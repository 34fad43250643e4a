//! Socket.IO v5 over Engine.IO v4 at `/socket.io/`, so the prototype's frontend (and any
//! `socket.io-client` or `python-socketio` program) connects unchanged: `socket.emit('frame', {image,
//! timestamp, sequence})` in, `pose_result` events out. Written here over the server's own threads
//! rather than with a crate: the Rust Socket.IO servers (socketioxide and the like) run on tokio/hyper,
//! a second runtime beside the blocking, `poll(2)`-driven threads every other connection uses.
//!
//! An Engine.IO **session** ([`EngineIoSession`], keyed by its `sid`) outlives the HTTP requests that carry
//! it. Its state sits behind one mutex, and every request of the session works on it:
//! - long-polling: a `GET` (on its connection thread) waits on the session's [`Signal`] until there is
//!   something to send, or a heartbeat is due, then answers with every packet waiting; a `POST` reads
//!   its body, then hands the packets to the session;
//! - WebSocket: one connection thread runs the server's WebSocket loop (`super::websocket::pump`) with
//!   `websocket::WsTransport`, either from the
//!   start (`transport=websocket` without a `sid`) or as the upgrade of a long-polling session (the
//!   `2probe`/`3probe`/`5` exchange; the pending `GET` is answered `6` (noop) so the client lets go of
//!   it).
//!
//! The Socket.IO **socket** of the default namespace is a `Client` (`super::client`), opened by the client's
//! `CONNECT`: its own stream in the inference service, the same limits, order checks and per-stream
//! tracking as a `/ws` client. Its `hello`, `error` and `pose_result` messages become events of those
//! names carrying the same JSON objects (`docs/PROTOCOL.md`).
//!
//! The server sends a `ping` every `ping_interval` and closes a session whose `pong` has not come
//! `ping_timeout` later, or that has not connected its socket within `connect_timeout`. A timer thread
//! (`livepose-socketio`) does this for sessions no request is waiting on, and closes every session when
//! the server drains.

pub mod packet;
mod polling;
mod session;
mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use self::polling::{poll, post};
use self::session::{EngineIoSession, Transport};
use self::websocket::{Phase, run_websocket, websocket_session};
use super::http::{self, Request};
use super::tls::Conn;
use super::websocket::ConnError;
use super::{STOP_POLL, ServerShared};
use crate::sync::lock;

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
    sessions: Mutex<HashMap<String, Arc<EngineIoSession>>>,
}

impl Registry {
    fn insert(&self, session: Arc<EngineIoSession>, max: usize) -> bool {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= max {
            return false;
        }
        sessions.insert(session.sid.clone(), session);
        true
    }

    fn get(&self, sid: &str) -> Option<Arc<EngineIoSession>> {
        lock(&self.sessions).get(sid).cloned()
    }

    fn remove(&self, sid: &str) {
        lock(&self.sessions).remove(sid);
    }

    fn all(&self) -> Vec<Arc<EngineIoSession>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Closes and forgets every session. A connected session holds its client, which holds the server's
    /// shared state: the server calls this when it stops, so nothing is left in that cycle.
    pub(crate) fn close_all(&self) {
        let sessions: Vec<Arc<EngineIoSession>> =
            lock(&self.sessions).drain().map(|(_, s)| s).collect();
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
        1 => "EngineIoSession ID unknown",
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
    session: Arc<EngineIoSession>,
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
) -> Result<Next, ConnError> {
    let done = |result: std::io::Result<()>| result.map(|()| Next::Done).map_err(ConnError::from);
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
            let session = Arc::new(EngineIoSession::new(shared, peer, Transport::Polling, now)?);
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
