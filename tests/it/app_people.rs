//! The real app (headless, Xvfb + lavapipe) on a shared crossing clip, `mp_cross2` (two people, one
//! passing in front of the other), checked against the clip's truth (`tests/fixtures/multiperson/`),
//! not against what the overlay reports:
//! - in the screenshot, every person the truth has clearly in the frame shown (at least 16 visible
//!   landmarks) is drawn where the truth puts them: within [`NEAR_PX`] of at least half of their visible
//!   landmarks (mapped into the window) the screenshot has a person colour, and it is the colour of the
//!   id the app gave the output person nearest to them (each id has its own colour): the label and
//!   colour are that person's;
//! - over every result the app took in the clip's first pass (its dump lists each result's people: id
//!   and landmarks), true and output people are matched as the shared scorer matches them (greedily
//!   by the mean distance over the visible landmarks, within max(0.6 torso lengths, 25 px)); each true
//!   person keeps one id through the crossing, and everyone is found within the first [`FOUND_WITHIN`]
//!   results and then in at least 70 % of the results where
//!   the truth has them clearly in view (at least 16 visible landmarks: half hidden behind the other,
//!   a person need not be found);
//! - the 3D view draws an avatar per person.
//!
//! The clip plays at 15 frames per second (`--fps 15`, half its rate): the app drops frames when it
//! falls behind, and how many depends on the machine and its load (at 30 fps it tracked one frame in
//! 2.5 here and one in 4 on a loaded CI machine). Half the rate keeps Grace Hopper's time behind the
//! other person (frames 28 to 67) at 2.6 s, within the tracker's 4 s grace period, as at the clip's
//! rate (1.3 s); at 10 fps it was 3.9 s, on the edge, and her id changed in 2 of 8 runs; at 15 fps it
//! held in 6 of 6 with one core loaded beside the app (2026-12-07). The tracker under frame drops is
//! scored against the truth with `analyze` (docs/MEASUREMENTS.md). The frame shown (`shown_frame_seq`)
//! is the clip frame `seq % 90` (the file source loops and numbers every frame it publishes). Runs with
//! `--no-interpolation`, so the skeleton drawn is the result of the frame shown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use serde_json::Value;

use livepose::app::PERSON_COLORS;

const CLIP_FRAMES: u64 = 90;

/// Everyone must be found within this many tracked frames: the person seen whole but small, on the
/// right, is found by the detector's square tiles, whose turn comes every other detection while the
/// detector backs off to every 4th frame (in `analyze` at frame 10). Their share found is counted
/// after it (at 30 fps the app, tracking one frame in four on a loaded CI machine, found them at the
/// 11th tracked frame, and so in only 16 of 24 results over the first pass).
const FOUND_WITHIN: usize = 14;

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

/// The mean distance (image px) from a true person's visible landmarks to an output person's
/// (`people_seen` entry: id, hip centre, 33 landmarks).
fn mean_distance(points: &[(usize, f64, f64)], output: &Value) -> f64 {
    let landmarks = output[2].as_array().unwrap();
    points
        .iter()
        .map(|&(i, x, y)| {
            let l = &landmarks[i];
            ((l[0].as_f64().unwrap() - x).powi(2) + (l[1].as_f64().unwrap() - y).powi(2)).sqrt()
        })
        .sum::<f64>()
        / points.len() as f64
}

/// A truth person's torso length: from the shoulder centre to the hip centre (image px).
fn torso_px(all: &Value) -> f64 {
    let l = all.as_array().unwrap();
    let centre = |a: usize, b: usize| {
        [0, 1].map(|k| (l[a][k].as_f64().unwrap() + l[b][k].as_f64().unwrap()) / 2.0)
    };
    let (shoulders, hips) = (centre(11, 12), centre(23, 24));
    ((shoulders[0] - hips[0]).powi(2) + (shoulders[1] - hips[1]).powi(2)).sqrt()
}

fn srgb8(c: bevy::prelude::Color) -> [u8; 3] {
    let c = c.to_srgba();
    [
        (c.red * 255.0) as u8,
        (c.green * 255.0) as u8,
        (c.blue * 255.0) as u8,
    ]
}

