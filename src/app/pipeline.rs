//! Capture and inference stages.
//!
//! - Capture: the active source (camera, or demo clip as fallback) publishes into one latest-wins
//!   [`FrameSlot`]; switching source is a [`SwitchSource`] message.
//! - Infer: when no inference is in flight, the newest frame is taken from the slot and the processor
//!   (engine + tracker) is *moved* into a task on Bevy's async compute pool, so one frame is in flight by
//!   construction; when the task finishes, the processor comes back with the result, which is stored with
//!   the frame it was computed on. The processor is loaded (and reloaded when the model or hands setting
//!   changes) on the same pool, so the window never waits for model files.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};

use crate::app::{AppSettings, AppSystems, SourceChoice};
use crate::frame::Frame;
use crate::frame_slot::FrameSlot;
use crate::source::camera::{list_cameras, spawn_camera};
use crate::source::demo::{bundled_demo_clip, spawn_demo};
use crate::source::{SourceHandle, SourceStatus};
use crate::vision::timings::StageTimings;
use crate::vision::{Engine, EngineConfig, FrameResult, Tracker, TrackerConfig, VisionError};

/// Turns frames into results. The real one is [`EngineProcessor`]; tests use a fake.
pub trait Processor: Send + Sync + 'static {
    fn process(&mut self, frame: &Frame) -> Result<FrameResult, VisionError>;
    /// Forget tracking state (new source).
    fn reset(&mut self);
    fn set_tracker_config(&mut self, config: TrackerConfig);
}

/// The vision engine with one tracker: the app's single stream.
pub struct EngineProcessor {
    pub engine: Engine,
    pub tracker: Tracker,
}

impl Processor for EngineProcessor {
    fn process(&mut self, frame: &Frame) -> Result<FrameResult, VisionError> {
        self.engine
            .process(&frame.image, frame.timestamp_us, &mut self.tracker)
    }

    fn reset(&mut self) {
        self.tracker.reset();
    }

    fn set_tracker_config(&mut self, config: TrackerConfig) {
        if self.tracker.config != config {
            self.tracker.set_config(config);
        }
    }
}

/// The slot every source publishes into.
#[derive(Resource, Clone)]
pub struct SharedSlot(pub Arc<FrameSlot>);

/// A result with the frame it was computed on.
#[derive(Clone, Debug)]
pub struct TimedResult {
    pub result: FrameResult,
    pub frame: Frame,
    /// When inference finished it.
    pub arrived: Instant,
}

/// The last two results (for interpolation) and counters.
#[derive(Resource, Default)]
pub struct Results {
    pub previous: Option<TimedResult>,
    pub newest: Option<TimedResult>,
    pub received: u64,
    /// When each result collected this update finished, with its timings (oldest first).
    pub fresh: Vec<(Instant, StageTimings)>,
}

impl Results {
    pub fn push(&mut self, result: TimedResult) {
        self.fresh.push((result.arrived, result.result.timings));
        self.previous = self.newest.take();
        self.newest = Some(result);
        self.received += 1;
    }

    /// Whether a result arrived this update.
    pub fn changed(&self) -> bool {
        !self.fresh.is_empty()
    }
}

/// A frame the task finished, waiting for the main thread.
struct Finished {
    frame: Frame,
    result: Result<FrameResult, VisionError>,
    at: Instant,
}

