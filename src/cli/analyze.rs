//! `livepose analyze`: images, folders, MJPEG and video files to JSON (and annotated PNGs). Every input is a
//! lossless stream of the inference service (`crate::service`): each frame is processed, in order, with
//! the pose branch of one frame beside the hand branch of the previous one. With `--bvh`, a clip's
//! results also go through the motion solver (`crate::motion`), a subscriber like the JSON writer.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::AnalyzeArgs;
use crate::cli::annotate::{draw_result, save_png};
use crate::frame::{EncodedFormat, FrameInput, FrameMeta, Payload};
use crate::schema::frame_json;
use crate::service::{
    Delivery, Service, StreamHandle, StreamKind, StreamResult, StreamSpec, Subscription,
};
use crate::vision::TrackerConfig;
use crate::vision::image::MjpegFrames;

/// Results a clip may have outstanding (published, not yet written); the subscription holds more, so
/// none is ever dropped.
const MAX_OUTSTANDING: u64 = 4;
/// Longest wait for one result (a model run takes milliseconds; this only catches a stuck service).
const RESULT_TIMEOUT: Duration = Duration::from_secs(120);

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// One unit of work.
enum Input {
    Image(PathBuf),
    Mjpeg(PathBuf),
    /// A video file (MP4, MOV, MKV, WebM, AVI, …), decoded by FFmpeg.
    Video(PathBuf),
    /// A recorded session folder: its frames, tracked again, with their recorded timestamps.
    Session(PathBuf),
}

