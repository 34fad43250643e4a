//! Rolling statistics for the panel and the test-mode state dump: render, capture and inference rates,
//! per-stage p50/p95, dropped frames, capture-to-display latency, and each joint angle's recent history.
//! The inference rate counts every result of the stream shown (from the service), not only those the
//! app took: at a slow render rate the app takes only the newest of several.

use std::time::Instant;

use bevy::prelude::*;

use crate::app::AppSystems;
use crate::app::results::{Followed, Inference, Results};
use crate::mailbox::Ring;
use crate::vision::angles::Joint;
use crate::vision::timings::Stage;

/// How many samples the rolling figures keep.
const WINDOW: usize = 120;
/// Angle history length (≈ 4 s at 30 results/s).
pub const ANGLE_HISTORY: usize = 120;

/// p50 and p95 of the values (NaN when empty).
pub fn percentiles(values: &Ring<f32>) -> (f32, f32) {
    if values.is_empty() {
        return (f32::NAN, f32::NAN);
    }
    let mut sorted: Vec<f32> = values.iter().copied().collect();
    sorted.sort_by(f32::total_cmp);
    let at = |p: f32| sorted[((sorted.len() - 1) as f32 * p).round() as usize];
    (at(0.5), at(0.95))
}

#[derive(Resource)]
pub struct Stats {
    render_frames: Ring<Instant>,
    /// (when, results the stream shown had delivered by then).
    result_counts: Ring<(Instant, u64)>,
    pub stage_ms: Vec<Ring<f32>>,
    /// Capture → on screen, ms, for each displayed result.
    pub latency_ms: Ring<f32>,
    /// Degrees, one ring per [`Joint::ALL`] entry (NaN where the joint was not measured), of the person
    /// followed (cleared when another person is followed).
    pub angle_history: Vec<Ring<f32>>,
    angles_of: Option<crate::vision::PersonId>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            render_frames: Ring::new(WINDOW),
            result_counts: Ring::new(WINDOW),
            stage_ms: vec![Ring::new(WINDOW); Stage::COUNT],
            latency_ms: Ring::new(WINDOW),
            angle_history: vec![Ring::new(ANGLE_HISTORY); Joint::ALL.len()],
            angles_of: None,
        }
    }
}

fn rate(times: &Ring<Instant>) -> f32 {
    match (times.front(), times.back()) {
        (Some(first), Some(last)) if times.len() > 1 => {
            let span = last.saturating_duration_since(*first).as_secs_f32();
            if span > 0.0 {
                (times.len() - 1) as f32 / span
            } else {
                0.0
            }
        }
        _ => 0.0,
    }
}

impl Stats {
    pub fn render_fps(&self) -> f32 {
        rate(&self.render_frames)
    }

    pub fn inference_fps(&self) -> f32 {
        match (self.result_counts.front(), self.result_counts.back()) {
            (Some((t0, n0)), Some((t1, n1))) if n1 > n0 => {
                let span = t1.saturating_duration_since(*t0).as_secs_f32();
                if span > 0.0 {
                    (n1 - n0) as f32 / span
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    }

    pub fn stage(&self, stage: Stage) -> (f32, f32) {
        percentiles(&self.stage_ms[stage as usize])
    }

    /// Records that the newest result's frame went on screen now.
    pub fn record_display(&mut self, captured_at: Instant) {
        self.latency_ms
            .push(captured_at.elapsed().as_secs_f32() * 1000.0);
    }
}

fn update_stats(
    results: Res<Results>,
    inference: Res<Inference>,
    followed: Res<Followed>,
    mut stats: ResMut<Stats>,
) {
    let now = Instant::now();
    stats.render_frames.push(now);
    match inference.stream_stats() {
        Some(stream) => {
            stats.result_counts.push((now, stream.results));
        }
        None => stats.result_counts.clear(),
    }
    for (_, timings) in &results.fresh {
        for (stage, ms) in timings.iter() {
            stats.stage_ms[stage as usize].push(ms);
        }
    }
    if !results.changed() {
        return;
    }
    let Some(newest) = &results.newest else {
        return;
    };
    if stats.angles_of != followed.current {
        // Another person's angles are another history.
        stats.angles_of = followed.current;
        for history in &mut stats.angle_history {
            history.clear();
        }
    }
    for (i, joint) in Joint::ALL.iter().enumerate() {
        let degrees = newest
            .result
            .angles
            .get(*joint)
            .map_or(f32::NAN, |a| a.radians.to_degrees());
        stats.angle_history[i].push(degrees);
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Stats>()
        .add_systems(Update, update_stats.in_set(AppSystems::Present));
}
