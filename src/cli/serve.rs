//! `livepose serve`: the browser client and its WebSocket without a window, and the server flags the
//! app shares.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::EngineArgs;
use crate::server::{Limits, Server, ServerConfig};
use crate::service::Service;

/// Server flags (also accepted by the app).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on (page at /, WebSocket at /ws).
    #[arg(long, default_value = crate::server::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Allow listening on an address other machines can reach (off: loopback only).
    #[arg(long)]
    pub allow_remote: bool,
    /// Another origin allowed to open the WebSocket (repeatable; `*` allows any). The server's own
    /// page is always allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Largest image accepted, WIDTHxHEIGHT (checked from the header, before decoding).
    #[arg(long, default_value = "1920x1920", value_parser = super::parse_size)]
    pub max_image: (u32, u32),
    /// Frames per second accepted from each client; faster frames are dropped with an error.
    #[arg(long, default_value_t = Limits::default().max_fps)]
    pub max_fps: f32,
    /// Clients connected at once.
    #[arg(long, default_value_t = Limits::default().max_clients)]
    pub max_clients: usize,
}

impl ServerArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.max_message_bytes.max(1024),
            max_width: self.max_image.0,
            max_height: self.max_image.1,
            max_fps: if self.max_fps.is_finite() && self.max_fps > 0.0 {
                self.max_fps
            } else {
                Limits::default().max_fps
            },
            max_clients: self.max_clients.max(1),
        }
    }

    /// Says what `--allow-remote` exposes.
    pub fn warn_if_remote(&self) {
        if self.allow_remote && !self.listen.ip().is_loopback() {
            tracing::warn!(
                "listening on {}: anyone who can reach this machine can stream frames to it and \
                 read the results (there is no authentication)",
                self.listen
            );
        }
    }

    /// The server these flags ask for, tracking with `tracker`.
    pub fn server_config(&self, tracker: crate::vision::TrackerConfig) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            allow_remote: self.allow_remote,
            allowed_origins: self.allow_origins.clone(),
            limits: self.limits(),
            tracker,
            ..ServerConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Treat every frame on its own: no tracking, no smoothing.
    #[arg(long)]
    pub r#static: bool,
    /// VMC output: the oldest connected client's stream (the first tab still streaming).
    #[command(flatten)]
    pub motion: super::MotionArgs,
    /// Record every client's frames and results into its own session folder inside DIR
    /// (client-NNNN-ADDRESS; see `livepose export` and `livepose report`).
    #[arg(long, value_name = "DIR")]
    pub record: Option<std::path::PathBuf>,
    /// Print a line of per-client counters every this many seconds (0: never).
    #[arg(long, default_value_t = 5.0)]
    pub stats_every: f32,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Runs until SIGINT or SIGTERM, then shuts down cleanly (exit status 0).
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    args.server.warn_if_remote();
    let tracker = if args.r#static {
        crate::vision::TrackerConfig::STATIC
    } else {
        args.engine.video_tracker_config()
    };
    let config = crate::server::ServerConfig {
        record_dir: args.record.clone(),
        ..args.server.server_config(tracker)
    };
    if let Some(dir) = &args.record {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the recording folder {}: {e}", dir.display())
        })?;
    }
    // Bind first, and answer 503 "starting" (to /healthz and everything else) while the models load,
    // so a load balancer sees the backend coming up instead of a refused connection.
    let listener = Server::bind(&config)?;
    let ready = std::sync::atomic::AtomicBool::new(false);
    let (service, listener) = std::thread::scope(|scope| {
        let answering = std::thread::Builder::new()
            .name("livepose-starting".into())
            .spawn_scoped(scope, || crate::server::answer_starting(listener, &ready))?;
        let service = Service::start(args.engine.service_config());
        ready.store(true, std::sync::atomic::Ordering::Relaxed);
        let listener = answering
            .join()
            .map_err(|_| anyhow::anyhow!("the starting thread panicked"))??;
        anyhow::Ok((service?, listener))
    })?;
    let service = std::sync::Arc::new(service);
    let server = Server::start_on(listener, config, std::sync::Arc::clone(&service))?;
    let vmc = match args.motion.vmc {
        Some(target) => Some(crate::motion::vmc::VmcSender::start(
            std::sync::Arc::clone(&service),
            target,
            crate::motion::vmc::Follow::OldestClient,
        )?),
        None => None,
    };
    let url = server.url();
    let budget = service.stats();
    say(format_args!(
        "livepose: serving {url} (WebSocket {}ws); {} worker(s), {} inference thread(s)",
        url.replacen("http", "ws", 1),
        budget.workers,
        budget.threads
    ));
    let every = Duration::from_secs_f32(if args.stats_every.is_finite() {
        args.stats_every.max(0.0)
    } else {
        0.0
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .map_err(|e| anyhow::anyhow!("cannot handle signal {signal}: {e}"))?;
    }
    let mut next_stats = std::time::Instant::now() + every;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(SIGNAL_POLL);
        if every.is_zero() || std::time::Instant::now() < next_stats {
            continue;
        }
        next_stats += every;
        print_stats(&server);
    }
    // SIGINT/SIGTERM: stop taking clients, close every WebSocket with 1001, let the connections end
    // (their recordings complete as they do), then stop the server's and the service's threads.
    let started = std::time::Instant::now();
    say(format_args!("livepose: shutting down"));
    let drained = server.drain(DRAIN_GRACE);
    drop(vmc);
    drop(server);
    drop(service);
    say(format_args!(
        "livepose: stopped in {:.0} ms{}",
        started.elapsed().as_secs_f64() * 1e3,
        if drained {
            ""
        } else {
            " (some clients did not close in time)"
        }
    ));
    Ok(())
}

/// A line on stdout; a closed stdout (`serve | head`, a gone terminal) is not a reason to stop serving.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// How often the main thread looks at the signal flag.
const SIGNAL_POLL: Duration = Duration::from_millis(50);
/// How long a shutdown waits for clients to close (the whole shutdown stays under 2 s).
const DRAIN_GRACE: Duration = Duration::from_millis(1200);

fn print_stats(server: &Server) {
    let stats = server.stats();
    let clients: Vec<String> = stats
        .clients
        .iter()
        .map(|c| {
            format!(
                "#{} {} received {} processed {} dropped {} rejected {}",
                c.id, c.peer, c.received, c.processed, c.dropped, c.rejected
            )
        })
        .collect();
    say(format_args!(
        "livepose: {} client(s), {} frames received{}{}",
        stats.clients.len(),
        stats.frames_received,
        if clients.is_empty() { "" } else { ": " },
        clients.join("; ")
    ));
}
