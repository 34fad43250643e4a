//! `livepose export` and `livepose report`: what a recorded session (`crate::session`) holds, for other
//! tools and for people. Both read the session folder only (no engine, no models).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::session::RecordedSession;

/// Fallback frame rate when a session has fewer than two results.
const FALLBACK_FPS: f64 = 30.0;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A session folder (written by --record).
    pub session: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// landmarks.csv (every landmark's image and world coordinates) and angles.csv (each joint angle
    /// in degrees with its confidence), one row per frame.
    #[arg(long)]
    pub csv: bool,
    /// markers.trc: OpenSim's marker format (the 33 world landmarks in mm, y up).
    #[arg(long)]
    pub trc: bool,
    /// motion.bvh: the solved humanoid skeleton (centimetres, y up, ZXY rotations).
    #[arg(long)]
    pub bvh: bool,
    /// results.jsonl: the results as recorded (complete lines only).
    #[arg(long)]
    pub jsonl: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A session folder (written by --record).
    pub session: PathBuf,
    /// The HTML file to write (self-contained: plots inline, no network).
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
}

fn open(path: &std::path::Path) -> anyhow::Result<RecordedSession> {
    let session = RecordedSession::open(path)?;
    for warning in &session.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    anyhow::ensure!(
        !session.results.is_empty(),
        "{} holds no results ({} frames)",
        path.display(),
        session.frames.len()
    );
    Ok(session)
}

/// Runs `livepose export`; with no format switch, writes all four. The CSV, TRC and BVH files follow the
/// top-level result: the person followed in the app while recording, else the person with the lowest id
/// in view (as before there were people); a session with more than one person also gets them per
/// person, `person-<id>.*`.
pub fn run_export(args: &ExportArgs) -> anyhow::Result<()> {
    let session = open(&args.session)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let all = !(args.csv || args.trc || args.bvh || args.jsonl);
    let results = session.frame_results();
    let fps = crate::export::frame_rate(&results, FALLBACK_FPS);
    let mut clips = vec![(String::new(), results.clone())];
    let people = crate::export::per_person(&results);
    if people.len() > 1 {
        clips.extend(
            people
                .into_iter()
                .map(|(id, clip)| (format!("person-{id}."), clip)),
        );
    }
    for (prefix, clip) in &clips {
        export_clip(args, all, prefix, clip, fps)?;
    }
    if all || args.jsonl {
        let path = args.out.join("results.jsonl");
        let mut text =
            String::with_capacity(session.results.iter().map(|r| r.line.len() + 1).sum());
        for r in &session.results {
            text.push_str(&r.line);
            text.push('\n');
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// CSV, TRC and BVH of one clip (the top level, or one person), file names starting with `prefix`.
fn export_clip(
    args: &ExportArgs,
    all: bool,
    prefix: &str,
    results: &[crate::vision::FrameResult],
    fps: f64,
) -> anyhow::Result<()> {
    if all || args.csv {
        let (landmarks, angles) = crate::export::csv::write(&args.out, prefix, results)?;
        println!("wrote {} and {}", landmarks.display(), angles.display());
    }
    if all || args.trc {
        let name = if prefix.is_empty() {
            "markers."
        } else {
            prefix
        };
        let path = args.out.join(format!("{name}trc"));
        crate::export::trc::write(&path, results, fps)?;
        println!("wrote {}", path.display());
    }
    if all || args.bvh {
        let name = if prefix.is_empty() { "motion." } else { prefix };
        let path = args.out.join(format!("{name}bvh"));
        let mut solver = crate::motion::Solver::default();
        let poses: Vec<_> = results.iter().map(|r| solver.solve(r)).collect();
        let rest = solver.rest_pose();
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        crate::motion::bvh::write(&mut out, &rest, &poses, fps)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
        let quality = crate::motion::measure(&rest, &poses, results);
        println!("wrote {} ({fps:.2} frames/s): {quality}", path.display());
    }
    Ok(())
}

/// Runs `livepose report`.
pub fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let session = open(&args.session)?;
    let summary = crate::session::report::write(&session, &args.out)?;
    println!(
        "wrote {}: {} results over {:.1} s, person in {:.1} %, {} plots",
        args.out.display(),
        summary.results,
        summary.duration_s,
        summary.with_person * 100.0,
        summary.plots
    );
    Ok(())
}
