//! The livepose server: the web client page over plain HTTP, the WebSocket endpoint (`/ws`) speaking the
//! protocol of `docs/PROTOCOL.md` ([`wire`]), and Socket.IO at `/socket.io/` ([`socketio`]: the
//! prototype's own client connects unchanged), on one port. It runs no inference of its own: every
//! WebSocket connection opens a stream in the process's inference service (`crate::service`) and
//! subscribes to that stream's results. `livepose serve` and the app's built-in server are this server
//! over the same kind of service.
//!
//! Threads, all named and owned by [`Server`] (dropping it stops and joins them):
//! - `livepose-accept`: accepts connections and reads every pending request head in one `poll(2)`
//!   (`accept`: deadlines, a bound on pending heads, so slow or half-open connections hold no thread);
//!   each complete request gets
//! - `livepose-conn-N`: serves the page or upgrades to a WebSocket, then checks
//!   each frame and publishes it into the connection's stream, and writes back the stream's results.
//!   The socket is non-blocking and the thread sleeps in `poll(2)` on it and on a waker that the
//!   subscription rings, so a client that stops reading blocks only its own thread, and its unread
//!   results are replaced, not queued. A request to `/socket.io/` is one request of a Socket.IO
//!   session (`socketio`): a long-poll, a posted body, or the session's WebSocket;
//! - `livepose-socketio`: Socket.IO's heartbeats and timeouts for sessions no request waits on.

mod accept;
mod client;
pub mod http;
pub mod metrics;
pub mod pairing;
mod router;
mod signal;
pub mod socketio;
pub mod tls;
mod websocket;
pub mod wire;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::service::{Service, StreamHandle, StreamId, Subscription};
use crate::sync::lock;
use crate::vision::TrackerConfig;

pub use client::Protocol;
pub use wire::Limits;

/// Default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// Connections beyond two per client (a Socket.IO client on long-polling has a `GET` waiting and a
/// `POST` at once) that may be open at once (page loads, refused upgrades).
const EXTRA_CONNECTIONS: usize = 16;
/// How often idle threads look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Everything the server needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Listen on an address other machines reach without a pairing token (the caller warns the user).
    pub allow_remote: bool,
    /// Origins allowed to open the WebSocket besides the server's own page.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// How each connection's stream is tracked (changed live with [`Server::set_tracker_config`]).
    pub tracker: TrackerConfig,
    /// A connection whose results have not been read for this long is closed.
    pub stall_timeout: Duration,
    /// Record every connection's session into its own sub-folder of this folder (`serve --record`).
    pub record_dir: Option<std::path::PathBuf>,
    /// The pairing token clients off loopback must present (`pairing`); None: no token in force.
    pub token: Option<String>,
    /// Serve HTTPS and WSS with this certificate (`tls`); None: plain HTTP.
    pub tls: Option<tls::TlsSetup>,
    /// Socket.IO's heartbeat and connect timeout (`/socket.io/`).
    pub socketio: socketio::SocketIoConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            allow_remote: false,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            tracker: TrackerConfig::VIDEO,
            stall_timeout: Duration::from_secs(10),
            record_dir: None,
            token: None,
            tls: None,
            socketio: socketio::SocketIoConfig::default(),
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "refusing to listen on {0} without a pairing token: it is reachable from other machines (serve makes \
         a token unless --allow-remote says to let anyone in)"
    )]
    RemoteNotAllowed(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a server thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Metrics(metrics::MetricsError),
}

/// A connected client as the server lists it (for `/metrics`, the app's client list and `serve`'s log):
/// its stream, its subscription, and its counters. Shared by the [`client::Client`] and the roster.
pub(crate) struct RosterEntry {
    pub id: u64,
    pub peer: SocketAddr,
    pub protocol: Protocol,
    pub stream: StreamHandle,
    /// The connection's subscription to its own stream (capacity 1: the newest result wins).
    pub results: Subscription,
    pub rejected: AtomicU64,
    pub results_sent: AtomicU64,
    /// People in view in the newest result sent.
    pub people_in_view: AtomicU64,
}

