//! CSV tables (RFC 4180: comma-separated, one header line, `\n` line ends), one row per frame, so pandas,
//! R and spreadsheets read them with no options:
//! - `landmarks.csv`: `time_s`, `frame`, `pose_present` (0/1), then for each of the 33 body landmarks
//!   `<name>_x_px`, `<name>_y_px`, `<name>_z` (MediaPipe's relative depth, in units of the image width),
//!   `<name>_visibility`, `<name>_x_m`, `<name>_y_m`, `<name>_z_m` (world: metres, origin between the
//!   hips, x to the image's right, y down, z away from the camera), then for the person's left and right
//!   hand `left_hand_present`/`right_hand_present` and, per hand landmark, `left_hand_<name>_x_px`,
//!   `_y_px`, `_z`, `_x_m`, `_y_m`, `_z_m` (hand world: metres, origin near the hand's centre);
//! - `angles.csv`: `time_s`, `frame`, then per joint `<joint>_deg` and `<joint>_confidence`.
//!
//! What was not seen (no person, no hand, no angle) is an empty cell: pandas reads it as NaN.
//!
//! Written here rather than with the `csv` crate: every cell is a number or a fixed snake_case column
//! name, so no cell ever needs quoting (checked by a test), and the crate changed the features of
//! `serde_core`/`memchr`, which rebuilt Bevy and most of the tree on an incremental build.

use std::io::Write;
use std::path::Path;

use crate::export::{ExportError, times_s};
use crate::vision::FrameResult;
use crate::vision::angles::Joint;
use crate::vision::landmarks::{
    HAND_LANDMARK_COUNT, HAND_LANDMARK_NAMES, Hand, Handedness, POSE_LANDMARK_COUNT,
    POSE_LANDMARK_NAMES,
};

const POSE_FIELDS: [&str; 7] = ["x_px", "y_px", "z", "visibility", "x_m", "y_m", "z_m"];
const HAND_FIELDS: [&str; 6] = ["x_px", "y_px", "z", "x_m", "y_m", "z_m"];
const HANDS: [(Handedness, &str); 2] = [
    (Handedness::Left, "left_hand"),
    (Handedness::Right, "right_hand"),
];

