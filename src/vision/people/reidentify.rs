//! A newcomer who was someone lost: a person first seen in a view that did not look like them (half
//! hidden, at an edge of the frame, coming out from behind someone) gets a new id; when, within
//! [`NEWCOMER_US`], their detection looks like a lost person, they are that person and take back
//! their id (the newcomer's id is retired, never reused).

use super::{
    Appearance, Assignment, BodyInImage, Candidate, PeopleTracker, REIDENTIFY_MAX_SCALE_RATIO,
    REIDENTIFY_MIN_SIMILARITY,
};

/// A person given a new id less than this long ago may still turn out to be someone lost.
pub const NEWCOMER_US: i64 = 1_000_000;

/// Which lost people [`PeopleTracker::lost_lookalike`] may return, besides looking at least
/// [`REIDENTIFY_MIN_SIMILARITY`] alike.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lookalike {
    /// Their similarity must exceed this.
    pub more_than: f32,
    /// They must have been first seen before this.
    pub known_before_us: i64,
}

impl Lookalike {
    pub const ANYONE: Self = Self {
        more_than: 0.0,
        known_before_us: i64::MAX,
    };
}

impl<F> PeopleTracker<F> {
    /// The lost person (their index, and how alike) who looks most like `look`, at least
    /// [`REIDENTIFY_MIN_SIMILARITY`], not taken by another detection this frame, last seen with a body
    /// whose torso length is within [`REIDENTIFY_MAX_SCALE_RATIO`] of `body`'s, and allowed by `which`.
    pub(super) fn lost_lookalike(
        &self,
        look: Option<&Appearance>,
        body: &BodyInImage,
        timestamp_us: i64,
        person_taken: &[bool],
        which: Lookalike,
    ) -> Option<(usize, f32)> {
        self.people
            .iter()
            .enumerate()
            .filter(|(pi, p)| {
                !p.is_tracked()
                    && !person_taken.get(*pi).copied().unwrap_or(true)
                    && p.created_us < which.known_before_us
                    && p.body_at(timestamp_us).scale_ratio(body) <= REIDENTIFY_MAX_SCALE_RATIO
            })
            .filter_map(|(pi, p)| {
                p.similarity(look)
                    .filter(|s| *s >= REIDENTIFY_MIN_SIMILARITY && *s > which.more_than)
                    .map(|s| (pi, s))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// For each candidate matched to a newcomer (`out`, by candidate; tracked or back after a moment lost): if the candidate looks like a
    /// lost person (similarity at least [`REIDENTIFY_MIN_SIMILARITY`], and more than like the newcomer's
    /// own first look) who was known before the newcomer, the newcomer takes that person's id, first
    /// sighting and appearance, and the lost person's record goes. `person_taken` (by person index) is
    /// kept in step with the people.
    pub(super) fn newcomers_who_were_lost(
        &mut self,
        candidates: &[Candidate],
        out: &mut [Option<Assignment>],
        person_taken: &mut Vec<bool>,
        timestamp_us: i64,
    ) {
        for (candidate, assigned) in candidates.iter().zip(out.iter_mut()) {
            let Some(Assignment::Tracked(id) | Assignment::Reacquired(id)) = *assigned else {
                continue;
            };
            let Some(ni) = self.people.iter().position(|p| p.id == id) else {
                continue;
            };
            let newcomer = &self.people[ni];
            if timestamp_us - newcomer.created_us > NEWCOMER_US {
                continue;
            }
            let look = candidate.appearance.as_ref();
            let own = newcomer.similarity(look).unwrap_or(0.0);
            let body = newcomer.body_at(timestamp_us);
            let lost = self.lost_lookalike(
                look,
                &body,
                timestamp_us,
                person_taken,
                Lookalike {
                    more_than: own,
                    known_before_us: newcomer.created_us,
                },
            );
            let Some((li, similarity)) = lost else {
                continue;
            };
            let was = self.people.remove(li);
            person_taken.remove(li);
            let ni = if li < ni { ni - 1 } else { ni };
            tracing::debug!(
                "person {id} is person {} again (looks {similarity:.2} alike)",
                was.id
            );
            let person = &mut self.people[ni];
            person.id = was.id;
            person.created_us = was.created_us;
            person.appearance = was.appearance;
            person.appearance_frames = was.appearance_frames;
            person.confirmed |= was.confirmed;
            *assigned = Some(Assignment::Reacquired(was.id));
        }
    }
}