/// Counters of one client, for the UI and `serve`'s log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    pub id: u64,
    pub peer: String,
    /// livepose's WebSocket protocol or Socket.IO.
    pub protocol: Option<Protocol>,
    /// The client's stream in the inference service (subscribe to it to see its results).
    pub stream: Option<StreamId>,
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Results replaced by a newer one before the connection could send them.
    pub results_skipped: u64,
    /// Results waiting for the connection (at most 1), besides the one being written.
    pub results_pending: usize,
    pub results_sent: u64,
}

impl RosterEntry {
    fn stats(&self) -> ClientStats {
        let stream = self.stream.stats();
        ClientStats {
            id: self.id,
            peer: self.peer.to_string(),
            protocol: Some(self.protocol),
            stream: Some(self.stream.id()),
            received: stream.received,
            processed: stream.results,
            dropped: stream.dropped,
            rejected: self.rejected.load(Ordering::Relaxed),
            results_skipped: self.results.superseded(),
            results_pending: self.results.pending(),
            results_sent: self.results_sent.load(Ordering::Relaxed),
        }
    }
}

/// State shared by every server thread.
pub(crate) struct ServerShared {
    config: ServerConfig,
    local_addr: SocketAddr,
    stop: AtomicBool,
    /// The clock of `ServerTimes` (ms since start).
    started: Instant,
    service: Arc<Service>,
    next_client_id: AtomicU64,
    connections: Mutex<Vec<JoinHandle<()>>>,
    roster: Mutex<Vec<Arc<RosterEntry>>>,
    /// Frames accepted, over all clients.
    frames_received: AtomicU64,
    /// Shutting down: `/healthz` answers 503, new WebSockets are refused, open ones are closed with
    /// 1001 (going away).
    draining: AtomicBool,
    metrics: metrics::Metrics,
    /// The tracker settings new and current clients use.
    tracker: Mutex<TrackerConfig>,
    /// Socket.IO's Engine.IO sessions (`socketio`).
    socketio: socketio::Registry,
}

impl ServerShared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// `/healthz`: ready once every worker has its engine, not while draining.
    fn health(&self) -> Result<(), &'static str> {
        if self.draining() || self.stopping() {
            return Err("draining");
        }
        let stats = self.service.stats();
        if stats.engines_loaded < stats.workers {
            return Err("starting");
        }
        Ok(())
    }

    fn clients_connected(&self) -> usize {
        lock(&self.roster).len()
    }

    /// People in view in every client's newest result, summed.
    fn people_in_view(&self) -> usize {
        lock(&self.roster)
            .iter()
            .map(|c| c.people_in_view.load(Ordering::Relaxed) as usize)
            .sum()
    }

    fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64() * 1e3
    }

    fn tracker_config(&self) -> TrackerConfig {
        *lock(&self.tracker)
    }

    /// Registers a client unless `max_clients` are already connected.
    fn register(&self, client: Arc<RosterEntry>) -> bool {
        let mut clients = lock(&self.roster);
        if clients.len() >= self.config.limits.max_clients {
            return false;
        }
        clients.push(client);
        true
    }

    fn unregister(&self, id: u64) {
        lock(&self.roster).retain(|c| c.id != id);
    }

    /// Whether a WebSocket with this `Origin` (and `Host`) may connect.
    fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        http::origin_allowed(
            origin,
            host,
            self.local_addr,
            self.config.tls.is_some(),
            &self.config.allowed_origins,
        )
    }
}

/// Counters over the whole server.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ServerStats {
    pub clients: Vec<ClientStats>,
    pub frames_received: u64,
}

/// A running server. Dropping it closes every connection and stops every thread.
pub struct Server {
    shared: Arc<ServerShared>,
    threads: Vec<JoinHandle<()>>,
}

