//! The seam between the service and the engine: a worker runs its jobs through a [`Processor`], made by
//! the service's [`ProcessorFactory`] (once per worker, and again on every reconfiguration). The real
//! processor is [`Engine`]; the service's own tests use a fake that needs no models, so scheduling,
//! fairness, drop counts, subscriptions and shutdown are tested on their own.

use std::sync::Arc;

use crate::vision::engine::{HandsOutput, PoseOutput};
use crate::vision::hands::HandFromPose;
use crate::vision::tracker::{HandsTrack, PoseTrack};
use crate::vision::{
    Engine, EngineConfig, ModelError, PoseModel, RgbImage, TrackerConfig, VisionError,
};

/// What a worker needs of an engine: the two branches of a frame, on one stream's tracker halves.
pub trait Processor: Send {
    /// The pose model results are labelled with.
    fn pose_model(&self) -> PoseModel;
    /// Whether the hand branch will run a model on this frame (otherwise it is run inline, for free).
    fn hands_have_work(
        &self,
        config: TrackerConfig,
        from_pose: &[HandFromPose],
        track: &HandsTrack,
    ) -> bool;
    /// The pose branch on one frame (`solo`: nothing else runs beside it; use the whole budget).
    fn run_pose(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        track: &mut PoseTrack,
        solo: bool,
    ) -> Result<PoseOutput, VisionError>;
    /// The hand branch on one frame.
    fn run_hands(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        from_pose: &[HandFromPose],
        track: &mut HandsTrack,
    ) -> Result<HandsOutput, VisionError>;
}

/// Makes a worker's processor for the engine settings in force (called on the worker's own thread, so
/// ONNX Runtime's threads take its name).
pub type ProcessorFactory =
    Arc<dyn Fn(&EngineConfig) -> Result<Box<dyn Processor>, ModelError> + Send + Sync>;

/// The real one: loads the engine the settings describe.
pub fn engine_factory() -> ProcessorFactory {
    Arc::new(|config: &EngineConfig| {
        Engine::new(config.clone()).map(|engine| Box::new(engine) as Box<dyn Processor>)
    })
}

impl Processor for Engine {
    fn pose_model(&self) -> PoseModel {
        self.config().pose_model
    }

    fn hands_have_work(
        &self,
        config: TrackerConfig,
        from_pose: &[HandFromPose],
        track: &HandsTrack,
    ) -> bool {
        Engine::hands_have_work(self, config, from_pose, track)
    }

    fn run_pose(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        track: &mut PoseTrack,
        solo: bool,
    ) -> Result<PoseOutput, VisionError> {
        Engine::run_pose(self, image, timestamp_us, config, track, solo)
    }

    fn run_hands(
        &mut self,
        image: &RgbImage,
        timestamp_us: i64,
        config: TrackerConfig,
        from_pose: &[HandFromPose],
        track: &mut HandsTrack,
    ) -> Result<HandsOutput, VisionError> {
        Engine::run_hands(self, image, timestamp_us, config, from_pose, track)
    }
}
