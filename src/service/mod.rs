//! The inference service: everything between "a frame arrived" and "a result is ready", for every
//! stream of the process.
//!
//! - A **stream** is one producer of frames: the camera, a file or clip, a WebSocket connection, a file
//!   being analysed. [`Service::open_stream`] gives its producer a [`StreamHandle`] to publish into. Each
//!   stream has one latest-wins input slot (or, for `analyze`, a lossless one that makes the producer
//!   wait), its own tracker, and its results in capture order.
//! - A **subscription** ([`Subscription`]) is one consumer of a stream's results: the app's present
//!   stage, a WebSocket connection sending `pose_result`, the recorder. Each has its own bounded mailbox
//!   (capacity 1 keeps only the newest result; the app keeps two, `analyze` every one), so a slow
//!   consumer never slows inference or another consumer.
//! - **Workers** (`livepose-infer-N`, named threads owned by the service) each hold one [`Engine`]. They
//!   take jobs from one FIFO queue: the pose branch or the hand branch of a stream's frame. A stream has
//!   at most one job of each branch queued or running, so streams are served round-robin and a stream's
//!   branches see its frames in order; the pose branch of frame N+1 may run beside the hand branch of
//!   frame N on another worker.
//! - **Budget**: `threads` is every ONNX Runtime thread of the process. Each of the `workers` engines
//!   gets `threads / workers`; a worker that finds every other worker idle and nothing queued runs the
//!   pose model on a second session with all `threads` (the hand branch has nothing to do on most
//!   frames without a hand in view).
//! - **Live reconfiguration**: [`Service::reconfigure`] changes the models (each worker loads the new
//!   engine between two jobs, keeping the old one if that fails); [`StreamHandle::set_tracker_config`]
//!   changes a stream's tracking and smoothing from its next frame, without losing what it tracks.
//!
//! Results travel with the frame they were computed on ([`StreamResult`]), its capture time on the
//! process's clock, and its stage timings.

mod handle;
mod processor;
mod stream;
#[cfg(test)]
mod tests;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

pub use handle::{StreamHandle, Subscription};
pub use processor::{Processor, ProcessorFactory, engine_factory};
pub use stream::{
    Delivery, FrameError, PublishError, StreamId, StreamInfo, StreamKind, StreamResult, StreamSpec,
    StreamStats,
};

use crate::sync::lock;
use crate::vision::{EngineConfig, ModelError};
use stream::StreamShared;

/// How the service runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConfig {
    /// What every engine loads (`threads` and `solo_threads` are set from the budget below).
    pub engine: EngineConfig,
    /// ONNX Runtime threads of the whole process, over every worker.
    pub threads: usize,
    /// Inference workers, each with its own engine (at most `threads`).
    pub workers: usize,
}

impl ServiceConfig {
    /// `threads` split over `workers` (each at least one thread).
    pub fn new(engine: EngineConfig, threads: usize, workers: usize) -> Self {
        let threads = threads.max(1);
        Self {
            engine,
            threads,
            workers: workers.clamp(1, threads),
        }
    }

    /// The engine each worker loads.
    pub fn worker_engine(&self) -> EngineConfig {
        let per_worker = (self.threads / self.workers.max(1)).max(1);
        EngineConfig {
            threads: per_worker,
            solo_threads: if self.workers > 1 {
                self.threads
            } else {
                per_worker
            },
            ..self.engine.clone()
        }
    }
}

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot load the models: {0}")]
    Engine(#[from] ModelError),
    #[error("cannot start an inference worker: {0}")]
    Thread(std::io::Error),
}

/// Figures of the whole service.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ServiceStats {
    /// Engines loaded right now (one per worker; briefly one more while a worker swaps models).
    pub engines_loaded: usize,
    pub workers: usize,
    /// The ONNX Runtime thread budget.
    pub threads: usize,
    /// Workers running a job right now.
    pub busy_workers: usize,
    /// Jobs waiting for a worker.
    pub queued_jobs: usize,
    /// Engine (re)loads since start, over all workers.
    pub engine_loads: u64,
    /// The model now in use.
    pub model: String,
    pub hands: bool,
    /// Why the last reconfiguration could not be applied (workers keep their previous engine).
    pub reconfigure_error: Option<String>,
}

/// Which half of a frame a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Branch {
    Pose,
    Hands,
}