/// Connections the kernel queues before the server accepts them. The standard library's `bind` asks
/// for 128; a burst of connections (hundreds of slow clients reconnecting at once while the acceptor
/// waits for a core) overflows that, and the kernel then drops a real client's SYN, which it resends
/// only after a second. (The kernel caps this at `net.core.somaxconn`, 4096 here.)
const LISTEN_BACKLOG: i32 = 1024;

/// A listening TCP socket on `addr` with [`LISTEN_BACKLOG`], otherwise as the standard library's
/// `TcpListener::bind` makes it (`SO_REUSEADDR` on Unix). socket2 is the crate the Rust networking
/// stack (tokio, mio) builds its sockets with; the standard library cannot set the backlog.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

impl Server {
    /// Binds and starts serving over `service`.
    pub fn start(config: ServerConfig, service: Arc<Service>) -> Result<Server, ServerError> {
        let listener = Self::bind(&config)?;
        Self::start_on(listener, config, service)
    }

    /// Binds `config.listen` (refusing a non-loopback address with neither a token nor `allow_remote`).
    pub fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
        if !config.allow_remote && config.token.is_none() && !config.listen.ip().is_loopback() {
            return Err(ServerError::RemoteNotAllowed(config.listen));
        }
        listen(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })
    }

    /// Starts serving over `service` on a listener already bound (by [`Self::bind`]; `serve` binds
    /// first and answers 503 while the models load, see [`answer_starting`]).
    pub fn start_on(
        listener: TcpListener,
        config: ServerConfig,
        service: Arc<Service>,
    ) -> Result<Server, ServerError> {
        let bind_err = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let local_addr = listener.local_addr().map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let shared = Arc::new(ServerShared {
            local_addr,
            stop: AtomicBool::new(false),
            started: Instant::now(),
            service,
            next_client_id: AtomicU64::new(1),
            connections: Mutex::new(Vec::new()),
            roster: Mutex::new(Vec::new()),
            frames_received: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            metrics: metrics::Metrics::new().map_err(ServerError::Metrics)?,
            tracker: Mutex::new(config.tracker),
            socketio: socketio::Registry::default(),
            config,
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("livepose-accept".into())
            .spawn(move || accept::accept_loop(&listener, &accept_shared))
            .map_err(ServerError::Thread)?;
        let mut server = Server {
            shared,
            threads: vec![accept],
        };
        let timer_shared = Arc::clone(&server.shared);
        let timer = std::thread::Builder::new()
            .name("livepose-socketio".into())
            .spawn(move || socketio::timer_loop(&timer_shared))
            .map_err(ServerError::Thread)?;
        server.threads.push(timer);
        Ok(server)
    }

    /// The inference service the server runs on.
    pub fn service(&self) -> &Arc<Service> {
        &self.shared.service
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The page's address on this machine (loopback needs no token).
    pub fn url(&self) -> String {
        let addr = self.shared.local_addr;
        let scheme = self.scheme();
        if addr.ip().is_unspecified() {
            format!("{scheme}://127.0.0.1:{}/", addr.port())
        } else {
            format!("{scheme}://{addr}/")
        }
    }

    /// `https` with TLS on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.shared.config.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The addresses another device opens (with the token when one is in force): every address of the
    /// machine's interfaces that is not loopback when listening on all of them, else the one listened on.
    pub fn remote_urls(&self) -> Vec<String> {
        let addr = self.shared.local_addr;
        let token = self
            .shared
            .config
            .token
            .as_deref()
            .map(|t| format!("?token={t}"))
            .unwrap_or_default();
        let ips: Vec<std::net::IpAddr> = if addr.ip().is_unspecified() {
            tls::interface_addresses()
                .into_iter()
                .filter(|ip| !ip.is_loopback() && (addr.is_ipv6() || ip.is_ipv4()))
                .collect()
        } else if addr.ip().is_loopback() {
            Vec::new()
        } else {
            vec![addr.ip()]
        };
        ips.into_iter()
            .map(|ip| {
                let host = SocketAddr::new(ip, addr.port());
                format!("{}://{host}/{token}", self.scheme())
            })
            .collect()
    }

    pub fn stats(&self) -> ServerStats {
        ServerStats {
            clients: lock(&self.shared.roster)
                .iter()
                .map(|c| c.stats())
                .collect(),
            frames_received: self.shared.frames_received.load(Ordering::Relaxed),
        }
    }

    /// Stops taking clients and closes every WebSocket with 1001 (going away): `/healthz` answers 503
    /// from now on, new upgrades are refused with 503, and this waits (up to `grace`) until every
    /// client's connection has closed. Dropping the server afterwards joins the threads. Frames in
    /// flight finish or are dropped with their streams; recordings are completed as their connections
    /// end.
    pub fn drain(&self, grace: Duration) -> bool {
        self.shared.draining.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + grace;
        while self.shared.clients_connected() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Whether [`Self::drain`] has begun.
    pub fn is_draining(&self) -> bool {
        self.shared.draining()
    }

    /// Changes tracking and smoothing for every client, from its next frame (tracking is kept).
    pub fn set_tracker_config(&self, config: TrackerConfig) {
        *lock(&self.shared.tracker) = config;
        for client in lock(&self.shared.roster).iter() {
            client.stream.set_tracker_config(config);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            crate::sync::join(thread);
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for thread in connections {
            crate::sync::join(thread);
        }
        // Sessions hold clients, which hold this shared state: break the cycle.
        self.shared.socketio.close_all();
    }
}

/// A write on a connection that is being refused or closed (an answer, an alert, a close frame, a socket
/// option): the peer may be gone already and nothing more can be done for it, so a failure is logged
/// (debug) and the thread goes on.
pub(crate) fn best_effort<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) {
    if let Err(e) = result {
        tracing::debug!("{what}: {e}");
    }
}

/// While the models load (before there is a [`Server`]): answers every request on `listener` with
/// `503 starting` (so `/healthz` says so and a load balancer keeps clients away) until `ready` is set.
/// Runs on the caller's thread; returns the listener for [`Server::start_on`].
pub fn answer_starting(listener: TcpListener, ready: &AtomicBool) -> std::io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    while !ready.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                // Read what the client sent (so closing does not reset the connection), then answer.
                best_effort(stream.set_nonblocking(false), "starting: blocking mode");
                best_effort(
                    stream.set_read_timeout(Some(STARTING_READ)),
                    "starting: read timeout",
                );
                let mut head = [0_u8; 4096];
                best_effort(
                    std::io::Read::read(&mut stream, &mut head),
                    "starting: read the request",
                );
                best_effort(
                    stream.set_write_timeout(Some(STARTING_READ)),
                    "starting: write timeout",
                );
                best_effort(
                    http::respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/plain",
                        b"starting\n",
                    ),
                    "starting: answer 503",
                );
                best_effort(
                    stream.shutdown(std::net::Shutdown::Write),
                    "starting: shutdown",
                );
                // Read away what is still coming (a request that arrived late) until the client
                // closes, so closing here never resets the connection before the answer is read.
                let deadline = std::time::Instant::now() + STARTING_LINGER;
                best_effort(
                    stream.set_read_timeout(Some(STARTING_READ)),
                    "starting: read timeout",
                );
                while std::time::Instant::now() < deadline {
                    match std::io::Read::read(&mut stream, &mut head) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                websocket::wait_readable(&listener, Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!("accept failed while starting: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(listener)
}

/// How long a request may take to arrive while the server is starting.
const STARTING_READ: Duration = Duration::from_millis(200);
/// Longest wait for a client to close after its `503 starting`.
const STARTING_LINGER: Duration = Duration::from_secs(1);
