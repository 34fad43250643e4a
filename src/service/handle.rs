//! The two ends of a stream that other modules hold: the producer's [`StreamHandle`] (publish frames,
//! change tracking, wait until idle; dropping it closes the stream) and a consumer's [`Subscription`]
//! (the stream's results in a bounded mailbox; dropping it unsubscribes).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::ServiceShared;
use super::stream::{
    Delivery, PROGRESS_POLL, PublishError, StreamId, StreamResult, StreamShared, StreamStats,
};
use crate::frame::{FrameInput, FrameMeta, Payload};
use crate::mailbox::{Mailbox, Notify};
use crate::sync::lock;
use crate::vision::{FrameResult, PoseModel, RgbImage, TrackerConfig};

/// A producer's end of a stream. Dropping it closes the stream: frames still in flight finish and are
/// delivered; nothing new is accepted.
pub struct StreamHandle {
    stream: Arc<StreamShared>,
    service: Arc<ServiceShared>,
}

impl std::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("id", &self.stream.id)
            .field("name", &self.stream.name)
            .finish_non_exhaustive()
    }
}

impl StreamHandle {
    pub(crate) fn new(stream: Arc<StreamShared>, service: Arc<ServiceShared>) -> Self {
        Self { stream, service }
    }

    pub fn id(&self) -> StreamId {
        self.stream.id
    }

    pub fn name(&self) -> &str {
        &self.stream.name
    }

    /// Hands a frame to inference. Latest wins: returns `Ok(true)` when it replaced a frame that was
    /// still waiting. Lossless: waits until the previous frame was taken.
    pub fn publish(&self, frame: FrameInput) -> Result<bool, PublishError> {
        if self.service.is_stopped() {
            return Err(PublishError::ServiceStopped);
        }
        let mut state = lock(&self.stream.state);
        state.check_timestamp(frame.meta.timestamp_us)?;
        if self.stream.delivery == Delivery::Lossless {
            while state.input.is_some() && !state.closed && !self.service.is_stopped() {
                state = self.stream.wait_progress(state, PROGRESS_POLL);
            }
        }
        if state.closed {
            return Err(PublishError::Closed);
        }
        if self.service.is_stopped() {
            return Err(PublishError::ServiceStopped);
        }
        state.last_timestamp_us = Some(frame.meta.timestamp_us);
        let replaced = state.input.replace((frame, Instant::now())).is_some();
        self.stream
            .counters
            .received
            .fetch_add(1, Ordering::Relaxed);
        if replaced {
            self.stream.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.stream.try_start_pose(&mut state, &self.service, false);
        Ok(replaced)
    }

    /// Delivers a result made earlier (a recorded session's, replayed as it was recorded) to the
    /// subscribers, with its frame, without tracking it again. For a stream that only replays: frames
    /// published with [`Self::publish`] and still in flight are delivered first, in order.
    pub fn publish_recorded(
        &self,
        meta: FrameMeta,
        payload: Payload,
        image: Option<Arc<RgbImage>>,
        model: PoseModel,
        result: FrameResult,
    ) -> Result<(), PublishError> {
        if self.service.is_stopped() {
            return Err(PublishError::ServiceStopped);
        }
        let mut state = lock(&self.stream.state);
        while !state.in_flight.is_empty() || state.input.is_some() {
            if state.closed || self.service.is_stopped() {
                break;
            }
            state = self.stream.wait_progress(state, PROGRESS_POLL);
        }
        if state.closed {
            return Err(PublishError::Closed);
        }
        state.check_timestamp(meta.timestamp_us)?;
        state.last_timestamp_us = Some(meta.timestamp_us);
        drop(state);
        let now = Instant::now();
        let done = StreamResult {
            stream: self.stream.id,
            meta,
            received_at: now,
            started_at: now,
            finished_at: now,
            decode_ms: 0.0,
            image,
            payload,
            model,
            outcome: Ok(Arc::new(result)),
        };
        self.stream
            .counters
            .received
            .fetch_add(1, Ordering::Relaxed);
        self.stream.counters.results.fetch_add(1, Ordering::Relaxed);
        for mailbox in lock(&self.stream.subscribers).iter() {
            mailbox.push(done.clone());
        }
        Ok(())
    }

    /// A subscription to this stream's results, keeping the newest `capacity`.
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        Subscription::new(&self.stream, capacity, None)
    }

