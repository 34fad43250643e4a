//! The real app (headless, Xvfb + lavapipe) on a shared crossing clip, `mp_cross2` (two people, one
//! passing in front of the other), checked against the clip's truth (`tests/fixtures/multiperson/`),
//! not against what the overlay reports:
//! - in the screenshot, every person the truth has clearly in the frame shown (at least 16 visible landmarks) is
//!   drawn where the truth puts them: near at least 60 % of their visible landmarks (mapped into the
//!   window) the screenshot has a person colour, and it is the colour of the id the app gave the person
//!   nearest to them (each id has its own colour): the label and colour are that person's;
//! - over every result the app took in the clip's first pass (its dump lists each result's people: id
//!   and hip centre), each true person is matched to the nearest output person by hip centre (within
//!   their torso length) and their id changes at most once (the truth's crossing), and everyone is
//!   found in at least 70 % of the results where the truth has them clearly in view (at least 16
//!   visible landmarks: half hidden behind the other, a person need not be found);
//! - the 3D view draws an avatar per person.
//!
//! The app tracks at the clip's real rate with frames dropped when it falls behind; the frame shown
//! (`shown_frame_seq`) is the clip frame `seq % 90` (the file source loops and numbers every frame it
//! publishes). Runs with `--no-interpolation`, so the skeleton drawn is the result of the frame shown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use serde_json::Value;

use livepose::app::PERSON_COLORS;

const CLIP_FRAMES: u64 = 90;

fn truth() -> Vec<Value> {
    crate::common::read_jsonl("multiperson/mp_cross2.truth.jsonl")
}

/// Visible landmarks a true person needs here to count as clearly in view (half of the 33: a person half
/// hidden behind the other is not required to be found or drawn).
const IN_VIEW: usize = 16;

/// A true person of a truth line: their id, their visible landmarks (index, x, y) and all 33.
type TruePerson<'a> = (u64, Vec<(usize, f64, f64)>, &'a Value);

/// The true people of a truth line clearly in view.
fn visible(line: &Value) -> Vec<TruePerson<'_>> {
    line["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let points: Vec<(usize, f64, f64)> = p["landmarks"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .filter(|(_, l)| l[2].as_bool().unwrap())
                .map(|(i, l)| (i, l[0].as_f64().unwrap(), l[1].as_f64().unwrap()))
                .collect();
            (p["person"].as_u64().unwrap(), points, &p["landmarks"])
        })
        .filter(|(_, points, _)| points.len() >= IN_VIEW)
        .collect()
}

/// The hip centre of a truth person's 33 landmarks.
fn hips(all: &Value) -> Option<(f64, f64)> {
    let l = all.as_array()?;
    let (a, b) = (&l[23], &l[24]);
    Some((
        (a[0].as_f64()? + b[0].as_f64()?) / 2.0,
        (a[1].as_f64()? + b[1].as_f64()?) / 2.0,
    ))
}

fn srgb8(c: bevy::prelude::Color) -> [u8; 3] {
    let c = c.to_srgba();
    [
        (c.red * 255.0) as u8,
        (c.green * 255.0) as u8,
        (c.blue * 255.0) as u8,
    ]
}

/// The id whose colour `p` is (within 40 levels per channel), if any.
fn id_of_colour(p: &image::Rgb<u8>) -> Option<u64> {
    PERSON_COLORS.iter().enumerate().find_map(|(i, c)| {
        let c = srgb8(*c);
        (0..3)
            .all(|k| (i32::from(p[k]) - i32::from(c[k])).abs() <= 40)
            .then_some(i as u64 + 1)
    })
}