/// Finished frames kept for the main thread; older ones are superseded when it falls behind.
const MAILBOX_CAPACITY: usize = 4;
/// How long the idle task waits for a frame before checking whether it must stop.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// What the main thread and the running inference task share.
#[derive(Default)]
struct Mailbox {
    finished: Mutex<VecDeque<Finished>>,
    /// Hand the processor back after the current frame (reload, shutdown).
    give_back: AtomicBool,
    /// Forget tracking state before the next frame (the source changed).
    reset: AtomicBool,
    /// A new tracker configuration to apply before the next frame.
    tracker_config: Mutex<Option<TrackerConfig>>,
    dispatched: AtomicU64,
    superseded: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Mailbox {
    fn deliver(&self, finished: Finished) {
        let mut queue = lock(&self.finished);
        if queue.len() == MAILBOX_CAPACITY {
            queue.pop_front();
            self.superseded.fetch_add(1, Ordering::Relaxed);
        }
        queue.push_back(finished);
    }
}

/// The inference task: one frame at a time, each started as soon as the previous one is finished,
/// until asked to hand the processor back. Waiting for a frame blocks on the slot (no spinning).
fn run_inference(
    mut processor: Box<dyn Processor>,
    slot: &FrameSlot,
    mailbox: &Mailbox,
) -> Box<dyn Processor> {
    while !mailbox.give_back.load(Ordering::Acquire) {
        let Some(frame) = slot.take_timeout(IDLE_WAIT) else {
            continue;
        };
        if mailbox.reset.swap(false, Ordering::AcqRel) {
            processor.reset();
        }
        if let Some(config) = lock(&mailbox.tracker_config).take() {
            processor.set_tracker_config(config);
        }
        mailbox.dispatched.fetch_add(1, Ordering::Relaxed);
        let result = processor.process(&frame);
        mailbox.deliver(Finished {
            frame,
            result,
            at: Instant::now(),
        });
    }
    processor
}

/// Inference state. The processor (engine + tracker) is here when idle and is *moved* into the task
/// while it runs, so at most one frame is ever in flight; it comes back when recalled.
#[derive(Resource)]
pub struct Inference {
    processor: Option<Box<dyn Processor>>,
    task: Option<Task<Box<dyn Processor>>>,
    mailbox: Arc<Mailbox>,
    /// The last error (a bad frame, a model problem), shown in the panel.
    pub error: Option<String>,
}

impl Default for Inference {
    fn default() -> Self {
        Self {
            processor: None,
            task: None,
            mailbox: Arc::new(Mailbox::default()),
            error: None,
        }
    }
}

impl Drop for Inference {
    fn drop(&mut self) {
        // End the task with the app, and wait for its frame to finish: the ONNX Runtime must not be
        // torn down by the process exiting while a model runs.
        self.mailbox.give_back.store(true, Ordering::Release);
        if let Some(task) = self.task.take() {
            drop(bevy::tasks::block_on(task));
        }
    }
}

impl Inference {
    pub fn install(&mut self, processor: Box<dyn Processor>) {
        self.processor = Some(processor);
    }

    /// The task is running (it holds the processor).
    pub fn busy(&self) -> bool {
        self.task.is_some()
    }

    /// A processor exists (idle here, or running in the task).
    pub fn ready(&self) -> bool {
        self.processor.is_some() || self.task.is_some()
    }

    /// Ask the task to hand the processor back after its current frame.
    pub fn recall(&self) {
        self.mailbox.give_back.store(true, Ordering::Release);
    }

    /// Forget tracking state before the next frame (the source changed).
    pub fn request_reset(&self) {
        self.mailbox.reset.store(true, Ordering::Release);
    }

    /// Apply a tracker configuration (smoothing) from the next frame on.
    pub fn set_tracker_config(&self, config: TrackerConfig) {
        *lock(&self.mailbox.tracker_config) = Some(config);
    }

    /// Frames taken from the slot for inference.
    pub fn frames_dispatched(&self) -> u64 {
        self.mailbox.dispatched.load(Ordering::Relaxed)
    }

