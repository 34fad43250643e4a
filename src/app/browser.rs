//! The browser client inside the app. The app serves the page and the WebSocket (`crate::server`, on
//! its own threads, started off the main thread). While the source is `Browser`, the server's tap hands
//! the selected client's frames and results to this plugin, which feeds them to [`Results`] so the
//! overlay, avatar and angles show that client; the app's own inference idles (its slot stays empty).
//! Reads: `AppSettings.server`, `ActiveSource.choice`. Writes: `Results`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};

use crate::app::pipeline::{
    ActiveSource, InferenceCycle, Results, TimedResult, engine_config, tracker_config,
};
use crate::app::{AppSettings, SourceChoice};
use crate::server::{Server, ServerStats, TappedResult};

/// Tapped results waiting for the main thread; older ones are dropped when it falls behind.
const FEED_CAPACITY: usize = 4;

type Feed = Arc<Mutex<VecDeque<TappedResult>>>;

/// The running server, or why there is none.
#[derive(Resource, Default)]
pub struct BrowserServer {
    pub server: Option<Server>,
    pub error: Option<String>,
    starting: Option<Task<Result<Server, String>>>,
    feed: Feed,
    tapping: bool,
}

impl BrowserServer {
    pub fn stats(&self) -> Option<ServerStats> {
        self.server.as_ref().map(Server::stats)
    }

    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(Server::url)
    }
}

fn lock(feed: &Feed) -> std::sync::MutexGuard<'_, VecDeque<TappedResult>> {
    feed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start_server(settings: Res<AppSettings>, mut browser: ResMut<BrowserServer>) {
    let Some(mut config) = settings.server.clone() else {
        return;
    };
    // The same models and smoothing as the app's own inference; changed together from the panel.
    config.engine = engine_config(&settings);
    config.tracker = tracker_config(&settings);
    // Loading the server's engine takes a second; keep the window responsive meanwhile.
    browser.starting =
        Some(AsyncComputeTaskPool::get().spawn(async move {
            Server::start(config).map_err(|e| format!("browser server: {e}"))
        }));
}

/// Installs the server when it has started; passes model and smoothing changes on; taps it while the
/// browser is the source.
fn manage_server(
    mut browser: ResMut<BrowserServer>,
    active: Res<ActiveSource>,
    settings: Res<AppSettings>,
) {
    if let Some(task) = browser.starting.as_mut()
        && let Some(started) = check_ready(task)
    {
        browser.starting = None;
        match started {
            Ok(server) => {
                info!("serving the browser client at {}", server.url());
                browser.server = Some(server);
            }
            Err(e) => {
                warn!("{e}");
                browser.error = Some(e);
            }
        }
    }
    if settings.is_changed()
        && let Some(server) = browser.server.as_ref()
    {
        server.reconfigure(engine_config(&settings), tracker_config(&settings));
    }
    let want_tap = active.choice == Some(SourceChoice::Browser);
    if want_tap == browser.tapping {
        return;
    }
    let Some(server) = browser.server.as_ref() else {
        return;
    };
    if want_tap {
        let feed = Arc::clone(&browser.feed);
        server.set_tap(Some(Arc::new(move |tapped| {
            let mut feed = lock(&feed);
            if feed.len() == FEED_CAPACITY {
                feed.pop_front();
            }
            feed.push_back(tapped);
        })));
    } else {
        server.set_tap(None);
        lock(&browser.feed).clear();
    }
    browser.tapping = want_tap;
}

/// Moves tapped results into [`Results`], like finished inference.
fn collect_tapped(browser: Res<BrowserServer>, mut results: ResMut<Results>) {
    let tapped: Vec<TappedResult> = lock(&browser.feed).drain(..).collect();
    for t in tapped {
        results.push(TimedResult {
            result: t.result,
            frame: t.frame,
            arrived: Instant::now(),
        });
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<BrowserServer>()
        .add_systems(Startup, start_server)
        .add_systems(
            Update,
            (manage_server, collect_tapped)
                .chain()
                .after(crate::app::pipeline::collect_inference)
                .in_set(InferenceCycle::Collect),
        );
}
