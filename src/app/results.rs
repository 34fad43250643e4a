//! Receive stage. Reads: the stream to show (from the source stage, or the browser tab selected in the
//! panel). Writes: [`Results`], the last two results of that stream, each with the frame it was computed
//! on, with the person [`Followed`] at their top level. Runs on the main thread and never waits:
//! inference itself runs on the service's workers.
//!
//! - The inference service is started off the main thread at start-up (loading the models takes a
//!   second) and is the only one in the process: the built-in server uses it too.
//! - The app holds one subscription to the stream shown, keeping the newest two results (the two it
//!   blends between), and takes them every update; when the stream shown changes, it subscribes to the
//!   new one. Keeping two, not one, matters when rendering is slower than inference: blending then runs
//!   between two consecutive results, one inference interval apart, not between the last two the app
//!   happened to see (which would hold the older frame on screen longer).
//! - Model and hands changes from the panel reconfigure the service (every stream gets them).

use std::sync::Arc;
use std::time::Instant;

use bevy::prelude::*;
use bevy::tasks::futures::check_ready;
use bevy::tasks::{AsyncComputeTaskPool, Task};

use crate::app::{AppSettings, AppSystems};
use crate::frame::FrameMeta;
use crate::service::{Service, ServiceConfig, StreamId, StreamResult, Subscription};
use crate::vision::timings::StageTimings;
use crate::vision::{EngineConfig, FrameResult, PersonId, RgbImage, TrackerConfig};

/// A result with the frame it was computed on.
#[derive(Clone, Debug)]
pub struct TimedResult {
    pub stream: StreamId,
    pub meta: FrameMeta,
    pub image: Arc<RgbImage>,
    pub result: Arc<FrameResult>,
    /// When inference finished it.
    pub arrived: Instant,
}

/// The last two results of the stream shown (for blending), and counters.
#[derive(Resource, Default)]
pub struct Results {
    pub previous: Option<TimedResult>,
    pub newest: Option<TimedResult>,
    /// Results the app took.
    pub received: u64,
    /// When each result taken this update finished, with its timings.
    pub fresh: Vec<(Instant, StageTimings)>,
}

impl Results {
    pub fn push(&mut self, result: TimedResult) {
        self.fresh.push((result.arrived, result.result.timings));
        if self
            .newest
            .as_ref()
            .is_some_and(|n| n.stream != result.stream)
        {
            // Another stream: do not blend across the switch.
            self.newest = None;
        }
        self.previous = self.newest.take();
        self.newest = Some(result);
        self.received += 1;
    }

    /// Whether a result arrived this update.
    pub fn changed(&self) -> bool {
        !self.fresh.is_empty()
    }
}

/// The service, and the app's subscription.
#[derive(Resource, Default)]
pub struct Inference {
    pub service: Option<Arc<Service>>,
    starting: Option<Task<Result<Service, String>>>,
    /// The service could not start, or the last frame failed: shown in the panel.
    pub error: Option<String>,
    subscription: Option<Subscription>,
    /// The engine settings last given to the service.
    configured: Option<EngineConfig>,
    /// VMC output of the stream shown (`--vmc`).
    vmc: Option<crate::outputs::vmc::VmcSender>,
}

impl Inference {
    /// The stream whose results the app takes.
    pub fn showing(&self) -> Option<StreamId> {
        self.subscription.as_ref().map(Subscription::stream)
    }

    /// Counters of the stream shown: received, dropped, results.
    pub fn stream_stats(&self) -> Option<crate::service::StreamStats> {
        self.subscription.as_ref().map(Subscription::stream_stats)
    }
}

/// Whom the app follows: the angle readouts and their history, the avatar's highlight, VMC and the BVH
/// of a recording follow one person, the top level of every result the app keeps.
#[derive(Resource, Default, Debug, Clone, PartialEq)]
pub struct Followed {
    /// The person chosen (clicked in the video or picked in the panel); `None`: the lowest id in view.
    pub chosen: Option<PersonId>,
    /// The person followed in the newest result.
    pub current: Option<PersonId>,
    /// The chosen person left the view (who, and when): the panel says so for a while, and the lowest
    /// id in view is followed instead.
    pub left: Option<(PersonId, Instant)>,
}

impl Followed {
    /// Follows the person of `result` the app should, noting when the chosen one has left.
    fn update(&mut self, result: &FrameResult, now: Instant) -> Option<PersonId> {
        let in_view = |id: PersonId| result.people.iter().any(|p| p.id == id);
        if let Some(chosen) = self.chosen
            && !in_view(chosen)
        {
            self.left = Some((chosen, now));
            self.chosen = None;
        }
        self.current = self.chosen.or_else(|| result.people.first().map(|p| p.id));
        self.current
    }
}

