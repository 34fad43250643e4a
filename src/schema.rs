//! The JSON schema of results, used by `livepose analyze` (files), the server (`pose_result`) and the
//! recorder: the schema of the MediaPipe reference files (`tests/fixtures/README.md`), plus livepose's
//! own keys (angles, timings, the person's actual hand, and `people`: everyone in view by id, each
//! with their pose, hands and angles; the top-level `pose`, `hands` and `angles` are the lowest id's). [`parse_frame`] and
//! [`read_jsonl`] read it back (livepose's files and MediaPipe's reference files alike).

use serde::{Deserialize, Serialize};

use crate::vision::angles::joint_angles_from_world;
use crate::vision::landmarks::{Hand, Handedness, ImageLandmark, Pose, WorldLandmark};
use crate::vision::result::{FrameResult, Person};
use crate::vision::roi::Roi;
use crate::vision::timings::StageTimings;

/// px are rounded to 1e-4 and everything else to 1e-6, as the reference files.
fn round_px(v: f32) -> f64 {
    (f64::from(v) * 1e4).round() / 1e4
}
fn round6(v: f32) -> f64 {
    (f64::from(v) * 1e6).round() / 1e6
}

#[derive(Serialize)]
pub struct PoseLandmarkJson {
    x_px: f64,
    y_px: f64,
    z: f64,
    visibility: f64,
}

#[derive(Serialize)]
pub struct WorldLandmarkJson {
    x_m: f64,
    y_m: f64,
    z_m: f64,
    visibility: f64,
}

#[derive(Serialize)]
pub struct PoseJson {
    landmarks: Vec<PoseLandmarkJson>,
    world_landmarks: Vec<WorldLandmarkJson>,
    presence: f64,
}

#[derive(Serialize)]
pub struct HandLandmarkJson {
    x_px: f64,
    y_px: f64,
    z: f64,
}

#[derive(Serialize)]
pub struct HandWorldLandmarkJson {
    x_m: f64,
    y_m: f64,
    z_m: f64,
}

#[derive(Serialize)]
pub struct HandJson {
    /// MediaPipe's label (assumes a mirrored image), as in the references.
    handedness: &'static str,
    score: f64,
    /// The person's actual hand given `--mirrored` (default: an ordinary, unmirrored camera image).
    person_hand: &'static str,
    landmarks: Vec<HandLandmarkJson>,
    world_landmarks: Vec<HandWorldLandmarkJson>,
}

#[derive(Serialize)]
pub struct AngleJson {
    radians: f64,
    confidence: f64,
}

/// One person of a frame: their id (per stream, never reused) and, as at the top level, their pose,
/// hands and angles.
#[derive(Serialize)]
pub struct PersonJson {
    id: u64,
    pose: PoseJson,
    hands: Vec<HandJson>,
    angles: std::collections::BTreeMap<&'static str, AngleJson>,
}

/// One frame or photo.
#[derive(Serialize)]
pub struct FrameJson {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame: Option<usize>,
    width: u32,
    height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_us: Option<i64>,
    /// The person with the lowest id in view (every single-person reader reads these three).
    pose: Option<PoseJson>,
    hands: Vec<HandJson>,
    angles: std::collections::BTreeMap<&'static str, AngleJson>,
    /// Everyone in view, by id.
    people: Vec<PersonJson>,
    model: &'static str,
    pose_detector_ran: bool,
    palm_detector_ran: bool,
    timings_ms: StageTimings,
}

pub fn pose_json(pose: &Pose) -> PoseJson {
    PoseJson {
        landmarks: pose
            .landmarks
            .iter()
            .map(|l| PoseLandmarkJson {
                x_px: round_px(l.pos_in_image[0]),
                y_px: round_px(l.pos_in_image[1]),
                z: round6(l.depth),
                visibility: round6(l.visibility),
            })
            .collect(),
        world_landmarks: pose
            .world_landmarks
            .iter()
            .map(|w| WorldLandmarkJson {
                x_m: round6(w.pos_in_world[0]),
                y_m: round6(w.pos_in_world[1]),
                z_m: round6(w.pos_in_world[2]),
                visibility: round6(w.visibility),
            })
            .collect(),
        presence: round6(pose.presence),
    }
}

