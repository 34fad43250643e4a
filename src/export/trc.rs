//! OpenSim's TRC marker file (Track Row Column, as written by Motion Analysis' Cortex and read by
//! OpenSim's `TRCFileAdapter`, Pose2Sim and Sports2D): a tab-separated header of five lines — the file
//! type, the header keys, their values, the marker names (each over three columns) and the `X1 Y1 Z1 …`
//! axis labels — then one line per frame: frame number (from 1), time (s), and each marker's X, Y, Z.
//!
//! Markers: the 33 body landmarks (MediaPipe's names), from the world landmarks, in **millimetres**, in
//! a y-up right-handed frame: X = MediaPipe's x (the image's right), Y = −y (up), Z = −z (towards the
//! camera), origin between the hips (MediaPipe's world landmarks are hip-centred, so the pelvis does not
//! travel). `DataRate` is the median rate of the capture timestamps; `Time` is each frame's own capture
//! time. A marker not seen on a frame (no person) has empty cells: OpenSim's `TRCFileAdapter` reads a
//! marker with an empty component as NaN (a gap).

use std::io::Write as _;
use std::path::Path;

use crate::export::{ExportError, frame_rate, times_s};
use crate::vision::FrameResult;
use crate::vision::landmarks::{POSE_LANDMARK_COUNT, POSE_LANDMARK_NAMES};

/// Marker position in the TRC frame (mm, y up) from a MediaPipe world landmark (m, y down).
pub fn trc_from_world_mm(p: [f32; 3]) -> [f64; 3] {
    [
        f64::from(p[0]) * 1000.0,
        -f64::from(p[1]) * 1000.0,
        -f64::from(p[2]) * 1000.0,
    ]
}

/// Writes the TRC text of `results` to `out`; `file_name` goes in the first line. `fallback_fps` is
/// the rate when the timestamps cannot give one.
pub fn write_to(
    out: &mut impl std::io::Write,
    file_name: &str,
    results: &[FrameResult],
    fallback_fps: f64,
) -> std::io::Result<()> {
    let rate = frame_rate(results, fallback_fps);
    let frames = results.len();
    let markers = POSE_LANDMARK_COUNT;
    writeln!(out, "PathFileType\t4\t(X/Y/Z)\t{file_name}")?;
    writeln!(
        out,
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames"
    )?;
    writeln!(
        out,
        "{rate:.2}\t{rate:.2}\t{frames}\t{markers}\tmm\t{rate:.2}\t1\t{frames}"
    )?;
    // Each name heads its three columns (X, Y, Z): the name, then two empty cells.
    writeln!(out, "Frame#\tTime\t{}", POSE_LANDMARK_NAMES.join("\t\t\t"))?;
    let axes: Vec<String> = (1..=markers).map(|i| format!("X{i}\tY{i}\tZ{i}")).collect();
    writeln!(out, "\t\t{}", axes.join("\t"))?;
    writeln!(out)?;
    for (i, (result, time_s)) in results.iter().zip(times_s(results)).enumerate() {
        write!(out, "{}\t{time_s:.6}", i + 1)?;
        for m in 0..markers {
            let p = result
                .pose
                .as_ref()
                .map(|p| trc_from_world_mm(p.world_landmarks[m].pos_in_world))
                .filter(|p| p.iter().all(|v| v.is_finite()));
            match p {
                Some([x, y, z]) => write!(out, "\t{x:.3}\t{y:.3}\t{z:.3}")?,
                None => write!(out, "\t\t\t")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Writes `path` (a `.trc` file).
pub fn write(path: &Path, results: &[FrameResult], fallback_fps: f64) -> Result<(), ExportError> {
    if results.is_empty() {
        return Err(ExportError::Empty);
    }
    let io = |source| ExportError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    write_to(&mut out, &name, results, fallback_fps)
        .and_then(|()| out.flush())
        .map_err(io)
}
