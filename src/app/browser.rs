//! The browser client inside the app: the built-in server (`crate::server`, on its own threads) over the
//! app's own inference service, started once the service is up. Every tab streaming to it is a stream of
//! that service; the panel picks which one is shown when the browser is the source.
//! Reads: `AppSettings` (server config, smoothing), `Inference` (the service). Writes: [`BrowserServer`].

use bevy::prelude::*;

use crate::app::results::{Inference, tracker_config};
use crate::app::{AppSettings, AppSystems};
use crate::server::{Server, ServerStats};
use crate::service::StreamId;

/// The running server, or why there is none.
#[derive(Resource, Default)]
pub struct BrowserServer {
    pub server: Option<Server>,
    pub error: Option<String>,
    started: bool,
    /// The client chosen in the panel (`None`: the newest).
    pub selected_client: Option<u64>,
    /// The server's counters, refreshed every update.
    pub stats: Option<ServerStats>,
    /// For another device: the pairing address and its QR code (side, modules row by row, true = dark),
    /// when the server listens beyond loopback.
    pub pairing: Option<(String, usize, Vec<bool>)>,
}

impl BrowserServer {
    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(Server::url)
    }

    /// The client shown: the chosen one if connected, else the newest.
    pub fn selected(&self) -> Option<u64> {
        let clients = &self.stats.as_ref()?.clients;
        let chosen = self
            .selected_client
            .filter(|id| clients.iter().any(|c| c.id == *id));
        chosen.or_else(|| clients.iter().map(|c| c.id).max())
    }

    /// The stream of the client shown.
    pub fn selected_stream(&self) -> Option<StreamId> {
        let id = self.selected()?;
        self.stats
            .as_ref()?
            .clients
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.stream)
    }
}

/// Starts the server once the service is up; passes smoothing changes on; refreshes its counters.
pub(crate) fn manage_server(
    settings: Res<AppSettings>,
    inference: Res<Inference>,
    mut browser: ResMut<BrowserServer>,
) {
    if !browser.started
        && let Some(service) = &inference.service
    {
        browser.started = true;
        if let Some(mut config) = settings.server.clone() {
            config.tracker = tracker_config(&settings);
            match Server::start(config, std::sync::Arc::clone(service)) {
                Ok(server) => {
                    info!("serving the browser client at {}", server.url());
                    if let Some(url) = server.remote_urls().into_iter().next() {
                        info!("from another device open {url}");
                        match crate::server::pairing::qr_modules(&url) {
                            Ok((side, modules)) => browser.pairing = Some((url, side, modules)),
                            Err(e) => warn!("no QR code for {url}: {e}"),
                        }
                    }
                    browser.server = Some(server);
                }
                Err(e) => {
                    let e = format!("browser server: {e}");
                    warn!("{e}");
                    browser.error = Some(e);
                }
            }
        }
    }
    if settings.is_changed()
        && let Some(server) = &browser.server
    {
        server.set_tracker_config(tracker_config(&settings));
    }
    let stats = browser.server.as_ref().map(Server::stats);
    browser.stats = stats;
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<BrowserServer>()
        .add_systems(Update, manage_server.in_set(AppSystems::Source));
}
