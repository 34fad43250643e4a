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
    /// Address to listen on (page at /, WebSocket at /ws, Socket.IO at /socket.io/).
    #[arg(long, default_value = crate::server::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Let anyone who reaches the port in, without the pairing token (off loopback a token is made
    /// unless this is given).
    #[arg(long)]
    pub allow_remote: bool,
    /// The pairing token clients off loopback must present (at least 22 characters of A-Z, a-z, 0-9,
    /// '-', '_'); default: a random 160-bit one made at start when listening beyond loopback.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LIVEPOSE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Serve HTTPS and WSS (on by default when listening beyond loopback: phones' browsers give the camera
    /// only to secure pages).
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Plain HTTP even beyond loopback (the camera API then works only on this machine's browsers).
    #[arg(long)]
    pub no_tls: bool,
    /// The TLS certificate chain, PEM (with --key); default: a self-signed one kept in the config folder.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The certificate's private key, PEM.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
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
                "listening on {} with --allow-remote: anyone who can reach this machine can stream frames \
                 to it and read the results (no pairing token)",
                self.listen
            );
        }
    }

    /// The pairing token in force: `--token`, else a new one when listening beyond loopback (unless
    /// `--allow-remote`).
    pub fn pairing_token(&self) -> anyhow::Result<Option<String>> {
        if let Some(token) = &self.token {
            crate::server::pairing::validate_token(token)?;
            return Ok(Some(token.clone()));
        }
        if self.listen.ip().is_loopback() || self.allow_remote {
            return Ok(None);
        }
        Ok(Some(crate::server::pairing::generate_token()?))
    }

    /// The certificate, when TLS is on: `--tls`, `--cert`, or listening beyond loopback without
    /// `--no-tls`.
    pub fn tls_setup(&self) -> anyhow::Result<Option<crate::server::tls::TlsSetup>> {
        use crate::server::tls;
        let wanted =
            self.tls || self.cert.is_some() || (!self.no_tls && !self.listen.ip().is_loopback());
        if !wanted {
            return Ok(None);
        }
        let setup = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => tls::load(cert, key)?,
            _ => tls::self_signed(&tls::default_tls_dir()?, &tls::machine_names())?,
        };
        Ok(Some(setup))
    }

    /// The server these flags ask for, tracking with `tracker`.
    pub fn server_config(
        &self,
        tracker: crate::vision::TrackerConfig,
    ) -> anyhow::Result<ServerConfig> {
        Ok(ServerConfig {
            listen: self.listen,
            allow_remote: self.allow_remote,
            allowed_origins: self.allow_origins.clone(),
            limits: self.limits(),
            tracker,
            token: self.pairing_token()?,
            tls: self.tls_setup()?,
            ..ServerConfig::default()
        })
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
        args.engine.static_tracker_config(super::SERVE_MAX_PEOPLE)
    } else {
        args.engine.video_tracker_config(super::SERVE_MAX_PEOPLE)
    };
    let config = crate::server::ServerConfig {
        record_dir: args.record.clone(),
        ..args.server.server_config(tracker)?
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
    let server = Server::start_on(listener, config.clone(), std::sync::Arc::clone(&service))?;
    let vmc = match args.motion.vmc {
        Some(target) => Some(crate::outputs::vmc::VmcSender::start_for(
            std::sync::Arc::clone(&service),
            target,
            crate::outputs::vmc::Follow::OldestClient,
            if args.motion.vmc_every_person {
                crate::outputs::vmc::Whom::Everyone {
                    max: config.tracker.max_people,
                }
            } else {
                crate::outputs::vmc::Whom::Followed
            },
        )?),
        None => None,
    };
    let url = server.url();
    let budget = service.stats();
    say(format_args!(
        "livepose: serving {url} (WebSocket {}ws, Socket.IO {url}socket.io/); {} worker(s), {} inference thread(s)",
        url.replacen("http", "ws", 1),
        budget.workers,
        budget.threads
    ));
    announce_remote(&server, &config);
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

/// For other devices: the certificate's fingerprint, the addresses to open (with the token), and a QR
/// code of the first one.
fn announce_remote(server: &Server, config: &ServerConfig) {
    if let Some(tls) = &config.tls {
        let info = &tls.info;
        say(format_args!(
            "livepose: TLS with {} certificate {} (SHA-256 {}), valid for {} until {}",
            if info.self_signed {
                "the self-signed"
            } else {
                "the"
            },
            info.cert_path.display(),
            info.fingerprint_sha256,
            info.names.join(", "),
            info.not_after
        ));
        if info.self_signed {
            say(format_args!(
                "livepose: browsers warn about a self-signed certificate once; check that the fingerprint \
                 they show is the one above, then accept it"
            ));
        }
    }
    let urls = server.remote_urls();
    if urls.is_empty() {
        return;
    }
    for url in &urls {
        say(format_args!("livepose: from another device open {url}"));
    }
    if config.token.is_some() {
        match crate::server::pairing::qr_for_terminal(&urls[0]) {
            Ok(qr) => say(format_args!("{qr}")),
            Err(e) => say(format_args!("livepose: no QR code for {}: {e}", urls[0])),
        }
    }
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