impl Input {
    fn path(&self) -> &Path {
        match self {
            Input::Image(p) | Input::Mjpeg(p) | Input::Video(p) | Input::Session(p) => p,
        }
    }
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
        if crate::session::is_session_dir(path) {
            inputs.push(Input::Session(path.clone()));
        } else if path.is_dir() {
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
                        } else if crate::video::is_video_path(&file) {
                            inputs.push(Input::Video(file));
                        } else if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                            inputs.push(Input::Image(file));
                        }
                    }
                    if inputs.len() == before {
                        errors.push(format!(
                            "{}: folder has no images, .mjpeg or video files",
                            path.display()
                        ));
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        } else if extension(path) == "mjpeg" {
            inputs.push(Input::Mjpeg(path.clone()));
        } else if crate::video::is_video_path(path) {
            inputs.push(Input::Video(path.clone()));
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
    let config = args.engine.service_config();
    let model_name = config.engine.pose_model.file_stem();
    let service = Service::start(config)?;
    let (inputs, mut errors) = collect_inputs(&args.inputs);
    let progress = indicatif::ProgressBar::new(inputs.len() as u64);
    if inputs.len() < 2 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for input in &inputs {
        let outcome = match input {
            Input::Image(path) => {
                progress.set_message(file_name(path));
                analyze_image(&service, path, args, model_name)
            }
            Input::Mjpeg(path) => analyze_mjpeg(&service, path, args, model_name),
            Input::Video(path) => analyze_video(&service, path, args, model_name),
            Input::Session(path) => analyze_session(&service, path, args, model_name),
        };
        if let Err(e) = outcome {
            let path = input.path();
            let message = format!("{}: {e:#}", path.display());
            progress.suspend(|| tracing::error!("{message}"));
            errors.push(message);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    for e in errors.iter().filter(|e| e.contains("folder has no")) {
        tracing::error!("{e}");
    }
    Ok(errors.len())
}

/// A lossless stream for one input, and its results.
fn open(service: &Service, path: &Path, tracker: TrackerConfig) -> (StreamHandle, Subscription) {
    let stream = service.open_stream(StreamSpec {
        name: path.display().to_string(),
        kind: StreamKind::Analysis,
        tracker,
        delivery: Delivery::Lossless,
    });
    let results = stream.subscribe(2 * MAX_OUTSTANDING as usize);
    (stream, results)
}

fn next_result(results: &Subscription) -> anyhow::Result<StreamResult> {
    results
        .recv_timeout(RESULT_TIMEOUT)
        .context("no result from the inference service")
}

fn encoded(bytes: bytes::Bytes) -> anyhow::Result<Payload> {
    let format = EncodedFormat::sniff(&bytes)
        .context("not a recognised image format (expected JPEG, PNG or WebP)")?;
    Ok(Payload::Encoded { format, bytes })
}

fn analyze_image(
    service: &Service,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (stream, results) = open(
        service,
        path,
        args.engine.static_tracker_config(super::ANALYZE_MAX_PEOPLE),
    );
    stream.publish(FrameInput {
        meta: FrameMeta {
            timestamp_us: 0,
            ..FrameMeta::captured_now(0)
        },
        payload: encoded(bytes.into())?,
    })?;
    let done = next_result(&results)?;
    let result = done.outcome?;
    let json = frame_json(&file_name(path), None, &result, model);
    let out = args.out.join(format!("{}.json", stem(path)));
    std::fs::write(&out, serde_json::to_vec(&json)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    if args.annotate
        && let Some(image) = &done.image
    {
        let mut image = (**image).clone();
        draw_result(&mut image, &result);
        let png = args.out.join(format!("{}.png", stem(path)));
        save_png(&image, &png).with_context(|| format!("cannot write {}", png.display()))?;
    }
    Ok(())
}

/// Writes one clip frame's line (and PNG); returns false when the frame could not be processed.
struct ClipWriter<'a> {
    path: &'a Path,
    name: String,
    args: &'a AnalyzeArgs,
    model: &'static str,
    writer: std::io::BufWriter<std::fs::File>,
    frames_dir: PathBuf,
    progress: &'a indicatif::ProgressBar,
    bad_frames: usize,
    /// With `--bvh`: the solver and what it solved.
    motion: Option<ClipMotion>,
    /// With `--bvh`, `--csv` or `--trc`: the clip's results, in order, for the exports.
    kept: Option<Vec<crate::vision::FrameResult>>,
}

#[derive(Default)]
struct ClipMotion {
    solver: crate::motion::Solver,
    poses: Vec<crate::motion::HumanoidPose>,
}

impl ClipMotion {
    /// Writes `<stem>.bvh` on the rest pose measured over the clip; returns the clip's figures.
    fn finish(
        &self,
        path: &Path,
        fps: f64,
        results: &[crate::vision::FrameResult],
    ) -> anyhow::Result<crate::motion::Quality> {
        let rest = self.solver.rest_pose();
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        crate::motion::bvh::write(&mut out, &rest, &self.poses, fps)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(crate::motion::measure(&rest, &self.poses, results))
    }
}

impl ClipWriter<'_> {
    fn write(&mut self, done: StreamResult) -> anyhow::Result<()> {
        self.progress.inc(1);
        let index = done.meta.seq as usize;
        let result = match done.outcome {
            Ok(result) => result,
            Err(e) => {
                self.progress.suspend(|| {
                    tracing::warn!("{}: frame {index}: {e}; skipped", self.path.display())
                });
                self.bad_frames += 1;
                return Ok(());
            }
        };
        serde_json::to_writer(
            &mut self.writer,
            &frame_json(&self.name, Some(index), &result, self.model),
        )?;
        self.writer.write_all(b"\n")?;
        if let Some(motion) = &mut self.motion {
            motion.poses.push(motion.solver.solve(&result));
        }
        if let Some(kept) = &mut self.kept {
            kept.push(crate::vision::FrameResult::clone(&result));
        }
        if self.args.annotate
            && let Some(image) = &done.image
        {
            let mut image = (**image).clone();
            draw_result(&mut image, &result);
            let png = self.frames_dir.join(format!("{index:05}.png"));
            save_png(&image, &png).with_context(|| format!("cannot write {}", png.display()))?;
        }
        Ok(())
    }
}

/// One frame of a clip, ready to publish, or why it could not be read.
type ClipFrame = Result<(i64, Payload), String>;

fn analyze_mjpeg(
    service: &Service,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = bytes::Bytes::from(bytes);
    let frames: Vec<_> = MjpegFrames::new(&bytes).collect();
    anyhow::ensure!(!frames.is_empty(), "no JPEG frames found");
    let frame_us = (1e6 / args.fps.max(1e-3)).round() as i64;
    let total = frames.len() as u64;
    let clip = frames.into_iter().enumerate().map(|(index, frame)| {
        let jpeg = frame.map_err(|e| e.to_string())?;
        // The frame's bytes, shared with the file's buffer (not copied).
        let start = jpeg.as_ptr() as usize - bytes.as_ptr() as usize;
        let payload = Payload::Encoded {
            format: EncodedFormat::Jpeg,
            bytes: bytes.slice(start..start + jpeg.len()),
        };
        Ok(((index as i64 + 1) * frame_us, payload))
    });
    let meta = ClipMeta {
        frames: Some(total),
        fps: args.fps,
        max_people: super::ANALYZE_MAX_PEOPLE,
    };
    analyze_clip(service, path, args, model, clip, meta)
}

/// A video file through FFmpeg (`crate::video`): frames decoded one at a time, stamped with their
/// presentation times, so memory does not grow with the file's length.
fn analyze_video(
    service: &Service,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
) -> anyhow::Result<()> {
    let mut reader = crate::video::VideoReader::open(path)?;
    let info = reader.info().clone();
    tracing::debug!("{}: {info:?}", path.display());
    let clip = std::iter::from_fn(|| {
        let frame = reader.next_frame()?;
        Some(
            frame
                .map_err(|e| e.to_string())
                .map(|f| (f.pts_us, Payload::Decoded(std::sync::Arc::new(f.image)))),
        )
    });
    let fps = info.avg_fps.unwrap_or(args.fps);
    let meta = ClipMeta {
        frames: info.frames_estimate,
        fps,
        max_people: super::ANALYZE_MAX_PEOPLE,
    };
    let outcome = analyze_clip(service, path, args, model, clip, meta);
    let early = reader.ended_early();
    let damaged = reader.damaged_packets();
    outcome?;
    anyhow::ensure!(reader.frames_read() > 0, "no frame could be decoded");
    if early.is_some() || damaged > 0 {
        let mut problems = Vec::new();
        problems.extend(early);
        if damaged > 0 {
            problems.push(format!("{damaged} damaged packet(s) skipped"));
        }
        anyhow::bail!(
            "the file is damaged ({}); the {} frames that decoded were analysed",
            problems.join("; "),
            reader.frames_read()
        );
    }
    Ok(())
}

/// A recorded session: the frames exactly as recorded, stamped with their recorded timestamps, so the
/// same settings give the recorded results again.
fn analyze_session(
    service: &Service,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
) -> anyhow::Result<()> {
    let session = crate::session::RecordedSession::open(path)?;
    for warning in &session.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    anyhow::ensure!(!session.frames.is_empty(), "the session has no frames");
    let clip = session.frames.iter().map(|entry| {
        let bytes = session
            .frame_bytes(entry.frame)
            .map_err(|e| e.to_string())?;
        let format = EncodedFormat::sniff(&bytes).unwrap_or(entry.format);
        Ok((
            entry.timestamp_us,
            Payload::Encoded {
                format,
                bytes: bytes.into(),
            },
        ))
    });
    // The session's number of people unless `--max-people` says otherwise: whether a detection runs
    // while someone is tracked depends on it, and so (for a body cut at the waist) the results.
    let meta = ClipMeta {
        frames: Some(session.frames.len() as u64),
        fps: args.fps,
        max_people: session
            .info
            .as_ref()
            .map_or(super::ANALYZE_MAX_PEOPLE, |i| i.settings.tracker.max_people),
    };
    analyze_clip(service, path, args, model, clip, meta)
}

fn clip_progress(total: Option<u64>, name: String) -> indicatif::ProgressBar {
    let progress = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {pos}/{len} frames, {per_sec}, {eta} left",
    ) {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.with_message(name)
}

/// What is known of a clip before it is read.
struct ClipMeta {
    /// How many frames (an estimate for a video file), for the progress bar.
    frames: Option<u64>,
    /// Frames per second, for the exports.
    fps: f64,
    /// How many people to track unless `--max-people` says.
    max_people: usize,
}

/// Publishes a clip's frames losslessly, in order, and writes each result as it comes.
fn analyze_clip(
    service: &Service,
    path: &Path,
    args: &AnalyzeArgs,
    model: &'static str,
    clip: impl Iterator<Item = ClipFrame>,
    meta: ClipMeta,
) -> anyhow::Result<()> {
    let ClipMeta {
        frames: total,
        fps,
        max_people,
    } = meta;
    let config = if args.r#static {
        args.engine.static_tracker_config(max_people)
    } else {
        args.engine.video_tracker_config(max_people)
    };
    let (stream, results) = open(service, path, config);
    let out_path = args.out.join(format!("{}.jsonl", stem(path)));
    let file = std::fs::File::create(&out_path)
        .with_context(|| format!("cannot create {}", out_path.display()))?;
    let frames_dir = args.out.join(stem(path));
    if args.annotate {
        std::fs::create_dir_all(&frames_dir)
            .with_context(|| format!("cannot create {}", frames_dir.display()))?;
    }
    let progress = clip_progress(total, file_name(path));
    let mut out = ClipWriter {
        path,
        name: file_name(path),
        args,
        model,
        writer: std::io::BufWriter::new(file),
        frames_dir,
        progress: &progress,
        bad_frames: 0,
        motion: args.bvh.then(ClipMotion::default),
        kept: (args.bvh || args.csv || args.trc).then(Vec::new),
    };
    let (mut published, mut written) = (0_u64, 0_u64);
    for (index, frame) in clip.enumerate() {
        let (timestamp_us, payload) = match frame {
            Ok(frame) => frame,
            Err(e) => {
                progress.inc(1);
                progress
                    .suspend(|| tracing::warn!("{}: frame {index}: {e}; skipped", path.display()));
                out.bad_frames += 1;
                continue;
            }
        };
        stream.publish(FrameInput {
            meta: FrameMeta {
                seq: index as u64,
                timestamp_us,
                ..FrameMeta::captured_now(index as u64)
            },
            payload,
        })?;
        published += 1;
        while let Some(done) = results.try_recv() {
            out.write(done)?;
            written += 1;
        }
        while published - written >= MAX_OUTSTANDING {
            out.write(next_result(&results)?)?;
            written += 1;
        }
    }
    while written < published {
        out.write(next_result(&results)?)?;
        written += 1;
    }
    progress.finish_and_clear();
    out.writer.flush()?;
    let kept = out.kept.as_deref().unwrap_or_default();
    let fps = crate::export::frame_rate(kept, fps);
    if let Some(motion) = &out.motion {
        let bvh = args.out.join(format!("{}.bvh", stem(path)));
        let quality = motion.finish(&bvh, fps, kept)?;
        tracing::info!("{}: {quality}", bvh.display());
    }
    if args.csv && !kept.is_empty() {
        let (landmarks, angles) =
            crate::export::csv::write(&args.out, &format!("{}.", stem(path)), kept)?;
        tracing::info!("wrote {} and {}", landmarks.display(), angles.display());
    }
    if args.trc && !kept.is_empty() {
        let trc = args.out.join(format!("{}.trc", stem(path)));
        crate::export::trc::write(&trc, kept, fps)?;
        tracing::info!("wrote {}", trc.display());
    }
    anyhow::ensure!(
        out.bad_frames == 0,
        "{} frame(s) could not be decoded",
        out.bad_frames
    );
    Ok(())
}