    /// Results finished while the main thread was too slow to collect them.
    pub fn results_superseded(&self) -> u64 {
        self.mailbox.superseded.load(Ordering::Relaxed)
    }
}

/// Collects the results finished since the last update, and the processor when the task ended.
pub fn collect_inference(mut inference: ResMut<Inference>, mut results: ResMut<Results>) {
    results.fresh.clear();
    let finished: Vec<Finished> = lock(&inference.mailbox.finished).drain(..).collect();
    for done in finished {
        match done.result {
            Ok(result) => {
                inference.error = None;
                results.push(TimedResult {
                    result,
                    frame: done.frame,
                    arrived: done.at,
                });
            }
            Err(e) => {
                warn!("inference: {e}");
                inference.error = Some(e.to_string());
            }
        }
    }
    let Some(task) = inference.task.as_mut() else {
        return;
    };
    let Some(processor) = check_ready(task) else {
        return;
    };
    inference.task = None;
    inference.processor = Some(processor);
    inference.mailbox.give_back.store(false, Ordering::Release);
}

/// Starts the inference task when a processor is idle here. The task then runs frame after frame on
/// its own, so the inference rate does not depend on the render rate.
pub fn dispatch_inference(mut inference: ResMut<Inference>, slot: Res<SharedSlot>) {
    if inference.task.is_some() {
        return;
    }
    let Some(processor) = inference.processor.take() else {
        return;
    };
    let slot = Arc::clone(&slot.0);
    let mailbox = Arc::clone(&inference.mailbox);
    inference.task = Some(
        AsyncComputeTaskPool::get().spawn(async move { run_inference(processor, &slot, &mailbox) }),
    );
}

/// Bevy's task pools with one more async compute thread than Bevy's default: the inference task holds
/// one for as long as it runs, and Bevy itself needs that pool too (pipeline compilation, screenshots).
pub fn task_pool_plugin() -> bevy::app::TaskPoolPlugin {
    let mut options = bevy::app::TaskPoolOptions::default();
    let cores = bevy::tasks::available_parallelism();
    options.async_compute.min_threads = (cores / 4).clamp(1, 4) + 1;
    options.async_compute.max_threads = options
        .async_compute
        .max_threads
        .max(options.async_compute.min_threads);
    bevy::app::TaskPoolPlugin {
        task_pool_options: options,
    }
}

/// The collect/dispatch cycle alone (used by the app, and by tests with a fake processor). Systems
/// that need the processor back (engine reload) go in [`InferenceCycle::Manage`].
pub fn inference_cycle_plugin(app: &mut App) {
    app.init_resource::<Inference>()
        .init_resource::<Results>()
        .configure_sets(
            Update,
            (
                InferenceCycle::Collect,
                InferenceCycle::Manage,
                InferenceCycle::Dispatch,
            )
                .chain()
                .in_set(AppSystems::Infer),
        )
        .add_systems(
            Update,
            (
                collect_inference.in_set(InferenceCycle::Collect),
                dispatch_inference.in_set(InferenceCycle::Dispatch),
            ),
        );
}

/// The order inside [`AppSystems::Infer`].
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InferenceCycle {
    Collect,
    Manage,
    Dispatch,
}

/// Asks the app to change source.
#[derive(Message, Clone, Debug)]
pub struct SwitchSource(pub SourceChoice);

/// The running source and what the user should know about it.
#[derive(Resource, Default)]
pub struct ActiveSource {
    pub handle: Option<SourceHandle>,
    /// What was asked for (the browser source has no handle: the server feeds results directly).
    pub choice: Option<SourceChoice>,
    /// E.g. "no camera found: playing the demo clip".
    pub note: Option<String>,
}

impl ActiveSource {
    pub fn status(&self) -> SourceStatus {
        self.handle
            .as_ref()
            .map(SourceHandle::status)
            .unwrap_or_default()
    }
}

fn start_source(
    choice: &SourceChoice,
    fps: f32,
    slot: &Arc<FrameSlot>,
) -> (Option<SourceHandle>, Option<String>) {
    let demo = |note: String| match spawn_demo(&bundled_demo_clip(), fps, Arc::clone(slot)) {
        Ok(handle) => (Some(handle), Some(note)),
        Err(e) => (None, Some(format!("{note}; the demo clip failed too: {e}"))),
    };
    match choice {
        SourceChoice::Auto(request) => match list_cameras() {
            Ok(cameras) if !cameras.is_empty() => match spawn_camera(*request, Arc::clone(slot)) {
                Ok(handle) => (Some(handle), None),
                Err(e) => demo(format!("camera unavailable ({e}): playing the demo clip")),
            },
            Ok(_) => demo("no camera found: playing the demo clip".into()),
            Err(e) => demo(format!("cannot list cameras ({e}): playing the demo clip")),
        },
        SourceChoice::Camera(request) => match spawn_camera(*request, Arc::clone(slot)) {
            Ok(handle) => (Some(handle), None),
            Err(e) => demo(format!(
                "camera {} unavailable ({e}): playing the demo clip",
                request.index
            )),
        },
        SourceChoice::File(path) => match spawn_demo(path, fps, Arc::clone(slot)) {
            Ok(handle) => (Some(handle), None),
            Err(e) => demo(format!("{e}: playing the demo clip")),
        },
        SourceChoice::Browser => (None, None),
    }
}

fn switch_source(
    mut requests: MessageReader<SwitchSource>,
    mut active: ResMut<ActiveSource>,
    inference: Res<Inference>,
    settings: Res<AppSettings>,
    slot: Res<SharedSlot>,
) {
    let Some(SwitchSource(choice)) = requests.read().last().cloned() else {
        return;
    };
    // Stop the old source first so two never publish at once.
    active.handle = None;
    let (handle, note) = start_source(&choice, settings.file_fps, &slot.0);
    if let Some(note) = &note {
        warn!("{note}");
    }
    active.handle = handle;
    active.note = note;
    active.choice = Some(choice);
    inference.request_reset();
}

/// The engine being loaded, and the configuration it was loaded with.
#[derive(Resource, Default)]
struct EngineLoader {
    task: Option<Task<Result<EngineProcessor, String>>>,
    loaded: Option<EngineConfig>,
}

/// The engine the settings ask for (the app's own, and the built-in server's).
pub(crate) fn engine_config(settings: &AppSettings) -> EngineConfig {
    let mut config = EngineConfig {
        pose_model: settings.pose_model,
        hands: settings.hands,
        threads: settings.threads.max(1),
        parallel_branches: settings.threads >= 2,
        input_is_mirrored: false,
        ..Default::default()
    };
    if let Some(dir) = &settings.models_dir {
        config.models_dir = dir.clone();
    }
    config
}

pub(crate) fn tracker_config(settings: &AppSettings) -> TrackerConfig {
    TrackerConfig {
        smoothing: settings.smoothing,
        ..TrackerConfig::VIDEO
    }
}

/// (Re)loads the engine when the model settings change; applies smoothing changes to the tracker.
fn manage_engine(
    mut loader: ResMut<EngineLoader>,
    mut inference: ResMut<Inference>,
    settings: Res<AppSettings>,
) {
    if let Some(task) = loader.task.as_mut() {
        let Some(loaded) = check_ready(task) else {
            return;
        };
        loader.task = None;
        match loaded {
            Ok(processor) => {
                inference.install(Box::new(processor));
                inference.error = None;
            }
            Err(e) => {
                error!("{e}");
                inference.error = Some(e);
            }
        }
    }
    let wanted = engine_config(&settings);
    if loader.loaded.as_ref() != Some(&wanted) {
        // The running engine finishes its frame and comes back before it is replaced.
        if inference.busy() {
            inference.recall();
            return;
        }
        inference.processor = None;
        loader.loaded = Some(wanted.clone());
        let tracker = tracker_config(&settings);
        loader.task = Some(AsyncComputeTaskPool::get().spawn(async move {
            Engine::new(wanted)
                .map(|engine| EngineProcessor {
                    engine,
                    tracker: Tracker::new(tracker),
                })
                .map_err(|e| format!("cannot load the models: {e}"))
        }));
        return;
    }
    if settings.is_changed() {
        inference.set_tracker_config(tracker_config(&settings));
    }
}

fn start_initial_source(settings: Res<AppSettings>, mut switch: MessageWriter<SwitchSource>) {
    switch.write(SwitchSource(settings.source.clone()));
}

pub(super) fn plugin(app: &mut App) {
    app.insert_resource(SharedSlot(Arc::new(FrameSlot::new())))
        .init_resource::<ActiveSource>()
        .init_resource::<EngineLoader>()
        .add_message::<SwitchSource>()
        .add_systems(Startup, start_initial_source)
        .add_systems(Update, switch_source.in_set(AppSystems::Capture))
        .add_systems(Update, manage_engine.in_set(InferenceCycle::Manage));
    inference_cycle_plugin(app);
}

#[cfg(test)]
mod tests {
    //! Headless plugin tests: `MinimalPlugins` and a fake processor drive the dispatch/collect cycle.

