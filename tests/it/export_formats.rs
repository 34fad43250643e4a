//! `livepose analyze --csv --trc`, read back by independent readers: pandas 3.1.1 (`read_csv` with no
//! options) and trc-data-reader 0.4.1 (`TRCData.load`), pinned in `tests/requirements.txt`, in the venv
//! `scripts/setup.sh` makes. `tests/export/check_exports.py` checks every value against the JSONL of the
//! same run: CSV cells equal to the JSONL within its own rounding (1e-4 px, 1e-6 otherwise), empty cells
//! exactly where there is no pose, hand or angle, TRC markers equal to the world landmarks in mm (y and z
//! negated: y up) within 0.002 mm, one row or line per frame.
//!
//! Inputs: `kenburns_messi.mjpeg` (90 frames, a person in every one, a hand on many), and a clip made here
//! of its first 20 frames followed by 10 blank ones (no one in view), for the empty rows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;

/// Writes a clip: `kenburns_messi`'s first 20 frames, then 10 blank frames (no one in view).
fn clip_with_gaps(path: &std::path::Path) {
    let mut bytes: Vec<u8> = crate::common::mjpeg_frames("kenburns_messi.mjpeg")
        .into_iter()
        .take(20)
        .flatten()
        .collect();
    let blank = image::RgbImage::from_pixel(640, 480, image::Rgb([40, 40, 40]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(blank)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    for _ in 0..10 {
        bytes.extend_from_slice(&jpeg);
    }
    std::fs::write(path, bytes).unwrap();
}

fn analyze_and_check(clip: &std::path::Path, out: &std::path::Path) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_livepose"))
        .arg("analyze")
        .arg(clip)
        .arg("--out")
        .arg(out)
        .args(["--csv", "--trc"])
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "analyze: {status}");
    let stem = clip.file_stem().unwrap().to_str().unwrap();
    for file in ["landmarks.csv", "angles.csv", "jsonl", "trc"] {
        assert!(out.join(format!("{stem}.{file}")).exists(), "{stem}.{file}");
    }
    let check = Command::new(crate::common::test_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/export/check_exports.py"
        ))
        .arg(out)
        .arg(stem)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "{stdout}");
    stdout
}

#[test]
fn pandas_and_trc_data_reader_read_the_exports_as_the_jsonl_says() {
    let dir = crate::common::temp_dir("export");
    let summary = analyze_and_check(
        &crate::common::fixture("kenburns_messi.mjpeg"),
        &dir.join("messi"),
    );
    assert!(
        summary.contains("ok: 90 frames (90 with a pose"),
        "{summary}"
    );
    let gaps = dir.join("gaps.mjpeg");
    clip_with_gaps(&gaps);
    let summary = analyze_and_check(&gaps, &dir.join("gaps"));
    assert!(
        summary.contains("ok: 30 frames (20 with a pose"),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
