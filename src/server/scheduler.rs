//! Fair inference for many clients. Each client has a latest-wins slot of one encoded frame, its own
//! tracker and an outbox. A client with a frame waiting is in the ready queue at most once; workers
//! take clients from its front and put them back at its end if another frame arrived meanwhile, so
//! clients are served round-robin, each has at most one frame in flight (its tracker sees its frames
//! in order), and the queue never holds more entries than there are clients.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::wire::{self, ClientCounters, ErrorCode, FrameMessage, ServerTimes};
use super::{ServerShared, TappedResult, lock};
use crate::frame::{Frame, timestamp_us};
use crate::vision::{Engine, Tracker, TrackerConfig};

/// Errors kept for a client that is not reading; older ones are dropped beyond this.
const MAX_QUEUED_ERRORS: usize = 8;

/// A frame accepted from a client, waiting for inference.
pub(crate) struct Pending {
    pub message: FrameMessage,
    pub timestamp_us: i64,
    pub received_at: Instant,
}

#[derive(Default)]
struct Slot {
    pending: Option<Pending>,
    /// In the ready queue or being processed.
    scheduled: bool,
}

/// What the connection thread still has to send.
#[derive(Default)]
pub(crate) struct Outbox {
    pub result: Option<String>,
    pub errors: VecDeque<String>,
}

/// One connected client, shared by its connection thread and the workers.
pub(crate) struct ClientShared {
    pub id: u64,
    pub peer: SocketAddr,
    slot: Mutex<Slot>,
    tracker: Mutex<Tracker>,
    pub outbox: Mutex<Outbox>,
    /// Written (one byte) when the outbox fills; the connection thread polls the other end.
    waker: UnixStream,
    pub closed: AtomicBool,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub rejected: AtomicU64,
    pub processed: AtomicU64,
    pub results_skipped: AtomicU64,
}

impl ClientShared {
    pub fn new(id: u64, peer: SocketAddr, tracker: TrackerConfig, waker: UnixStream) -> Self {
        Self {
            id,
            peer,
            slot: Mutex::new(Slot::default()),
            tracker: Mutex::new(Tracker::new(tracker)),
            outbox: Mutex::new(Outbox::default()),
            waker,
            closed: AtomicBool::new(false),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            results_skipped: AtomicU64::new(0),
        }
    }

    fn wake(&self) {
        // A full pipe means a wake-up is already pending.
        let _ = (&self.waker).write(&[1]);
    }

    /// Queues an `error` message (and counts the frame as rejected when it was one).
    pub fn reject(&self, code: ErrorCode, message: &str, sequence: Option<u64>) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.push_error(wire::error_json(code, message, sequence));
    }

    pub fn push_error(&self, json: String) {
        {
            let mut outbox = lock(&self.outbox);
            if outbox.errors.len() == MAX_QUEUED_ERRORS {
                outbox.errors.pop_front();
            }
            outbox.errors.push_back(json);
        }
        self.wake();
    }

    fn deliver_result(&self, json: String) {
        {
            let mut outbox = lock(&self.outbox);
            if outbox.result.replace(json).is_some() {
                self.results_skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.wake();
    }

    fn counters(&self) -> ClientCounters {
        ClientCounters {
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            results_skipped: self.results_skipped.load(Ordering::Relaxed),
        }
    }

    fn stats(&self) -> ClientStats {
        let c = self.counters();
        ClientStats {
            id: self.id,
            peer: self.peer.to_string(),
            received: c.received,
            processed: self.processed.load(Ordering::Relaxed),
            dropped: c.dropped,
            rejected: c.rejected,
            results_skipped: c.results_skipped,
        }
    }
}

/// Counters of one client, for the UI and `serve`'s log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub id: u64,
    pub peer: String,
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub results_skipped: u64,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Arc<ClientShared>>,
    stopping: bool,
}

/// The ready queue and the registry of connected clients.
#[derive(Default)]
pub(crate) struct Scheduler {
    queue: Mutex<Queue>,
    work: Condvar,
    clients: Mutex<Vec<Arc<ClientShared>>>,
}

impl Scheduler {
    /// Registers a client unless `max_clients` are already connected.
    pub fn register(&self, client: Arc<ClientShared>, max_clients: usize) -> bool {
        let mut clients = lock(&self.clients);
        if clients.len() >= max_clients {
            return false;
        }
        clients.push(client);
        true
    }

    pub fn unregister(&self, client: &ClientShared) {
        client.closed.store(true, Ordering::Relaxed);
        lock(&self.clients).retain(|c| c.id != client.id);
    }

    pub fn client_stats(&self) -> Vec<ClientStats> {
        lock(&self.clients).iter().map(|c| c.stats()).collect()
    }

