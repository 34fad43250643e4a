//! The one bounded, drop-oldest buffer: [`Ring`] keeps the newest N items and counts the ones it pushed
//! out; [`Mailbox`] is a ring shared between threads (a lock, a condition variable, a waker). A mailbox
//! of capacity 1 is a latest-wins slot: a new item replaces the one nobody took yet. Nothing ever queues
//! without bound, and every item that was pushed out unread is counted.
//!
//! Mailboxes carry every subscription to a stream's results (`crate::service`): the app's present stage
//! and each WebSocket connection take the newest result (capacity 1); the recorder keeps a few. Rings,
//! used by one thread, keep a client's pending errors and the app's rolling figures.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Called after every push (from the pushing thread; must not block): wakes a thread that sleeps in
/// `poll(2)` rather than on the mailbox.
pub type Notify = Box<dyn Fn() + Send + Sync>;

/// The newest `capacity` items, oldest first: pushing into a full ring drops the oldest (counted).
#[derive(Clone, Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> Ring<T> {
    /// A ring keeping the newest `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(capacity.max(1)),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Adds `item`; when full, the oldest is dropped and counted. Returns true when one was.
    pub fn push(&mut self, item: T) -> bool {
        let full = self.items.len() == self.capacity;
        if full {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
        full
    }

    /// Empties the ring (nothing is counted as dropped).
    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn pop_front(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// The newest item, dropping (and counting) the older ones.
    pub fn take_newest(&mut self) -> Option<T> {
        let newest = self.items.pop_back();
        self.dropped += self.items.len() as u64;
        self.items.clear();
        newest
    }

    /// Every item, oldest first, leaving the ring empty.
    pub fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, T> {
        self.items.drain(..)
    }

    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.items.iter()
    }

    pub fn back(&self) -> Option<&T> {
        self.items.back()
    }

    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items pushed out (or skipped by [`Ring::take_newest`]) so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

pub struct Mailbox<T> {
    items: Mutex<Ring<T>>,
    capacity: usize,
    filled: Condvar,
    pushed: AtomicU64,
    superseded: AtomicU64,
    closed: AtomicBool,
    notify: Option<Notify>,
}

impl<T> std::fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("capacity", &self.capacity)
            .field("pushed", &self.pushed())
            .field("superseded", &self.superseded())
            .finish_non_exhaustive()
    }
}