#[test]
fn the_app_draws_everyone_where_the_truth_puts_them_and_ids_stay_with_their_people() {
    let _heavy = crate::common::heavy();
    let clip = crate::common::fixture("multiperson/mp_cross2.mjpeg");
    let (state, png, _) = crate::app_headless::run_app_after(
        "people",
        &[
            "--source",
            clip.to_str().unwrap(),
            "--no-server",
            "--no-interpolation",
            "--no-hands",
            "--max-people",
            "3",
        ],
        "5",
        "40",
    );
    let truth = truth();
    // 1. The screenshot: everyone drawn where the truth puts them, in the colour of their id.
    let seq = state["shown_frame_seq"].as_u64().unwrap();
    let frame = &truth[(seq % CLIP_FRAMES) as usize];
    let rect: Vec<f64> = serde_json::from_value(state["video_rect"].clone()).unwrap();
    let size: Vec<f64> = serde_json::from_value(state["video_frame_size"].clone()).unwrap();
    let scale = rect[2] / size[0];
    let seen = state["people_seen"].as_array().unwrap();
    let shown = seen
        .iter()
        .rev()
        .find(|s| s["frame_seq"] == seq)
        .expect("the shown frame's result is in the dump");
    let mut report = Vec::new();
    for (person, points, landmarks) in visible(frame) {
        let (hx, hy) = hips(landmarks).unwrap();
        // The id the app gave whoever is nearest this person (hip centres).
        let nearest = shown["people"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let h = &p[1];
                let d = ((h[0].as_f64().unwrap() - hx).powi(2)
                    + (h[1].as_f64().unwrap() - hy).powi(2))
                .sqrt();
                (p[0].as_u64().unwrap(), d)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("someone was found in the frame shown");
        let mut coloured = 0;
        let mut theirs = 0;
        for (_, x, y) in &points {
            let (wx, wy) = (rect[0] + x * scale, rect[1] + y * scale);
            let ids: Vec<u64> = (-5..=5)
                .flat_map(|dy| (-5..=5).map(move |dx| (dx, dy)))
                .filter_map(|(dx, dy)| {
                    let (px, py) = (wx as i64 + dx, wy as i64 + dy);
                    (px >= 0 && py >= 0 && (px as u32) < png.width() && (py as u32) < png.height())
                        .then(|| id_of_colour(png.get_pixel(px as u32, py as u32)))
                        .flatten()
                })
                .collect();
            if !ids.is_empty() {
                coloured += 1;
            }
            // Colours repeat every PERSON_COLORS.len() ids.
            let colour_id = (nearest.0 - 1) % PERSON_COLORS.len() as u64 + 1;
            if ids.contains(&colour_id) {
                theirs += 1;
            }
        }
        report.push(format!(
            "true person {person}: id {} ({:.0} px away), {coloured}/{} landmarks on a person colour, {theirs} on theirs",
            nearest.0,
            nearest.1,
            points.len()
        ));
        assert!(
            theirs as f64 >= 0.6 * points.len() as f64,
            "frame {}: {}",
            seq % CLIP_FRAMES,
            report.join("; ")
        );
    }
    // 2. Through the clip's first pass (the file source loops, and at the loop the people jump across
    // the frame): ids stay with their people.
    let mut ids_of: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    let mut found = std::collections::BTreeMap::<u64, (usize, usize)>::new();
    let first_pass: Vec<&Value> = seen
        .iter()
        .filter(|s| s["frame_seq"].as_u64().unwrap() < CLIP_FRAMES)
        .collect();
    for s in &first_pass {
        let line = &truth[(s["frame_seq"].as_u64().unwrap() % CLIP_FRAMES) as usize];
        for (person, _, landmarks) in visible(line) {
            let (hx, hy) = hips(landmarks).unwrap();
            let lm = landmarks.as_array().unwrap();
            let torso = ((lm[11][0].as_f64().unwrap() - lm[23][0].as_f64().unwrap()).powi(2)
                + (lm[11][1].as_f64().unwrap() - lm[23][1].as_f64().unwrap()).powi(2))
            .sqrt()
            .max(25.0);
            let entry = found.entry(person).or_default();
            entry.1 += 1;
            // The nearest output person by hip centre, within the torso length (during the crossing
            // both are within it: the nearest is theirs).
            let distance = |p: &&Value| {
                let h = &p[1];
                ((h[0].as_f64().unwrap() - hx).powi(2) + (h[1].as_f64().unwrap() - hy).powi(2))
                    .sqrt()
            };
            let matched = s["people"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| distance(p) <= torso)
                .min_by(|a, b| distance(a).total_cmp(&distance(b)));
            if let Some(p) = matched {
                entry.0 += 1;
                let id = p[0].as_u64().unwrap();
                let ids = ids_of.entry(person).or_default();
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
    }
    println!(
        "{}\nids per true person over {} results: {ids_of:?}; found {found:?}",
        report.join("\n"),
        seen.len()
    );
    assert!(seen.len() >= 30, "{} results", seen.len());
    for (person, ids) in &ids_of {
        assert!(
            ids.len() <= 2,
            "true person {person} had ids {ids:?}: more than one change"
        );
    }
    // The tracker finds 0.81 of this clip's person-frames in `analyze` (every frame; MediaPipe Tasks
    // 0.68, docs/MEASUREMENTS.md); the app tracks about one frame in 2.5 here and found each person in
    // 0.75 to 0.94 of its results (2026-12-07, four runs): at least 0.7, above MediaPipe's.
    for (person, (hit, all)) in &found {
        assert!(
            *hit as f64 >= 0.7 * *all as f64,
            "true person {person} found in {hit} of {all} results"
        );
    }
    // 3. An avatar per person in view.
    let in_view = shown["people"].as_array().unwrap().len();
    assert_eq!(
        state["avatars"].as_u64().unwrap() as usize,
        in_view.min(6),
        "{state}"
    );
}
