//! `livepose analyze`: images, folders and MJPEG files to JSON (and annotated PNGs).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::AnalyzeArgs;
use crate::cli::annotate::{draw_result, save_png};
use crate::cli::output::frame_json;
use crate::vision::image::{MjpegFrames, rgb_image_from_bytes, rgb_image_from_path};
use crate::vision::{Engine, Tracker, TrackerConfig};

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// One unit of work.
enum Input {
    Image(PathBuf),
    Mjpeg(PathBuf),
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Expands folders into their images and clips (sorted), keeps files as they are.
fn collect_inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file())
                        .collect();
                    files.sort();
                    let before = inputs.len();
                    for file in files {
                        let ext = extension(&file);
                        if ext == "mjpeg" {
                            inputs.push(Input::Mjpeg(file));
                        } else if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                            inputs.push(Input::Image(file));
                        }
                    }
                    if inputs.len() == before {
                        errors.push(format!(
                            "{}: folder has no images or .mjpeg files",
                            path.display()
                        ));
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        } else if extension(path) == "mjpeg" {
            inputs.push(Input::Mjpeg(path.clone()));
        } else {
            inputs.push(Input::Image(path.clone()));
        }
    }
    (inputs, errors)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs the command; returns the number of inputs that failed.
pub fn run(args: &AnalyzeArgs) -> anyhow::Result<usize> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let config = args.engine.engine_config();
    let model_name = match config.pose_model {
        crate::vision::PoseModel::Lite => "pose_landmark_lite",
        crate::vision::PoseModel::Full => "pose_landmark_full",
        crate::vision::PoseModel::Heavy => "pose_landmark_heavy",
    };
    let mut engine = Engine::new(config).context("cannot load the models")?;
    let (inputs, mut errors) = collect_inputs(&args.inputs);
    let progress = indicatif::ProgressBar::new(inputs.len() as u64);
    if inputs.len() < 2 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for input in &inputs {
        let outcome = match input {
            Input::Image(path) => {
                progress.set_message(file_name(path));
                analyze_image(&mut engine, path, args, model_name)
            }
            Input::Mjpeg(path) => analyze_mjpeg(&mut engine, path, args, model_name),
        };
        if let Err(e) = outcome {
            let path = match input {
                Input::Image(p) | Input::Mjpeg(p) => p,
            };
            let message = format!("{}: {e:#}", path.display());
            progress.suspend(|| eprintln!("error: {message}"));
            errors.push(message);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    for e in errors.iter().filter(|e| e.contains("folder has no")) {
        eprintln!("error: {e}");
    }
    Ok(errors.len())
}

fn analyze_image(
    engine: &mut Engine,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
) -> anyhow::Result<()> {
    let mut image = rgb_image_from_path(path)?;
    let mut tracker = Tracker::new(TrackerConfig::STATIC);
    let result = engine.process(&image, 0, &mut tracker)?;
    let json = frame_json(&file_name(path), None, &result, model);
    let out = args.out.join(format!("{}.json", stem(path)));
    std::fs::write(&out, serde_json::to_vec(&json)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    if args.annotate {
        draw_result(&mut image, &result);
        let png = args.out.join(format!("{}.png", stem(path)));
        save_png(&image, &png).with_context(|| format!("cannot write {}", png.display()))?;
    }
    Ok(())
}

fn analyze_mjpeg(
    engine: &mut Engine,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let frames: Vec<_> = MjpegFrames::new(&bytes).collect();
    anyhow::ensure!(!frames.is_empty(), "no JPEG frames found");
    let config = if args.r#static {
        TrackerConfig::STATIC
    } else {
        args.engine.video_tracker_config()
    };
    let mut tracker = Tracker::new(config);
    let frame_us = (1e6 / args.fps.max(1e-3)).round() as i64;
    let out_path = args.out.join(format!("{}.jsonl", stem(path)));
    let file = std::fs::File::create(&out_path)
        .with_context(|| format!("cannot create {}", out_path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let frames_dir = args.out.join(stem(path));
    if args.annotate {
        std::fs::create_dir_all(&frames_dir)
            .with_context(|| format!("cannot create {}", frames_dir.display()))?;
    }
    let progress = indicatif::ProgressBar::new(frames.len() as u64).with_message(file_name(path));
    let name = file_name(path);
    let mut bad_frames = 0;
    for (index, frame) in frames.into_iter().enumerate() {
        progress.inc(1);
        let decoded = frame
            .map_err(anyhow::Error::from)
            .and_then(|jpeg| rgb_image_from_bytes(jpeg).map_err(anyhow::Error::from));
        let mut image = match decoded {
            Ok(image) => image,
            Err(e) => {
                progress.suspend(|| {
                    eprintln!("warning: {}: frame {index}: {e:#}; skipped", path.display())
                });
                bad_frames += 1;
                continue;
            }
        };
        let timestamp_us = (index as i64 + 1) * frame_us;
        let result = engine.process(&image, timestamp_us, &mut tracker)?;
        serde_json::to_writer(&mut writer, &frame_json(&name, Some(index), &result, model))?;
        writer.write_all(b"\n")?;
        if args.annotate {
            draw_result(&mut image, &result);
            let png = frames_dir.join(format!("{index:05}.png"));
            save_png(&image, &png).with_context(|| format!("cannot write {}", png.display()))?;
        }
    }
    progress.finish_and_clear();
    writer.flush()?;
    anyhow::ensure!(
        bad_frames == 0,
        "{bad_frames} frame(s) could not be decoded"
    );
    Ok(())
}
