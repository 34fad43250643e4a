//! The panel (egui, right side): source, model and filter controls that apply live; rates and per-stage
//! timings; joint angles in degrees with confidence and a short history plot.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

use crate::app::browser::BrowserServer;
use crate::app::overlay::PANEL_WIDTH;
use crate::app::overlay::{PersonLabels, person_color};
use crate::app::record::Recording;
use crate::app::results::{Followed, Inference, Results};
use crate::app::source::{ActiveSource, SwitchSource};
use crate::app::stats::{ANGLE_HISTORY, Stats, percentiles};
use crate::app::{AppSettings, SourceChoice};
use crate::source::camera::CameraRequest;
use crate::source::demo::bundled_demo_clip;
use crate::vision::PoseModel;
use crate::vision::angles::Joint;
use crate::vision::config::HandRegions;
use crate::vision::smoothing::{OneEuroTuning, PROTOTYPE_EMA_ALPHA, SmoothingMethod};
use crate::vision::timings::Stage;

/// The joint-angle rows as shown (for the test-mode state dump): name, degrees text, confidence text.
#[derive(Resource, Default, Debug, Clone, serde::Serialize)]
pub struct PanelText {
    pub angle_rows: Vec<(String, String, String)>,
}

const STAGES_SHOWN: [Stage; 5] = [
    Stage::PoseLandmarkInfer,
    Stage::PalmDetectionInfer,
    Stage::HandLandmarkInfer,
    Stage::Smoothing,
    Stage::Total,
];

fn fmt_ms((p50, p95): (f32, f32)) -> String {
    if p50.is_nan() {
        "–".into()
    } else {
        format!("{p50:.1} / {p95:.1}")
    }
}

fn angle_plot(ui: &mut egui::Ui, history: &crate::mailbox::Ring<f32>) {
    let (response, painter) = ui.allocate_painter(egui::vec2(90.0, 18.0), egui::Sense::hover());
    let rect = response.rect;
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let step = rect.width() / (ANGLE_HISTORY.max(2) - 1) as f32;
    let offset = ANGLE_HISTORY.saturating_sub(history.len());
    let mut segment: Vec<egui::Pos2> = Vec::new();
    let stroke = egui::Stroke::new(1.2, egui::Color32::from_rgb(255, 64, 160));
    for (i, &deg) in history.iter().enumerate() {
        if deg.is_finite() {
            let x = rect.left() + (offset + i) as f32 * step;
            let y = rect.bottom() - (deg / 180.0).clamp(0.0, 1.0) * rect.height();
            segment.push(egui::pos2(x, y));
        } else if segment.len() > 1 {
            painter.add(egui::Shape::line(std::mem::take(&mut segment), stroke));
        } else {
            segment.clear();
        }
    }
    if segment.len() > 1 {
        painter.add(egui::Shape::line(segment, stroke));
    }
}

/// Pause, seek and speed of a session replay.
fn replay_ui(ui: &mut egui::Ui, control: &crate::source::replay::ReplayControl) {
    ui.horizontal(|ui| {
        let paused = control.paused();
        if ui.button(if paused { "Play" } else { "Pause" }).clicked() {
            control.set_paused(!paused);
        }
        let mut speed = control.speed();
        if ui
            .add(
                egui::Slider::new(
                    &mut speed,
                    crate::source::replay::MIN_SPEED..=crate::source::replay::MAX_SPEED,
                )
                .logarithmic(true)
                .text("speed ×"),
            )
            .changed()
        {
            control.set_speed(speed);
        }
    });
    if control.has_results {
        ui.horizontal(|ui| {
            let recorded = control.show_recorded();
            if ui.radio(!recorded, "track again").clicked() {
                control.set_show_recorded(false);
            }
            if ui.radio(recorded, "recorded results").clicked() {
                control.set_show_recorded(true);
            }
        });
    }
    let last = control.frames.saturating_sub(1);
    let mut position = control.position();
    if ui
        .add(egui::Slider::new(&mut position, 0..=last).text(format!(
            "frame of {} ({:.1} s)",
            control.frames, control.duration_s
        )))
        .changed()
    {
        control.seek(position);
    }
}