/// The header of `landmarks.csv`.
pub fn landmark_columns() -> Vec<String> {
    let mut columns: Vec<String> = ["time_s", "frame", "pose_present"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for name in POSE_LANDMARK_NAMES {
        columns.extend(POSE_FIELDS.iter().map(|f| format!("{name}_{f}")));
    }
    for (_, hand) in HANDS {
        columns.push(format!("{hand}_present"));
        for name in HAND_LANDMARK_NAMES {
            columns.extend(HAND_FIELDS.iter().map(|f| format!("{hand}_{name}_{f}")));
        }
    }
    columns
}

/// The header of `angles.csv`.
pub fn angle_columns() -> Vec<String> {
    let mut columns = vec!["time_s".to_owned(), "frame".to_owned()];
    for joint in Joint::ALL {
        columns.push(format!("{}_deg", joint.name()));
        columns.push(format!("{}_confidence", joint.name()));
    }
    columns
}

/// A finite value as text, else an empty cell.
fn cell(v: f32) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn empty(n: usize) -> impl Iterator<Item = String> {
    std::iter::repeat_n(String::new(), n)
}

/// The person's hand of that side, if tracked on this frame.
fn hand_of(result: &FrameResult, side: Handedness) -> Option<&Hand> {
    result.hands.iter().find(|h| h.handedness == side)
}

/// One row of `landmarks.csv`.
fn landmark_row(time_s: f64, frame: usize, result: &FrameResult) -> Vec<String> {
    let mut row = vec![
        format!("{time_s:.6}"),
        frame.to_string(),
        u8::from(result.pose.is_some()).to_string(),
    ];
    match &result.pose {
        Some(pose) => {
            for (l, w) in pose.landmarks.iter().zip(&pose.world_landmarks) {
                row.extend([
                    cell(l.pos_in_image[0]),
                    cell(l.pos_in_image[1]),
                    cell(l.depth),
                    cell(l.visibility),
                    cell(w.pos_in_world[0]),
                    cell(w.pos_in_world[1]),
                    cell(w.pos_in_world[2]),
                ]);
            }
        }
        None => row.extend(empty(POSE_LANDMARK_COUNT * POSE_FIELDS.len())),
    }
    for (side, _) in HANDS {
        match hand_of(result, side) {
            Some(hand) => {
                row.push("1".to_owned());
                for (l, w) in hand.landmarks.iter().zip(&hand.world_landmarks) {
                    row.extend([
                        cell(l.pos_in_image[0]),
                        cell(l.pos_in_image[1]),
                        cell(l.depth),
                        cell(w.pos_in_world[0]),
                        cell(w.pos_in_world[1]),
                        cell(w.pos_in_world[2]),
                    ]);
                }
            }
            None => {
                row.push("0".to_owned());
                row.extend(empty(HAND_LANDMARK_COUNT * HAND_FIELDS.len()));
            }
        }
    }
    row
}

/// One row of `angles.csv`.
fn angle_row(time_s: f64, frame: usize, result: &FrameResult) -> Vec<String> {
    let mut row = vec![format!("{time_s:.6}"), frame.to_string()];
    for joint in Joint::ALL {
        match result.angles.get(joint) {
            Some(a) => row.extend([cell(a.radians.to_degrees()), cell(a.confidence)]),
            None => row.extend(empty(2)),
        }
    }
    row
}

/// Whether a cell can go into a CSV line as it is (RFC 4180: no comma, quote or line break).
fn plain(cell: &str) -> bool {
    !cell.contains([',', '"', '\n', '\r'])
}

fn write_line(out: &mut impl Write, cells: &[String]) -> std::io::Result<()> {
    debug_assert!(cells.iter().all(|c| plain(c)), "a cell needs quoting");
    writeln!(out, "{}", cells.join(","))
}

fn write_table(
    path: &Path,
    header: Vec<String>,
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<(), ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    write_line(&mut out, &header).map_err(io)?;
    for row in rows {
        write_line(&mut out, &row).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Writes `<prefix>landmarks.csv` and `<prefix>angles.csv` into `dir`; returns their paths.
pub fn write(
    dir: &Path,
    prefix: &str,
    results: &[FrameResult],
) -> Result<(std::path::PathBuf, std::path::PathBuf), ExportError> {
    if results.is_empty() {
        return Err(ExportError::Empty);
    }
    let times = times_s(results);
    let landmarks = dir.join(format!("{prefix}landmarks.csv"));
    write_table(
        &landmarks,
        landmark_columns(),
        results
            .iter()
            .enumerate()
            .map(|(i, r)| landmark_row(times[i], i, r)),
    )?;
    let angles = dir.join(format!("{prefix}angles.csv"));
    write_table(
        &angles,
        angle_columns(),
        results
            .iter()
            .enumerate()
            .map(|(i, r)| angle_row(times[i], i, r)),
    )?;
    Ok((landmarks, angles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_one_cell_per_column_with_or_without_a_person() {
        let empty = FrameResult {
            timestamp_us: 0,
            width: 640,
            height: 480,
            pose: None,
            hands: Vec::new(),
            angles: Default::default(),
            people: Vec::new(),
            pose_detector_ran: true,
            palm_detector_ran: true,
            timings: Default::default(),
        };
        let row = landmark_row(0.0, 0, &empty);
        assert_eq!(row.len(), landmark_columns().len());
        assert_eq!(row[2], "0");
        assert!(row[3..].iter().all(|c| c.is_empty() || c == "0"));
        assert_eq!(angle_row(0.0, 0, &empty).len(), angle_columns().len());
        let columns = landmark_columns();
        let unique: std::collections::BTreeSet<&String> = columns.iter().collect();
        assert_eq!(unique.len(), columns.len(), "column names are unique");
        assert_eq!(columns.len(), 3 + 33 * 7 + 2 * (1 + 21 * 6));
        // No header or value cell ever needs RFC 4180 quoting.
        assert!(columns.iter().chain(&angle_columns()).all(|c| plain(c)));
        for v in [f32::MIN_POSITIVE, -1.5e-7, 1234.5678, f32::MAX, f32::NAN] {
            assert!(plain(&cell(v)), "{v}");
        }
    }
}
