//! The latest-wins frame slot between sources and inference: `publish` overwrites a frame nobody took
//! yet (and counts it as dropped), `take` empties the slot. No queue, so latency never builds up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::frame::Frame;

#[derive(Debug, Default)]
pub struct FrameSlot {
    frame: Mutex<Option<Frame>>,
    /// Signalled on every publish, for [`FrameSlot::take_timeout`].
    filled: Condvar,
    published: AtomicU64,
    dropped: AtomicU64,
}

impl FrameSlot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `frame` in the slot. Returns true when it replaced a frame that was never taken.
    pub fn publish(&self, frame: Frame) -> bool {
        let replaced = {
            let mut slot = self
                .frame
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.replace(frame).is_some()
        };
        self.filled.notify_one();
        self.published.fetch_add(1, Ordering::Relaxed);
        if replaced {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        replaced
    }

    /// Takes the newest frame, leaving the slot empty.
    pub fn take(&self) -> Option<Frame> {
        self.frame
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Takes the newest frame, waiting up to `timeout` for one to be published (no spinning).
    pub fn take_timeout(&self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut slot = self
            .frame
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if let Some(frame) = slot.take() {
                return Some(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            slot = self
                .filled
                .wait_timeout(slot, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Frames published so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Frames overwritten before anyone took them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::RgbImage;
    use std::sync::Arc;

    fn frame(seq: u64) -> Frame {
        Frame {
            seq,
            captured_at: Instant::now(),
            timestamp_us: seq as i64,
            image: Arc::new(RgbImage::default()),
        }
    }

    #[test]
    fn newest_wins_and_overwrites_are_counted() {
        let slot = FrameSlot::new();
        assert!(slot.take().is_none());
        assert!(!slot.publish(frame(0)));
        assert!(slot.publish(frame(1)));
        assert!(slot.publish(frame(2)));
        assert_eq!(slot.take().map(|f| f.seq), Some(2));
        assert!(slot.take().is_none());
        assert!(!slot.publish(frame(3)));
        assert_eq!((slot.published(), slot.dropped()), (4, 2));
    }

    #[test]
    fn take_timeout_wakes_on_publish_and_gives_up_when_nothing_comes() {
        let slot = Arc::new(FrameSlot::new());
        let started = Instant::now();
        assert!(slot.take_timeout(Duration::from_millis(30)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(30));
        let publisher = {
            let slot = Arc::clone(&slot);
            std::thread::Builder::new()
                .name("test-late-publisher".into())
                .spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    slot.publish(frame(9));
                })
                .unwrap()
        };
        assert_eq!(
            slot.take_timeout(Duration::from_secs(10)).map(|f| f.seq),
            Some(9)
        );
        publisher.join().unwrap();
    }

    #[test]
    fn concurrent_publishers_and_a_taker_account_for_every_frame() {
        const PER_THREAD: u64 = 20_000;
        let slot = Arc::new(FrameSlot::new());
        let publishers: Vec<_> = (0..3)
            .map(|t| {
                let slot = Arc::clone(&slot);
                std::thread::Builder::new()
                    .name(format!("test-publisher-{t}"))
                    .spawn(move || {
                        for i in 0..PER_THREAD {
                            slot.publish(frame(t * PER_THREAD + i));
                        }
                    })
                    .unwrap()
            })
            .collect();
        let taker = {
            let slot = Arc::clone(&slot);
            std::thread::Builder::new()
                .name("test-taker".into())
                .spawn(move || {
                    let mut taken = 0_u64;
                    let mut last_per_thread = [None::<u64>; 3];
                    for _ in 0..200_000 {
                        if let Some(f) = slot.take() {
                            taken += 1;
                            // Each publisher's frames come out in order (never an older one after a newer).
                            let t = (f.seq / PER_THREAD) as usize;
                            assert!(last_per_thread[t].is_none_or(|last| f.seq > last));
                            last_per_thread[t] = Some(f.seq);
                        }
                    }
                    taken
                })
                .unwrap()
        };
        for p in publishers {
            p.join().unwrap();
        }
        let mut taken = taker.join().unwrap();
        taken += u64::from(slot.take().is_some());
        // Every published frame was either taken once or counted as dropped.
        assert_eq!(slot.published(), 3 * PER_THREAD);
        assert_eq!(taken + slot.dropped(), slot.published());
    }
}
