//! `livepose report`: one self-contained HTML file about a session (no network, no external files: the
//! plots are SVG drawn by `plotters` and written inline). It has each joint angle over time, a
//! range-of-motion table (min, max, range, mean, and when the min and max happened), how often a person
//! and each hand were seen, and the per-stage timings and dropped frames over time.
//!
//! Angles are taken only where their confidence (the smallest visibility of the three landmarks that
//! make the angle) is at least [`MIN_ANGLE_CONFIDENCE`]; everything is computed in radians and shown
//! in degrees.

use std::path::Path;

use plotters::prelude::*;

use crate::session::{RecordedResult, RecordedSession};
use crate::vision::Handedness;
use crate::vision::angles::Joint;

/// Angles less sure than this are left out of the plots and the table.
pub const MIN_ANGLE_CONFIDENCE: f32 = 0.5;
const PLOT_SIZE: (u32, u32) = (900, 240);

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the session has no results to report")]
    Empty,
    #[error("cannot draw a plot: {0}")]
    Plot(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Range of motion of one joint.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeOfMotion {
    pub joint: Joint,
    pub min_rad: f32,
    pub min_at_s: f64,
    pub max_rad: f32,
    pub max_at_s: f64,
    pub mean_rad: f32,
    /// Frames where the angle was sure enough.
    pub frames: usize,
}

/// The figures of a report, also returned to the caller (and checked by the tests).
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSummary {
    pub results: usize,
    pub duration_s: f64,
    pub with_person: f64,
    pub with_left_hand: f64,
    pub with_right_hand: f64,
    pub range_of_motion: Vec<RangeOfMotion>,
    /// Every person of the session by id, each summarised on their own (when more than one was seen).
    pub people: Vec<PersonSummary>,
    pub plots: usize,
}

/// One person of a session.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonSummary {
    pub id: crate::vision::PersonId,
    /// Share of the results the person is in.
    pub seen: f64,
    /// When the person was first and last seen, seconds from the start.
    pub first_s: f64,
    pub last_s: f64,
    pub with_left_hand: f64,
    pub with_right_hand: f64,
    pub range_of_motion: Vec<RangeOfMotion>,
}

fn time_s(r: &RecordedResult, first: &RecordedResult) -> f64 {
    if r.t_ms > 0.0 || first.t_ms > 0.0 {
        (r.t_ms - first.t_ms) / 1e3
    } else {
        (r.result.timestamp_us - first.result.timestamp_us) as f64 * 1e-6
    }
}

/// The summary figures of a session's results.
pub fn summarize(results: &[RecordedResult]) -> Result<ReportSummary, ReportError> {
    let first = results.first().ok_or(ReportError::Empty)?;
    let n = results.len() as f64;
    let frac =
        |f: &dyn Fn(&RecordedResult) -> bool| results.iter().filter(|r| f(r)).count() as f64 / n;
    let has_hand =
        |r: &RecordedResult, side: Handedness| r.result.hands.iter().any(|h| h.handedness == side);
    let mut range_of_motion = Vec::new();
    for joint in Joint::ALL {
        let mut rom: Option<RangeOfMotion> = None;
        let mut sum = 0.0_f64;
        for r in results {
            let Some(angle) = r.result.angles.get(joint) else {
                continue;
            };
            if angle.confidence < MIN_ANGLE_CONFIDENCE || !angle.radians.is_finite() {
                continue;
            }
            let t = time_s(r, first);
            sum += f64::from(angle.radians);
            let entry = rom.get_or_insert(RangeOfMotion {
                joint,
                min_rad: angle.radians,
                min_at_s: t,
                max_rad: angle.radians,
                max_at_s: t,
                mean_rad: 0.0,
                frames: 0,
            });
            entry.frames += 1;
            if angle.radians < entry.min_rad {
                entry.min_rad = angle.radians;
                entry.min_at_s = t;
            }
            if angle.radians > entry.max_rad {
                entry.max_rad = angle.radians;
                entry.max_at_s = t;
            }
        }
        if let Some(mut entry) = rom {
            entry.mean_rad = (sum / entry.frames as f64) as f32;
            range_of_motion.push(entry);
        }
    }
    let last = results.last().unwrap_or(first);
    Ok(ReportSummary {
        results: results.len(),
        duration_s: time_s(last, first),
        with_person: frac(&|r| r.result.pose.is_some()),
        with_left_hand: frac(&|r| has_hand(r, Handedness::Left)),
        with_right_hand: frac(&|r| has_hand(r, Handedness::Right)),
        range_of_motion,
        people: people(results)?,
        plots: 0,
    })
}