pub fn hand_json(hand: &Hand) -> HandJson {
    HandJson {
        handedness: hand.handedness_mediapipe.label(),
        score: round6(hand.handedness_score),
        person_hand: hand.handedness.label(),
        landmarks: hand
            .landmarks
            .iter()
            .map(|l| HandLandmarkJson {
                x_px: round_px(l.pos_in_image[0]),
                y_px: round_px(l.pos_in_image[1]),
                z: round6(l.depth),
            })
            .collect(),
        world_landmarks: hand
            .world_landmarks
            .iter()
            .map(|w| HandWorldLandmarkJson {
                x_m: round6(w.pos_in_world[0]),
                y_m: round6(w.pos_in_world[1]),
                z_m: round6(w.pos_in_world[2]),
            })
            .collect(),
    }
}

/// The joint angles by name (`left_elbow`, …), radians with their confidence.
pub fn angles_json(result: &FrameResult) -> std::collections::BTreeMap<&'static str, AngleJson> {
    joint_angles_json(&result.angles)
}

/// Everyone in a frame.
pub fn people_json(result: &FrameResult) -> Vec<PersonJson> {
    result
        .people
        .iter()
        .map(|p| PersonJson {
            id: p.id,
            pose: pose_json(&p.pose),
            hands: p.hands.iter().map(hand_json).collect(),
            angles: joint_angles_json(&p.angles),
        })
        .collect()
}

fn joint_angles_json(
    angles: &crate::vision::angles::JointAngles,
) -> std::collections::BTreeMap<&'static str, AngleJson> {
    angles
        .angles
        .iter()
        .map(|a| {
            (
                a.joint.name(),
                AngleJson {
                    radians: round6(a.radians),
                    confidence: round6(a.confidence),
                },
            )
        })
        .collect()
}

/// Builds the JSON object for one result. `frame` and `timestamp_us` are written for clips only.
pub fn frame_json(
    file: &str,
    frame: Option<usize>,
    result: &FrameResult,
    model: &'static str,
) -> FrameJson {
    FrameJson {
        file: file.to_owned(),
        frame,
        width: result.width,
        height: result.height,
        timestamp_us: frame.map(|_| result.timestamp_us),
        pose: result.pose.as_ref().map(pose_json),
        hands: result.hands.iter().map(hand_json).collect(),
        angles: angles_json(result),
        people: people_json(result),
        model,
        pose_detector_ran: result.pose_detector_ran,
        palm_detector_ran: result.palm_detector_ran,
        timings_ms: result.timings,
    }
}

/// Why a line of results could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("not a result line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct FrameIn {
    width: u32,
    height: u32,
    #[serde(default)]
    timestamp_us: Option<i64>,
    #[serde(default)]
    pose: Option<PoseIn>,
    #[serde(default)]
    hands: Vec<HandIn>,
    /// Files written before there were people have none: the top-level pose is then the one person.
    #[serde(default)]
    people: Option<Vec<PersonIn>>,
    #[serde(default)]
    pose_detector_ran: bool,
    #[serde(default)]
    palm_detector_ran: bool,
    /// Stage name → ms, as written (livepose's files; MediaPipe's have none).
    #[serde(default)]
    timings_ms: std::collections::BTreeMap<String, f32>,
}

#[derive(Deserialize)]
struct PoseIn {
    landmarks: Vec<ImageIn>,
    world_landmarks: Vec<WorldIn>,
    #[serde(default = "one")]
    presence: f32,
}

#[derive(Deserialize)]
struct PersonIn {
    id: u64,
    pose: PoseIn,
    #[serde(default)]
    hands: Vec<HandIn>,
}

#[derive(Deserialize)]
struct HandIn {
    handedness: String,
    #[serde(default = "one")]
    score: f32,
    #[serde(default)]
    person_hand: Option<String>,
    landmarks: Vec<ImageIn>,
    world_landmarks: Vec<WorldIn>,
}

#[derive(Deserialize)]
struct ImageIn {
    x_px: f32,
    y_px: f32,
    z: f32,
    #[serde(default = "one")]
    visibility: f32,
}

#[derive(Deserialize)]
struct WorldIn {
    x_m: f32,
    y_m: f32,
    z_m: f32,
    #[serde(default = "one")]
    visibility: f32,
}

fn one() -> f32 {
    1.0
}