    use super::*;
    use crate::vision::RgbImage;
    use crate::vision::angles::JointAngles;
    use std::sync::atomic::AtomicUsize;

    /// Sleeps like a model would, records concurrency and which frames it saw.
    struct FakeProcessor {
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
        seen: Arc<std::sync::Mutex<Vec<u64>>>,
        delay: Duration,
    }

    impl Processor for FakeProcessor {
        fn process(&mut self, frame: &Frame) -> Result<FrameResult, VisionError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.seen.lock().unwrap().push(frame.seq);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(empty_result(frame))
        }
        fn reset(&mut self) {}
        fn set_tracker_config(&mut self, _: TrackerConfig) {}
    }

    /// Fails on odd frames, like a corrupt frame would.
    struct FailOnOdd;

    impl Processor for FailOnOdd {
        fn process(&mut self, frame: &Frame) -> Result<FrameResult, VisionError> {
            if frame.seq % 2 == 1 {
                return Err(VisionError::BadFrame {
                    width: frame.seq as u32,
                    height: 0,
                    len: 0,
                });
            }
            Ok(empty_result(frame))
        }
        fn reset(&mut self) {}
        fn set_tracker_config(&mut self, _: TrackerConfig) {}
    }

    fn empty_result(frame: &Frame) -> FrameResult {
        FrameResult {
            timestamp_us: frame.timestamp_us,
            width: frame.image.width,
            height: frame.image.height,
            pose: None,
            hands: Vec::new(),
            angles: JointAngles::default(),
            pose_detector_ran: true,
            palm_detector_ran: false,
            timings: StageTimings::default(),
        }
    }