    /// Like [`StreamHandle::subscribe`], calling `notify` after each delivery.
    pub fn subscribe_with_notify(&self, capacity: usize, notify: Notify) -> Subscription {
        Subscription::new(&self.stream, capacity, Some(notify))
    }

    /// Changes tracking and smoothing from the next frame taken on. What is tracked is kept, unless
    /// tracking itself is switched off.
    pub fn set_tracker_config(&self, config: TrackerConfig) {
        lock(&self.stream.state).config = config;
    }

    pub fn tracker_config(&self) -> TrackerConfig {
        lock(&self.stream.state).config
    }

    pub fn stats(&self) -> StreamStats {
        self.stream.stats()
    }

    /// Waits until no frame is waiting or in flight (every published frame has its result), up to
    /// `timeout`. Returns whether it got there.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.stream.state);
        loop {
            if state.input.is_none() && state.in_flight.is_empty() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.service.is_stopped() {
                return false;
            }
            state = self.stream.wait_progress(state, left);
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        let mut state = lock(&self.stream.state);
        state.closed = true;
        if state.input.take().is_some() {
            self.stream.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let idle = state.in_flight.is_empty();
        drop(state);
        self.stream.progress.notify_all();
        if idle {
            self.stream.close_subscribers();
        }
    }
}

/// A consumer's end: the stream's results, newest kept. Dropping it unsubscribes.
pub struct Subscription {
    mailbox: Arc<Mailbox<StreamResult>>,
    stream: Arc<StreamShared>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("stream", &self.stream.id)
            .field("mailbox", &self.mailbox)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(stream: &Arc<StreamShared>, capacity: usize, notify: Option<Notify>) -> Self {
        let mailbox = Arc::new(match notify {
            Some(notify) => Mailbox::with_notify(capacity, notify),
            None => Mailbox::new(capacity),
        });
        {
            let state = lock(&stream.state);
            if state.closed && state.in_flight.is_empty() {
                mailbox.close();
            }
            lock(&stream.subscribers).push(Arc::clone(&mailbox));
        }
        Self {
            mailbox,
            stream: Arc::clone(stream),
        }
    }

    pub fn stream(&self) -> StreamId {
        self.stream.id
    }

    /// The stream's counters.
    pub fn stream_stats(&self) -> StreamStats {
        self.stream.stats()
    }

    /// The newest result (older ones still waiting are dropped and counted).
    pub fn take_newest(&self) -> Option<StreamResult> {
        self.mailbox.take_newest()
    }

    /// Every result waiting, oldest first.
    pub fn drain(&self) -> Vec<StreamResult> {
        self.mailbox.drain()
    }

    /// The oldest result waiting.
    pub fn try_recv(&self) -> Option<StreamResult> {
        self.mailbox.pop()
    }

    /// The oldest result, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<StreamResult> {
        self.mailbox.pop_timeout(timeout)
    }

    /// Results delivered to this subscription so far.
    pub fn delivered(&self) -> u64 {
        self.mailbox.pushed()
    }

    /// Results replaced by newer ones before they were taken.
    pub fn superseded(&self) -> u64 {
        self.mailbox.superseded()
    }

    /// Results waiting to be taken (at most the capacity).
    pub fn pending(&self) -> usize {
        self.mailbox.len()
    }

    /// The stream closed and every result was delivered.
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.stream.subscribers).retain(|m| !Arc::ptr_eq(m, &self.mailbox));
    }
}
