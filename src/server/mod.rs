//! The livepose server: the web client page over plain HTTP and the WebSocket endpoint (`/ws`) on one
//! port, speaking the protocol of `docs/PROTOCOL.md` ([`wire`]).
//!
//! Threads, all named and owned by [`Server`] (dropping it stops and joins them):
//! - `livepose-accept`: a non-blocking accept loop; each connection gets
//! - `livepose-conn-N`: reads the HTTP request, serves the page or upgrades to a WebSocket, then reads
//!   frames into the client's latest-wins slot and writes results back. The socket is non-blocking and the
//!   thread sleeps in `poll(2)` on it and on a waker, so a client that stops reading blocks only its
//!   own thread, and its unread results are replaced, not queued.
//! - `livepose-infer-N`: inference workers, each with its own engine, taking clients round-robin
//!   ([`scheduler`]): every connection has its own tracker and smoother; one frame per client in flight.

mod client;
mod http;
pub mod scheduler;
pub mod wire;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::frame::Frame;
use crate::vision::{EngineConfig, FrameResult, ModelError, TrackerConfig};

pub use scheduler::ClientStats;
pub use wire::Limits;

/// Default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// Connections beyond `max_clients` that may be open at once (page loads, refused upgrades).
const EXTRA_CONNECTIONS: usize = 16;
/// How often idle threads look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Everything the server needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Required to listen on anything but loopback (the caller warns the user).
    pub allow_remote: bool,
    /// Origins allowed to open the WebSocket besides the server's own page.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    pub engine: EngineConfig,
    pub tracker: TrackerConfig,
    /// Inference workers (each with its own engine and `engine.threads` ONNX Runtime threads).
    pub workers: usize,
    /// A connection whose results have not been read for this long is closed.
    pub stall_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            allow_remote: false,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            engine: EngineConfig::default(),
            tracker: TrackerConfig::VIDEO,
            workers: 1,
            stall_timeout: Duration::from_secs(10),
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "refusing to listen on {0}: it is reachable from other machines. Pass --allow-remote to do it anyway"
    )]
    RemoteNotAllowed(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] ModelError),
    #[error("cannot start a server thread: {0}")]
    Thread(std::io::Error),
}

/// A frame from the selected client and its result, for the app's overlay, avatar and angles.
pub struct TappedResult {
    pub client_id: u64,
    pub frame: Frame,
    pub result: FrameResult,
}

/// Receives the selected client's results (called on an inference worker; must not block).
pub type Tap = Arc<dyn Fn(TappedResult) + Send + Sync>;

/// State shared by every server thread.
pub(crate) struct ServerShared {
    config: ServerConfig,
    local_addr: SocketAddr,
    stop: AtomicBool,
    /// The clock of `ServerTimes` (ms since start).
    started: Instant,
    scheduler: scheduler::Scheduler,
    next_client_id: AtomicU64,
    connections: Mutex<Vec<JoinHandle<()>>>,
    /// 0 = the most recent client.
    selected: AtomicU64,
    tap: Mutex<Option<Tap>>,
    /// Frames accepted, over all clients.
    frames_received: AtomicU64,
    /// The engine and tracker settings in force; workers and clients adopt them at their next frame.
    live: Mutex<LiveSettings>,
    /// Bumped by [`Server::reconfigure`], so workers look at `live` only when it changed.
    live_generation: AtomicU64,
    /// Why the last reconfiguration could not be applied (a worker keeps its previous engine).
    reconfigure_error: Mutex<Option<String>>,
}

/// Settings that can change while the server runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LiveSettings {
    pub engine: EngineConfig,
    pub tracker: TrackerConfig,
}

impl ServerShared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn live_settings(&self) -> LiveSettings {
        lock(&self.live).clone()
    }

    fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64() * 1e3
    }

    /// Whether a WebSocket with this `Origin` (and `Host`) may connect.
    fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            // Not a browser: the Origin check protects browsers' users from other sites' pages.
            return true;
        };
        let origin = origin.trim_end_matches('/');
        if self
            .config
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/') == origin)
        {
            return true;
        }
        let port = self.local_addr.port();
        let mut own: BTreeSet<String> = [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]
        .into_iter()
        .collect();
        if !self.local_addr.ip().is_unspecified() {
            own.insert(format!("http://{}", self.local_addr));
        }
        // Listening on all interfaces: the page loaded through one of this machine's addresses. Only an IP
        // literal counts; a host name could be an attacker's DNS name rebound to this machine.
        if let Some(host) = host
            && self.local_addr.ip().is_unspecified()
            && host_is_ip_literal(host)
        {
            own.insert(format!("http://{host}"));
        }
        own.contains(origin)
    }
}

fn host_is_ip_literal(host: &str) -> bool {
    host.parse::<SocketAddr>().is_ok() || host.parse::<IpAddr>().is_ok()
}