/// Each person's own summary, when the session saw more than one (their results as a one-person
/// session: the top level is theirs, empty where they are out of view).
fn people(results: &[RecordedResult]) -> Result<Vec<PersonSummary>, ReportError> {
    let frames: Vec<crate::vision::FrameResult> =
        results.iter().map(|r| r.result.clone()).collect();
    let clips = crate::export::per_person(&frames);
    if clips.len() < 2 {
        return Ok(Vec::new());
    }
    let first = results.first().ok_or(ReportError::Empty)?;
    clips
        .into_iter()
        .map(|(id, clip)| {
            let own: Vec<RecordedResult> = results
                .iter()
                .zip(clip)
                .map(|(r, result)| RecordedResult {
                    result,
                    ..r.clone()
                })
                .collect();
            let times: Vec<f64> = own
                .iter()
                .filter(|r| r.result.pose.is_some())
                .map(|r| time_s(r, first))
                .collect();
            let whole = summarize_one(&own)?;
            Ok(PersonSummary {
                id,
                seen: whole.with_person,
                first_s: times.first().copied().unwrap_or(0.0),
                last_s: times.last().copied().unwrap_or(0.0),
                with_left_hand: whole.with_left_hand,
                with_right_hand: whole.with_right_hand,
                range_of_motion: whole.range_of_motion,
            })
        })
        .collect()
}

/// [`summarize`] without the per-person part.
fn summarize_one(results: &[RecordedResult]) -> Result<ReportSummary, ReportError> {
    let frames: Vec<RecordedResult> = results
        .iter()
        .map(|r| RecordedResult {
            result: crate::vision::FrameResult {
                people: Vec::new(),
                ..r.result.clone()
            },
            ..r.clone()
        })
        .collect();
    summarize(&frames)
}