    /// Puts a frame in the client's slot (overwriting and counting an untaken one) and queues the
    /// client if it is not queued or being processed.
    pub fn publish(&self, client: &Arc<ClientShared>, pending: Pending) {
        client.received.fetch_add(1, Ordering::Relaxed);
        let enqueue = {
            let mut slot = lock(&client.slot);
            if slot.pending.replace(pending).is_some() {
                client.dropped.fetch_add(1, Ordering::Relaxed);
            }
            !std::mem::replace(&mut slot.scheduled, true)
        };
        if enqueue {
            lock(&self.queue).ready.push_back(Arc::clone(client));
            self.work.notify_one();
        }
    }

    /// Blocks until a client has a frame; `None` when the server stops.
    fn next_client(&self) -> Option<Arc<ClientShared>> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.stopping {
                return None;
            }
            if let Some(client) = queue.ready.pop_front() {
                return Some(client);
            }
            queue = self
                .work
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn take_pending(client: &ClientShared) -> Option<Pending> {
        lock(&client.slot).pending.take()
    }

    /// After a frame: back to the end of the queue if another frame came, else off the queue.
    fn finish(&self, client: &Arc<ClientShared>) {
        let requeue = {
            let mut slot = lock(&client.slot);
            let again = slot.pending.is_some() && !client.closed.load(Ordering::Relaxed);
            slot.scheduled = again;
            again
        };
        if requeue {
            lock(&self.queue).ready.push_back(Arc::clone(client));
            self.work.notify_one();
        }
    }

    pub fn stop(&self) {
        lock(&self.queue).stopping = true;
        self.work.notify_all();
    }
}

/// The client whose results feed the tap: the chosen one if connected, else the most recent.
pub(crate) fn selected_client(
    shared: &ServerShared,
    ids: impl Iterator<Item = u64> + Clone,
) -> Option<u64> {
    let chosen = shared.selected.load(Ordering::Relaxed);
    if chosen != 0 && ids.clone().any(|id| id == chosen) {
        return Some(chosen);
    }
    ids.max()
}

/// An inference worker: until the server stops, take the next ready client and process its frame.
pub(crate) fn run_worker(shared: &ServerShared, mut engine: Engine) {
    let mut generation = 0;
    let mut tracker_config = shared.live_settings().tracker;
    while let Some(client) = shared.scheduler.next_client() {
        let live_generation = shared.live_generation.load(Ordering::Acquire);
        if live_generation != generation {
            generation = live_generation;
            let live = shared.live_settings();
            tracker_config = live.tracker;
            if live.engine != *engine.config() {
                match Engine::new(live.engine) {
                    Ok(new) => engine = new,
                    Err(e) => {
                        *lock(&shared.reconfigure_error) =
                            Some(format!("cannot load the new models: {e}"));
                    }
                }
            }
        }
        if !client.closed.load(Ordering::Relaxed)
            && let Some(pending) = Scheduler::take_pending(&client)
        {
            process_frame(shared, &mut engine, tracker_config, &client, pending);
        }
        shared.scheduler.finish(&client);
    }
}

fn process_frame(
    shared: &ServerShared,
    engine: &mut Engine,
    tracker_config: TrackerConfig,
    client: &ClientShared,
    pending: Pending,
) {
    let started = Instant::now();
    let sequence = pending.message.sequence;
    let image = match crate::vision::image::rgb_image_from_bytes(&pending.message.image) {
        Ok(image) => image,
        Err(e) => {
            client.reject(ErrorCode::BadImage, &e.to_string(), Some(sequence));
            return;
        }
    };
    let decoded = Instant::now();
    let result = {
        let mut tracker = lock(&client.tracker);
        if tracker.config != tracker_config {
            tracker.set_config(tracker_config);
        }
        engine.process(&image, pending.timestamp_us, &mut tracker)
    };
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            client.reject(ErrorCode::InferenceFailed, &e.to_string(), Some(sequence));
            return;
        }
    };
    client.processed.fetch_add(1, Ordering::Relaxed);
    let times = ServerTimes {
        received_ms: shared.ms_since_start(pending.received_at),
        started_ms: shared.ms_since_start(started),
        sent_ms: shared.ms_since_start(Instant::now()),
        decode_ms: decoded.saturating_duration_since(started).as_secs_f64() * 1e3,
    };
    let model = engine.config().pose_model.name();
    match wire::pose_result_json(&pending.message, &result, model, times, client.counters()) {
        Ok(json) => client.deliver_result(json),
        Err(e) => client.reject(ErrorCode::InferenceFailed, &e.to_string(), Some(sequence)),
    }
    let tap = lock(&shared.tap).clone();
    if let Some(tap) = tap
        && selected_client(shared, lock(&shared.scheduler.clients).iter().map(|c| c.id))
            == Some(client.id)
    {
        tap(TappedResult {
            client_id: client.id,
            frame: Frame {
                seq: sequence,
                captured_at: pending.received_at,
                timestamp_us: timestamp_us(pending.received_at),
                image: Arc::new(image),
            },
            result,
        });
    }
}
