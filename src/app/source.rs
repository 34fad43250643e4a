//! ActiveSource stage. Reads: [`SwitchSource`] messages, `AppSettings`. Writes: [`ActiveSource`] (the running
//! source) and [`ShowStream`] (the stream the infer stage follows).
//!
//! Each local source (camera, clip, image folder) is a stream of the inference service, published into by
//! the source's own named thread. Opening it (listing cameras, opening one, reading a clip) can take
//! seconds, so it runs in a task on Bevy's IO pool and is polled every update: the window never waits.
//! With the browser as the source there is no local stream; the selected tab's stream is shown.

use std::sync::Arc;

use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{IoTaskPool, Task};

use crate::app::browser::BrowserServer;
use crate::app::results::{Inference, ShowStream, tracker_config};
use crate::app::{AppSettings, AppSystems, SourceChoice};
use crate::service::{Delivery, StreamHandle, StreamKind, StreamSpec};
use crate::source::camera::{list_cameras, spawn_camera};
use crate::source::demo::{bundled_demo_clip, spawn_demo};
use crate::source::{SourceHandle, SourceStatus};

/// Asks the app to change source.
#[derive(Message, Clone, Debug)]
pub struct SwitchSource(pub SourceChoice);

/// A source being opened, or opened.
struct Opened {
    handle: Option<SourceHandle>,
    note: Option<String>,
}

/// The running source and what the user should know about it.
#[derive(Resource, Default)]
pub struct ActiveSource {
    pub handle: Option<SourceHandle>,
    /// What is shown (the browser source has no handle: its streams belong to the server).
    pub choice: Option<SourceChoice>,
    /// E.g. "no camera found: playing the demo clip".
    pub note: Option<String>,
    /// A switch not started yet (the service is still loading, or another source is opening).
    pending: Option<SourceChoice>,
    opening: Option<(SourceChoice, Task<Opened>)>,
}

impl ActiveSource {
    pub fn status(&self) -> SourceStatus {
        self.handle
            .as_ref()
            .map(SourceHandle::status)
            .unwrap_or_default()
    }

    /// A source is being opened.
    pub fn opening(&self) -> bool {
        self.opening.is_some() || self.pending.is_some()
    }
}

/// Opens `choice` into `stream` (blocking: runs in a task). Falls back to the demo clip.
fn open_source(
    choice: &SourceChoice,
    fps: f32,
    replay_recorded: bool,
    stream: Arc<StreamHandle>,
) -> Opened {
    let demo = |note: String| match spawn_demo(&bundled_demo_clip(), fps, Arc::clone(&stream)) {
        Ok(handle) => Opened {
            handle: Some(handle),
            note: Some(note),
        },
        Err(e) => Opened {
            handle: None,
            note: Some(format!("{note}; the demo clip failed too: {e}")),
        },
    };
    let opened = |handle| Opened {
        handle: Some(handle),
        note: None,
    };
    match choice {
        SourceChoice::Auto(request) => match list_cameras() {
            Ok(cameras) if !cameras.is_empty() => {
                match spawn_camera(*request, Arc::clone(&stream)) {
                    Ok(handle) => opened(handle),
                    Err(e) => demo(format!("camera unavailable ({e}): playing the demo clip")),
                }
            }
            Ok(_) => demo("no camera found: playing the demo clip".into()),
            Err(e) => demo(format!("cannot list cameras ({e}): playing the demo clip")),
        },
        SourceChoice::Camera(request) => match spawn_camera(*request, Arc::clone(&stream)) {
            Ok(handle) => opened(handle),
            Err(e) => demo(format!(
                "camera {} unavailable ({e}): playing the demo clip",
                request.index
            )),
        },
        SourceChoice::File(path) => match crate::source::spawn_file(path, fps, Arc::clone(&stream))
        {
            Ok(handle) => {
                if let Some(control) = &handle.replay {
                    control.set_show_recorded(replay_recorded);
                }
                opened(handle)
            }
            Err(e) => demo(format!("{e}: playing the demo clip")),
        },
        SourceChoice::Browser => Opened {
            handle: None,
            note: None,
        },
    }
}

fn stream_name(choice: &SourceChoice) -> (String, StreamKind) {
    match choice {
        SourceChoice::Auto(r) | SourceChoice::Camera(r) => {
            (format!("camera {}", r.index), StreamKind::Camera)
        }
        SourceChoice::File(path) => (path.display().to_string(), StreamKind::File),
        SourceChoice::Browser => ("browser".into(), StreamKind::File),
    }
}

fn switch_source(
    mut requests: MessageReader<SwitchSource>,
    mut capture: ResMut<ActiveSource>,
    inference: Res<Inference>,
    settings: Res<AppSettings>,
) {
    if let Some(SwitchSource(choice)) = requests.read().last().cloned() {
        capture.pending = Some(choice);
    }
    if let Some((_, task)) = capture.opening.as_mut()
        && let Some(opened) = check_ready(task)
    {
        let Some((choice, _)) = capture.opening.take() else {
            return;
        };
        if let Some(note) = &opened.note {
            warn!("{note}");
        }
        capture.handle = opened.handle;
        capture.note = opened.note;
        capture.choice = Some(choice);
    }
    if capture.opening.is_some() {
        return;
    }
    let Some(service) = inference.service.as_ref() else {
        return;
    };
    let Some(choice) = capture.pending.take() else {
        return;
    };
    // Stop the old source first (its thread ends and its stream closes).
    capture.handle = None;
    capture.note = None;
    if choice == SourceChoice::Browser {
        capture.choice = Some(choice);
        return;
    }
    let (name, kind) = stream_name(&choice);
    let stream = Arc::new(service.open_stream(StreamSpec {
        name,
        kind,
        tracker: tracker_config(&settings),
        delivery: Delivery::LatestWins,
    }));
    let fps = settings.file_fps;
    let replay_recorded = settings.replay_recorded;
    let task_choice = choice.clone();
    let task = IoTaskPool::get()
        .spawn(async move { open_source(&task_choice, fps, replay_recorded, stream) });
    capture.opening = Some((choice, task));
}

/// Passes smoothing changes to the local stream (what it tracks is kept).
fn apply_settings(settings: Res<AppSettings>, capture: Res<ActiveSource>) {
    if settings.is_changed()
        && let Some(handle) = &capture.handle
    {
        handle.stream.set_tracker_config(tracker_config(&settings));
    }
}

/// The stream to show: the local source's, or the browser tab selected in the panel.
pub(crate) fn choose_stream(
    capture: Res<ActiveSource>,
    browser: Res<BrowserServer>,
    mut show: ResMut<ShowStream>,
) {
    let wanted = match capture.choice {
        Some(SourceChoice::Browser) => browser.selected_stream(),
        _ => capture.handle.as_ref().map(|h| h.stream.id()),
    };
    if show.0 != wanted {
        show.0 = wanted;
    }
}

fn start_initial_source(settings: Res<AppSettings>, mut switch: MessageWriter<SwitchSource>) {
    switch.write(SwitchSource(settings.source.clone()));
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<ActiveSource>()
        .add_message::<SwitchSource>()
        .add_systems(Startup, start_initial_source)
        .add_systems(
            Update,
            (switch_source, apply_settings, choose_stream)
                .chain()
                .in_set(AppSystems::Source)
                .after(crate::app::browser::manage_server),
        );
}
