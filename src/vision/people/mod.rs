//! Every person in view, each with an identity: the bookkeeping of the multi-person tracker, apart from
//! the models (the engine runs the detector and the landmark model and reports back here).
//!
//! Per frame, for a stream tracking up to `max_people`:
//! 1. **Predict**: each tracked person's region for this frame is last frame's region (from its
//!    auxiliary points) moved by the person's velocity (centre, scale and rotation rates measured from
//!    frame to frame), so a fast pan or zoom neither loses nor swaps people. A person not seen lately
//!    (lost) is predicted where their motion takes them, for at most [`MAX_EXTRAPOLATION_US`].
//! 2. **Detect** ([`PeopleTracker::detection_due`]): on every frame while nobody is tracked; while
//!    fewer than `max_people` are tracked, every `detect_every` frames, backing off to
//!    `detect_every` × [`MAX_BACKOFF`] while detections find nobody new and nobody is lost; and on the
//!    frame after a tracked person was lost or their region jumped. While someone is missing, each
//!    detection looks at the whole frame and at one square tile of it ([`tiles`]), where small people
//!    are larger.
//! 3. **Associate** ([`PeopleTracker::associate`]): a detection is matched to a person by body keypoints
//!    (hip centre and shoulder centre, relative to the person's torso length, and the torso length
//!    itself), never by the overlap of the large square regions, which loses a second person standing
//!    close. A detection matched to a tracked person changes nothing (the person keeps their region),
//!    except for a body whose legs the landmark model does not see, matched closely with nobody else
//!    near, whose region's size has drifted from the detection's ([`REANCHOR_MAX_LEGS_VISIBILITY`]):
//!    it takes the detection's region. Matched to a lost person
//!    within the grace period, a detection gives that person back their id (filters restarted);
//!    unmatched, it is a new person with a new id, if there is room. A new person near someone tracked
//!    is reported from their [`CONFIRM_FRAMES`]th frame (a partial view of someone lives a frame or
//!    two).
//! 4. **Landmarks** (the engine) for every tracked person, then [`PeopleTracker::seen`] or
//!    [`PeopleTracker::not_seen`] for each.
//! 5. **Settle** ([`PeopleTracker::settle`]): two people on one body become one (the person whose
//!    motion predicted that body keeps it, the older on a tie; the other is lost, not forgotten, so it can
//!    come back where its own motion goes); people lost for longer than the grace period are forgotten.
//!
//! Ids are per stream, increasing from 1 and never reused.

pub mod appearance;
mod body;
mod motion;
mod reidentify;
mod tiles;

pub use appearance::Appearance;
pub use body::BodyInImage;
pub use motion::RoiMotion;
pub use tiles::{add_tile_candidates, detection_tiles, pick_tile};

use crate::vision::roi::Roi;
use reidentify::Lookalike;