/// Counters over the whole server.
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    pub clients: Vec<ClientStats>,
    pub frames_received: u64,
    pub selected: Option<u64>,
    /// Why the last [`Server::reconfigure`] failed, if it did.
    pub reconfigure_error: Option<String>,
}

/// A running server. Dropping it closes every connection and stops every thread.
pub struct Server {
    shared: Arc<ServerShared>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Loads the engines (so a missing model is reported here), binds and starts serving.
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        if !config.allow_remote && !config.listen.ip().is_loopback() {
            return Err(ServerError::RemoteNotAllowed(config.listen));
        }
        let engines = (0..config.workers.max(1))
            .map(|_| crate::vision::Engine::new(config.engine.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let listener = TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let shared = Arc::new(ServerShared {
            local_addr,
            stop: AtomicBool::new(false),
            started: Instant::now(),
            scheduler: scheduler::Scheduler::default(),
            next_client_id: AtomicU64::new(1),
            connections: Mutex::new(Vec::new()),
            selected: AtomicU64::new(0),
            tap: Mutex::new(None),
            frames_received: AtomicU64::new(0),
            live: Mutex::new(LiveSettings {
                engine: config.engine.clone(),
                tracker: config.tracker,
            }),
            live_generation: AtomicU64::new(0),
            reconfigure_error: Mutex::new(None),
            config,
        });
        let mut server = Server {
            shared: Arc::clone(&shared),
            threads: Vec::new(),
        };
        for (index, engine) in engines.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name(format!("livepose-infer-{index}"))
                .spawn(move || scheduler::run_worker(&shared, engine))
                .map_err(ServerError::Thread)?;
            server.threads.push(thread);
        }
        let accept = std::thread::Builder::new()
            .name("livepose-accept".into())
            .spawn(move || accept_loop(&listener, &shared))
            .map_err(ServerError::Thread)?;
        server.threads.push(accept);
        Ok(server)
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The page's address.
    pub fn url(&self) -> String {
        let addr = self.shared.local_addr;
        if addr.ip().is_unspecified() {
            format!("http://127.0.0.1:{}/", addr.port())
        } else {
            format!("http://{addr}/")
        }
    }

    pub fn stats(&self) -> ServerStats {
        let clients = self.shared.scheduler.client_stats();
        let selected = scheduler::selected_client(&self.shared, clients.iter().map(|c| c.id));
        ServerStats {
            clients,
            frames_received: self.shared.frames_received.load(Ordering::Relaxed),
            selected,
            reconfigure_error: lock(&self.shared.reconfigure_error).clone(),
        }
    }

    /// Changes the model, hands and smoothing while serving. Each worker loads the new engine before its
    /// next frame (keeping the old one if that fails: see [`ServerStats::reconfigure_error`]); each
    /// client's tracker takes the new settings at its next frame. Unchanged settings cost nothing.
    pub fn reconfigure(&self, engine: EngineConfig, tracker: TrackerConfig) {
        let wanted = LiveSettings { engine, tracker };
        let mut live = lock(&self.shared.live);
        if *live != wanted {
            *live = wanted;
            *lock(&self.shared.reconfigure_error) = None;
            self.shared.live_generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Chooses the client whose results go to the tap (`None`: the most recent client).
    pub fn select_client(&self, client_id: Option<u64>) {
        self.shared
            .selected
            .store(client_id.unwrap_or(0), Ordering::Relaxed);
    }

    /// Sends the selected client's frames and results to `tap` as well as to the client.
    pub fn set_tap(&self, tap: Option<Tap>) {
        *lock(&self.shared.tap) = tap;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.scheduler.stop();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for thread in connections {
            let _ = thread.join();
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<ServerShared>) {
    let mut connection_index = 0_u64;
    while !shared.stopping() {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                let mut connections = lock(&shared.connections);
                connections.retain(|t| !t.is_finished());
                // Every connection has a thread: bound them (WebSocket clients are bounded again, with a
                // `too_many_clients` message, when they register).
                let max_connections = shared.config.limits.max_clients + EXTRA_CONNECTIONS;
                if connections.len() >= max_connections {
                    let _ = stream.set_write_timeout(Some(STOP_POLL));
                    let _ = http::respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/plain",
                        b"too many connections\n",
                    );
                    continue;
                }
                connection_index += 1;
                let conn_shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("livepose-conn-{connection_index}"))
                    .spawn(move || client::handle_connection(stream, peer, &conn_shared));
                match spawned {
                    Ok(thread) => connections.push(thread),
                    Err(e) => eprintln!("livepose: cannot start a connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Non-blocking accept so that shutdown is noticed: sleep in poll(2) until a connection
                // arrives or it is time to look at the stop flag.
                client::wait_readable(listener, STOP_POLL);
            }
            Err(e) => {
                eprintln!("livepose: accept failed: {e}");
                std::thread::sleep(STOP_POLL);
            }
        }
    }
}
