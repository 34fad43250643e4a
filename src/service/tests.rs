//! The service on its own, without models: a fake [`Processor`] that sleeps for a set time per branch,
//! logs what it ran and how many of its calls overlapped. Frames arrive decoded (no JPEG), so these tests
//! exercise only scheduling, fairness between streams, drop counts, subscriptions, reconfiguration and
//! shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::frame::{FrameInput, FrameMeta, Payload};
use crate::vision::engine::{HandsOutput, PoseOutput};
use crate::vision::tracker::{HandsTrack, PoseTrack};
use crate::vision::{PoseModel, RgbImage, TrackerConfig, VisionError};

/// What the fakes of one service saw.
#[derive(Default)]
struct Log {
    /// (stream's first frame timestamp block, branch, timestamp) in the order the calls started.
    runs: Mutex<Vec<(i64, Branch)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    loads: AtomicUsize,
}

#[derive(Clone)]
struct FakeSpec {
    pose: Duration,
    hands: Option<Duration>,
    /// Frames with this timestamp fail in the pose branch.
    fail_at_us: Option<i64>,
    /// The pose branch panics on frames with this timestamp.
    panic_at_us: Option<i64>,
    /// Loading a processor for this model fails.
    refuse_model: Option<PoseModel>,
}

struct Fake {
    spec: FakeSpec,
    model: PoseModel,
    log: Arc<Log>,
}