fn handedness(label: &str) -> Result<Handedness, SchemaError> {
    match label {
        "Left" => Ok(Handedness::Left),
        "Right" => Ok(Handedness::Right),
        other => Err(SchemaError::Shape(format!("unknown handedness {other:?}"))),
    }
}

fn image_landmarks(points: &[ImageIn]) -> Vec<ImageLandmark> {
    points
        .iter()
        .map(|p| ImageLandmark {
            pos_in_image: [p.x_px, p.y_px],
            depth: p.z,
            visibility: p.visibility,
            presence: 1.0,
        })
        .collect()
}

fn world_landmarks(points: &[WorldIn]) -> Vec<WorldLandmark> {
    points
        .iter()
        .map(|p| WorldLandmark {
            pos_in_world: [p.x_m, p.y_m, p.z_m],
            visibility: p.visibility,
        })
        .collect()
}

/// Stage timings from their names (unknown names and bad values are left out).
fn timings_from(ms_by_name: &std::collections::BTreeMap<String, f32>) -> StageTimings {
    let mut timings = StageTimings::default();
    for stage in crate::vision::timings::Stage::ALL {
        if let Some(&ms) = ms_by_name.get(stage.name())
            && ms.is_finite()
            && ms >= 0.0
        {
            timings.add(stage, std::time::Duration::from_secs_f32(ms / 1000.0));
        }
    }
    timings
}