/// A person lost for longer than this is forgotten (their id is retired).
pub const GRACE_US: i64 = 4_000_000;
/// A lost person's predicted position follows their velocity for at most this long, then stays.
pub const MAX_EXTRAPOLATION_US: i64 = 300_000;
/// A detection whose keypoints are within this many torso lengths of a tracked person's prediction is
/// that person.
pub const MATCH_TORSOS: f32 = 0.6;
/// For a lost person the gate widens by this many torso lengths per second lost (up to
/// [`MAX_REACQUIRE_TORSOS`]): where they reappear is less certain the longer they were gone.
pub const REACQUIRE_TORSOS_PER_S: f32 = 1.5;
pub const MAX_REACQUIRE_TORSOS: f32 = 2.5;
/// A detection this near a tracked person (torso lengths) that looks just like them
/// ([`REIDENTIFY_MIN_SIMILARITY`]) is them seen differently (a partial view), not a new person.
pub const HELD_LOOKALIKE_TORSOS: f32 = 1.0;
/// Two people whose hip and shoulder centres are within this many torso lengths are on one body.
pub const SAME_BODY_TORSOS: f32 = 0.35;
/// A region that moved further than this from its prediction (torso lengths) jumped: detect next frame.
pub const JUMP_TORSOS: f32 = 0.75;
/// Torso lengths of a matched detection and person may differ by at most this factor.
pub const MAX_SCALE_RATIO: f32 = 1.8;
/// A tracked person whose legs the landmark model saw less than this (mean visibility of knees and
/// ankles) takes the region of a detection matched within [`REANCHOR_MAX_TORSOS`] of their prediction
/// when nobody else, tracked, lost or detected, is within [`REANCHOR_CLEAR_TORSOS`] of it, and their
/// region's size differs from the detection's by [`REANCHOR_MIN_SIZE_RATIO`] or more. The region the
/// landmarks of a body cut at the waist give drifts from frame to frame (the model places the hidden
/// hips lower in a larger region, which gives a larger region), while the detector's stays on what is
/// visible. Chosen on the tuning clips (docs/MEASUREMENTS.md, "Cut bodies take the detector's
/// region"): full bodies (`kenburns_messi`, legs 0.87–0.96) keep their own region, which is better
/// for them; cut ones (the astronaut, 0.0–0.5) drifted up to 40 px off between detections; a steady
/// upper body (`carphone`, sizes within 0.96–1.14 of the detection's) keeps its own, or its landmarks
/// jitter ~25 % more.
pub const REANCHOR_MAX_LEGS_VISIBILITY: f32 = 0.5;
pub const REANCHOR_MAX_TORSOS: f32 = 0.35;
pub const REANCHOR_CLEAR_TORSOS: f32 = 1.2;
pub const REANCHOR_MIN_SIZE_RATIO: f32 = 1.15;
/// A person found while someone else is tracked within [`CONFIRM_NEAR_TORSOS`] of them is reported
/// only once the landmark model has found them in this many frames: near someone, a new body is often a
/// partial view of them that lives a frame or two (a "ghost", which the scorer counts as an id switch
/// when it lands on a hidden person). A person found alone, or when nobody was known, is reported at
/// once. DeepSORT's tentative tracks (`n_init` 3) do the same. Chosen on the tuning clips
/// (docs/MEASUREMENTS.md, "The whole frame and a tile at every detection").
pub const CONFIRM_FRAMES: u32 = 3;
pub const CONFIRM_NEAR_TORSOS: f32 = 2.0;
/// The velocity estimate follows a new measurement by this much (EMA).
const VELOCITY_GAIN: f32 = 0.6;
/// A lost person is given back their id only by a body at least this similar to how they looked.
pub const REACQUIRE_MIN_SIMILARITY: f32 = 0.5;
/// A body found outside every gate that looks at least this much like a lost person is that person
/// (re-identification by appearance alone: someone who moved further than predicted while hidden).
/// Chosen on `mp_cross2` (the same person scored 0.89–0.98, other people at most 0.69); the held-out
/// clips were scored after (docs/MEASUREMENTS.md, "Several people").
pub const REIDENTIFY_MIN_SIMILARITY: f32 = 0.85;
/// Re-identified by appearance alone, torso lengths may differ by this factor (wider than
/// [`MAX_SCALE_RATIO`]: the look is the evidence, and the body a lost person was last seen with may come
/// from a partial view).
pub const REIDENTIFY_MAX_SCALE_RATIO: f32 = 4.0;
/// A tracked person whose region now shows a body this dissimilar to how they looked (after
/// [`SETTLED_LOOK_FRAMES`] frames of looking at them) has slid onto someone else: they are lost.
pub const SLID_MAX_SIMILARITY: f32 = 0.3;
pub const SETTLED_LOOK_FRAMES: u32 = 5;
/// A settled appearance model learns from a view only when it is at least this similar to it.
pub const LEARN_MIN_SIMILARITY: f32 = 0.75;
/// How fast a person's appearance model follows what is seen (EMA).
const APPEARANCE_GAIN: f32 = 0.1;

/// A person's id within its stream (from 1, never reused).
pub type PersonId = u64;

/// A person found by the detector in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The region the landmark model would look at (from the detection's alignment points).
    pub roi: Roi,
    pub body: BodyInImage,
    pub score: f32,
    /// How the torso looks (none when it is mostly out of the image).
    pub appearance: Option<Appearance>,
}

