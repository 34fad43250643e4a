//! One inference worker (`livepose-infer-N`): loads its engine, then runs jobs until the service stops.
//! Between two jobs it swaps in a new engine when the service was reconfigured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::processor::Processor;
use super::stream::{AfterDecode, FrameError, HandsWork, StreamShared};
use super::{Branch, ServiceShared};
use crate::frame::Payload;
use crate::sync::lock;
use crate::vision::image::FrameDecoder;
use crate::vision::tracker::{HandsTrack, PoseTrack};
use crate::vision::{ModelError, VisionError};

/// An engine, counted in [`super::ServiceStats::engines_loaded`] while it exists.
struct CountedEngine {
    engine: Box<dyn Processor>,
    loaded: Arc<AtomicUsize>,
}

impl Drop for CountedEngine {
    fn drop(&mut self) {
        self.loaded.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Worker {
    engine: CountedEngine,
    generation: u64,
    decoder: FrameDecoder,
}

fn load(shared: &ServiceShared) -> Result<(CountedEngine, u64), ModelError> {
    let (config, generation) = shared.live();
    let engine = (shared.factory)(&config)?;
    shared.engine_loads.fetch_add(1, Ordering::Relaxed);
    shared.engines_loaded.fetch_add(1, Ordering::AcqRel);
    Ok((
        CountedEngine {
            engine,
            loaded: Arc::clone(&shared.engines_loaded),
        },
        generation,
    ))
}

/// The worker thread's body.
pub(super) fn run(
    shared: &ServiceShared,
    loaded: &crossbeam_channel::Sender<Result<(), ModelError>>,
) {
    let mut worker = match load(shared) {
        Ok((engine, generation)) => {
            // `Service::start` waits for every worker's answer unless it gave up on an earlier error.
            let _ = loaded.send(Ok(()));
            Worker {
                engine,
                generation,
                decoder: FrameDecoder::new(),
            }
        }
        Err(e) => {
            // As above.
            let _ = loaded.send(Err(e));
            return;
        }
    };
    loop {
        worker.reload_if_changed(shared);
        let Some(job) = shared.next_job_or_reload(worker.generation) else {
            if shared.is_stopped() {
                return;
            }
            continue;
        };
        match job.branch {
            Branch::Pose => while worker.pose_job(shared, &job.stream) {},
            Branch::Hands => {
                if let Some(work) = job.stream.hands_work(shared) {
                    worker.hands_job(shared, &job.stream, work);
                }
            }
        }
        shared.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Worker {
    fn reload_if_changed(&mut self, shared: &ServiceShared) {
        let (_, generation) = shared.live();
        if generation == self.generation {
            return;
        }
        match load(shared) {
            Ok((engine, generation)) => {
                self.engine = engine;
                self.generation = generation;
            }
            Err(e) => {
                tracing::warn!("cannot load the new models: {e}");
                *lock(&shared.reconfigure_error) = Some(format!("cannot load the new models: {e}"));
                // Keep the previous engine until the settings change again.
                self.generation = generation;
            }
        }
    }

    /// Decodes the stream's newest frame, starts its hand branch if that is free, runs its pose branch.
    /// Returns true when the stream's next frame is this worker's to run too.
    fn pose_job(&mut self, shared: &ServiceShared, stream: &Arc<StreamShared>) -> bool {
        let Some(work) = stream.pose_work() else {
            return false;
        };
        let started = Instant::now();
        let decoded = match &work.payload {
            Payload::Decoded(image) => Ok(Arc::clone(image)),
            Payload::Encoded { bytes, .. } => self
                .decoder
                .decode(bytes)
                .map_err(|e| FrameError::Decode(e.to_string())),
        };
        let decode_ms = started.elapsed().as_secs_f32() * 1e3;
        let image = decoded.as_ref().ok().cloned();
        // The previous frame's poses (this stream's pose branch runs one frame at a time).
        let from_pose = lock(&stream.pose_track).hands_from_pose().to_vec();
        let hands = match stream.decoded(work.serial, decoded, decode_ms, from_pose, shared) {
            AfterDecode::Failed { pose_again } => return pose_again,
            AfterDecode::Continue(hands) => hands,
        };
        let Some(image) = image else {
            return false;
        };
        if let Some(hands) = hands {
            self.start_hands(shared, stream, hands);
        }
        let solo = shared.alone();
        let output = {
            let mut track = lock(&stream.pose_track);
            let engine = &mut self.engine.engine;
            let (output, panicked) = contain_panic(|| {
                engine.run_pose(&image, work.timestamp_us, work.config, &mut track, solo)
            });
            if panicked {
                *track = PoseTrack::new(work.config);
            }
            output
        };
        let model = self.engine.engine.pose_model();
        stream.pose_done(work.serial, output, model, shared)
    }

    /// Runs the hand branch inline when it has nothing to do this frame (it only counts the frame), or
    /// queues it for any worker.
    fn start_hands(&mut self, shared: &ServiceShared, stream: &Arc<StreamShared>, work: HandsWork) {
        let mut next = Some(work);
        while let Some(work) = next.take() {
            let trivial = {
                let track = lock(&stream.hands_track);
                !self
                    .engine
                    .engine
                    .hands_have_work(work.config, &work.from_pose, &track)
            };
            if !trivial {
                stream.queue_hands(shared);
                return;
            }
            next = self.run_hands(shared, stream, work);
        }
    }

    fn hands_job(&mut self, shared: &ServiceShared, stream: &Arc<StreamShared>, work: HandsWork) {
        if let Some(next) = self.run_hands(shared, stream, work) {
            self.start_hands(shared, stream, next);
        }
    }

    /// The hand branch on one frame; returns the branch's next frame, if one is ready.
    fn run_hands(
        &mut self,
        shared: &ServiceShared,
        stream: &Arc<StreamShared>,
        work: HandsWork,
    ) -> Option<HandsWork> {
        let output = {
            let mut track = lock(&stream.hands_track);
            let engine = &mut self.engine.engine;
            let (output, panicked) = contain_panic(|| {
                engine.run_hands(
                    &work.image,
                    work.timestamp_us,
                    work.config,
                    &work.from_pose,
                    &mut track,
                )
            });
            if panicked {
                *track = HandsTrack::new(work.config);
            }
            output
        };
        stream.hands_done(work.serial, output, shared)
    }
}

/// Runs one branch of a frame so that a panic in it (a bug in the engine or in ONNX Runtime's
/// bindings) fails that frame instead of the worker: the frame is delivered with the error, and the
/// caller starts the stream's tracker half afresh (its state may be half updated) when the second value
/// says it panicked; the worker goes on with the next job. Without this a panicking worker took its job
/// with it, and `analyze`, waiting for that frame, waited forever.
fn contain_panic<T>(run: impl FnOnce() -> Result<T, VisionError>) -> (Result<T, FrameError>, bool) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(result) => (
            result.map_err(|e| FrameError::Inference(e.to_string())),
            false,
        ),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            tracing::error!(
                "the engine panicked on a frame ({what}); the stream's tracking restarts"
            );
            let error = FrameError::Inference(format!("the engine panicked: {what}"));
            (Err(error), true)
        }
    }
}
