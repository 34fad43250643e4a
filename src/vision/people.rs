//! Every person in view, each with an identity: the bookkeeping of the multi-person tracker, apart from
//! the models (the engine runs the detector and the landmark model and reports back here).
//!
//! Per frame, for a stream tracking up to `max_people`:
//! 1. **Predict**: each tracked person's region for this frame is last frame's region (from its
//!    auxiliary points) moved by the person's velocity (centre, scale and rotation rates measured from
//!    frame to frame), so a fast pan or zoom neither loses nor swaps people. A person not seen lately
//!    (lost) is predicted where their motion takes them, for at most [`MAX_EXTRAPOLATION_US`].
//! 2. **Detect** ([`PeopleTracker::detection_due`]): on every frame while nobody is tracked; while
//!    fewer than `max_people` are tracked, every `detect_every` frames; and on the frame after a tracked
//!    person was lost or their region jumped.
//! 3. **Associate** ([`PeopleTracker::associate`]): a detection is matched to a person by body keypoints
//!    (hip centre and shoulder centre, relative to the person's torso length, and the torso length
//!    itself), never by the overlap of the large square regions, which loses a second person standing
//!    close. A detection matched to a tracked person changes nothing (the person keeps their region);
//!    matched to a lost person within the grace period, it gives that person back their id (filters
//!    restarted); unmatched, it is a new person with a new id, if there is room.
//! 4. **Landmarks** (the engine) for every tracked person, then [`PeopleTracker::seen`] or
//!    [`PeopleTracker::not_seen`] for each.
//! 5. **Settle** ([`PeopleTracker::settle`]): two people on one body become one (the person whose
//!    motion predicted that body keeps it, the older on a tie; the other is lost, not forgotten, so it can
//!    come back where its own motion goes); people lost for longer than the grace period are forgotten.
//!
//! Ids are per stream, increasing from 1 and never reused.

use crate::vision::landmarks::ImageLandmark;
use crate::vision::landmarks::pose_index::{LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER};
use crate::vision::roi::Roi;

/// A person lost for longer than this is forgotten (their id is retired).
pub const GRACE_US: i64 = 2_000_000;
/// A lost person's predicted position follows their velocity for at most this long, then stays.
pub const MAX_EXTRAPOLATION_US: i64 = 300_000;
/// A detection whose keypoints are within this many torso lengths of a tracked person's prediction is
/// that person.
pub const MATCH_TORSOS: f32 = 0.6;
/// For a lost person the gate widens by this many torso lengths per second lost (up to
/// [`MAX_REACQUIRE_TORSOS`]): where they reappear is less certain the longer they were gone.
pub const REACQUIRE_TORSOS_PER_S: f32 = 1.5;
pub const MAX_REACQUIRE_TORSOS: f32 = 2.5;
/// Two people whose hip and shoulder centres are within this many torso lengths are on one body.
pub const SAME_BODY_TORSOS: f32 = 0.35;
/// A region that moved further than this from its prediction (torso lengths) jumped: detect next frame.
pub const JUMP_TORSOS: f32 = 0.75;
/// Torso lengths of a matched detection and person may differ by at most this factor.
pub const MAX_SCALE_RATIO: f32 = 1.8;
/// The velocity estimate follows a new measurement by this much (EMA).
const VELOCITY_GAIN: f32 = 0.6;

/// A person's id within its stream (from 1, never reused).
pub type PersonId = u64;

/// Where a body is in the image: the hip centre and the shoulder centre, in px.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BodyInImage {
    pub hips_in_image: [f32; 2],
    pub shoulders_in_image: [f32; 2],
}

impl BodyInImage {
    /// From 33 pose landmarks.
    pub fn from_landmarks(landmarks: &[ImageLandmark]) -> Option<Self> {
        let mid = |a: usize, b: usize| -> Option<[f32; 2]> {
            let (pa, pb) = (
                landmarks.get(a)?.pos_in_image,
                landmarks.get(b)?.pos_in_image,
            );
            Some([(pa[0] + pb[0]) * 0.5, (pa[1] + pb[1]) * 0.5])
        };
        let body = Self {
            hips_in_image: mid(LEFT_HIP, RIGHT_HIP)?,
            shoulders_in_image: mid(LEFT_SHOULDER, RIGHT_SHOULDER)?,
        };
        body.is_finite().then_some(body)
    }

