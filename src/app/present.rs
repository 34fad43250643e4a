//! What the user sees, and when. Reads: [`ShownFrame`] (the video frame in the texture, written by the
//! overlay), `AppSettings` (the display mode). Writes: [`PresentClock`] (capture-to-present latency),
//! Bevy's `WinitSettings` and the window's present mode.
//!
//! - **Capture to present**: the render world notes which video frame the frame it renders shows (in
//!   `ExtractSchedule`), and, right after `render_system` has handed the swap chain's image to the
//!   display (in `RenderSystems::Cleanup`, where bevy_framepace measures too), how long ago that video
//!   frame was captured — once per video frame, the first time it is on screen. This includes what the
//!   older figure (capture to the texture write in `Update`) left out: pipelined rendering's extra frame
//!   and the render itself. What the compositor queues after present is not visible to the app.
//! - **Display modes**: *smooth* updates at the display's rate and blends the last two results (the
//!   prototype's way); *immediate* updates when a result arrives (winit's reactive mode, woken by the
//!   result's delivery: [`waker`]) and draws it once as it is, or at the latest every
//!   [`IMMEDIATE_IDLE_WAIT`] for the panel.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::render::{Extract, ExtractSchedule, Render, RenderApp, RenderSystems};
use bevy::winit::{EventLoopProxyWrapper, UpdateMode, WinitSettings, WinitUserEvent};

use crate::app::AppSettings;
use crate::mailbox::Ring;

/// How many capture-to-present samples the rolling figures keep.
const WINDOW: usize = 120;
/// In immediate mode with no result arriving, the window still updates this often (the panel's
/// figures, a source that stopped).
pub const IMMEDIATE_IDLE_WAIT: Duration = Duration::from_millis(250);

/// How the window updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DisplayMode {
    /// At the display's rate, blending the last two results (with interpolation on).
    #[default]
    Smooth,
    /// When a result arrives, drawing it once as it is: the lowest latency and power.
    Immediate,
}

impl DisplayMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Smooth => "smooth",
            Self::Immediate => "immediate",
        }
    }
}

/// The video frame in the texture now (sequence number, capture time): set by the overlay when it
/// writes the texture.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct ShownFrame(pub Option<(u64, Instant)>);

/// Capture-to-present latency, shared by the main world (panel, state dump) and the render world
/// (which measures it).
#[derive(Resource, Clone)]
pub struct PresentClock(Arc<Mutex<PresentState>>);

struct PresentState {
    /// The video frame (sequence number, capture time) that the frame being rendered shows.
    rendering: Option<(u64, Instant)>,
    /// The last video frame noted as presented.
    presented: Option<(u64, Instant)>,
    latency_ms: Ring<f32>,
    /// Frames presented (each a render of the window), and video frames presented.
    frames: u64,
    video_frames: u64,
}

impl Default for PresentClock {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(PresentState {
            rendering: None,
            presented: None,
            latency_ms: Ring::new(WINDOW),
            frames: 0,
            video_frames: 0,
        })))
    }
}

impl PresentClock {
    /// The recent capture-to-present latencies, ms.
    pub fn latency_ms(&self) -> Ring<f32> {
        crate::sync::lock(&self.0).latency_ms.clone()
    }

    /// Window frames presented, and video frames presented, since the start.
    pub fn counts(&self) -> (u64, u64) {
        let state = crate::sync::lock(&self.0);
        (state.frames, state.video_frames)
    }
}

/// Render world, `ExtractSchedule`: the video frame this render shows.
fn extract_shown(shown: Extract<Option<Res<ShownFrame>>>, clock: Res<PresentClock>) {
    crate::sync::lock(&clock.0).rendering = shown.as_ref().and_then(|s| s.0);
}

/// Render world, after present: how long ago the video frame now on screen was captured, the first
/// time it is presented.
fn note_present(clock: Res<PresentClock>) {
    let now = Instant::now();
    let mut state = crate::sync::lock(&clock.0);
    state.frames += 1;
    if let Some(shown) = state.rendering
        && state.presented != Some(shown)
    {
        state.presented = Some(shown);
        state.video_frames += 1;
        let ms = now.saturating_duration_since(shown.1).as_secs_f32() * 1000.0;
        state.latency_ms.push(ms);
    }
}

/// The winit settings of a display mode.
fn winit_settings(mode: DisplayMode) -> WinitSettings {
    match mode {
        // Bevy's default: continuous while focused, 60 Hz while not.
        DisplayMode::Smooth => WinitSettings::game(),
        DisplayMode::Immediate => WinitSettings {
            focused_mode: UpdateMode::reactive(IMMEDIATE_IDLE_WAIT),
            unfocused_mode: UpdateMode::reactive_low_power(IMMEDIATE_IDLE_WAIT),
        },
    }
}

/// The present mode of a display mode: smooth waits for the display (FIFO: it draws at the display's
/// rate, and with a frame latency of 1 queues at most one image); immediate draws only when a result
/// arrives, so it presents without waiting (`AutoNoVsync`: immediate, else mailbox, else FIFO).
pub fn present_mode(mode: DisplayMode) -> bevy::window::PresentMode {
    match mode {
        DisplayMode::Smooth => bevy::window::PresentMode::Fifo,
        DisplayMode::Immediate => bevy::window::PresentMode::AutoNoVsync,
    }
}

fn apply_display_mode(
    settings: Res<AppSettings>,
    winit: Option<ResMut<WinitSettings>>,
    mut windows: Query<&mut Window>,
) {
    if !settings.is_changed() {
        return;
    }
    let mode = settings.display_mode;
    if let Some(mut winit) = winit {
        let wanted = winit_settings(mode);
        if winit.focused_mode != wanted.focused_mode
            || winit.unfocused_mode != wanted.unfocused_mode
        {
            *winit = wanted;
        }
    }
    let present = settings
        .render
        .present_mode
        .unwrap_or_else(|| present_mode(mode));
    for mut window in &mut windows {
        if window.present_mode != present {
            window.present_mode = present;
        }
    }
}

/// A function that wakes the window's event loop (for a subscription's notify: the result's delivery
/// wakes the window in immediate mode); `None` without a window (the plugin tests).
pub fn waker(proxy: Option<&EventLoopProxyWrapper>) -> Option<crate::mailbox::Notify> {
    let proxy = Mutex::new((**proxy?).clone());
    Some(Box::new(move || {
        // Fails only once the event loop has ended (the app is closing): nothing left to wake.
        if crate::sync::lock(&proxy)
            .send_event(WinitUserEvent::WakeUp)
            .is_err()
        {
            trace!("the window's event loop has ended");
        }
    }))
}

pub(super) fn plugin(app: &mut App) {
    let clock = PresentClock::default();
    app.insert_resource(clock.clone())
        .init_resource::<ShownFrame>()
        .add_systems(First, apply_display_mode);
    if let Some(render_app) = app.get_sub_app_mut(RenderApp) {
        render_app
            .insert_resource(clock)
            .add_systems(ExtractSchedule, extract_shown)
            .add_systems(Render, note_present.in_set(RenderSystems::Cleanup));
    }
}
