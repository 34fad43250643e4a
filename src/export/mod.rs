//! Exports of tracked results for other tools: CSV tables ([`csv`]: landmarks and joint angles, for
//! pandas, spreadsheets, R) and OpenSim's TRC marker files ([`trc`]: what Sports2D/Pose2Sim users feed to
//! OpenSim). Plain Rust, no Bevy types; each reads a clip's [`FrameResult`]s, in capture order, as any
//! subscriber of a stream's results does (`analyze` collects them; a recorded session's JSONL reads back
//! into the same type with [`crate::schema::read_jsonl`]).

pub mod csv;
pub mod trc;

use crate::vision::{FrameResult, PersonId};

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("nothing to export: no frames")]
    Empty,
}

/// Seconds of each result since the first one (capture timestamps).
pub fn times_s(results: &[FrameResult]) -> Vec<f64> {
    let first = results.first().map_or(0, |r| r.timestamp_us);
    results
        .iter()
        .map(|r| (r.timestamp_us - first) as f64 * 1e-6)
        .collect()
}

/// The clip's frame rate from its timestamps: the median interval (robust to dropped frames), or
/// `fallback` when there are fewer than two frames or the timestamps do not advance.
pub fn frame_rate(results: &[FrameResult], fallback: f64) -> f64 {
    let mut intervals: Vec<i64> = results
        .windows(2)
        .map(|w| w[1].timestamp_us - w[0].timestamp_us)
        .filter(|d| *d > 0)
        .collect();
    if intervals.is_empty() {
        return fallback;
    }
    intervals.sort_unstable();
    1e6 / intervals[intervals.len() / 2] as f64
}

/// Every person of a clip, by id, each as a clip of their own: one result per frame of the clip, whose
/// top-level pose, hands and angles are that person's (none in the frames where they are not in
/// view), so every single-person exporter writes them as it writes a one-person clip.
pub fn per_person(results: &[FrameResult]) -> Vec<(PersonId, Vec<FrameResult>)> {
    let mut ids: Vec<PersonId> = results
        .iter()
        .flat_map(|r| r.people.iter().map(|p| p.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| (id, results.iter().map(|r| r.of_person(id)).collect()))
        .collect()
}