pub(crate) struct Job {
    pub stream: Arc<StreamShared>,
    pub branch: Branch,
}

#[derive(Default)]
struct JobQueue {
    ready: std::collections::VecDeque<Job>,
    stopping: bool,
}

/// State shared by the service handle, its workers and every stream.
pub(crate) struct ServiceShared {
    queue: Mutex<JobQueue>,
    work: Condvar,
    streams: Mutex<Vec<std::sync::Weak<StreamShared>>>,
    next_stream_id: AtomicU64,
    /// The engine settings in force, and their generation (bumped on every change).
    live: Mutex<(EngineConfig, u64)>,
    reconfigure_error: Mutex<Option<String>>,
    config: ServiceConfig,
    busy: AtomicUsize,
    engines_loaded: Arc<AtomicUsize>,
    engine_loads: AtomicU64,
    stopped: AtomicBool,
    /// Makes each worker's processor ([`engine_factory`], or a test's fake).
    factory: ProcessorFactory,
}

impl ServiceShared {
    /// Queues a job. A hand job goes to the front: it finishes a frame already in flight, which is
    /// sooner to a result than starting another stream's frame (and frees its stream for the next one).
    pub(crate) fn push_job(&self, job: Job) {
        let mut queue = lock(&self.queue);
        if queue.stopping {
            return;
        }
        match job.branch {
            Branch::Hands => queue.ready.push_front(job),
            Branch::Pose => queue.ready.push_back(job),
        }
        drop(queue);
        self.work.notify_one();
    }

    /// Blocks until a job is ready; `None` when the service stops or the engine settings are no longer
    /// those of `generation` (the worker reloads, then asks again).
    fn next_job_or_reload(&self, generation: u64) -> Option<Job> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.stopping {
                return None;
            }
            // A new engine first: no job runs on settings that were replaced before it was taken.
            if lock(&self.live).1 != generation {
                return None;
            }
            if let Some(job) = queue.ready.pop_front() {
                // Counted busy under the queue's lock, so `has_idle_worker` never sees the job nowhere.
                self.busy.fetch_add(1, Ordering::AcqRel);
                return Some(job);
            }
            queue = self
                .work
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// A worker is waiting for work (none queued, fewer busy than there are workers).
    pub(crate) fn has_idle_worker(&self) -> bool {
        let queue = lock(&self.queue);
        queue.ready.is_empty() && self.busy.load(Ordering::Acquire) < self.config.workers
    }

    pub(crate) fn queue_is_empty(&self) -> bool {
        lock(&self.queue).ready.is_empty()
    }

    /// True when no other worker is busy and nothing waits: the caller may use the whole budget.
    pub(crate) fn alone(&self) -> bool {
        self.busy.load(Ordering::Acquire) <= 1 && lock(&self.queue).ready.is_empty()
    }

