//! A frame as a source hands it to the inference service, and the process's one clock.
//!
//! Every frame carries its capture time twice: `captured_at` on this process's monotonic clock (for
//! latency and for blending on screen), and `timestamp_us`, the stream's own clock, which drives the
//! smoothing filters and must increase within a stream. Local sources stamp both from the same instant;
//! a browser's frames keep the page's timestamps and get `captured_at` from a [`ClockMapper`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::vision::RgbImage;

/// When and in which order a frame was captured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameMeta {
    /// The producer's sequence number (the client's, for a WebSocket stream).
    pub seq: u64,
    /// Capture time on the stream's clock, µs; must increase within a stream.
    pub timestamp_us: i64,
    /// Capture time on this process's clock.
    pub captured_at: Instant,
    /// The client's own timestamp in ms, echoed back to it unchanged.
    pub client_timestamp_ms: Option<f64>,
}

impl FrameMeta {
    /// A frame captured now by a local source.
    pub fn captured_now(seq: u64) -> Self {
        let now = Instant::now();
        Self {
            seq,
            timestamp_us: timestamp_us(now),
            captured_at: now,
            client_timestamp_ms: None,
        }
    }
}

/// Image formats a frame may arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodedFormat {
    Jpeg,
    Png,
    Webp,
}

impl EncodedFormat {
    /// Recognises the format from its magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if crate::vision::image::is_jpeg(bytes) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }
}

/// The pixels of a frame: encoded as they arrived (decoded by inference, if it gets that far), or
/// already decoded (a camera's raw formats).
#[derive(Clone, Debug)]
pub enum Payload {
    Encoded {
        format: EncodedFormat,
        bytes: bytes::Bytes,
    },
    Decoded(Arc<RgbImage>),
}

/// One frame from a source.
#[derive(Clone, Debug)]
pub struct FrameInput {
    pub meta: FrameMeta,
    pub payload: Payload,
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

/// Maps a remote clock (a browser's `performance.now()`) onto this process's clock. The offset is the
/// smallest `arrival − remote time` seen so far, so a frame's mapped capture time is when it would have
/// arrived with the least delay ever observed: intervals between frames are the remote clock's exactly,
/// and the mapped time is never later than the arrival.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClockMapper {
    /// `arrival_us − remote_us` of the fastest frame so far.
    offset_us: Option<i64>,
}

impl ClockMapper {
    /// This process's instant for a remote timestamp `remote_us` that arrived at `arrived`.
    pub fn captured_at(&mut self, remote_us: i64, arrived: Instant) -> Instant {
        let arrived_us = timestamp_us(arrived);
        let observed = arrived_us.saturating_sub(remote_us);
        let offset = self.offset_us.map_or(observed, |o| o.min(observed));
        self.offset_us = Some(offset);
        let local_us = remote_us.saturating_add(offset);
        let behind = u64::try_from(arrived_us.saturating_sub(local_us)).unwrap_or(0);
        arrived
            .checked_sub(Duration::from_micros(behind))
            .unwrap_or(arrived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_capture_times_keep_the_remote_intervals() {
        let mut mapper = ClockMapper::default();
        let base = Instant::now() + Duration::from_secs(1);
        // Remote frames every 33 ms; arrival delays 20, 5, 12 ms.
        let remote = [1_000_000_i64, 1_033_000, 1_066_000];
        let delays = [20_u64, 5, 12];
        let mapped: Vec<Instant> = remote
            .iter()
            .zip(delays)
            .map(|(&r, d)| {
                let arrived =
                    base + Duration::from_micros((r - 1_000_000) as u64) + Duration::from_millis(d);
                mapper.captured_at(r, arrived)
            })
            .collect();
        // After the fastest frame (5 ms), mapped times are arrival minus the excess over 5 ms.
        let third_expected = base + Duration::from_micros(66_000) + Duration::from_millis(5);
        let diff = mapped[2].max(third_expected) - mapped[2].min(third_expected);
        assert!(diff < Duration::from_micros(2), "{diff:?}");
        let interval = mapped[2] - mapped[1];
        assert!(
            interval.abs_diff(Duration::from_millis(33)) < Duration::from_micros(2),
            "{interval:?}"
        );
    }
}