    fn frame(seq: u64) -> Frame {
        let image = RgbImage::from_raw(4, 2, vec![0; 24]).unwrap();
        let now = Instant::now();
        Frame {
            seq,
            captured_at: now,
            timestamp_us: crate::frame::timestamp_us(now) + seq as i64,
            image: Arc::new(image),
        }
    }

    struct Harness {
        app: App,
        slot: Arc<FrameSlot>,
        max_in_flight: Arc<AtomicUsize>,
        seen: Arc<std::sync::Mutex<Vec<u64>>>,
    }

    fn harness(delay: Duration) -> Harness {
        let slot = Arc::new(FrameSlot::new());
        let mut app = App::new();
        app.add_plugins(MinimalPlugins.set(task_pool_plugin()))
            .configure_sets(
                Update,
                (AppSystems::Capture, AppSystems::Infer, AppSystems::Present).chain(),
            )
            .insert_resource(SharedSlot(Arc::clone(&slot)));
        inference_cycle_plugin(&mut app);
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        app.world_mut()
            .resource_mut::<Inference>()
            .install(Box::new(FakeProcessor {
                in_flight: Arc::new(AtomicUsize::new(0)),
                max_in_flight: Arc::clone(&max_in_flight),
                seen: Arc::clone(&seen),
                delay,
            }));
        Harness {
            app,
            slot,
            max_in_flight,
            seen,
        }
    }

