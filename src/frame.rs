//! A captured frame, shared by every stage: sources publish it, inference reads it, the overlay draws the
//! result on it.

use std::sync::Arc;
use std::time::Instant;

use crate::vision::RgbImage;

/// One frame from a source.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Per-source sequence number, from 0.
    pub seq: u64,
    /// When the source captured (or received) it.
    pub captured_at: Instant,
    /// `captured_at` in µs since the process's clock origin: monotonic across sources, so one tracker can
    /// follow a switch of source.
    pub timestamp_us: i64,
    pub image: Arc<RgbImage>,
}

/// The process-wide origin of frame timestamps.
pub fn clock_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// µs since [`clock_origin`] for an instant (0 for instants before it).
pub fn timestamp_us(at: Instant) -> i64 {
    i64::try_from(at.saturating_duration_since(clock_origin()).as_micros()).unwrap_or(i64::MAX)
}