impl<T> Mailbox<T> {
    /// A mailbox keeping the newest `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(Ring::new(capacity)),
            capacity: capacity.max(1),
            filled: Condvar::new(),
            pushed: AtomicU64::new(0),
            superseded: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            notify: None,
        }
    }

    /// Like [`Mailbox::new`], calling `notify` after every push.
    pub fn with_notify(capacity: usize, notify: Notify) -> Self {
        Self {
            notify: Some(notify),
            ..Self::new(capacity)
        }
    }

    /// Adds `item`; when full, the oldest item is dropped and counted. Returns true when one was.
    pub fn push(&self, item: T) -> bool {
        let replaced = lock(&self.items).push(item);
        self.pushed.fetch_add(1, Ordering::Relaxed);
        if replaced {
            self.superseded.fetch_add(1, Ordering::Relaxed);
        }
        self.filled.notify_all();
        if let Some(notify) = &self.notify {
            notify();
        }
        replaced
    }

    /// The oldest item, if any.
    pub fn pop(&self) -> Option<T> {
        lock(&self.items).pop_front()
    }

    /// The newest item, dropping (and counting) any older ones still waiting.
    pub fn take_newest(&self) -> Option<T> {
        let mut items = lock(&self.items);
        let before = items.dropped();
        let newest = items.take_newest();
        let older = items.dropped() - before;
        if older > 0 {
            self.superseded.fetch_add(older, Ordering::Relaxed);
        }
        newest
    }

    /// Everything waiting, oldest first.
    pub fn drain(&self) -> Vec<T> {
        lock(&self.items).drain().collect()
    }

    /// The oldest item, waiting up to `timeout` for one (no spinning). `None` on timeout or when closed
    /// and empty.
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut items = lock(&self.items);
        loop {
            if let Some(item) = items.pop_front() {
                return Some(item);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.is_closed() {
                return None;
            }
            items = self
                .filled
                .wait_timeout(items, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Items waiting now.
    pub fn len(&self) -> usize {
        lock(&self.items).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items pushed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Items dropped unread (pushed out by newer ones, or skipped by [`Mailbox::take_newest`]).
    pub fn superseded(&self) -> u64 {
        self.superseded.load(Ordering::Relaxed)
    }

    /// Marks the mailbox closed (the producer is gone) and wakes waiters; items already in it stay.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.filled.notify_all();
        if let Some(notify) = &self.notify {
            notify();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn capacity_one_is_latest_wins_and_counts_what_it_drops() {
        let slot = Mailbox::new(1);
        assert!(slot.pop().is_none());
        assert!(!slot.push(0));
        assert!(slot.push(1));
        assert!(slot.push(2));
        assert_eq!(slot.pop(), Some(2));
        assert!(slot.pop().is_none());
        assert_eq!((slot.pushed(), slot.superseded()), (3, 2));
    }

    #[test]
    fn a_larger_mailbox_keeps_the_newest_in_order() {
        let mailbox = Mailbox::new(3);
        for i in 0..5 {
            mailbox.push(i);
        }
        assert_eq!(mailbox.drain(), vec![2, 3, 4]);
        for i in 5..8 {
            mailbox.push(i);
        }
        assert_eq!(mailbox.take_newest(), Some(7));
        assert_eq!(mailbox.superseded(), 4);
        assert!(mailbox.is_empty());
    }

    #[test]
    fn pop_timeout_wakes_on_push_and_on_close() {
        let mailbox = Arc::new(Mailbox::new(1));
        let started = Instant::now();
        assert!(mailbox.pop_timeout(Duration::from_millis(30)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(30));
        let pusher = {
            let mailbox = Arc::clone(&mailbox);
            std::thread::Builder::new()
                .name("test-pusher".into())
                .spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    mailbox.push(9);
                    std::thread::sleep(Duration::from_millis(20));
                    mailbox.close();
                })
                .unwrap()
        };
        assert_eq!(mailbox.pop_timeout(Duration::from_secs(10)), Some(9));
        let started = Instant::now();
        assert!(mailbox.pop_timeout(Duration::from_secs(10)).is_none());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "close wakes the waiter"
        );
        pusher.join().unwrap();
    }

    #[test]
    fn notify_runs_after_every_push() {
        let count = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&count);
        let mailbox = Mailbox::with_notify(
            1,
            Box::new(move || {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        );
        mailbox.push(1);
        mailbox.push(2);
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn concurrent_pushers_and_a_taker_account_for_every_item() {
        const PER_THREAD: u64 = 20_000;
        let slot = Arc::new(Mailbox::new(1));
        let pushers: Vec<_> = (0..3)
            .map(|t| {
                let slot = Arc::clone(&slot);
                std::thread::Builder::new()
                    .name(format!("test-pusher-{t}"))
                    .spawn(move || {
                        for i in 0..PER_THREAD {
                            slot.push(t * PER_THREAD + i);
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
                        if let Some(item) = slot.pop() {
                            taken += 1;
                            // Each pusher's items come out in order (never an older one after a newer).
                            let t = (item / PER_THREAD) as usize;
                            assert!(last_per_thread[t].is_none_or(|last| item > last));
                            last_per_thread[t] = Some(item);
                        }
                    }
                    taken
                })
                .unwrap()
        };
        for p in pushers {
            p.join().unwrap();
        }
        let taken = taker.join().unwrap() + u64::from(slot.pop().is_some());
        assert_eq!(slot.pushed(), 3 * PER_THREAD);
        assert_eq!(taken + slot.superseded(), slot.pushed());
    }
}