fn plot_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// One line of a plot.
pub struct Series {
    pub label: String,
    pub colour: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A line chart as an SVG string (also the soak benchmark's plots, `benches/soak.rs`).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<String, ReportError> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_min, mut y_max) = (0.0_f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    if y_max - y_min < 1e-9 {
        // A flat line (no frame dropped): give it a visible range around its value.
        (y_min, y_max) = (y_min - 1.0, y_max + 1.0);
    }
    let pad = ((y_max - y_min) * 0.08).max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max.max(1e-3), (y_min - pad)..(y_max + pad))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        for s in series {
            let colour = s.colour;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

const LEFT: RGBColor = RGBColor(214, 39, 120);
const RIGHT: RGBColor = RGBColor(31, 119, 180);
const OTHER: [RGBColor; 4] = [
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(120, 120, 120),
];

/// The joints plotted together: left and right of each.
const JOINT_PAIRS: [(&str, Joint, Joint); 6] = [
    ("Elbow", Joint::LeftElbow, Joint::RightElbow),
    ("Shoulder", Joint::LeftShoulder, Joint::RightShoulder),
    ("Hip", Joint::LeftHip, Joint::RightHip),
    ("Knee", Joint::LeftKnee, Joint::RightKnee),
    ("Ankle", Joint::LeftAnkle, Joint::RightAnkle),
    ("Wrist", Joint::LeftWrist, Joint::RightWrist),
];

fn angle_points(results: &[RecordedResult], joint: Joint) -> Vec<(f64, f64)> {
    let Some(first) = results.first() else {
        return Vec::new();
    };
    results
        .iter()
        .filter_map(|r| {
            let a = r.result.angles.get(joint)?;
            (a.confidence >= MIN_ANGLE_CONFIDENCE && a.radians.is_finite())
                .then(|| (time_s(r, first), f64::from(a.radians.to_degrees())))
        })
        .collect()
}

/// The smoothing as people read it.
fn smoothing_text(tracker: &crate::vision::TrackerConfig) -> String {
    use crate::vision::smoothing::SmoothingMethod;
    if !tracker.tracking {
        return "none (every frame on its own)".into();
    }
    match tracker.smoothing {
        SmoothingMethod::OneEuro(t) => format!(
            "One Euro (MediaPipe's, min cutoff ×{}, beta ×{})",
            t.min_cutoff_scale, t.beta_scale
        ),
        SmoothingMethod::Ema { alpha } => format!("EMA (α = {alpha})"),
        SmoothingMethod::Off => "off".into(),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(f: f64) -> String {
    format!("{:.1} %", f * 100.0)
}

/// Builds the report's HTML.
pub fn render(session: &RecordedSession) -> Result<(String, ReportSummary), ReportError> {
    let results = &session.results;
    let mut summary = summarize(results)?;
    let first = &results[0];
    let mut plots: Vec<(String, String)> = Vec::new();
    for (name, left, right) in JOINT_PAIRS {
        let series = [
            Series {
                label: "left".into(),
                colour: LEFT,
                points: angle_points(results, left),
            },
            Series {
                label: "right".into(),
                colour: RIGHT,
                points: angle_points(results, right),
            },
        ];
        if series.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        let title = format!("{name} angle");
        plots.push((
            format!("angle-{}", name.to_lowercase()),
            line_chart(&title, "time (s)", "degrees", &series)?,
        ));
    }
    // Timings: the whole frame, the two landmark models, and capture-to-result.
    let stage = |key: &str| -> Vec<(f64, f64)> {
        results
            .iter()
            .filter_map(|r| r.timings_ms.get(key).map(|ms| (time_s(r, first), *ms)))
            .collect()
    };
    let timing_series = [
        Series {
            label: "whole frame".into(),
            colour: OTHER[0],
            points: stage("total"),
        },
        Series {
            label: "pose landmarks".into(),
            colour: LEFT,
            points: stage("pose_landmark_infer"),
        },
        Series {
            label: "hand landmarks".into(),
            colour: RIGHT,
            points: stage("hand_landmark_infer"),
        },
        Series {
            label: "capture to result".into(),
            colour: OTHER[1],
            points: results
                .iter()
                .filter(|r| r.round_trip_ms > 0.0)
                .map(|r| (time_s(r, first), r.round_trip_ms))
                .collect(),
        },
    ];
    plots.push((
        "timings".into(),
        line_chart("Per-stage timings", "time (s)", "ms", &timing_series)?,
    ));
    // Frames the stream's latest-wins slot replaced before inference, counted since the first result.
    let dropped: Vec<(f64, f64)> = results
        .iter()
        .map(|r| {
            (
                time_s(r, first),
                r.dropped_by_stream.saturating_sub(first.dropped_by_stream) as f64,
            )
        })
        .collect();
    plots.push((
        "dropped".into(),
        line_chart(
            "Frames dropped by the stream (latest wins), since the start",
            "time (s)",
            "frames",
            &[Series {
                label: "dropped".into(),
                colour: OTHER[2],
                points: dropped,
            }],
        )?,
    ));
    summary.plots = plots.len();

    let mut html = String::with_capacity(256 * 1024);
    let title = format!("livepose report: {}", session.name());
    html.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
         body{{font-family:sans-serif;margin:24px;color:#222;max-width:960px}}\
         table{{border-collapse:collapse;margin:8px 0 24px}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\
         th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}figure{{margin:0 0 16px}}\
         </style></head><body>\n<h1>{}</h1>\n",
        html_escape(&title),
        html_escape(&title)));
    if let Some(info) = &session.info {
        html.push_str(&format!(
            "<p>Source: {} ({}). Started {}. Model {}, hands {}, smoothing {}, mirrored {}. livepose {}.</p>",
            html_escape(&info.source.name),
            html_escape(&info.source.kind),
            html_escape(&info.started_at),
            info.settings.model.name(),
            if info.settings.hands { "on" } else { "off" },
            smoothing_text(&info.settings.tracker),
            if info.settings.mirrored { "yes" } else { "no" },
            html_escape(&info.livepose_version)));
        html.push('\n');
    }
    html.push_str(&format!(
        "<h2>Presence</h2>\n<table id=\"presence\"><tr><th></th><th>frames</th><th>share</th></tr>\
         <tr><td>results</td><td>{}</td><td>{:.1} s</td></tr>\
         <tr><td>with a person</td><td>{}</td><td>{}</td></tr>\
         <tr><td>with the left hand</td><td>{}</td><td>{}</td></tr>\
         <tr><td>with the right hand</td><td>{}</td><td>{}</td></tr></table>\n",
        summary.results,
        summary.duration_s,
        (summary.with_person * summary.results as f64).round(),
        pct(summary.with_person),
        (summary.with_left_hand * summary.results as f64).round(),
        pct(summary.with_left_hand),
        (summary.with_right_hand * summary.results as f64).round(),
        pct(summary.with_right_hand)
    ));
    html.push_str(&format!(
        "<h2>Range of motion</h2>\n<p>Angles with confidence ≥ {MIN_ANGLE_CONFIDENCE}, in degrees; times in seconds from the start.</p>\n\
         <table id=\"rom\"><tr><th>joint</th><th>min</th><th>at</th><th>max</th><th>at</th><th>range</th><th>mean</th><th>frames</th></tr>\n"));
    for rom in &summary.range_of_motion {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.1}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
            rom.joint.name(),
            rom.min_rad.to_degrees(),
            rom.min_at_s,
            rom.max_rad.to_degrees(),
            rom.max_at_s,
            (rom.max_rad - rom.min_rad).to_degrees(),
            rom.mean_rad.to_degrees(),
            rom.frames));
        html.push('\n');
    }
    html.push_str("</table>\n");
    if !summary.people.is_empty() {
        html.push_str(&format!(
            "<h2>People</h2>\n<p>{} people were seen, each with an id of their own. The tables above \
             follow the person followed in the app while recording, else the lowest id in view.</p>\n",
            summary.people.len()
        ));
    }
    for person in &summary.people {
        html.push_str(&format!(
            "<h3 id=\"person-{id}\">Person {id}</h3>\n<p>In view in {} of the results, from {:.2} s to \
             {:.2} s; left hand {}, right hand {}.</p>\n<table id=\"rom-person-{id}\"><tr><th>joint</th>\
             <th>min</th><th>max</th><th>range</th><th>mean</th><th>frames</th></tr>\n",
            pct(person.seen),
            person.first_s,
            person.last_s,
            pct(person.with_left_hand),
            pct(person.with_right_hand),
            id = person.id,
        ));
        for rom in &person.range_of_motion {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>\n",
                rom.joint.name(),
                rom.min_rad.to_degrees(),
                rom.max_rad.to_degrees(),
                (rom.max_rad - rom.min_rad).to_degrees(),
                rom.mean_rad.to_degrees(),
                rom.frames
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h2>Joint angles over time</h2>\n");
    if summary.range_of_motion.is_empty() {
        html.push_str(&format!(
            "<p>No joint angle was sure enough (confidence ≥ {MIN_ANGLE_CONFIDENCE}) to plot: the limbs were \
             out of view or hidden.</p>"));
        html.push('\n');
    }
    for (id, svg) in &plots {
        if id == "timings" {
            html.push_str("<h2>Timings and dropped frames</h2>\n");
        }
        html.push_str(&format!(
            "<figure class=\"plot\" id=\"{id}\">{svg}</figure>"
        ));
        html.push('\n');
    }
    if !session.warnings.is_empty() {
        html.push_str("<h2>Notes</h2><ul>");
        for w in &session.warnings {
            html.push_str(&format!("<li>{}</li>", html_escape(w)));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</body></html>\n");
    Ok((html, summary))
}

/// Writes the report of `session` to `out`.
pub fn write(session: &RecordedSession, out: &Path) -> Result<ReportSummary, ReportError> {
    let (html, summary) = render(session)?;
    std::fs::write(out, html).map_err(|source| ReportError::Write {
        path: out.to_owned(),
        source,
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::FrameResult;
    use crate::vision::angles::{JointAngle, JointAngles};

    fn recorded(t_ms: f64, knee_rad: f32, confidence: f32) -> RecordedResult {
        RecordedResult {
            frame: 0,
            seq: 0,
            t_ms,
            queue_ms: 0.0,
            round_trip_ms: 0.0,
            dropped_by_stream: 0,
            timings_ms: Default::default(),
            followed: None,
            result: FrameResult {
                timestamp_us: 0,
                width: 640,
                height: 480,
                pose: None,
                hands: Vec::new(),
                angles: JointAngles {
                    angles: vec![JointAngle {
                        joint: Joint::LeftKnee,
                        radians: knee_rad,
                        confidence,
                    }],
                },
                people: Vec::new(),
                pose_detector_ran: false,
                palm_detector_ran: false,
                timings: Default::default(),
            },
            line: String::new(),
        }
    }

    #[test]
    fn range_of_motion_has_the_extremes_and_when_they_happened() {
        let results = [
            recorded(1000.0, 3.0, 0.9),
            recorded(1500.0, 1.2, 0.9),
            // Too unsure: left out even though it is the smallest.
            recorded(2000.0, 0.1, 0.2),
            recorded(3000.0, 2.1, 0.8),
        ];
        let summary = summarize(&results).unwrap();
        assert_eq!(summary.range_of_motion.len(), 1);
        let knee = &summary.range_of_motion[0];
        assert_eq!(knee.joint, Joint::LeftKnee);
        assert_eq!((knee.min_rad, knee.max_rad), (1.2, 3.0));
        assert!((knee.min_at_s - 0.5).abs() < 1e-9 && knee.max_at_s.abs() < 1e-9);
        assert!((knee.mean_rad - 2.1).abs() < 1e-6, "{}", knee.mean_rad);
        assert_eq!(knee.frames, 3);
        assert!((summary.duration_s - 2.0).abs() < 1e-9);
        assert_eq!(summary.with_person, 0.0);
        assert!(matches!(summarize(&[]), Err(ReportError::Empty)));
    }
}
