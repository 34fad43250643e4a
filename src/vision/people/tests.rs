//! The multi-person tracker's bookkeeping on made-up detections and bodies (no models).

use super::*;

fn body(x: f32, y: f32, torso: f32) -> BodyInImage {
    BodyInImage {
        hips_in_image: [x, y + torso * 0.5],
        shoulders_in_image: [x, y - torso * 0.5],
        legs_visibility: None,
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
        appearance: None,
    }
}

const FRAME_US: i64 = 33_333;

/// A frame where every person is found where `bodies` are (people matched by nearest prediction).
fn see_all(t: &mut PeopleTracker<()>, at: i64, bodies: &[(PersonId, f32, f32)]) {
    for &(id, x, y) in bodies {
        let roi = candidate(x, y, 100.0).roi;
        t.seen(id, at, body(x, y, 100.0), roi, None);
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
fn a_lost_person_gets_their_id_back_where_their_motion_predicts_and_a_stranger_gets_a_new_one() {
    let mut t = PeopleTracker::<()>::default();
    t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 2, || ());
    // Walking right at 30 px per frame (900 px/s).
    for k in 0..6 {
        let x = 100.0 + 30.0 * k as f32;
        let roi = candidate(x, 300.0, 100.0).roi;
        t.seen(1, k * FRAME_US, body(x, 300.0, 100.0), roi, None);
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
        t.seen(id, at, body(120.0, 300.0, 100.0), roi, None);
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
fn the_detector_backs_off_while_it_finds_nobody_new_and_comes_back_when_someone_is_lost() {
    let mut t = PeopleTracker::<()>::default();
    let due_in = |t: &mut PeopleTracker<()>| (1..=20).find(|_| t.detection_due(2, 4, true));
    assert!(t.detection_due(2, 4, true));
    t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 2, || ());
    see_all(&mut t, 0, &[(1, 100.0, 300.0)]);
    assert_eq!(
        due_in(&mut t),
        Some(4),
        "someone new was found: the base cadence"
    );
    // The detector sees only the person already tracked: twice as long, then no longer.
    t.associate(&[candidate(100.0, 300.0, 100.0)], FRAME_US, 2, || ());
    assert_eq!(due_in(&mut t), Some(4 * MAX_BACKOFF));
    t.associate(&[], 2 * FRAME_US, 2, || ());
    assert_eq!(due_in(&mut t), Some(4 * MAX_BACKOFF));
    // Someone walks in: found, the base cadence again.
    let a = t.associate(&[candidate(500.0, 300.0, 100.0)], 3 * FRAME_US, 2, || ());
    assert_eq!(a, [Assignment::New(2)]);
    t.not_seen(2, 4 * FRAME_US);
    assert!(t.detection_due(2, 4, true), "right after a loss");
    t.associate(&[], 5 * FRAME_US, 2, || ());
    assert_eq!(
        due_in(&mut t),
        Some(4),
        "while someone is lost, the base cadence"
    );
}

#[test]
fn tiles_are_squares_of_the_short_side_at_most_half_a_square_apart() {
    let tiles = detection_tiles(960, 540);
    assert_eq!(tiles.len(), 3, "{tiles:?}");
    assert_eq!(tiles[0].size_in_image, [540.0, 540.0]);
    assert_eq!(tiles[0].center_in_image, [270.0, 270.0]);
    assert_eq!(tiles[1].center_in_image, [480.0, 270.0]);
    assert_eq!(tiles[2].center_in_image, [690.0, 270.0]);
    let four_by_three = detection_tiles(640, 480);
    assert_eq!(four_by_three.len(), 2);
    assert_eq!(four_by_three[1].center_in_image, [400.0, 240.0]);
    let tall = detection_tiles(480, 1500);
    assert_eq!(tall.len(), 6);
    assert_eq!(tall[5].center_in_image, [240.0, 1260.0]);
    for pair in tall.windows(2) {
        assert!(pair[1].center_in_image[1] - pair[0].center_in_image[1] <= 240.0);
    }
    assert!(detection_tiles(500, 500).is_empty());
    assert_eq!(detection_tiles(600, 500).len(), 2);
}

#[test]
fn every_detection_looks_at_a_tile_in_turn_while_someone_is_missing() {
    let mut t = PeopleTracker::<()>::default();
    let regions: Vec<_> = (0..4).map(|_| t.detection_region(2, 1, true, 3)).collect();
    assert_eq!(
        regions,
        [Some(Some(0)), Some(Some(1)), Some(Some(2)), Some(Some(0))]
    );
    assert_eq!(
        t.detection_region(2, 1, false, 3),
        Some(None),
        "static: whole frame"
    );
    assert_eq!(t.detection_region(2, 1, true, 0), Some(None), "no tiles");
}

#[test]
fn the_tile_looked_at_is_one_without_tracked_people() {
    let tiles = detection_tiles(960, 540);
    let mut t = PeopleTracker::<()>::default();
    // Someone tracked at x 300: in the left tile (0–540) and the middle one (210–750).
    t.associate(&[candidate(300.0, 270.0, 100.0)], 0, 3, || ());
    see_all(&mut t, FRAME_US, &[(1, 300.0, 270.0)]);
    let tracked: Vec<BodyInImage> = t.people.iter().map(|p| p.body_at(FRAME_US)).collect();
    assert_eq!(pick_tile(&tiles, 0, &tracked), 2);
    assert_eq!(pick_tile(&tiles, 1, &tracked), 2);
    // Nobody tracked: the tiles take turns.
    assert_eq!(pick_tile(&tiles, 1, &[]), 1);
}

#[test]
fn a_tiles_find_is_added_only_away_from_what_the_whole_frame_found_and_from_tracked_people() {
    let mut whole = vec![candidate(200.0, 300.0, 100.0)];
    let tracked = [body(500.0, 300.0, 100.0)];
    let tile = vec![
        candidate(230.0, 300.0, 100.0), // on the whole frame's find
        candidate(580.0, 300.0, 100.0), // 0.8 torso from someone tracked: a partial view of them
        candidate(800.0, 300.0, 100.0), // someone new
    ];
    add_tile_candidates(&mut whole, tile, &tracked);
    let xs: Vec<f32> = whole.iter().map(|c| c.body.centre_in_image()[0]).collect();
    assert_eq!(xs, [200.0, 800.0]);
}

#[test]
fn a_newcomer_near_someone_is_reported_from_their_third_frame_and_one_alone_at_once() {
    let mut t = PeopleTracker::<()>::default();
    t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 3, || ());
    assert!(t.is_confirmed(1), "the first person found: at once");
    see_all(&mut t, FRAME_US, &[(1, 100.0, 300.0)]);
    // One 1.5 torsos from person 1, one far away.
    let at = 2 * FRAME_US;
    t.associate(
        &[
            candidate(250.0, 300.0, 100.0),
            candidate(700.0, 300.0, 100.0),
        ],
        at,
        3,
        || (),
    );
    let near = t
        .people
        .iter()
        .find(|p| p.body.centre_in_image()[0] == 250.0)
        .map(|p| p.id);
    let far = t
        .people
        .iter()
        .find(|p| p.body.centre_in_image()[0] == 700.0)
        .map(|p| p.id);
    let (Some(near), Some(far)) = (near, far) else {
        panic!(
            "both are tracked: {:?}",
            t.people.iter().map(|p| p.id).collect::<Vec<_>>()
        );
    };
    assert!(t.is_confirmed(far), "alone: at once");
    let mut reported = Vec::new();
    for k in 0..CONFIRM_FRAMES {
        let at = (3 + i64::from(k)) * FRAME_US;
        see_all(
            &mut t,
            at,
            &[(1, 100.0, 300.0), (near, 250.0, 300.0), (far, 700.0, 300.0)],
        );
        reported.push(t.is_confirmed(near));
    }
    assert_eq!(reported, [false, false, true]);
}

#[test]
fn the_region_follows_the_motion_between_frames() {
    let mut t = PeopleTracker::<()>::default();
    t.associate(&[candidate(100.0, 300.0, 100.0)], 0, 1, || ());
    for k in 0..4 {
        let x = 100.0 + 20.0 * k as f32;
        let roi = candidate(x, 300.0, 100.0).roi;
        t.seen(1, k * FRAME_US, body(x, 300.0, 100.0), roi, None);
    }
    let next = t.people[0].region_at(4 * FRAME_US, true).unwrap();
    assert!((next.center_in_image[0] - 180.0).abs() < 4.0, "{next:?}");
    let still = t.people[0].region_at(4 * FRAME_US, false).unwrap();
    assert_eq!(still.center_in_image[0], 160.0);
}

/// A 1280×720 grey image with a torso-sized rectangle of `rgb` around (x, y).
fn dressed(x: f32, y: f32, rgb: [u8; 3]) -> Candidate {
    dressed_sized(x, y, 100.0, rgb)
}

/// As [`dressed`], with a torso `torso` px long (the rectangle scales with it).
fn dressed_sized(x: f32, y: f32, torso: f32, rgb: [u8; 3]) -> Candidate {
    let (width, height) = (1280_u32, 720_u32);
    let mut data = vec![128_u8; (width * height * 3) as usize];
    for py in (y - 0.6 * torso) as u32..(y + 0.6 * torso) as u32 {
        for px in (x - 0.4 * torso) as u32..(x + 0.4 * torso) as u32 {
            let at = ((py * width + px) * 3) as usize;
            data[at..at + 3].copy_from_slice(&rgb);
        }
    }
    let image = crate::vision::RgbImage {
        width,
        height,
        data,
    };
    let mut c = candidate(x, y, torso);
    c.appearance = Appearance::of(&image, &c.body);
    assert!(c.appearance.is_some());
    c
}

const RED: [u8; 3] = [200, 30, 30];
const BLUE: [u8; 3] = [30, 40, 200];

/// A tracker holding person 1, in red, seen at (200, 300) with a 100 px torso at time 0.
fn red_person_seen() -> PeopleTracker<()> {
    let mut t = PeopleTracker::<()>::default();
    assert_eq!(
        t.associate(&[dressed(200.0, 300.0, RED)], 0, 3, || ()),
        vec![Assignment::New(1)]
    );
    let roi = candidate(200.0, 300.0, 100.0).roi;
    t.seen(1, 0, body(200.0, 300.0, 100.0), roi, None);
    t
}

/// As [`red_person_seen`], and lost in the next frame.
fn red_person_lost() -> PeopleTracker<()> {
    let mut t = red_person_seen();
    t.not_seen(1, FRAME_US);
    t.settle(FRAME_US);
    assert_eq!(t.tracked(), 0);
    t
}

#[test]
fn a_lost_person_found_far_from_where_predicted_is_known_by_their_looks() {
    let mut t = red_person_lost();
    // 10 frames later, 8 torso lengths away (the gate has widened to ~1.1): the one in red is person 1
    // again, the one in blue someone new.
    let at = 11 * FRAME_US;
    let found = t.associate(
        &[dressed(1000.0, 300.0, BLUE), dressed(600.0, 300.0, RED)],
        at,
        3,
        || (),
    );
    assert_eq!(found, vec![Assignment::New(2), Assignment::Reacquired(1)]);
    assert!(t.people[0].restart_filters);
    // Someone far away who looks only a little like a lost person is not them.
    t.not_seen(1, at + FRAME_US);
    t.settle(at + FRAME_US);
    let found = t.associate(
        &[dressed(100.0, 600.0, [170, 60, 60])],
        at + 5 * FRAME_US,
        3,
        || (),
    );
    assert_eq!(found, vec![Assignment::New(3)]);
}

#[test]
fn a_detection_near_a_tracked_person_that_looks_just_like_them_is_them_not_someone_new() {
    let mut t = red_person_seen();
    // 0.8 torso lengths off (outside the 0.6 gate, a partial view's keypoints): in red, person 1 seen
    // differently; in blue, someone new beside them.
    assert_eq!(
        t.associate(&[dressed(280.0, 300.0, RED)], FRAME_US, 3, || ()),
        vec![Assignment::Ignored]
    );
    assert_eq!(
        t.associate(&[dressed(280.0, 300.0, BLUE)], 2 * FRAME_US, 3, || ()),
        vec![Assignment::New(2)]
    );
    // Further than HELD_LOOKALIKE_TORSOS, a look-alike is someone else.
    assert_eq!(
        t.associate(&[dressed(900.0, 300.0, RED)], 3 * FRAME_US, 3, || ()),
        vec![Assignment::New(3)]
    );
}

#[test]
fn a_newcomer_who_soon_looks_like_someone_lost_takes_their_id_back() {
    // Person 1 in red is lost; someone is found elsewhere in a view that looks blue (e.g. half hidden):
    // a new id. `after` later, a detection on the newcomer looks red.
    let run = |after: i64| {
        let mut t = red_person_lost();
        let found = t.associate(&[dressed(900.0, 300.0, BLUE)], 2 * FRAME_US, 3, || ());
        assert_eq!(found, vec![Assignment::New(2)]);
        let at = 2 * FRAME_US + after;
        t.seen(
            2,
            at - FRAME_US,
            body(900.0, 300.0, 100.0),
            candidate(900.0, 300.0, 100.0).roi,
            None,
        );
        let found = t.associate(&[dressed(900.0, 300.0, RED)], at, 3, || ());
        let ids: Vec<PersonId> = t.people.iter().map(|p| p.id).collect();
        (found, ids)
    };
    assert_eq!(
        run(2 * FRAME_US),
        (vec![Assignment::Reacquired(1)], vec![1]),
        "within NEWCOMER_US: person 1 again, id 2 retired"
    );
    assert_eq!(
        run(reidentify::NEWCOMER_US + FRAME_US),
        (vec![Assignment::Tracked(2)], vec![1, 2]),
        "after NEWCOMER_US the newcomer keeps their id"
    );
}

#[test]
fn re_identified_by_their_looks_a_person_may_come_back_at_another_scale() {
    // Person 1 was last seen with a torso of 100 px (say, a partial view); they come back far away,
    // 2.5 times as large: beyond MAX_SCALE_RATIO, within REIDENTIFY_MAX_SCALE_RATIO.
    let mut t = red_person_lost();
    let found = t.associate(
        &[dressed_sized(900.0, 360.0, 250.0, RED)],
        10 * FRAME_US,
        3,
        || (),
    );
    assert_eq!(found, vec![Assignment::Reacquired(1)]);
    // Five times as large is someone else, however alike.
    t.not_seen(1, 11 * FRAME_US);
    t.settle(11 * FRAME_US);
    let found = t.associate(
        &[dressed_sized(900.0, 360.0, 500.0, RED)],
        12 * FRAME_US,
        3,
        || (),
    );
    assert_eq!(found, vec![Assignment::New(2)]);
}

#[test]
fn a_settled_look_does_not_learn_from_a_view_of_someone_else() {
    let red = dressed(200.0, 300.0, RED).appearance;
    let blue = dressed(200.0, 300.0, BLUE).appearance;
    let mut t = PeopleTracker::<()>::default();
    t.associate(&[dressed(200.0, 300.0, RED)], 0, 3, || ());
    let see = |t: &mut PeopleTracker<()>, k: i64, look: &Option<Appearance>| {
        let roi = candidate(200.0, 300.0, 100.0).roi;
        t.seen(
            1,
            k * FRAME_US,
            body(200.0, 300.0, 100.0),
            roi,
            look.clone(),
        );
    };
    for k in 1..SETTLED_LOOK_FRAMES as i64 {
        see(&mut t, k, &red);
    }
    // Settled in red: twenty frames of a view of someone in blue (a crossing) teach it nothing.
    for k in 0..20 {
        see(&mut t, 10 + k, &blue);
    }
    let similarity = t.people[0].similarity(red.as_ref()).unwrap();
    assert!(similarity > 0.99, "{similarity}");
    // Before it is settled, a person's look follows what is seen.
    let mut t = PeopleTracker::<()>::default();
    t.associate(&[dressed(200.0, 300.0, RED)], 0, 3, || ());
    see(&mut t, 1, &blue);
    let similarity = t.people[0].similarity(red.as_ref()).unwrap();
    assert!(similarity < 0.99, "{similarity}");
}

/// One person seen at (300, 300) with legs seen `legs`; a detection of them 10 px on, whose region is
/// half the size of theirs, and maybe a second person.
fn cut_body_detected(legs: f32, second_at: Option<f32>) -> (PeopleTracker<()>, Roi) {
    let mut t = PeopleTracker::<()>::default();
    t.associate(&[candidate(300.0, 300.0, 100.0)], 0, 3, || ());
    let mut seen_body = body(300.0, 300.0, 100.0);
    seen_body.legs_visibility = Some(legs);
    t.seen(1, 0, seen_body, candidate(300.0, 300.0, 100.0).roi, None);
    t.settle(0);
    let mut detected = vec![candidate(310.0, 300.0, 100.0)];
    detected[0].roi.size_in_image = [150.0, 150.0];
    if let Some(x) = second_at {
        detected.push(candidate(x, 300.0, 100.0));
    }
    let a = t.associate(&detected, FRAME_US, 3, || ());
    assert_eq!(a[0], Assignment::Tracked(1));
    (t, detected[0].roi)
}

#[test]
fn a_body_whose_legs_are_unseen_takes_a_close_detections_region_when_nobody_is_near() {
    let (t, detected) = cut_body_detected(0.1, None);
    assert_eq!(t.people[0].roi, Some(detected));
    assert_eq!(t.people[0].region_at(FRAME_US, true), Some(detected));
    // Legs in view: the landmarks' own region stays.
    let (t, detected) = cut_body_detected(0.9, None);
    assert_ne!(t.people[0].roi, Some(detected));
    // Someone else detected within 1.2 torsos: the region stays (the detection could be a mix of both).
    let (t, detected) = cut_body_detected(0.1, Some(400.0));
    assert_ne!(t.people[0].roi, Some(detected));
    // ... but not someone 2 torsos away.
    let (t, detected) = cut_body_detected(0.1, Some(510.0));
    assert_eq!(t.people[0].roi, Some(detected));
}