    fn live(&self) -> (EngineConfig, u64) {
        lock(&self.live).clone()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// The running service. Dropping it stops and joins the workers; streams still open then refuse
/// frames.
pub struct Service {
    shared: Arc<ServiceShared>,
    workers: Vec<JoinHandle<()>>,
}

impl Service {
    /// Starts the workers; each loads its engine on its own thread (so ONNX Runtime's threads carry its
    /// name). Returns once every engine is loaded, or with the first error.
    pub fn start(config: ServiceConfig) -> Result<Service, ServiceError> {
        Self::start_with(config, engine_factory())
    }

    /// Like [`Service::start`], with the workers' processors made by `factory`.
    pub fn start_with(
        config: ServiceConfig,
        factory: ProcessorFactory,
    ) -> Result<Service, ServiceError> {
        let engine = config.worker_engine();
        let shared = Arc::new(ServiceShared {
            queue: Mutex::new(JobQueue::default()),
            work: Condvar::new(),
            streams: Mutex::new(Vec::new()),
            next_stream_id: AtomicU64::new(1),
            live: Mutex::new((engine.clone(), 0)),
            reconfigure_error: Mutex::new(None),
            busy: AtomicUsize::new(0),
            engines_loaded: Arc::new(AtomicUsize::new(0)),
            engine_loads: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            config,
            factory,
        });
        let workers = shared.config.workers;
        let (loaded_tx, loaded_rx) = crossbeam_channel::bounded::<Result<(), ModelError>>(workers);
        let mut service = Service {
            shared: Arc::clone(&shared),
            workers: Vec::with_capacity(workers),
        };
        for index in 0..workers {
            let shared = Arc::clone(&shared);
            let loaded_tx = loaded_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("livepose-infer-{index}"))
                .spawn(move || worker::run(&shared, &loaded_tx))
                .map_err(ServiceError::Thread)?;
            service.workers.push(thread);
        }
        drop(loaded_tx);
        for _ in 0..workers {
            match loaded_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ServiceError::Engine(e)),
                Err(_) => {
                    return Err(ServiceError::Thread(std::io::Error::other(
                        "an inference worker ended while loading its engine",
                    )));
                }
            }
        }
        Ok(service)
    }

    /// Opens a stream: its producer publishes into the handle; consumers subscribe to it.
    pub fn open_stream(&self, spec: StreamSpec) -> StreamHandle {
        let id = StreamId(self.shared.next_stream_id.fetch_add(1, Ordering::Relaxed));
        let stream = Arc::new(StreamShared::new(id, spec));
        let mut streams = lock(&self.shared.streams);
        streams.retain(|s| s.strong_count() > 0);
        streams.push(Arc::downgrade(&stream));
        drop(streams);
        StreamHandle::new(stream, Arc::clone(&self.shared))
    }

    /// Subscribes to the stream `id`, if it is open.
    pub fn subscribe(&self, id: StreamId, capacity: usize) -> Option<Subscription> {
        self.find(id).map(|s| Subscription::new(&s, capacity, None))
    }

    /// Like [`Service::subscribe`], calling `notify` after each result is delivered.
    pub fn subscribe_with_notify(
        &self,
        id: StreamId,
        capacity: usize,
        notify: crate::mailbox::Notify,
    ) -> Option<Subscription> {
        self.find(id)
            .map(|s| Subscription::new(&s, capacity, Some(notify)))
    }

    fn find(&self, id: StreamId) -> Option<Arc<StreamShared>> {
        lock(&self.shared.streams)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .find(|s| s.id == id && !s.is_closed())
    }

    /// The open streams, oldest first.
    pub fn streams(&self) -> Vec<StreamInfo> {
        lock(&self.shared.streams)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|s| !s.is_closed())
            .map(|s| s.info())
            .collect()
    }

    /// Changes the models for every stream. Each worker loads the new engine before its next job and
    /// keeps its previous one if that fails (see [`ServiceStats::reconfigure_error`]). Unchanged
    /// settings cost nothing.
    pub fn reconfigure(&self, engine: EngineConfig) {
        let wanted = EngineConfig {
            threads: 0,
            solo_threads: 0,
            ..engine
        };
        let budget = ServiceConfig {
            engine: wanted,
            ..self.shared.config.clone()
        }
        .worker_engine();
        let mut live = lock(&self.shared.live);
        if live.0 != budget {
            live.0 = budget;
            live.1 += 1;
            *lock(&self.shared.reconfigure_error) = None;
        }
        drop(live);
        // Idle workers sleep on the queue: wake them so they reload now rather than at the next frame.
        self.shared.work.notify_all();
    }

    pub fn stats(&self) -> ServiceStats {
        let (engine, _) = self.shared.live();
        ServiceStats {
            engines_loaded: self.shared.engines_loaded.load(Ordering::Acquire),
            workers: self.shared.config.workers,
            threads: self.shared.config.threads,
            busy_workers: self.shared.busy.load(Ordering::Acquire),
            queued_jobs: lock(&self.shared.queue).ready.len(),
            engine_loads: self.shared.engine_loads.load(Ordering::Relaxed),
            model: engine.pose_model.name().to_owned(),
            hands: engine.hands,
            reconfigure_error: lock(&self.shared.reconfigure_error).clone(),
        }
    }

    /// The engine settings in force.
    pub fn engine_config(&self) -> EngineConfig {
        self.shared.live().0
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        lock(&self.shared.queue).stopping = true;
        self.shared.work.notify_all();
        for worker in self.workers.drain(..) {
            crate::sync::join(worker);
        }
        lock(&self.shared.queue).ready.clear();
        for stream in lock(&self.shared.streams)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
        {
            stream.close_subscribers();
        }
    }
}