    pub fn is_finite(&self) -> bool {
        self.hips_in_image
            .iter()
            .chain(&self.shoulders_in_image)
            .all(|v| v.is_finite())
    }

    /// Hip centre to shoulder centre, px (at least 1).
    pub fn torso_px(&self) -> f32 {
        dist(self.hips_in_image, self.shoulders_in_image).max(1.0)
    }

    /// The middle of the torso.
    pub fn centre_in_image(&self) -> [f32; 2] {
        [
            (self.hips_in_image[0] + self.shoulders_in_image[0]) * 0.5,
            (self.hips_in_image[1] + self.shoulders_in_image[1]) * 0.5,
        ]
    }

    /// How far `other` is from this body: the mean distance of the hip and shoulder centres, in this
    /// body's torso lengths.
    pub fn distance_in_torsos(&self, other: &BodyInImage) -> f32 {
        let d = (dist(self.hips_in_image, other.hips_in_image)
            + dist(self.shoulders_in_image, other.shoulders_in_image))
            * 0.5;
        d / self.torso_px()
    }

    /// The ratio of the larger torso length to the smaller (≥ 1).
    pub fn scale_ratio(&self, other: &BodyInImage) -> f32 {
        let (a, b) = (self.torso_px(), other.torso_px());
        a.max(b) / a.min(b)
    }

    fn moved(&self, by: [f32; 2]) -> Self {
        let add = |p: [f32; 2]| [p[0] + by[0], p[1] + by[1]];
        Self {
            hips_in_image: add(self.hips_in_image),
            shoulders_in_image: add(self.shoulders_in_image),
        }
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// A person found by the detector in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The region the landmark model would look at (from the detection's alignment points).
    pub roi: Roi,
    pub body: BodyInImage,
    pub score: f32,
}

/// How fast a person's region moves: per second, its centre (px), the log of its size, its rotation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoiMotion {
    pub centre_px_per_s: [f32; 2],
    pub log_size_per_s: f32,
    pub rotation_rad_per_s: f32,
}

impl RoiMotion {
    /// The motion from `before` (at `before_us`) to `after` (at `after_us`).
    fn between(before: &Roi, before_us: i64, after: &Roi, after_us: i64) -> Option<Self> {
        let dt = (after_us - before_us) as f32 * 1e-6;
        if !(dt > 0.0) {
            return None;
        }
        let size = |r: &Roi| r.size_in_image[0].max(1e-3);
        let mut turn = after.rotation - before.rotation;
        while turn > std::f32::consts::PI {
            turn -= std::f32::consts::TAU;
        }
        while turn < -std::f32::consts::PI {
            turn += std::f32::consts::TAU;
        }
        let motion = Self {
            centre_px_per_s: [
                (after.center_in_image[0] - before.center_in_image[0]) / dt,
                (after.center_in_image[1] - before.center_in_image[1]) / dt,
            ],
            log_size_per_s: (size(after) / size(before)).ln() / dt,
            rotation_rad_per_s: turn / dt,
        };
        motion.is_finite().then_some(motion)
    }

    fn is_finite(&self) -> bool {
        self.centre_px_per_s[0].is_finite()
            && self.centre_px_per_s[1].is_finite()
            && self.log_size_per_s.is_finite()
            && self.rotation_rad_per_s.is_finite()
    }

    fn blend(self, new: Self, gain: f32) -> Self {
        let mix = |a: f32, b: f32| a + (b - a) * gain;
        Self {
            centre_px_per_s: [
                mix(self.centre_px_per_s[0], new.centre_px_per_s[0]),
                mix(self.centre_px_per_s[1], new.centre_px_per_s[1]),
            ],
            log_size_per_s: mix(self.log_size_per_s, new.log_size_per_s),
            rotation_rad_per_s: mix(self.rotation_rad_per_s, new.rotation_rad_per_s),
        }
    }

