//! The page with several people: headless Chromium's fake camera plays the shared crossing clip
//! `mp_cross2` (two people, one passing in front of the other), the page streams it to a server tracking
//! up to 3 people, and draws everyone (blending each person's last two results, by id, as it does by
//! default). Checked against the clip's truth: for every person the truth has clearly in view (at least
//! 16 visible landmarks) in the frame whose result was drawn last, the person the page drew nearest
//! them lies within the truth scorer's gate (0.6 torso, at least 25 px, mean over the visible
//! landmarks), and the page's overlay canvas (the frame's own pixels) has that id's colour at the
//! landmarks drawn opaque for them (at least 80 %; within 2 px): each person is drawn where they are, in their own colour; a skeleton
//! blended across two people would lie between them and miss both.
//!
//! The frame whose result was drawn last is the frame the server processed under the page's last drawn
//! `sequence`, identified as a clip frame by pixel difference (as `browser_e2e`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use super::browser_e2e::{Browser, difference, fake_camera, png_data_url, stream_from};
use livepose::vision::TrackerConfig;

/// The page's person colours (`assets/web/client.js`, `PERSON_COLORS`), by id − 1.
const PAGE_COLORS: [[u8; 3]; 6] = [
    [0xff, 0x40, 0xa1],
    [0xff, 0x9e, 0x1a],
    [0x73, 0x7f, 0xff],
    [0xd9, 0xf2, 0x33],
    [0xbf, 0x59, 0xff],
    [0xff, 0x4d, 0x40],
];
const IN_VIEW: usize = 16;

fn colour_of(id: u64) -> [u8; 3] {
    PAGE_COLORS[((id.max(1) - 1) % PAGE_COLORS.len() as u64) as usize]
}

#[test]
fn the_page_draws_everyone_in_their_own_colour_where_the_truth_puts_them() {
    let _serial = crate::common::heavy();
    let (clip, y4m) = fake_camera("multiperson/mp_cross2.mjpeg", "mp_cross2.y4m");
    let truth = crate::common::read_jsonl("multiperson/mp_cross2.truth.jsonl");
    let session = stream_from(
        &y4m,
        "browser_people",
        &Browser::default(),
        |config| config.tracker = TrackerConfig::VIDEO.with_max_people(3),
        |server| {
            format!(
                "{}?autostart=1&encoding=png&resolution={}x{}",
                server.url(),
                clip[0].width,
                clip[0].height
            )
        },
    );
    let summary = &session.summary;
    let drawn = &summary["lastDrawn"];
    let seq = drawn["sequence"].as_u64().unwrap();
    let people = drawn["people"].as_array().unwrap();
    assert!(!people.is_empty(), "the page drew nobody: {summary}");
    // The frame under the last drawn result, as a clip frame.
    let tapped = session
        .tapped
        .iter()
        .find(|t| t.seq == seq)
        .expect("the server processed the frame the page drew");
    assert_eq!(
        (tapped.image.width, tapped.image.height),
        (clip[0].width, clip[0].height),
        "the camera's frames are the clip's size"
    );
    let (k, diff) = clip
        .iter()
        .enumerate()
        .map(|(k, f)| (k, difference(&tapped.image, f)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(
        diff < 6.0,
        "no clip frame like the drawn one ({diff} levels)"
    );
    // The overlay as drawn.
    let overlay = png_data_url(&summary["overlayPng"]).to_rgba8();
    let mut report = Vec::new();
    let mut checked = 0;
    for person in truth[k]["people"].as_array().unwrap() {
        let points: Vec<(f64, f64)> = person["landmarks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l[2].as_bool().unwrap())
            .map(|l| (l[0].as_f64().unwrap(), l[1].as_f64().unwrap()))
            .collect();
        if points.len() < IN_VIEW {
            continue;
        }
        checked += 1;
        // The page's person drawn nearest this one (mean distance over the visible landmarks).
        let (id, d) = people
            .iter()
            .filter_map(|p| {
                let pose = p["pose"].as_array()?;
                let lm = person["landmarks"].as_array().unwrap();
                let ds: Vec<f64> = lm
                    .iter()
                    .zip(pose)
                    .filter(|(t, _)| t[2].as_bool().unwrap())
                    .map(|(t, o)| {
                        (t[0].as_f64().unwrap() - o[0].as_f64().unwrap())
                            .hypot(t[1].as_f64().unwrap() - o[1].as_f64().unwrap())
                    })
                    .collect();
                Some((
                    p["id"].as_u64().unwrap(),
                    ds.iter().sum::<f64>() / ds.len() as f64,
                ))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        // Near the truth: within the scorer's gate (`scripts/refdata/score_truth.py`: 0.6 of the
        // person's torso, at least 25 px); a skeleton blended across two people lies between them.
        let lm = person["landmarks"].as_array().unwrap();
        let at = |i: usize| (lm[i][0].as_f64().unwrap(), lm[i][1].as_f64().unwrap());
        let mid = |a: (f64, f64), b: (f64, f64)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let (shoulders, hips) = (mid(at(11), at(12)), mid(at(23), at(24)));
        let gate = (0.6 * (shoulders.0 - hips.0).hypot(shoulders.1 - hips.1)).max(25.0);
        // Drawn in the person's colour: the overlay's pixels at the landmarks the page drew for them.
        let colour = colour_of(id);
        let drawn_pose: Vec<(f64, f64)> = people
            .iter()
            .find(|p| p["id"].as_u64() == Some(id))
            .and_then(|p| p["pose"].as_array())
            .unwrap()
            .iter()
            // The landmarks the page drew opaque (visible); the others are drawn faint (alpha 0.25).
            .filter(|o| o[2].as_bool().unwrap())
            .map(|o| (o[0].as_f64().unwrap(), o[1].as_f64().unwrap()))
            .filter(|(x, y)| {
                *x >= 4.0
                    && *y >= 4.0
                    && *x < f64::from(overlay.width()) - 4.0
                    && *y < f64::from(overlay.height()) - 4.0
            })
            .collect();
        let on_colour = drawn_pose
            .iter()
            .filter(|(x, y)| {
                (-2_i64..=2).any(|dy| {
                    (-2_i64..=2).any(|dx| {
                        let p = overlay.get_pixel((*x as i64 + dx) as u32, (*y as i64 + dy) as u32);
                        p[3] > 128
                            && (0..3).all(|c| (i32::from(p[c]) - i32::from(colour[c])).abs() <= 30)
                    })
                })
            })
            .count();
        report.push(format!(
            "frame {k}: true person {}: drawn as #{id}, {d:.1} px from the truth (gate {gate:.1} px), \
             {on_colour}/{} of its opaque landmarks in #{id}'s colour",
            person["person"],
            drawn_pose.len()
        ));
        assert!(d <= gate, "{}", report.join("; "));
        assert!(
            !drawn_pose.is_empty() && on_colour as f64 >= 0.8 * drawn_pose.len() as f64,
            "{}",
            report.join("; ")
        );
    }
    println!("{}", report.join("\n"));
    assert!(checked >= 1, "nobody clearly in view in frame {k}");
}