/// One person of a stream, tracked or lost (within the grace period). `F` is the per-person state the
/// engine keeps (the smoothing filters).
#[derive(Debug)]
pub struct PersonTrack<F> {
    pub id: PersonId,
    /// When the person was first seen.
    pub created_us: i64,
    /// When the person was last created or re-acquired from a detection.
    pub acquired_us: i64,
    /// The region for the next frame at `roi_at_us`, before motion; `None` while lost.
    pub roi: Option<Roi>,
    pub roi_at_us: i64,
    /// The region the auxiliary points gave the frame before, and when (for the motion estimate).
    previous_roi: Option<(Roi, i64)>,
    pub motion: RoiMotion,
    /// The body as last seen, and when.
    pub body: BodyInImage,
    pub seen_us: i64,
    /// Lost since (no landmarks, or given up to another person on the same body).
    pub lost_since_us: Option<i64>,
    /// Restart the filters at the next landmarks (the person was re-acquired from a detection).
    pub restart_filters: bool,
    /// How the person looks (a slowly updated model), from how many frames, and how they looked in the
    /// frame they were last seen.
    pub appearance: Option<Appearance>,
    pub appearance_frames: u32,
    pub last_look: Option<Appearance>,
    /// Frames in which the landmark model found the person since they were created.
    pub seen_frames: u32,
    /// Reported ([`CONFIRM_FRAMES`]).
    pub confirmed: bool,
    pub state: F,
}

impl<F> PersonTrack<F> {
    /// How similar `look` is to how the person looks (`None` when either is unknown).
    pub fn similarity(&self, look: Option<&Appearance>) -> Option<f32> {
        Some(self.appearance.as_ref()?.similarity(look?))
    }

    /// Whether `look` shows someone else than the person, by a settled appearance model.
    pub fn looks_like_someone_else(&self, look: Option<&Appearance>) -> bool {
        self.appearance_frames >= SETTLED_LOOK_FRAMES
            && self
                .similarity(look)
                .is_some_and(|s| s < SLID_MAX_SIMILARITY)
    }

    /// Tracked again from `roi`, found at `timestamp_us`: motion and filters start afresh.
    fn reacquire(&mut self, roi: Roi, timestamp_us: i64) {
        self.roi = Some(roi);
        self.roi_at_us = timestamp_us;
        self.previous_roi = None;
        self.motion = RoiMotion::default();
        self.lost_since_us = None;
        self.restart_filters = true;
        self.acquired_us = timestamp_us;
    }

    /// Whether the landmark model saw little of the person's legs when they were last seen (a cut
    /// body): a close detection may give them its region ([`REANCHOR_MAX_LEGS_VISIBILITY`]).
    fn legs_unseen(&self) -> bool {
        self.body
            .legs_visibility
            .is_some_and(|v| v < REANCHOR_MAX_LEGS_VISIBILITY)
    }

    pub fn is_tracked(&self) -> bool {
        self.lost_since_us.is_none() && self.roi.is_some()
    }

    /// The region to look at in a frame at `timestamp_us`: the last region moved on by the motion
    /// (`use_motion`), or as it was.
    pub fn region_at(&self, timestamp_us: i64, use_motion: bool) -> Option<Roi> {
        let roi = self.roi?;
        if !use_motion {
            return Some(roi);
        }
        let dt_s = ((timestamp_us - self.roi_at_us).clamp(0, MAX_EXTRAPOLATION_US)) as f32 * 1e-6;
        Some(self.motion.advance(&roi, dt_s))
    }

    /// Where the body is expected in a frame at `timestamp_us`.
    pub fn body_at(&self, timestamp_us: i64) -> BodyInImage {
        let dt_s = ((timestamp_us - self.seen_us).clamp(0, MAX_EXTRAPOLATION_US)) as f32 * 1e-6;
        let v = self.motion.centre_px_per_s;
        self.body.moved([v[0] * dt_s, v[1] * dt_s])
    }

    /// The association gate for this person at `timestamp_us`, in torso lengths.
    fn gate_torsos(&self, timestamp_us: i64) -> f32 {
        match self.lost_since_us {
            None => MATCH_TORSOS,
            Some(since) => {
                let lost_s = (timestamp_us - since).max(0) as f32 * 1e-6;
                (MATCH_TORSOS + REACQUIRE_TORSOS_PER_S * lost_s).min(MAX_REACQUIRE_TORSOS)
            }
        }
    }
}