/// The stream the app should show, decided by the capture stage and the browser panel.
#[derive(Resource, Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct ShowStream(pub Option<StreamId>);

/// The engine the settings ask for (the command line's, as the panel changed it; the app always shows
/// the camera as it is, mirrored or not, so the input is never taken as mirrored).
pub(crate) fn engine_config(settings: &AppSettings) -> EngineConfig {
    EngineConfig {
        input_is_mirrored: false,
        ..settings.engine.clone()
    }
}

/// How every stream of the app is tracked.
pub(crate) fn tracker_config(settings: &AppSettings) -> TrackerConfig {
    TrackerConfig {
        smoothing: settings.smoothing,
        hand_regions: settings.hand_regions,
        ..TrackerConfig::VIDEO
    }
    .with_max_people(settings.max_people)
}

/// The app's service: one worker with the whole budget, so the process loads exactly one engine
/// whatever it shows (the camera, a clip or a browser tab).
pub(crate) fn service_config(settings: &AppSettings) -> ServiceConfig {
    ServiceConfig::new(engine_config(settings), settings.threads, 1)
}

fn start_service(settings: Res<AppSettings>, mut inference: ResMut<Inference>) {
    let config = service_config(&settings);
    inference.configured = Some(config.engine.clone());
    inference.starting = Some(
        AsyncComputeTaskPool::get()
            .spawn(async move { Service::start(config).map_err(|e| e.to_string()) }),
    );
}

/// Installs the service when it has started; passes model and hands changes on.
fn manage_service(mut inference: ResMut<Inference>, settings: Res<AppSettings>) {
    if let Some(task) = inference.starting.as_mut()
        && let Some(started) = check_ready(task)
    {
        inference.starting = None;
        match started {
            Ok(service) => {
                let service = Arc::new(service);
                if let Some(target) = settings.vmc {
                    let whom = if settings.vmc_every_person {
                        crate::outputs::vmc::Whom::Everyone {
                            max: settings.max_people,
                        }
                    } else {
                        crate::outputs::vmc::Whom::Followed
                    };
                    match crate::outputs::vmc::VmcSender::start_for(
                        Arc::clone(&service),
                        target,
                        crate::outputs::vmc::Follow::Chosen,
                        whom,
                    ) {
                        Ok(sender) => inference.vmc = Some(sender),
                        Err(e) => {
                            error!("{e}");
                            inference.error = Some(e.to_string());
                        }
                    }
                }
                inference.service = Some(service);
            }
            Err(e) => {
                error!("{e}");
                inference.error = Some(e);
            }
        }
    }
    if !settings.is_changed() {
        return;
    }
    let wanted = engine_config(&settings);
    if inference.configured.as_ref() == Some(&wanted) {
        return;
    }
    if let Some(service) = &inference.service {
        service.reconfigure(wanted.clone());
        inference.configured = Some(wanted);
    }
}

fn timed(result: StreamResult) -> Result<TimedResult, String> {
    let image = result
        .image
        .ok_or_else(|| "the frame could not be decoded".to_owned());
    match (result.outcome, image) {
        (Ok(frame), Ok(image)) => Ok(TimedResult {
            stream: result.stream,
            meta: result.meta,
            image,
            result: frame,
            arrived: result.finished_at,
        }),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e),
    }
}

/// Results kept for the app: the two it blends between.
const KEPT_RESULTS: usize = 2;

