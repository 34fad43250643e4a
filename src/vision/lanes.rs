//! Several people's landmarks at once. When an engine has the whole inference budget (`solo`) and more
//! than one crop to look at, the crops go through the pose landmark model on parallel lanes, one session
//! of `threads` intra-op threads each, instead of one after the other on one session of `solo_threads`:
//! this small model scales badly over intra-op threads (one crop on two threads takes ~0.75 of its time
//! on one), while two lanes on two cores take two crops in about the time of one
//! (docs/MEASUREMENTS.md, "Speed with several people"). The pose detector can run on the calling
//! thread beside them.
//!
//! A lane is a named scoped thread (`livepose-pose-lane`) for the frame, holding its own session; the
//! lanes beside the caller's are loaded the first time a frame has work for them, so a stream that
//! never sees two people costs no more memory than before.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::vision::error::ModelError;
use crate::vision::image::RgbImage;
use crate::vision::model::{ModelFile, OnnxModel, SessionOptions};
use crate::vision::pose::{PoseLandmarker, RawPose};
use crate::vision::roi::Roi;
use crate::vision::timings::StageTimings;

/// Lanes at most, the caller's included (the default budget is at most 4 threads, and `analyze`
/// tracks at most 3 people by default).
pub const MAX_POSE_LANES: usize = 4;

/// One crop's landmarks (`None`: nobody there).
pub type LandmarkResult = Result<Option<RawPose>, ModelError>;

/// How to load one more lane's session.
#[derive(Clone, Debug)]
pub struct LaneModel {
    pub models_dir: PathBuf,
    pub file: ModelFile,
    pub options: SessionOptions,
    pub refine_kernel: usize,
    pub min_presence: f32,
}

/// The lanes beside the caller's own landmarker.
pub struct PoseLanes {
    model: LaneModel,
    /// Lanes wanted in all, the caller's included (1: no lanes).
    wanted: usize,
    loaded: Vec<PoseLandmarker>,
    /// A lane failed to load: run on the caller's thread from then on (logged once).
    load_failed: bool,
}

impl PoseLanes {
    /// `budget_threads` over lanes of `model.options.intra_threads` each (at most [`MAX_POSE_LANES`]).
    pub fn new(model: LaneModel, budget_threads: usize) -> Self {
        let per_lane = model.options.intra_threads.max(1);
        Self {
            wanted: (budget_threads / per_lane).clamp(1, MAX_POSE_LANES),
            model,
            loaded: Vec::new(),
            load_failed: false,
        }
    }

    /// Lanes ready beside the caller's for `jobs` crops (none when one thread is all there is, or
    /// there is no more than one crop), loading missing ones now.
    pub fn beside(&mut self, jobs: usize) -> &mut [PoseLandmarker] {
        let want = self.wanted.min(jobs).saturating_sub(1);
        while !self.load_failed && self.loaded.len() < want {
            let m = &self.model;
            match OnnxModel::load(&m.models_dir, m.file, m.options) {
                Ok(model) => {
                    self.loaded
                        .push(PoseLandmarker::new(model, m.refine_kernel, m.min_presence))
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot load a second pose landmark session ({e}); several people's \
                         landmarks run one after the other"
                    );
                    self.load_failed = true;
                }
            }
        }
        let ready = want.min(self.loaded.len());
        &mut self.loaded[..ready]
    }
}

/// Runs `first` on the calling thread and, beside it, `rois` through the landmark model on the `beside`
/// lanes; the calling thread takes crops with `own` when `first` is done. Returns `first`'s result and
/// one result per crop, in `rois`' order. A lane that cannot start or panics leaves its crops to the
/// calling thread.
pub fn landmarks_on_lanes<R>(
    image: &RgbImage,
    rois: &[Roi],
    own: &mut PoseLandmarker,
    beside: &mut [PoseLandmarker],
    timings: &mut StageTimings,
    first: impl FnOnce(&mut StageTimings) -> R,
) -> (R, Vec<LandmarkResult>) {
    let next = AtomicUsize::new(0);
    let work = |lane: &mut PoseLandmarker, timings: &mut StageTimings| {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(roi) = rois.get(i) else {
                return done;
            };
            done.push((i, lane.landmarks(image, *roi, timings)));
        }
    };
    let mut results: Vec<Option<LandmarkResult>> = rois.iter().map(|_| None).collect();
    let first_out = std::thread::scope(|scope| {
        let handles: Vec<_> = beside
            .iter_mut()
            .filter_map(|lane| {
                let work = &work;
                std::thread::Builder::new()
                    .name("livepose-pose-lane".into())
                    .spawn_scoped(scope, move || {
                        let mut lane_timings = StageTimings::default();
                        let done = work(lane, &mut lane_timings);
                        (done, lane_timings)
                    })
                    .map_err(|e| tracing::warn!("cannot start a pose lane: {e}"))
                    .ok()
            })
            .collect();
        let first_out = first(timings);
        for (i, r) in work(own, timings) {
            results[i] = Some(r);
        }
        for handle in handles {
            match handle.join() {
                Ok((done, lane_timings)) => {
                    timings.merge(&lane_timings);
                    for (i, r) in done {
                        results[i] = Some(r);
                    }
                }
                Err(_) => tracing::warn!("a pose lane panicked; its crops run again here"),
            }
        }
        first_out
    });
    let results = results
        .into_iter()
        .zip(rois)
        .map(|(r, roi)| r.unwrap_or_else(|| own.landmarks(image, *roi, timings)))
        .collect();
    (first_out, results)
}