    /// `roi` moved on by this motion for `dt_s` seconds.
    pub fn advance(&self, roi: &Roi, dt_s: f32) -> Roi {
        let grow = (self.log_size_per_s * dt_s).exp();
        Roi {
            center_in_image: [
                roi.center_in_image[0] + self.centre_px_per_s[0] * dt_s,
                roi.center_in_image[1] + self.centre_px_per_s[1] * dt_s,
            ],
            size_in_image: [roi.size_in_image[0] * grow, roi.size_in_image[1] * grow],
            rotation: roi.rotation + self.rotation_rad_per_s * dt_s,
        }
    }
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
    pub state: F,
}

impl<F> PersonTrack<F> {
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

/// Where the detector looks: the whole frame, or a tile of it (a person small in the whole frame is
/// larger in a tile, and the detector, which sees its region at 224 px, finds them there).
///
/// Tiles: squares as high as a landscape frame (as wide as a portrait one) along its long side, then a
/// finer grid of squares 2/3 of that, overlapping so a person on a seam is whole in one of them.
pub fn detection_tiles(width: u32, height: u32) -> Vec<Roi> {
    let (w, h) = (width as f32, height as f32);
    let short = w.min(h);
    let mut tiles = Vec::new();
    for (side, overlap) in [(short, 0.0), (short * 2.0 / 3.0, 0.25)] {
        let step = side * (1.0 - overlap);
        let count = |length: f32| ((length - side) / step).ceil().max(0.0) as usize + 1;
        let (nx, ny) = (count(w), count(h));
        if nx * ny <= 1 && side >= short {
            continue;
        }
        for iy in 0..ny {
            for ix in 0..nx {
                let place = |i: usize, n: usize, length: f32| {
                    if n <= 1 {
                        length * 0.5
                    } else {
                        side * 0.5 + (length - side) * i as f32 / (n - 1) as f32
                    }
                };
                tiles.push(Roi {
                    center_in_image: [place(ix, nx, w), place(iy, ny, h)],
                    size_in_image: [side, side],
                    rotation: 0.0,
                });
            }
        }
    }
    tiles
}

/// A stream's people.
#[derive(Debug)]
pub struct PeopleTracker<F> {
    next_id: PersonId,
    pub people: Vec<PersonTrack<F>>,
    frames_since_detection: u32,
    /// Detect in the next frame (someone was lost or jumped).
    detect_next: bool,
    /// Detections so far (the whole frame on every other one, a tile in turn on the others).
    detections: u64,
}

impl<F> Default for PeopleTracker<F> {
    fn default() -> Self {
        Self {
            next_id: 1,
            people: Vec::new(),
            frames_since_detection: 0,
            detect_next: false,
            detections: 0,
        }
    }
}

impl<F> PeopleTracker<F> {
    /// Forgets everyone (ids go on increasing).
    pub fn clear(&mut self) {
        self.people.clear();
        self.frames_since_detection = 0;
        self.detect_next = false;
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
    /// frame; `Some(Some(i))` tile `i` of `tiles`. The whole frame on every other detection and right
    /// after someone was lost (where people most likely are); tiles in turn on the others, while fewer
    /// than `max_people` are tracked. Static mode (no tracking): the whole frame, every frame.
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
            || (tracked < max_people && self.frames_since_detection + 1 >= detect_every.max(1));
        if !due {
            self.frames_since_detection = self.frames_since_detection.saturating_add(1);
            return None;
        }
        self.frames_since_detection = 0;
        self.detect_next = false;
        if !tracking || tiles == 0 || after_loss || tracked >= max_people {
            return Some(None);
        }
        let k = self.detections;
        self.detections += 1;
        Some(if k % 2 == 0 {
            None
        } else {
            Some((k / 2) as usize % tiles)
        })
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
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ci, c) in candidates.iter().enumerate() {
            for (pi, p) in self.people.iter().enumerate() {
                let predicted = p.body_at(timestamp_us);
                let d = predicted.distance_in_torsos(&c.body);
                if d <= p.gate_torsos(timestamp_us)
                    && predicted.scale_ratio(&c.body) <= MAX_SCALE_RATIO
                {
                    // Tracked people are preferred over lost ones at the same distance.
                    let rank = d + if p.is_tracked() { 0.0 } else { 0.5 };
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
                Assignment::Tracked(person.id)
            } else {
                person.roi = Some(candidates[ci].roi);
                person.roi_at_us = timestamp_us;
                person.previous_roi = None;
                person.motion = RoiMotion::default();
                person.lost_since_us = None;
                person.restart_filters = true;
                person.acquired_us = timestamp_us;
                Assignment::Reacquired(person.id)
            });
        }
        let mut tracked = self.tracked();
        candidates
            .iter()
            .zip(out)
            .map(|(c, assigned)| {
                if let Some(a) = assigned {
                    return a;
                }
                // A detection on a body someone already holds (outside the keypoint gate, e.g. a
                // partial view) is not a new person.
                let held = self.people.iter().any(|p| {
                    p.is_tracked()
                        && p.body_at(timestamp_us).distance_in_torsos(&c.body) < MATCH_TORSOS
                });
                if held || tracked >= max_people {
                    return Assignment::Ignored;
                }
                tracked += 1;
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
                    state: make_state(),
                });
                Assignment::New(id)
            })
            .collect()
    }

    /// Person `id` was seen at `timestamp_us` with `body`; `next` is the region their auxiliary points
    /// give (where they are now, the base of the next frame's region). The motion is measured from one
    /// such region to the next. Returns whether the body jumped from where it was predicted (then the
    /// detector runs on the next frame).
    pub fn seen(&mut self, id: PersonId, timestamp_us: i64, body: BodyInImage, next: Roi) -> bool {
        let Some(p) = self.people.iter_mut().find(|p| p.id == id) else {
            return false;
        };
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

/// Of two people on one body, whether `a` keeps it: the one who had been seen before this frame for
/// longer, i.e. whose own motion led there (a person re-acquired or created this frame loses to one
/// who was followed into it), then the older.
fn keeps_body<F>(a: &PersonTrack<F>, b: &PersonTrack<F>) -> bool {
    let fresh = |p: &PersonTrack<F>| p.acquired_us == p.seen_us;
    match (fresh(a), fresh(b)) {
        (false, true) => true,
        (true, false) => false,
        _ => (a.created_us, a.id) <= (b.created_us, b.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(x: f32, y: f32, torso: f32) -> BodyInImage {
        BodyInImage {
            hips_in_image: [x, y + torso * 0.5],
            shoulders_in_image: [x, y - torso * 0.5],
        }
    }

    fn candidate(x: f32, y: f32, torso: f32) -> Candidate {
        Candidate {
            roi: Roi {
                center_in_image: [x, y],
                size_in_image: [3.0 * torso, 3.0 * torso],
                rotation: 0.0,
            },
            body: body(x, y, torso),
            score: 0.9,
        }
    }

    const FRAME_US: i64 = 33_333;

    /// A frame where every person is found where `bodies` are (people matched by nearest prediction).
    fn see_all(t: &mut PeopleTracker<()>, at: i64, bodies: &[(PersonId, f32, f32)]) {
        for &(id, x, y) in bodies {
            let roi = candidate(x, y, 100.0).roi;
            t.seen(id, at, body(x, y, 100.0), roi);
        }
        t.settle(at);
    }

    #[test]
    fn ids_increase_and_a_detection_of_a_tracked_person_changes_nothing() {
        let mut t = PeopleTracker::<()>::default();
        let a = t.associate(
            &[
                candidate(100.0, 200.0, 100.0),
                candidate(500.0, 200.0, 100.0),
            ],
            0,
            3,
            || (),
        );
        assert_eq!(a, vec![Assignment::New(1), Assignment::New(2)]);
        see_all(&mut t, 0, &[(1, 100.0, 200.0), (2, 500.0, 200.0)]);
        let region_before = t.people[0].roi;
        // The same two people a little further on, detected again; and a third.
        let a = t.associate(
            &[
                candidate(510.0, 200.0, 100.0),
                candidate(110.0, 205.0, 100.0),
                candidate(900.0, 200.0, 100.0),
            ],
            FRAME_US,
            3,
            || (),
        );
        assert_eq!(
            a,
            vec![
                Assignment::Tracked(2),
                Assignment::Tracked(1),
                Assignment::New(3)
            ]
        );
        assert_eq!(
            t.people[0].roi, region_before,
            "a tracked person keeps their region"
        );
    }

    #[test]
    fn a_close_second_person_is_not_taken_for_the_first() {
        // Side by side: the big square regions overlap by far more than MediaPipe's association allows,
        // the keypoints do not.
        let mut t = PeopleTracker::<()>::default();
        t.associate(&[candidate(300.0, 300.0, 120.0)], 0, 2, || ());
        see_all(&mut t, 0, &[(1, 300.0, 300.0)]);
        let a = t.associate(
            &[
                candidate(300.0, 300.0, 120.0),
                candidate(380.0, 300.0, 120.0),
            ],
            FRAME_US,
            2,
            || (),
        );
        assert_eq!(a, vec![Assignment::Tracked(1), Assignment::New(2)]);
        let (r1, r2) = (t.people[0].roi.unwrap(), t.people[1].roi.unwrap());
        assert!(r1.iou_ignoring_rotation(&r2) > 0.5, "the regions overlap");
    }

    #[test]
    fn no_more_than_max_people_and_none_over_the_limit() {
        let mut t = PeopleTracker::<()>::default();
        let c: Vec<_> = (0..4)
            .map(|i| candidate(100.0 + 300.0 * i as f32, 200.0, 80.0))
            .collect();
        let a = t.associate(&c, 0, 2, || ());
        assert_eq!(
            a,
            vec![
                Assignment::New(1),
                Assignment::New(2),
                Assignment::Ignored,
                Assignment::Ignored
            ]
        );
        assert_eq!(t.tracked(), 2);
    }

    #[test]
    fn a_lost_person_gets_their_id_back_where_their_motion_predicts_and_a_stranger_gets_a_new_one()
    {
        let mut t = PeopleTracker::<()>::default();
        t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 2, || ());
        // Walking right at 30 px per frame (900 px/s).
        for k in 0..6 {
            let x = 100.0 + 30.0 * k as f32;
            let roi = candidate(x, 300.0, 100.0).roi;
            t.seen(1, k * FRAME_US, body(x, 300.0, 100.0), roi);
            t.settle(k * FRAME_US);
        }
        assert!((t.people[0].motion.centre_px_per_s[0] - 900.0).abs() < 30.0);
        // Hidden for 10 frames (behind someone).
        t.not_seen(1, 6 * FRAME_US);
        t.settle(6 * FRAME_US);
        assert_eq!(t.tracked(), 0);
        assert_eq!(t.people.len(), 1, "kept for the grace period");
        let at = 16 * FRAME_US;
        assert!(t.detection_due(2, 5, true));
        // Back 10 frames later: predicted ~0.3 s of motion on (270 px), found at 480; a stranger at 1200.
        let a = t.associate(
            &[
                candidate(480.0, 300.0, 100.0),
                candidate(1200.0, 300.0, 100.0),
            ],
            at,
            2,
            || (),
        );
        assert_eq!(a, vec![Assignment::Reacquired(1), Assignment::New(2)]);
        assert!(
            t.people[0].restart_filters,
            "filters restart on re-acquisition"
        );
        assert_eq!(t.people[0].acquired_us, at);
    }

    #[test]
    fn a_person_lost_longer_than_the_grace_period_is_forgotten_and_their_id_never_reused() {
        let mut t = PeopleTracker::<()>::default();
        t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 2, || ());
        see_all(&mut t, 0, &[(1, 100.0, 300.0)]);
        t.not_seen(1, FRAME_US);
        t.settle(FRAME_US);
        t.settle(FRAME_US + GRACE_US + 1);
        assert!(t.people.is_empty());
        let a = t.associate(&[candidate(100.0, 300.0, 100.0)], 2 * GRACE_US, 2, || ());
        assert_eq!(a, vec![Assignment::New(2)]);
    }

    #[test]
    fn two_people_on_one_body_become_the_one_that_followed_it() {
        let mut t = PeopleTracker::<()>::default();
        t.associate(
            &[
                candidate(100.0, 300.0, 100.0),
                candidate(400.0, 300.0, 100.0),
            ],
            0,
            2,
            || (),
        );
        see_all(&mut t, 0, &[(1, 100.0, 300.0), (2, 400.0, 300.0)]);
        see_all(&mut t, FRAME_US, &[(1, 110.0, 300.0), (2, 390.0, 300.0)]);
        // Person 2 latches onto person 1's body (a crossing): both report the same place.
        let at = 2 * FRAME_US;
        for id in [1, 2] {
            let roi = candidate(120.0, 300.0, 100.0).roi;
            t.seen(id, at, body(120.0, 300.0, 100.0), roi);
        }
        let given_up = t.settle(at);
        assert_eq!(given_up, vec![2], "the older keeps the body");
        assert_eq!(t.tracked(), 1);
        assert!(
            t.people
                .iter()
                .any(|p| p.id == 2 && p.lost_since_us == Some(at))
        );
    }

    #[test]
    fn the_detector_runs_while_fewer_are_tracked_than_wanted_on_its_cadence() {
        let mut t = PeopleTracker::<()>::default();
        assert!(t.detection_due(2, 4, true), "nobody tracked");
        t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 2, || ());
        see_all(&mut t, 0, &[(1, 100.0, 300.0)]);
        let due: Vec<bool> = (0..8).map(|_| t.detection_due(2, 4, true)).collect();
        assert_eq!(due, [false, false, false, true, false, false, false, true]);
        // With everyone wanted tracked, never (until someone is lost).
        assert!(!(0..10).any(|_| t.detection_due(1, 4, true)));
        t.not_seen(1, FRAME_US);
        assert!(t.detection_due(1, 4, true));
    }

    #[test]
    fn tiles_cover_the_frame_at_two_finer_scales() {
        let tiles = detection_tiles(960, 540);
        // Two 540 px squares, then a 4 × 2 grid of 360 px squares.
        assert_eq!(tiles.len(), 2 + 8, "{tiles:?}");
        assert_eq!(tiles[0].size_in_image, [540.0, 540.0]);
        assert_eq!(tiles[0].center_in_image, [270.0, 270.0]);
        assert_eq!(tiles[1].center_in_image, [690.0, 270.0]);
        for probe in [[5.0, 5.0], [955.0, 535.0], [480.0, 270.0], [700.0, 100.0]] {
            for level in [&tiles[..2], &tiles[2..]] {
                assert!(
                    level.iter().any(|t| {
                        (probe[0] - t.center_in_image[0]).abs() <= t.size_in_image[0] * 0.5
                            && (probe[1] - t.center_in_image[1]).abs() <= t.size_in_image[1] * 0.5
                    }),
                    "{probe:?} in no tile of a level"
                );
            }
        }
        assert!(
            detection_tiles(500, 500)
                .iter()
                .all(|t| t.size_in_image[0] < 500.0)
        );
    }

    #[test]
    fn the_whole_frame_alternates_with_the_tiles_while_someone_is_missing() {
        let mut t = PeopleTracker::<()>::default();
        let regions: Vec<_> = (0..6).map(|_| t.detection_region(2, 1, true, 3)).collect();
        assert_eq!(
            regions,
            [
                Some(None),
                Some(Some(0)),
                Some(None),
                Some(Some(1)),
                Some(None),
                Some(Some(2))
            ]
        );
        assert_eq!(
            t.detection_region(2, 1, false, 3),
            Some(None),
            "static: whole frame"
        );
    }

    #[test]
    fn the_region_follows_the_motion_between_frames() {
        let mut t = PeopleTracker::<()>::default();
        t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 1, || ());
        for k in 0..4 {
            let x = 100.0 + 20.0 * k as f32;
            let roi = candidate(x, 300.0, 100.0).roi;
            t.seen(1, k * FRAME_US, body(x, 300.0, 100.0), roi);
        }
        let next = t.people[0].region_at(4 * FRAME_US, true).unwrap();
        assert!((next.center_in_image[0] - 180.0).abs() < 4.0, "{next:?}");
        let still = t.people[0].region_at(4 * FRAME_US, false).unwrap();
        assert_eq!(still.center_in_image[0], 160.0);
    }
}