/// The Record button and how the recording goes.
fn record_ui(ui: &mut egui::Ui, recording: &mut Recording) {
    ui.horizontal(|ui| {
        let label = if recording.is_recording() {
            "Stop recording"
        } else {
            "Record"
        };
        if ui.button(label).clicked() {
            recording.toggle = true;
        }
        if let Some(status) = recording.status() {
            ui.colored_label(
                egui::Color32::from_rgb(255, 90, 90),
                format!("REC {} frames", status.frames),
            );
            if status.not_written > 0 {
                ui.colored_label(
                    egui::Color32::YELLOW,
                    format!("{} not written", status.not_written),
                );
            }
        }
    });
    if let Some(status) = recording.status() {
        match &status.error {
            Some(e) => {
                ui.colored_label(egui::Color32::LIGHT_RED, format!("recording stopped: {e}"));
            }
            None => {
                ui.label(format!("into {}", status.dir.display()));
            }
        }
    } else if let Some(message) = &recording.message {
        ui.label(message);
    }
}

/// The built-in server: its address, and the connected tabs (one can be chosen as the source).
fn browser_ui(ui: &mut egui::Ui, browser: &mut BrowserServer, is_source: bool) {
    if let Some(error) = &browser.error {
        ui.colored_label(egui::Color32::LIGHT_RED, error);
        return;
    }
    let (Some(url), Some(stats)) = (browser.url(), browser.stats.clone()) else {
        return;
    };
    ui.label(format!("browser client: {url}"));
    if let Some((remote, side, modules)) = &browser.pairing {
        ui.label(format!("from a phone: scan, or open {remote}"));
        qr_ui(ui, *side, modules);
    }
    let selected = browser.selected();
    if is_source && stats.clients.is_empty() {
        ui.colored_label(
            egui::Color32::YELLOW,
            "no tab connected: open the address above and press Start",
        );
    }
    for client in &stats.clients {
        let via = match client.protocol {
            Some(crate::server::Protocol::SocketIo) => " (Socket.IO)",
            _ => "",
        };
        let text = format!(
            "#{} {}{via}: {} received, {} processed, {} dropped",
            client.id, client.peer, client.received, client.processed, client.dropped
        );
        if ui.radio(selected == Some(client.id), text).clicked() {
            browser.selected_client = Some(client.id);
        }
    }
}

/// A QR code drawn module by module (dark on white, with the 4-module quiet zone).
fn qr_ui(ui: &mut egui::Ui, side: usize, modules: &[bool]) {
    const MODULE_PX: f32 = 3.0;
    const QUIET: usize = 4;
    let size = (side + 2 * QUIET) as f32 * MODULE_PX;
    let (rect, _) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, egui::Color32::WHITE);
    for (i, dark) in modules.iter().enumerate() {
        if !dark {
            continue;
        }
        let (row, col) = (i / side.max(1), i % side.max(1));
        let min = rect.min
            + egui::vec2(
                (col + QUIET) as f32 * MODULE_PX,
                (row + QUIET) as f32 * MODULE_PX,
            );
        painter.rect_filled(
            egui::Rect::from_min_size(min, egui::vec2(MODULE_PX, MODULE_PX)),
            0.0,
            egui::Color32::BLACK,
        );
    }
}

/// How long the panel says that the followed person left.
const LEFT_NOTICE: std::time::Duration = std::time::Duration::from_secs(5);

/// Space between the panel's edges and its contents, logical px.
const PANEL_MARGIN: f32 = 8.0;

fn egui_color(color: Color) -> egui::Color32 {
    let c = color.to_srgba();
    egui::Color32::from_rgb(
        (c.red * 255.0) as u8,
        (c.green * 255.0) as u8,
        (c.blue * 255.0) as u8,
    )
}