/// Reads one result line back. What the file does not hold comes back empty: the ROIs (the whole
/// image), the timings (zero when the file has none), a hand's presence (1: a hand in the file passed the threshold); the
/// angles are computed again from the world landmarks. A photo's line has no timestamp: 0.
pub fn parse_frame(line: &str) -> Result<FrameResult, SchemaError> {
    let frame: FrameIn = serde_json::from_str(line)?;
    let roi = Roi::full_image(frame.width, frame.height);
    let pose = frame.pose.as_ref().map(|p| pose_from(p, roi)).transpose()?;
    let hands = hands_from(&frame.hands, roi)?;
    let angles = pose
        .as_ref()
        .map(|p| joint_angles_from_world(&p.world_landmarks))
        .unwrap_or_default();
    let people = match &frame.people {
        Some(people) => people
            .iter()
            .map(|p| {
                let pose = pose_from(&p.pose, roi)?;
                Ok(Person {
                    id: p.id,
                    angles: joint_angles_from_world(&pose.world_landmarks),
                    hands: hands_from(&p.hands, roi)?,
                    pose,
                })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?,
        // Written before there were people: the pose is the one person (id 1), with every hand.
        None => pose
            .iter()
            .map(|pose| Person {
                id: 1,
                pose: pose.clone(),
                hands: hands.clone(),
                angles: angles.clone(),
            })
            .collect(),
    };
    Ok(FrameResult {
        timestamp_us: frame.timestamp_us.unwrap_or(0),
        width: frame.width,
        height: frame.height,
        pose,
        hands,
        angles,
        people,
        pose_detector_ran: frame.pose_detector_ran,
        palm_detector_ran: frame.palm_detector_ran,
        timings: timings_from(&frame.timings_ms),
    })
}

fn pose_from(p: &PoseIn, roi: Roi) -> Result<Pose, SchemaError> {
    if p.landmarks.len() != 33 || p.world_landmarks.len() != 33 {
        return Err(SchemaError::Shape(format!(
            "a pose has 33 landmarks and 33 world landmarks, not {} and {}",
            p.landmarks.len(),
            p.world_landmarks.len()
        )));
    }
    Ok(Pose {
        landmarks: image_landmarks(&p.landmarks),
        world_landmarks: world_landmarks(&p.world_landmarks),
        presence: p.presence,
        roi,
    })
}

fn hands_from(hands: &[HandIn], roi: Roi) -> Result<Vec<Hand>, SchemaError> {
    let mut out = Vec::with_capacity(hands.len());
    for h in hands {
        if h.landmarks.len() != 21 || h.world_landmarks.len() != 21 {
            return Err(SchemaError::Shape(format!(
                "a hand has 21 landmarks and 21 world landmarks, not {} and {}",
                h.landmarks.len(),
                h.world_landmarks.len()
            )));
        }
        let handedness_mediapipe = handedness(&h.handedness)?;
        // MediaPipe's files have no person_hand: its label assumes a mirrored image, so on an
        // ordinary image the person's hand is the other one (as livepose's default).
        let person = match &h.person_hand {
            Some(label) => handedness(label)?,
            None => handedness_mediapipe.other(),
        };
        out.push(Hand {
            landmarks: image_landmarks(&h.landmarks),
            world_landmarks: world_landmarks(&h.world_landmarks),
            handedness_mediapipe,
            handedness_score: h.score,
            handedness: person,
            presence: 1.0,
            roi,
        });
    }
    Ok(out)
}

/// Reads a JSONL file of results. A torn last line (a file cut off mid-write) is left out and
/// reported as the second value; a bad line anywhere else is an error (with its 1-based number).
pub fn read_jsonl(text: &str) -> Result<(Vec<FrameResult>, Option<SchemaError>), SchemaError> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match parse_frame(line) {
            Ok(result) => out.push(result),
            Err(e) if i + 1 == lines.len() && !text.ends_with('\n') => return Ok((out, Some(e))),
            Err(e) => return Err(SchemaError::Shape(format!("line {}: {e}", i + 1))),
        }
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::timings::Stage;

    #[test]
    fn stage_timings_read_back() {
        let mut timings = StageTimings::default();
        timings.add(
            Stage::PoseLandmarkInfer,
            std::time::Duration::from_micros(12_500),
        );
        timings.add(Stage::Total, std::time::Duration::from_micros(20_250));
        let result = FrameResult {
            timestamp_us: 33_333,
            width: 640,
            height: 480,
            pose: None,
            hands: Vec::new(),
            angles: Default::default(),
            people: Vec::new(),
            pose_detector_ran: true,
            palm_detector_ran: false,
            timings,
        };
        let line = serde_json::to_string(&frame_json("x", Some(0), &result, "full")).unwrap();
        let back = parse_frame(&line).unwrap();
        for stage in [Stage::PoseLandmarkInfer, Stage::Total] {
            let (a, b) = (
                result.timings.get(stage).unwrap(),
                back.timings.get(stage).unwrap(),
            );
            assert!((a - b).abs() < 1e-3, "{stage:?}: {a} vs {b}");
        }
        assert_eq!(back.timings.get(Stage::HandLandmarkInfer), None);
        assert_eq!(back.timestamp_us, 33_333);
    }

    /// A reference line of MediaPipe's (no people) for `messi5.jpg`, cut to what the reader needs.
    fn line_without_people() -> String {
        let lm = r#"{"x_px": 100.0, "y_px": 50.0, "z": 0.0, "visibility": 0.9}"#;
        let wl = r#"{"x_m": 0.1, "y_m": 0.2, "z_m": 0.0, "visibility": 0.9}"#;
        format!(
            r#"{{"width": 548, "height": 342, "pose": {{"landmarks": [{}], "world_landmarks": [{}]}}, "hands": []}}"#,
            vec![lm; 33].join(","),
            vec![wl; 33].join(",")
        )
    }

    #[test]
    fn people_are_written_and_read_back_and_a_file_from_before_reads_as_one_person() {
        let old = parse_frame(&line_without_people()).unwrap();
        assert_eq!(
            old.people.len(),
            1,
            "the pose of a file from before is person 1"
        );
        assert_eq!(old.people[0].id, 1);
        assert_eq!(Some(old.people[0].pose.clone()), old.pose);
        // Two people, written and read back.
        let mut two = old.clone();
        let mut second = two.people[0].clone();
        second.id = 4;
        second.pose.landmarks[0].pos_in_image = [300.0, 60.0];
        two.people.push(second);
        let json = serde_json::to_value(frame_json("x", Some(0), &two, "full")).unwrap();
        assert_eq!(json["people"].as_array().unwrap().len(), 2);
        assert_eq!(json["people"][1]["id"], 4);
        assert_eq!(json["people"][1]["pose"]["landmarks"][0]["x_px"], 300.0);
        assert_eq!(
            json["pose"], json["people"][0]["pose"],
            "the top level is the lowest id"
        );
        let back = parse_frame(&json.to_string()).unwrap();
        assert_eq!(back.people.iter().map(|p| p.id).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(back.people[1].pose.landmarks[0].pos_in_image, [300.0, 60.0]);
    }
}