/// What association decided for one detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// A person tracked already (they keep their own region).
    Tracked(PersonId),
    /// A lost person, back (their region now comes from the detection).
    Reacquired(PersonId),
    /// A new person.
    New(PersonId),
    /// Nobody, and no room for another person (or the detection is a person tracked twice).
    Ignored,
}

/// A stream's people.
#[derive(Debug)]
pub struct PeopleTracker<F> {
    next_id: PersonId,
    pub people: Vec<PersonTrack<F>>,
    frames_since_detection: u32,
    /// Detect in the next frame (someone was lost or jumped).
    detect_next: bool,
    /// Detections with a tile so far (the tiles take turns).
    detections: u64,
    /// The detection interval is `detect_every` times this: doubled (up to [`MAX_BACKOFF`]) after each
    /// detection that finds nobody new while nobody is lost, back to 1 when someone is found or lost.
    backoff: u32,
}

/// At most this many times `detect_every` between detections while the detector finds nobody new
/// (a person alone in view costs little more than with `max_people` 1; someone walking in is found
/// within `detect_every` × this frames).
pub const MAX_BACKOFF: u32 = 2;

impl<F> Default for PeopleTracker<F> {
    fn default() -> Self {
        Self {
            next_id: 1,
            people: Vec::new(),
            frames_since_detection: 0,
            detect_next: false,
            detections: 0,
            backoff: 1,
        }
    }
}

impl<F> PeopleTracker<F> {
    /// Forgets everyone (ids go on increasing).
    pub fn clear(&mut self) {
        self.people.clear();
        self.frames_since_detection = 0;
        self.detect_next = false;
        self.backoff = 1;
    }

    pub fn tracked(&self) -> usize {
        self.people.iter().filter(|p| p.is_tracked()).count()
    }

    pub fn get_mut(&mut self, id: PersonId) -> Option<&mut PersonTrack<F>> {
        self.people.iter_mut().find(|p| p.id == id)
    }

    /// Whether the detector runs on this frame (and counts the frame).
    pub fn detection_due(&mut self, max_people: usize, detect_every: u32, tracking: bool) -> bool {
        self.detection_region(max_people, detect_every, tracking, 0)
            .is_some()
    }

    /// Whether the detector runs on this frame, and where: `None` not at all; `Some(None)` the whole
    /// frame; `Some(Some(i))` the whole frame and a tile, the tiles taking turns from `i` (see
    /// [`pick_tile`]). A tile while fewer than `max_people` are tracked, except right after someone
    /// was lost (the whole frame only: they are most likely where they were). Static mode (no
    /// tracking): the whole frame, every frame.
    pub fn detection_region(
        &mut self,
        max_people: usize,
        detect_every: u32,
        tracking: bool,
        tiles: usize,
    ) -> Option<Option<usize>> {
        let tracked = self.tracked();
        let after_loss = self.detect_next;
        let due = !tracking
            || tracked == 0
            || after_loss
            || (tracked < max_people
                && self.frames_since_detection + 1
                    >= detect_every.max(1).saturating_mul(self.backoff.max(1)));
        if !due {
            self.frames_since_detection = self.frames_since_detection.saturating_add(1);
            return None;
        }
        self.frames_since_detection = 0;
        if after_loss {
            self.backoff = 1;
        }
        self.detect_next = false;
        if !tracking || tiles == 0 || after_loss || tracked >= max_people {
            return Some(None);
        }
        let k = self.detections;
        self.detections += 1;
        Some(Some(k as usize % tiles))
    }

    /// Whether person `id` is reported ([`CONFIRM_FRAMES`]).
    pub fn is_confirmed(&self, id: PersonId) -> bool {
        self.people.iter().any(|p| p.id == id && p.confirmed)
    }