/// How near a landmark's true position (window pixels) the skeleton must be drawn: 8 px is 20 px of
/// the clip's frame (the window shows it at 0.4×), the tracker's mean error on this clip (`analyze`
/// scored by the truth: 20.2 px). With 5 px, the half-hidden person's 18 visible landmarks were met at
/// 11 or 12 (2026-12-07, four runs).
const NEAR_PX: i64 = 8;

/// The share of a person's visible landmarks near which their colour must be drawn. The half-hidden
/// person is a head-and-shoulders portrait whose shoulders and arms the truth places where MediaPipe
/// put them on the whole photo; the tracker, seeing a part of it, places them differently. Their face
/// is met: 11 to 16 of their 17 or 18 visible landmarks in eight runs (2026-12-07, one core loaded
/// beside the test); the person seen whole: all 33.
const DRAWN_SHARE: f64 = 0.5;

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
            "--fps",
            "15",
        ],
        // The clip's first pass takes 6 s; the screenshot comes late in the second pass, after the
        // crossing (at the loop the people jump across the frame, and the one found by the detector's
        // tiles is found again about ten tracked frames later).
        "12",
        "60",
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
    for (person, points, _) in visible(frame) {
        // The id the app gave whoever is nearest this person (mean distance over their visible
        // landmarks).
        let nearest = shown["people"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), mean_distance(&points, p)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("someone was found in the frame shown");
        let mut coloured = 0;
        let mut theirs = 0;
        for (_, x, y) in &points {
            let (wx, wy) = (rect[0] + x * scale, rect[1] + y * scale);
            let ids: Vec<u64> = (-NEAR_PX..=NEAR_PX)
                .flat_map(|dy| (-NEAR_PX..=NEAR_PX).map(move |dx| (dx, dy)))
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
            theirs as f64 >= DRAWN_SHARE * points.len() as f64,
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
    // The result in which each true person was first found.
    let mut first_found = std::collections::BTreeMap::<u64, usize>::new();
    for (result, s) in first_pass.iter().enumerate() {
        let line = &truth[(s["frame_seq"].as_u64().unwrap() % CLIP_FRAMES) as usize];
        let outputs = s["people"].as_array().unwrap();
        // Matched as the shared scorer (`score_truth.py`) matches: greedily by the mean distance over
        // the person's visible landmarks, within max(0.6 torso lengths, 25 px).
        let mut pairs = Vec::new();
        for (person, points, landmarks) in visible(line) {
            if result >= FOUND_WITHIN {
                found.entry(person).or_default().1 += 1;
            }
            let gate = (0.6 * torso_px(landmarks)).max(25.0);
            for (oi, output) in outputs.iter().enumerate() {
                let d = mean_distance(&points, output);
                if d <= gate {
                    pairs.push((d, person, oi));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut people_taken, mut outputs_taken) = (Vec::new(), Vec::new());
        for (_, person, oi) in pairs {
            if people_taken.contains(&person) || outputs_taken.contains(&oi) {
                continue;
            }
            people_taken.push(person);
            outputs_taken.push(oi);
            first_found.entry(person).or_insert(result);
            if result >= FOUND_WITHIN {
                found.entry(person).or_default().0 += 1;
            }
            let id = outputs[oi][0].as_u64().unwrap();
            let ids = ids_of.entry(person).or_default();
            if ids.last() != Some(&id) {
                ids.push(id);
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
        // Through the crossing, Grace Hopper (half hidden, then hidden behind the other) keeps her id:
        // `analyze` gives her the same id before and after at 30 fps and at every 3rd frame
        // (docs/MEASUREMENTS.md, "Several people").
        assert_eq!(ids.len(), 1, "true person {person} had ids {ids:?}");
    }
    // Everyone is found within the first FOUND_WITHIN results, and from then on in at least 70 % of
    // the results where the truth has them in view. The tracker finds 0.81 of this clip's
    // person-frames in `analyze` (every frame; MediaPipe Tasks 0.68, docs/MEASUREMENTS.md), and by this
    // count 0.98 and 0.89 of the two people's frames.
    for person in found.keys() {
        let first = first_found.get(person).copied();
        assert!(
            first.is_some_and(|r| r < FOUND_WITHIN),
            "true person {person} first found in result {first:?}"
        );
    }
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