    fn update_until(app: &mut App, mut done: impl FnMut(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(app.world()) {
            assert!(Instant::now() < deadline, "timed out");
            app.update();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_newest_frame_is_processed_and_its_result_carries_it() {
        let mut h = harness(Duration::from_millis(5));
        for seq in 0..5 {
            h.slot.publish(frame(seq));
        }
        update_until(&mut h.app, |w| w.resource::<Results>().received >= 1);
        let results = h.app.world().resource::<Results>();
        let newest = results.newest.as_ref().unwrap();
        assert_eq!(newest.frame.seq, 4, "latest wins");
        assert_eq!(newest.result.timestamp_us, newest.frame.timestamp_us);
        assert_eq!(h.slot.dropped(), 4);
        assert_eq!(*h.seen.lock().unwrap(), vec![4]);
    }

    #[test]
    fn one_frame_in_flight_and_the_processor_comes_back_when_recalled() {
        let mut h = harness(Duration::from_millis(30));
        h.slot.publish(frame(0));
        update_until(&mut h.app, |w| {
            w.resource::<Inference>().frames_dispatched() == 1
        });
        assert!(h.app.world().resource::<Inference>().busy());
        // Frames published while frame 0 is processed wait in the slot; only the newest survives.
        for seq in 1..4 {
            h.slot.publish(frame(seq));
        }
        update_until(&mut h.app, |w| w.resource::<Results>().received >= 2);
        let results = h.app.world().resource::<Results>();
        assert_eq!(results.previous.as_ref().unwrap().frame.seq, 0);
        assert_eq!(results.newest.as_ref().unwrap().frame.seq, 3);
        assert_eq!(h.max_in_flight.load(Ordering::SeqCst), 1);
        assert_eq!(*h.seen.lock().unwrap(), vec![0, 3]);
        // Recalled (as for an engine reload), the processor comes back to a system in `Manage`, which
        // takes it out; put back, the cycle starts again with the same processor.
        #[derive(Resource, Default)]
        struct Park {
            wanted: bool,
            parked: Option<Box<dyn Processor>>,
        }
        fn park(mut inference: ResMut<Inference>, mut park: ResMut<Park>) {
            if !park.wanted {
                return;
            }
            if inference.busy() {
                inference.recall();
            } else if let Some(p) = inference.processor.take() {
                park.parked = Some(p);
                park.wanted = false;
            }
        }
        h.app
            .insert_resource(Park {
                wanted: true,
                parked: None,
            })
            .add_systems(Update, park.in_set(InferenceCycle::Manage));
        update_until(&mut h.app, |w| w.resource::<Park>().parked.is_some());
        assert!(!h.app.world().resource::<Inference>().ready());
        let processor = h
            .app
            .world_mut()
            .resource_mut::<Park>()
            .parked
            .take()
            .unwrap();
        h.app
            .world_mut()
            .resource_mut::<Inference>()
            .install(processor);
        h.slot.publish(frame(4));
        update_until(&mut h.app, |w| w.resource::<Results>().received >= 3);
        assert_eq!(*h.seen.lock().unwrap(), vec![0, 3, 4]);
    }

    #[test]
    fn inference_runs_at_its_own_rate_when_updates_are_slow() {
        // Updates every 100 ms (a slow software renderer); frames every 5 ms; inference takes 10 ms.
        let mut h = harness(Duration::from_millis(10));
        let publisher = {
            let slot = Arc::clone(&h.slot);
            std::thread::Builder::new()
                .name("test-camera".into())
                .spawn(move || {
                    for seq in 0..200 {
                        slot.publish(frame(seq));
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
                .unwrap()
        };
        let mut updates = 0;
        let mut collected_per_update = Vec::new();
        while !publisher.is_finished() {
            h.app.update();
            updates += 1;
            collected_per_update.push(h.app.world().resource::<Results>().fresh.len());
            std::thread::sleep(Duration::from_millis(100));
        }
        publisher.join().unwrap();
        h.app.update();
        let results = h.app.world().resource::<Results>().received
            + h.app.world().resource::<Inference>().results_superseded();
        assert!(
            results > 3 * updates,
            "{results} results in {updates} updates"
        );
        assert!(
            collected_per_update.iter().any(|&n| n > 1),
            "{collected_per_update:?}"
        );
        assert_eq!(h.max_in_flight.load(Ordering::SeqCst), 1);
        // Frames were processed in capture order.
        let seen = h.seen.lock().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn errors_are_reported_and_inference_goes_on() {
        let mut h = harness(Duration::ZERO);
        h.app
            .world_mut()
            .resource_mut::<Inference>()
            .install(Box::new(FailOnOdd));
        h.slot.publish(frame(1));
        update_until(&mut h.app, |w| w.resource::<Inference>().error.is_some());
        assert!(
            h.app
                .world()
                .resource::<Inference>()
                .error
                .as_deref()
                .unwrap()
                .contains("frame is 1×0")
        );
        h.slot.publish(frame(2));
        update_until(&mut h.app, |w| w.resource::<Results>().received == 1);
        assert!(h.app.world().resource::<Inference>().error.is_none());
    }

    #[test]
    fn nothing_is_dispatched_without_frames_or_a_processor() {
        let mut h = harness(Duration::ZERO);
        for _ in 0..10 {
            h.app.update();
        }
        assert_eq!(h.app.world().resource::<Inference>().frames_dispatched(), 0);
        assert_eq!(h.app.world().resource::<Results>().received, 0);
        // Without a processor (models still loading), frames stay in the slot. (A slot of its own:
        // the first app's task is still waiting on `h.slot` and would take the frame.)
        let slot = Arc::new(FrameSlot::new());
        let mut empty = App::new();
        empty
            .add_plugins(MinimalPlugins.set(task_pool_plugin()))
            .configure_sets(
                Update,
                (AppSystems::Capture, AppSystems::Infer, AppSystems::Present).chain(),
            )
            .insert_resource(SharedSlot(Arc::clone(&slot)));
        inference_cycle_plugin(&mut empty);
        slot.publish(frame(7));
        for _ in 0..5 {
            empty.update();
        }
        assert_eq!(empty.world().resource::<Inference>().frames_dispatched(), 0);
        assert_eq!(slot.take().map(|f| f.seq), Some(7));
    }
}