/// Each person's id over the video, in their colour (the followed one in brackets).
fn people_labels_ui(ctx: &egui::Context, labels: &PersonLabels) {
    let painter = ctx.layer_painter(egui::LayerId::background());
    for label in &labels.labels {
        let text = if label.followed {
            format!("[#{}]", label.id)
        } else {
            format!("#{}", label.id)
        };
        painter.text(
            egui::pos2(label.pos_in_window[0], label.pos_in_window[1]),
            egui::Align2::CENTER_BOTTOM,
            text,
            egui::FontId::proportional(15.0),
            egui_color(label.color),
        );
    }
}

/// The people in view, whom to follow, and who left.
fn people_ui(ui: &mut egui::Ui, results: &Results, followed: &mut Followed) {
    let people: Vec<crate::vision::PersonId> = results
        .newest
        .as_ref()
        .map(|n| n.result.people.iter().map(|p| p.id).collect())
        .unwrap_or_default();
    ui.heading(format!("People in view: {}", people.len()));
    ui.horizontal_wrapped(|ui| {
        if ui
            .radio(followed.chosen.is_none(), "lowest id")
            .on_hover_text("follow the person with the lowest id in view")
            .clicked()
        {
            followed.chosen = None;
        }
        for id in &people {
            let text = egui::RichText::new(format!("#{id}")).color(egui_color(person_color(*id)));
            if ui
                .radio(followed.chosen == Some(*id), text)
                .on_hover_text("follow this person (or click them in the video)")
                .clicked()
            {
                followed.chosen = Some(*id);
                followed.left = None;
            }
        }
    });
    if let Some((id, when)) = followed.left
        && when.elapsed() < LEFT_NOTICE
    {
        let now = followed
            .current
            .map_or("nobody".to_owned(), |c| format!("#{c}"));
        ui.colored_label(
            egui::Color32::YELLOW,
            format!("#{id} left the view; following {now}"),
        );
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the panel shows and edits the whole app state"
)]
fn panel_ui(
    mut contexts: EguiContexts,
    mut settings: ResMut<AppSettings>,
    mut switch: MessageWriter<SwitchSource>,
    source: Res<ActiveSource>,
    inference: Res<Inference>,
    results: Res<Results>,
    stats: Res<Stats>,
    mut panel: ResMut<PanelText>,
    mut browser: ResMut<BrowserServer>,
    mut recording: ResMut<Recording>,
    mut followed: ResMut<Followed>,
    labels: Res<PersonLabels>,
    present: Res<crate::app::present::PresentClock>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    people_labels_ui(ctx, &labels);
    let mut edited = settings.clone();
    let mut rows = Vec::new();
    let screen = ctx.content_rect();
    // The panel's column is the window's last PANEL_WIDTH px, and the panel starts at its left edge:
    // nothing of it is drawn over the 3D view (a row wider than the column runs off the right edge).
    let scroll_bar = ctx.global_style().spacing.scroll.bar_width;
    egui::Window::new("livepose")
        .fixed_pos(egui::pos2(screen.max.x - PANEL_WIDTH, screen.min.y))
        .constrain(false)
        .fixed_size([
            PANEL_WIDTH - 2.0 * PANEL_MARGIN - scroll_bar,
            screen.height() - 2.0 * PANEL_MARGIN,
        ])
        .title_bar(false)
        .resizable(false)
        .collapsible(false)
        .vscroll(true)
        // No filled frame or shadow: the window's clear colour is the panel's background. With
        // software rendering every pixel egui fills runs its shader (two colour-space conversions
        // per pixel), and the filled frame was most of the panel's pixels: render FPS +31-46 % idle,
        // +1-35 % while tracking, without it (docs/MEASUREMENTS.md, "Drawing less").
        .frame(egui::Frame::NONE.inner_margin(PANEL_MARGIN))
        .show(ctx, |ui| {
            ui.heading("Source");
            let status = source.status();
            let browser_is_source = source.choice == Some(SourceChoice::Browser);
            ui.label(if browser_is_source {
                "browser: the selected tab's camera".to_owned()
            } else if source.opening() {
                "opening the source…".to_owned()
            } else if status.name.is_empty() {
                "starting…".to_owned()
            } else {
                status.name.clone()
            });
            if let Some(note) = &source.note {
                ui.colored_label(egui::Color32::YELLOW, note);
            }
            if let Some(error) = &status.error {
                ui.colored_label(egui::Color32::LIGHT_RED, error);
            }
            ui.horizontal(|ui| {
                if ui.button("Camera 0").clicked() {
                    switch.write(SwitchSource(SourceChoice::Camera(CameraRequest::default())));
                }
                if ui.button("Demo clip").clicked() {
                    switch.write(SwitchSource(SourceChoice::File(bundled_demo_clip())));
                }
                if browser.server.is_some() && ui.button("Browser").clicked() {
                    switch.write(SwitchSource(SourceChoice::Browser));
                }
            });
            browser_ui(ui, &mut browser, browser_is_source);
            if let Some(control) = source.handle.as_ref().and_then(|h| h.replay.as_ref()) {
                replay_ui(ui, control);
            }
            record_ui(ui, &mut recording);

            ui.separator();
            ui.heading("Model");
            ui.horizontal(|ui| {
                ui.radio_value(&mut edited.engine.pose_model, PoseModel::Lite, "lite");
                ui.radio_value(&mut edited.engine.pose_model, PoseModel::Full, "full");
                ui.radio_value(&mut edited.engine.pose_model, PoseModel::Heavy, "heavy");
                ui.checkbox(&mut edited.engine.hands, "hands");
            });
            ui.add_enabled_ui(edited.engine.hands, |ui| {
                ui.horizontal(|ui| {
                    ui.label("hands from");
                    ui.radio_value(&mut edited.hand_regions, HandRegions::Pose, "pose")
                        .on_hover_text(
                            "look for hands at each person's wrists (finds more, each already \
                             theirs; the palm detector while nobody is in view)",
                        );
                    ui.radio_value(&mut edited.hand_regions, HandRegions::Palm, "palm detector")
                        .on_hover_text(
                            "look for hands anywhere in the frame (also a hand whose body is out \
                             of view)",
                        );
                });
            });
            ui.horizontal(|ui| {
                ui.label("people")
                    .on_hover_text("tracked at most; each costs one pose model run per frame");
                ui.add(egui::Slider::new(&mut edited.max_people, 1..=6));
            });
            ui.horizontal(|ui| {
                ui.label("smoothing");
                let is_ema = matches!(edited.smoothing, SmoothingMethod::Ema { .. });
                let is_one_euro = edited.smoothing.is_one_euro();
                if ui.radio(is_one_euro, "One Euro").clicked() && !is_one_euro {
                    edited.smoothing = SmoothingMethod::ONE_EURO;
                }
                if ui.radio(is_ema, "EMA").clicked() && !is_ema {
                    edited.smoothing = SmoothingMethod::Ema {
                        alpha: PROTOTYPE_EMA_ALPHA,
                    };
                }
                if ui
                    .radio(edited.smoothing == SmoothingMethod::Off, "off")
                    .clicked()
                {
                    edited.smoothing = SmoothingMethod::Off;
                }
            });
            match &mut edited.smoothing {
                SmoothingMethod::Ema { alpha } => {
                    ui.add(egui::Slider::new(alpha, 0.05..=1.0).text("EMA α (new value weight)"));
                }
                SmoothingMethod::OneEuro(tuning) => {
                    // Factors on MediaPipe's parameters (1 = MediaPipe); logarithmic, as they act.
                    ui.add(
                        egui::Slider::new(&mut tuning.min_cutoff_scale, 0.1..=10.0)
                            .logarithmic(true)
                            .text("min cutoff × (lower: steadier)"),
                    );
                    ui.add(
                        egui::Slider::new(&mut tuning.beta_scale, 0.1..=10.0)
                            .logarithmic(true)
                            .text("beta × (higher: less lag)"),
                    );
                    if *tuning != OneEuroTuning::MEDIAPIPE && ui.button("MediaPipe's").clicked() {
                        *tuning = OneEuroTuning::MEDIAPIPE;
                    }
                }
                SmoothingMethod::Off => {}
            }
            ui.horizontal(|ui| {
                use crate::app::present::DisplayMode;
                ui.label("display");
                ui.radio_value(&mut edited.display_mode, DisplayMode::Smooth, "smooth")
                    .on_hover_text("at the display's rate, blending the last two results");
                ui.radio_value(
                    &mut edited.display_mode,
                    DisplayMode::Immediate,
                    "immediate",
                )
                .on_hover_text(
                    "each result once, as soon as it is ready: lowest latency and power",
                );
            });
            ui.horizontal(|ui| {
                ui.add_enabled_ui(
                    edited.display_mode == crate::app::present::DisplayMode::Smooth,
                    |ui| ui.checkbox(&mut edited.interpolation, "interpolate"),
                );
                ui.checkbox(&mut edited.mirror, "mirror");
            });
            ui.horizontal(|ui| {
                ui.label("3D view");
                ui.checkbox(&mut edited.view3d.avatar, "avatar");
                ui.checkbox(&mut edited.view3d.landmarks, "landmarks");
            });
            if let Some(error) = &inference.error {
                ui.colored_label(egui::Color32::LIGHT_RED, error);
            } else if inference.service.is_none() {
                ui.label("loading models…");
            }
            if let Some(error) = inference
                .service
                .as_ref()
                .and_then(|s| s.stats().reconfigure_error)
            {
                ui.colored_label(egui::Color32::LIGHT_RED, error);
            }

            ui.separator();
            ui.heading("Stats");
            let latency = percentiles(&stats.latency_ms);
            let present_latency = percentiles(&present.latency_ms());
            egui::Grid::new("stats").num_columns(2).show(ui, |ui| {
                ui.label("render FPS");
                ui.label(format!("{:.1}", stats.render_fps()));
                ui.end_row();
                ui.label("capture FPS");
                ui.label(format!("{:.1}", status.capture_fps));
                ui.end_row();
                ui.label("inference FPS");
                ui.label(format!("{:.1}", stats.inference_fps()));
                ui.end_row();
                ui.label("dropped frames");
                let stream = inference.stream_stats().unwrap_or_default();
                ui.label(format!("{} of {}", stream.dropped, stream.received));
                ui.end_row();
                ui.label("capture to present ms")
                    .on_hover_text("from the camera's capture to the frame handed to the display");
                ui.label(fmt_ms(present_latency));
                ui.end_row();
                ui.label("capture to texture ms")
                    .on_hover_text("from the camera's capture to the video texture written");
                ui.label(fmt_ms(latency));
                ui.end_row();
                for stage in STAGES_SHOWN {
                    ui.label(format!("{} ms", stage.name()));
                    ui.label(fmt_ms(stats.stage(stage)));
                    ui.end_row();
                }
            });

            ui.separator();
            people_ui(ui, &results, &mut followed);

            ui.separator();
            ui.heading(match followed.current {
                Some(id) => format!("Joint angles, person #{id}"),
                None => "Joint angles".to_owned(),
            });
            let newest = results.newest.as_ref().map(|n| &n.result.angles);
            egui::Grid::new("angles").num_columns(4).show(ui, |ui| {
                for (i, joint) in Joint::ALL.iter().enumerate() {
                    let angle = newest.and_then(|a| a.get(*joint));
                    let degrees = angle.map_or("–".to_owned(), |a| {
                        format!("{:.0}°", a.radians.to_degrees())
                    });
                    let confidence =
                        angle.map_or("".to_owned(), |a| format!("{:.2}", a.confidence));
                    let faded = angle.is_none_or(|a| a.confidence < 0.5);
                    let name = joint.name().replace('_', " ");
                    let text = |s: &str| {
                        if faded {
                            egui::RichText::new(s).weak()
                        } else {
                            egui::RichText::new(s)
                        }
                    };
                    ui.label(text(&name));
                    ui.label(text(&degrees).monospace());
                    ui.label(text(&confidence).small());
                    angle_plot(ui, &stats.angle_history[i]);
                    ui.end_row();
                    rows.push((name, degrees, confidence));
                }
            });
        });
    panel.angle_rows = rows;
    if edited != *settings {
        *settings = edited;
    }
    Ok(())
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PanelText>()
        .add_systems(EguiPrimaryContextPass, panel_ui);
}