    /// Matches this frame's detections (best score first) to the people: tracked ones first, then lost
    /// ones within the grace period, then new people while fewer than `max_people` are tracked. Returns
    /// one assignment per candidate, in the candidates' order; new and re-acquired people get the
    /// candidate's region. `make_state` gives a new person its engine state.
    pub fn associate(
        &mut self,
        candidates: &[Candidate],
        timestamp_us: i64,
        max_people: usize,
        mut make_state: impl FnMut() -> F,
    ) -> Vec<Assignment> {
        let scene_was_empty = self.people.is_empty();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ci, c) in candidates.iter().enumerate() {
            for (pi, p) in self.people.iter().enumerate() {
                let predicted = p.body_at(timestamp_us);
                let d = predicted.distance_in_torsos(&c.body);
                let similarity = p.similarity(c.appearance.as_ref());
                // A lost person comes back only as someone who looks like them.
                let looks_right =
                    p.is_tracked() || similarity.is_none_or(|s| s >= REACQUIRE_MIN_SIMILARITY);
                if d <= p.gate_torsos(timestamp_us)
                    && predicted.scale_ratio(&c.body) <= MAX_SCALE_RATIO
                    && looks_right
                {
                    // Tracked people are preferred over lost ones at the same distance; between lost
                    // ones, who looks more alike.
                    let rank = d + if p.is_tracked() {
                        0.0
                    } else {
                        0.5 + (1.0 - similarity.unwrap_or(0.5))
                    };
                    pairs.push((rank, ci, pi));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = vec![None; candidates.len()];
        let mut person_taken = vec![false; self.people.len()];
        for (_, ci, pi) in pairs {
            if out[ci].is_some() || person_taken[pi] {
                continue;
            }
            person_taken[pi] = true;
            let person = &mut self.people[pi];
            out[ci] = Some(if person.is_tracked() {
                let id = person.id;
                self.reanchor_if_clear(pi, ci, candidates, timestamp_us);
                Assignment::Tracked(id)
            } else {
                person.reacquire(candidates[ci].roi, timestamp_us);
                Assignment::Reacquired(person.id)
            });
        }
        self.newcomers_who_were_lost(candidates, &mut out, &mut person_taken, timestamp_us);
        let mut tracked = self.tracked();
        if tracing::enabled!(tracing::Level::TRACE) {
            for (ci, c) in candidates.iter().enumerate() {
                let near: Vec<String> = self
                    .people
                    .iter()
                    .map(|p| {
                        format!(
                            "#{}{} d {:.2}/{:.2} scale {:.2} sim {:?}",
                            p.id,
                            if p.is_tracked() { "" } else { " lost" },
                            p.body_at(timestamp_us).distance_in_torsos(&c.body),
                            p.gate_torsos(timestamp_us),
                            p.body_at(timestamp_us).scale_ratio(&c.body),
                            p.similarity(c.appearance.as_ref())
                        )
                    })
                    .collect();
                tracing::trace!(
                    "t {} candidate {ci} at {:?} score {:.2}: {} -> {:?}",
                    timestamp_us / 33_333,
                    c.body.centre_in_image(),
                    c.score,
                    near.join(", "),
                    out[ci]
                );
            }
        }
        let assignments: Vec<Assignment> = candidates
            .iter()
            .zip(out)
            .map(|(c, assigned)| {
                if let Some(a) = assigned {
                    return a;
                }
                // A detection on a body someone already holds (outside the keypoint gate, e.g. a
                // partial view, or near it and looking just like them) is not a new person.
                let held = self.people.iter().any(|p| {
                    let d = p.body_at(timestamp_us).distance_in_torsos(&c.body);
                    p.is_tracked()
                        && (d < MATCH_TORSOS
                            || (d < HELD_LOOKALIKE_TORSOS
                                && p.similarity(c.appearance.as_ref())
                                    .is_some_and(|s| s >= REIDENTIFY_MIN_SIMILARITY)))
                });
                if held || tracked >= max_people {
                    return Assignment::Ignored;
                }
                // Someone lost who looks just like this body, wherever they were: them again.
                // (People added for earlier candidates are past `person_taken`: tracked.)
                let reidentified = self.lost_lookalike(
                    c.appearance.as_ref(),
                    &c.body,
                    timestamp_us,
                    &person_taken,
                    Lookalike::ANYONE,
                );
                if let Some((pi, _)) = reidentified
                    && let Some(taken) = person_taken.get_mut(pi)
                {
                    *taken = true;
                    let person = &mut self.people[pi];
                    person.reacquire(c.roi, timestamp_us);
                    tracked += 1;
                    return Assignment::Reacquired(person.id);
                }
                tracked += 1;
                let alone = !self.people.iter().any(|p| {
                    p.is_tracked()
                        && p.body_at(timestamp_us).distance_in_torsos(&c.body) < CONFIRM_NEAR_TORSOS
                });
                let id = self.next_id;
                self.next_id += 1;
                self.people.push(PersonTrack {
                    id,
                    created_us: timestamp_us,
                    acquired_us: timestamp_us,
                    roi: Some(c.roi),
                    roi_at_us: timestamp_us,
                    previous_roi: None,
                    motion: RoiMotion::default(),
                    body: c.body,
                    seen_us: timestamp_us,
                    lost_since_us: None,
                    restart_filters: true,
                    appearance: c.appearance.clone(),
                    appearance_frames: u32::from(c.appearance.is_some()),
                    last_look: c.appearance.clone(),
                    seen_frames: 0,
                    confirmed: scene_was_empty || alone,
                    state: make_state(),
                });
                Assignment::New(id)
            })
            .collect();
        let found = assignments
            .iter()
            .any(|a| matches!(a, Assignment::New(_) | Assignment::Reacquired(_)));
        let anyone_lost = self.people.iter().any(|p| !p.is_tracked());
        self.backoff = if found || anyone_lost {
            1
        } else {
            (self.backoff.max(1) * 2).min(MAX_BACKOFF)
        };
        assignments
    }

    /// Tracked person `pi`, matched to detection `ci`: a body whose legs the model does not see takes
    /// the detection's region when the match is close and nobody else is near (see
    /// [`REANCHOR_MAX_LEGS_VISIBILITY`]). Its size's rate of change starts afresh: what was measured
    /// was the drift.
    fn reanchor_if_clear(
        &mut self,
        pi: usize,
        ci: usize,
        candidates: &[Candidate],
        timestamp_us: i64,
    ) {
        let (Some(person), Some(c)) = (self.people.get(pi), candidates.get(ci)) else {
            return;
        };
        // A region near the detection's size has not drifted: keeping it keeps a steady upper body
        // (at a desk) as steady as before.
        let drifted = person.region_at(timestamp_us, true).is_some_and(|r| {
            let (a, b) = (r.size_in_image[0], c.roi.size_in_image[0]);
            a.max(b) >= REANCHOR_MIN_SIZE_RATIO * a.min(b)
        });
        if !person.legs_unseen()
            || !drifted
            || person.body_at(timestamp_us).distance_in_torsos(&c.body) > REANCHOR_MAX_TORSOS
        {
            return;
        }
        let near = |d: f32| d <= REANCHOR_CLEAR_TORSOS;
        let someone_near =
            self.people.iter().enumerate().any(|(pj, q)| {
                pj != pi && near(q.body_at(timestamp_us).distance_in_torsos(&c.body))
            }) || candidates
                .iter()
                .enumerate()
                .any(|(cj, o)| cj != ci && near(c.body.distance_in_torsos(&o.body)));
        if someone_near {
            return;
        }
        let Some(person) = self.people.get_mut(pi) else {
            return;
        };
        tracing::trace!(
            "t {} #{} takes the detection's region",
            timestamp_us / 33_333,
            person.id
        );
        person.roi = Some(c.roi);
        person.roi_at_us = timestamp_us;
        person.previous_roi = None;
        person.motion.log_size_per_s = 0.0;
    }

    /// Person `id` was seen at `timestamp_us` with `body` looking like `look`; `next` is the region
    /// their auxiliary points give (where they are now, the base of the next frame's region). The motion
    /// is measured from one such region to the next. Returns whether the body jumped from where it was
    /// predicted (then the detector runs on the next frame).
    pub fn seen(
        &mut self,
        id: PersonId,
        timestamp_us: i64,
        body: BodyInImage,
        next: Roi,
        look: Option<Appearance>,
    ) -> bool {
        let Some(p) = self.people.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        if let Some(look) = &look {
            match &mut p.appearance {
                // A settled model learns only from views like it: a view half of someone else (a
                // crossing, a region sliding over) would teach it the other person's look, and the
                // person would not be known by it when they come back.
                Some(model)
                    if p.appearance_frames >= SETTLED_LOOK_FRAMES
                        && model.similarity(look) < LEARN_MIN_SIMILARITY => {}
                Some(model) => {
                    model.blend(look, APPEARANCE_GAIN);
                    p.appearance_frames = p.appearance_frames.saturating_add(1);
                }
                None => {
                    p.appearance = Some(look.clone());
                    p.appearance_frames = 1;
                }
            }
        }
        p.last_look = look;
        p.seen_frames = p.seen_frames.saturating_add(1);
        p.confirmed |= p.seen_frames >= CONFIRM_FRAMES;
        let jumped = p.lost_since_us.is_none()
            && p.seen_us < timestamp_us
            && p.body_at(timestamp_us).distance_in_torsos(&body) > JUMP_TORSOS;
        if let Some((before, before_us)) = p.previous_roi
            && let Some(m) = RoiMotion::between(&before, before_us, &next, timestamp_us)
        {
            p.motion = p.motion.blend(m, VELOCITY_GAIN);
        }
        p.previous_roi = Some((next, timestamp_us));
        p.roi = Some(next);
        p.roi_at_us = timestamp_us;
        p.body = body;
        p.seen_us = timestamp_us;
        p.lost_since_us = None;
        p.restart_filters = false;
        if jumped {
            // The motion measured across a jump is not the person's.
            p.motion = RoiMotion::default();
            p.previous_roi = None;
            self.detect_next = true;
        }
        jumped
    }

    /// Person `id` was not found in their region at `timestamp_us`: lost, kept for the grace period;
    /// the detector runs on the next frame.
    pub fn not_seen(&mut self, id: PersonId, timestamp_us: i64) {
        tracing::trace!("t {} #{id} not seen", timestamp_us / 33_333);
        if let Some(p) = self.people.iter_mut().find(|p| p.id == id) {
            lose(p, timestamp_us);
            self.detect_next = true;
        }
    }

    /// After a frame: two people on one body become one, and people lost longer than the grace period
    /// are forgotten. Returns the ids given up to another person this frame.
    pub fn settle(&mut self, timestamp_us: i64) -> Vec<PersonId> {
        let mut given_up = Vec::new();
        let seen_now: Vec<usize> = (0..self.people.len())
            .filter(|&i| self.people[i].is_tracked() && self.people[i].seen_us == timestamp_us)
            .collect();
        for (k, &i) in seen_now.iter().enumerate() {
            for &j in &seen_now[k + 1..] {
                let (a, b) = (&self.people[i], &self.people[j]);
                if !a.is_tracked() || !b.is_tracked() {
                    continue;
                }
                if a.body.distance_in_torsos(&b.body) > SAME_BODY_TORSOS {
                    continue;
                }
                let loser = if keeps_body(a, b) { j } else { i };
                tracing::trace!(
                    "t {} #{} and #{} on one body: #{} gives it up",
                    timestamp_us / 33_333,
                    a.id,
                    b.id,
                    self.people[loser].id
                );
                lose(&mut self.people[loser], timestamp_us);
                given_up.push(self.people[loser].id);
                self.detect_next = true;
            }
        }
        self.people.retain(|p| match p.lost_since_us {
            Some(since) => timestamp_us - since <= GRACE_US,
            None => true,
        });
        given_up
    }
}

fn lose<F>(p: &mut PersonTrack<F>, timestamp_us: i64) {
    if p.lost_since_us.is_none() {
        p.lost_since_us = Some(timestamp_us);
    }
    p.roi = None;
    p.previous_roi = None;
}

/// Of two people on one body, whether `a` keeps it: the one the body looks more like (by a clear
/// margin); else the one who had been seen before this frame for longer, i.e. whose own motion led
/// there (a person re-acquired or created this frame loses to one who was followed into it); then the
/// older.
fn keeps_body<F>(a: &PersonTrack<F>, b: &PersonTrack<F>) -> bool {
    let look = a.last_look.as_ref().or(b.last_look.as_ref());
    if let (Some(sa), Some(sb)) = (a.similarity(look), b.similarity(look))
        && (sa - sb).abs() > 0.15
    {
        return sa > sb;
    }
    let fresh = |p: &PersonTrack<F>| p.acquired_us == p.seen_us;
    match (fresh(a), fresh(b)) {
        (false, true) => true,
        (true, false) => false,
        _ => (a.created_us, a.id) <= (b.created_us, b.id),
    }
}

#[cfg(test)]
mod tests;