impl Fake {
    fn run(&self, branch: Branch, timestamp_us: i64, how_long: Duration) {
        let now = self.log.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.log.max_running.fetch_max(now, Ordering::AcqRel);
        self.log.runs.lock().unwrap().push((timestamp_us, branch));
        std::thread::sleep(how_long);
        self.log.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Processor for Fake {
    fn pose_model(&self) -> PoseModel {
        self.model
    }

    fn hands_have_work(
        &self,
        _config: TrackerConfig,
        _from_pose: &[crate::vision::hands::HandFromPose],
        _track: &HandsTrack,
    ) -> bool {
        self.spec.hands.is_some()
    }

    fn run_pose(
        &mut self,
        _image: &RgbImage,
        timestamp_us: i64,
        _config: TrackerConfig,
        _track: &mut PoseTrack,
        _solo: bool,
    ) -> Result<PoseOutput, VisionError> {
        self.run(Branch::Pose, timestamp_us, self.spec.pose);
        if self.spec.panic_at_us == Some(timestamp_us) {
            panic!("a bug in the engine");
        }
        if self.spec.fail_at_us == Some(timestamp_us) {
            return Err(VisionError::NonMonotonicTimestamp {
                previous_us: timestamp_us,
                got_us: timestamp_us,
            });
        }
        Ok(PoseOutput::default())
    }

    fn run_hands(
        &mut self,
        _image: &RgbImage,
        timestamp_us: i64,
        _config: TrackerConfig,
        _from_pose: &[crate::vision::hands::HandFromPose],
        _track: &mut HandsTrack,
    ) -> Result<HandsOutput, VisionError> {
        if let Some(d) = self.spec.hands {
            self.run(Branch::Hands, timestamp_us, d);
        }
        Ok(HandsOutput::default())
    }
}

fn service(workers: usize, spec: FakeSpec) -> (Service, Arc<Log>) {
    let log = Arc::new(Log::default());
    let factory_log = Arc::clone(&log);
    let factory: ProcessorFactory = Arc::new(move |config: &EngineConfig| {
        factory_log.loads.fetch_add(1, Ordering::AcqRel);
        if spec.refuse_model == Some(config.pose_model) {
            return Err(ModelError::Missing {
                path: "fake.onnx".into(),
            });
        }
        Ok(Box::new(Fake {
            spec: spec.clone(),
            model: config.pose_model,
            log: Arc::clone(&factory_log),
        }) as Box<dyn Processor>)
    });
    let config = ServiceConfig::new(EngineConfig::default(), workers, workers);
    (Service::start_with(config, factory).unwrap(), log)
}

fn quick(pose_ms: u64) -> FakeSpec {
    FakeSpec {
        pose: Duration::from_millis(pose_ms),
        hands: None,
        fail_at_us: None,
        panic_at_us: None,
        refuse_model: None,
    }
}

fn open(service: &Service, name: &str, delivery: Delivery) -> StreamHandle {
    service.open_stream(StreamSpec {
        name: name.into(),
        kind: StreamKind::File,
        tracker: TrackerConfig::VIDEO,
        delivery,
    })
}

/// Frame `seq` of a stream: a tiny decoded image, timestamp `base + seq` ms.
fn frame(base_us: i64, seq: u64) -> FrameInput {
    FrameInput {
        meta: FrameMeta {
            seq,
            timestamp_us: base_us + seq as i64 * 1000,
            captured_at: Instant::now(),
            client_timestamp_ms: None,
        },
        payload: Payload::Decoded(Arc::new(RgbImage {
            width: 4,
            height: 4,
            data: vec![128; 48],
        })),
    }
}

fn seqs(results: &[StreamResult]) -> Vec<u64> {
    results.iter().map(|r| r.meta.seq).collect()
}

#[test]
fn a_lossless_stream_gets_every_frame_once_in_order() {
    let (service, log) = service(2, quick(1));
    let stream = open(&service, "clip", Delivery::Lossless);
    let results = stream.subscribe(64);
    for k in 0..20 {
        assert!(
            !stream.publish(frame(0, k)).unwrap(),
            "lossless never drops"
        );
    }
    assert!(stream.wait_idle(Duration::from_secs(10)));
    let got = results.drain();
    assert_eq!(seqs(&got), (0..20).collect::<Vec<_>>());
    assert!(got.iter().all(|r| r.outcome.is_ok()));
    let stats = stream.stats();
    assert_eq!((stats.received, stats.dropped, stats.results), (20, 0, 20));
    assert_eq!(log.runs.lock().unwrap().len(), 20, "one pose run per frame");
}

#[test]
fn latest_wins_drops_waiting_frames_counts_them_and_always_runs_the_newest() {
    let (service, _log) = service(1, quick(20));
    let stream = open(&service, "camera", Delivery::LatestWins);
    let results = stream.subscribe(64);
    let mut replaced = 0;
    for k in 0..30 {
        replaced += u64::from(stream.publish(frame(0, k)).unwrap());
    }
    assert!(stream.wait_idle(Duration::from_secs(10)));
    let got = seqs(&results.drain());
    let stats = stream.stats();
    assert_eq!(stats.received, 30);
    assert_eq!(stats.dropped, replaced, "every replaced frame is counted");
    assert_eq!(stats.results + stats.dropped, 30, "{stats:?}");
    assert!(
        stats.dropped >= 20,
        "a 20 ms model cannot keep up: {stats:?}"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    assert_eq!(got.last(), Some(&29), "the newest frame is never dropped");
}

#[test]
fn streams_share_one_worker_round_robin() {
    let (service, _log) = service(1, quick(4));
    let service = Arc::new(service);
    let streams: Vec<_> = (0..3)
        .map(|i| Arc::new(open(&service, &format!("s{i}"), Delivery::LatestWins)))
        .collect();
    let subscriptions: Vec<_> = streams.iter().map(|s| s.subscribe(1000)).collect();
    let until = Instant::now() + Duration::from_millis(500);
    let producers: Vec<_> = streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let stream = Arc::clone(stream);
            std::thread::Builder::new()
                .name(format!("producer-{i}"))
                .spawn(move || {
                    let mut k = 0;
                    while Instant::now() < until {
                        stream.publish(frame(0, k)).unwrap();
                        k += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .unwrap()
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    for s in &streams {
        assert!(s.wait_idle(Duration::from_secs(5)));
    }
    let counts: Vec<u64> = subscriptions.iter().map(|s| s.delivered()).collect();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(*min >= 20, "every stream is served: {counts:?}");
    // Each stream has a frame waiting all the time; one queue, one job per stream: turns alternate.
    assert!(max - min <= 2, "round robin: {counts:?}");
}

#[test]
fn the_hand_branch_of_a_frame_runs_beside_the_pose_branch_of_the_next() {
    let spec = FakeSpec {
        hands: Some(Duration::from_millis(15)),
        ..quick(15)
    };
    let (service, log) = service(2, spec);
    let stream = open(&service, "clip", Delivery::Lossless);
    let results = stream.subscribe(64);
    for k in 0..12 {
        stream.publish(frame(0, k)).unwrap();
    }
    assert!(stream.wait_idle(Duration::from_secs(10)));
    assert_eq!(seqs(&results.drain()), (0..12).collect::<Vec<_>>());
    assert_eq!(
        log.max_running.load(Ordering::Acquire),
        2,
        "two workers busy at once"
    );
    // Each branch sees the stream's frames in order.
    let runs = log.runs.lock().unwrap().clone();
    for branch in [Branch::Pose, Branch::Hands] {
        let ts: Vec<i64> = runs.iter().filter(|r| r.1 == branch).map(|r| r.0).collect();
        assert_eq!(ts.len(), 12);
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{branch:?} {ts:?}");
    }
}

#[test]
fn a_one_result_subscription_keeps_the_newest_and_counts_what_it_skipped() {
    let (service, _log) = service(1, quick(1));
    let stream = open(&service, "clip", Delivery::Lossless);
    let newest = stream.subscribe(1);
    let every = stream.subscribe(16);
    assert_eq!(stream.stats().subscribers, 2);
    for k in 0..5 {
        stream.publish(frame(0, k)).unwrap();
    }
    assert!(stream.wait_idle(Duration::from_secs(10)));
    assert_eq!(newest.take_newest().map(|r| r.meta.seq), Some(4));
    assert_eq!((newest.delivered(), newest.superseded()), (5, 4));
    assert_eq!(
        every.drain().len(),
        5,
        "a slow subscriber does not cost another one results"
    );
    drop(newest);
    assert_eq!(
        stream.stats().subscribers,
        1,
        "dropping a subscription unsubscribes"
    );
    assert!(service.subscribe(StreamId(999), 1).is_none());
}

#[test]
fn a_closed_stream_delivers_what_is_in_flight_then_closes_its_subscriptions() {
    let (service, _log) = service(1, quick(50));
    let stream = open(&service, "clip", Delivery::LatestWins);
    let id = stream.id();
    let results = stream.subscribe(4);
    stream.publish(frame(0, 0)).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    drop(stream);
    let got = results.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.meta.seq, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !results.is_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(results.is_closed());
    assert!(
        service.streams().iter().all(|s| s.id != id),
        "no longer listed"
    );
    assert!(service.subscribe(id, 1).is_none());
}

/// A one-worker service running `spec` on a lossless stream of four frames: the stream (with its
/// service, which must outlive it) once idle, and the results it delivered.
fn four_frames(spec: FakeSpec) -> (Service, StreamHandle, Vec<StreamResult>) {
    let (service, _log) = service(1, spec);
    let stream = open(&service, "clip", Delivery::Lossless);
    let results = stream.subscribe(16);
    for k in 0..4 {
        stream.publish(frame(0, k)).unwrap();
    }
    assert!(
        stream.wait_idle(Duration::from_secs(10)),
        "the stream did not finish (a worker died with its job?)"
    );
    let got = results.drain();
    (service, stream, got)
}

#[test]
fn a_panic_in_the_engine_fails_that_frame_and_the_worker_goes_on() {
    let spec = FakeSpec {
        panic_at_us: Some(1000),
        ..quick(1)
    };
    let (_service, stream, got) = four_frames(spec);
    assert_eq!(seqs(&got), vec![0, 1, 2, 3]);
    match &got[1].outcome {
        Err(FrameError::Inference(message)) => {
            assert!(
                message.contains("panicked: a bug in the engine"),
                "{message}"
            );
        }
        other => panic!("frame 1: {other:?}"),
    }
    assert!(got[2].outcome.is_ok() && got[3].outcome.is_ok());
    assert_eq!(stream.stats().failed, 1);
}

#[test]
fn a_frame_that_fails_is_delivered_with_its_error_and_the_stream_goes_on() {
    let spec = FakeSpec {
        fail_at_us: Some(2000),
        ..quick(1)
    };
    let (_service, stream, got) = four_frames(spec);
    assert_eq!(seqs(&got), vec![0, 1, 2, 3]);
    assert!(matches!(got[2].outcome, Err(FrameError::Inference(_))));
    assert!(got[3].outcome.is_ok());
    assert_eq!(stream.stats().failed, 1);
    assert_eq!(
        stream.publish(frame(0, 1)),
        Err(PublishError::NonMonotonicTimestamp {
            previous_us: 3000,
            got_us: 1000
        })
    );
}

#[test]
fn reconfiguring_reloads_every_worker_and_keeps_the_old_processor_when_loading_fails() {
    let spec = FakeSpec {
        refuse_model: Some(PoseModel::Lite),
        ..quick(1)
    };
    let (service, log) = service(2, spec);
    assert_eq!(log.loads.load(Ordering::Acquire), 2);
    let stream = open(&service, "clip", Delivery::Lossless);
    let results = stream.subscribe(16);
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !what() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        what()
    };
    service.reconfigure(EngineConfig {
        pose_model: PoseModel::Heavy,
        ..EngineConfig::default()
    });
    assert!(
        wait_for(&|| log.loads.load(Ordering::Acquire) == 4),
        "both workers reload"
    );
    stream.publish(frame(0, 0)).unwrap();
    assert!(stream.wait_idle(Duration::from_secs(5)));
    assert_eq!(results.drain()[0].model, PoseModel::Heavy);
    service.reconfigure(EngineConfig {
        pose_model: PoseModel::Lite,
        ..EngineConfig::default()
    });
    assert!(wait_for(&|| service.stats().reconfigure_error.is_some()));
    stream.publish(frame(0, 1)).unwrap();
    assert!(stream.wait_idle(Duration::from_secs(5)));
    let after = results.drain();
    assert_eq!(
        after[0].model,
        PoseModel::Heavy,
        "the old processor goes on"
    );
    assert_eq!(service.stats().engines_loaded, 2);
}

#[test]
fn stopping_the_service_joins_its_workers_closes_subscriptions_and_refuses_frames() {
    let (service, log) = service(2, quick(30));
    let stream = open(&service, "camera", Delivery::LatestWins);
    let results = stream.subscribe(4);
    stream.publish(frame(0, 0)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    drop(service);
    assert_eq!(
        log.running.load(Ordering::Acquire),
        0,
        "no job runs after the drop"
    );
    assert!(results.is_closed());
    assert_eq!(
        stream.publish(frame(0, 1)),
        Err(PublishError::ServiceStopped)
    );
}