/// Follows the stream to show, and takes its newest results.
pub fn collect_results(
    mut inference: ResMut<Inference>,
    show: Res<ShowStream>,
    mut results: ResMut<Results>,
    mut followed: ResMut<Followed>,
    proxy: Option<Res<bevy::winit::EventLoopProxyWrapper>>,
) {
    results.fresh.clear();
    if inference.showing() != show.0 {
        inference.subscription = match (&inference.service, show.0) {
            // Each result's delivery wakes the window (immediate mode updates only then).
            (Some(service), Some(id)) => match crate::app::present::waker(proxy.as_deref()) {
                Some(wake) => service.subscribe_with_notify(id, KEPT_RESULTS, wake),
                None => service.subscribe(id, KEPT_RESULTS),
            },
            _ => None,
        };
    }
    if let Some(vmc) = &inference.vmc {
        vmc.follow(inference.showing());
        vmc.follow_person(followed.current);
    }
    let fresh = inference
        .subscription
        .as_ref()
        .map(|s| s.drain())
        .unwrap_or_default();
    for result in fresh {
        match timed(result) {
            Ok(mut result) => {
                inference.error = None;
                // The person followed is the top level of what the app keeps.
                if let Some(id) = followed.update(&result.result, Instant::now())
                    && result.result.top_level_id() != Some(id)
                {
                    result.result = Arc::new(result.result.focused_on(id));
                }
                results.push(result);
            }
            Err(e) => {
                warn!("inference: {e}");
                inference.error = Some(e);
            }
        }
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Inference>()
        .init_resource::<Results>()
        .init_resource::<Followed>()
        .init_resource::<ShowStream>()
        .add_systems(Startup, start_service)
        .add_systems(
            Update,
            (manage_service, collect_results)
                .chain()
                .in_set(AppSystems::Receive),
        );
}

#[cfg(test)]
mod tests {
    //! Headless plugin tests: `MinimalPlugins`, the infer plugin and a real service (one worker, body
    //! model only) fed by a stream the test publishes into.

    use super::*;
    use crate::frame::{EncodedFormat, FrameInput, Payload};
    use crate::service::{Delivery, StreamHandle, StreamKind, StreamSpec};
    use std::time::Duration;

    fn app() -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(AppSettings {
                engine: EngineConfig {
                    hands: false,
                    ..EngineConfig::default()
                },
                threads: 1,
                ..AppSettings::default()
            })
            .configure_sets(
                Update,
                (AppSystems::Source, AppSystems::Receive, AppSystems::Present).chain(),
            );
        plugin(&mut app);
        app
    }

    fn update_until(app: &mut App, mut done: impl FnMut(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(app.world()) {
            assert!(Instant::now() < deadline, "timed out");
            app.update();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn open(app: &App) -> StreamHandle {
        let service = app.world().resource::<Inference>().service.clone().unwrap();
        service.open_stream(StreamSpec {
            name: "test".into(),
            kind: StreamKind::File,
            tracker: TrackerConfig::VIDEO,
            delivery: Delivery::LatestWins,
        })
    }

    fn frame(seq: u64) -> FrameInput {
        let jpeg = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/messi5.jpg"
        ))
        .unwrap();
        FrameInput {
            meta: FrameMeta::captured_now(seq),
            payload: Payload::Encoded {
                format: EncodedFormat::Jpeg,
                bytes: jpeg.into(),
            },
        }
    }

    #[test]
    fn the_app_shows_the_newest_result_of_the_stream_it_follows() {
        let mut app = app();
        update_until(&mut app, |w| w.resource::<Inference>().service.is_some());
        let stream = open(&app);
        app.insert_resource(ShowStream(Some(stream.id())));
        app.update();
        assert_eq!(
            app.world().resource::<Inference>().showing(),
            Some(stream.id())
        );
        for seq in 0..5 {
            stream.publish(frame(seq)).unwrap();
        }
        update_until(&mut app, |w| {
            w.resource::<Results>()
                .newest
                .as_ref()
                .is_some_and(|n| n.meta.seq == 4)
        });
        let results = app.world().resource::<Results>();
        let newest = results.newest.as_ref().unwrap();
        // The result travels with its frame.
        assert_eq!((newest.image.width, newest.image.height), (548, 342));
        assert_eq!(newest.result.timestamp_us, newest.meta.timestamp_us);
        assert!(newest.result.pose.is_some());
        // Latest wins: frames published while the first was processed were dropped, not queued.
        let stats = stream.stats();
        assert_eq!(stats.received, 5);
        assert_eq!(stats.results + stats.dropped, 5, "{stats:?}");
        assert!(results.received <= stats.results);

        // A second stream: following it drops the first subscription; the first stream keeps going.
        let other = open(&app);
        app.insert_resource(ShowStream(Some(other.id())));
        other.publish(frame(0)).unwrap();
        update_until(&mut app, |w| {
            w.resource::<Results>()
                .newest
                .as_ref()
                .is_some_and(|n| n.stream == other.id())
        });
        assert!(app.world().resource::<Results>().previous.is_none());
        assert_eq!(stream.stats().subscribers, 0);
    }

    #[test]
    fn a_frame_that_fails_is_reported_and_the_next_one_is_shown() {
        let mut app = app();
        update_until(&mut app, |w| w.resource::<Inference>().service.is_some());
        let stream = open(&app);
        app.insert_resource(ShowStream(Some(stream.id())));
        app.update();
        stream
            .publish(FrameInput {
                meta: FrameMeta::captured_now(0),
                payload: Payload::Encoded {
                    format: EncodedFormat::Jpeg,
                    bytes: bytes::Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]),
                },
            })
            .unwrap();
        update_until(&mut app, |w| w.resource::<Inference>().error.is_some());
        let error = app.world().resource::<Inference>().error.clone().unwrap();
        assert!(error.contains("decode"), "{error}");
        stream.publish(frame(1)).unwrap();
        update_until(&mut app, |w| w.resource::<Results>().received == 1);
        assert!(app.world().resource::<Inference>().error.is_none());
    }
}
