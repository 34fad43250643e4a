//! Recording from the app. Reads: [`ShowStream`], [`Inference`], `AppSettings`, [`Followed`] (written
//! with each result, so that the recording's exports follow that person), the panel's Record button
//! ([`Recording::toggle`]). Writes: [`Recording`] (the running recorder, its status and the
//! last message for the panel).
//!
//! The recorder is a subscriber of the shown stream (`crate::session`): it never slows capture,
//! inference or the display. `--record DIR` records the first stream shown into DIR; the Record button
//! records into `livepose-sessions/<date>-<time>` in the working folder. A recording ends with the
//! button, when the shown stream changes (another source), or when the window closes (the session is
//! completed on drop).

use bevy::prelude::*;

use crate::app::results::{Followed, Inference, ShowStream, tracker_config};
use crate::app::{AppSettings, AppSystems};
use crate::service::StreamId;
use crate::session::writer::RECORDER_QUEUE;
use crate::session::{
    Recorder, RecorderConfig, RecorderStatus, SessionSettings, SessionSource, model_hashes,
    rfc3339_utc,
};

/// Folder of the Record button's sessions, in the working folder.
pub const SESSIONS_FOLDER: &str = "livepose-sessions";

#[derive(Resource, Default)]
pub struct Recording {
    recorder: Option<(StreamId, Recorder)>,
    /// `--record DIR`, until the first stream is shown.
    pending_dir: Option<std::path::PathBuf>,
    /// Set by the panel's button: start or stop.
    pub toggle: bool,
    /// For the panel: where the last recording went, or why it stopped.
    pub message: Option<String>,
}

impl Recording {
    pub fn status(&self) -> Option<RecorderStatus> {
        self.recorder.as_ref().map(|(_, r)| r.status())
    }

    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    fn stop(&mut self, why: &str) {
        if let Some((_, recorder)) = self.recorder.take() {
            let status = recorder.status();
            // Completing the session writes what is queued: off the main thread.
            bevy::tasks::IoTaskPool::get()
                .spawn(async move { drop(recorder) })
                .detach();
            self.message = Some(match status.error {
                Some(e) => format!("recording stopped: {e}"),
                None => format!(
                    "{why}: {} frames in {}",
                    status.frames,
                    status.dir.display()
                ),
            });
        }
    }
}

/// A folder name for now: `2026-12-03_13-05-01`.
fn stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let text = rfc3339_utc(now);
    text.get(..19)
        .unwrap_or(&text)
        .replace('T', "_")
        .replace(':', "-")
}

fn start(
    inference: &Inference,
    settings: &AppSettings,
    id: StreamId,
    dir: std::path::PathBuf,
) -> Result<Recorder, String> {
    let service = inference
        .service
        .as_ref()
        .ok_or_else(|| "the inference service is not running".to_owned())?;
    let info = service
        .streams()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| "the stream has closed".to_owned())?;
    let subscription = service
        .subscribe(id, RECORDER_QUEUE)
        .ok_or_else(|| "the stream has closed".to_owned())?;
    let engine = service.engine_config();
    let kind = serde_json::to_value(&info.kind)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let config = RecorderConfig {
        dir,
        source: SessionSource {
            name: info.name,
            kind,
        },
        settings: SessionSettings::new(&engine, tracker_config(settings)),
        models: model_hashes(&engine),
    };
    Recorder::start_with(subscription, config).map_err(|e| e.to_string())
}

fn manage_recording(
    mut recording: ResMut<Recording>,
    show: Res<ShowStream>,
    inference: Res<Inference>,
    settings: Res<AppSettings>,
    followed: Res<Followed>,
) {
    // The person followed goes with each result, for the recording's BVH, CSV, TRC and report.
    if let Some((_, recorder)) = &recording.recorder {
        recorder.follow(followed.current);
    }
    // Ended by itself (the stream closed) or by a write error: say so, keep tracking.
    if let Some((_, recorder)) = &recording.recorder {
        let status = recorder.status();
        if !status.running {
            recording.stop("recording ended");
        }
    }
    if let Some((id, _)) = &recording.recorder
        && show.0 != Some(*id)
    {
        recording.stop("recording ended (the source changed)");
    }
    let toggle = std::mem::take(&mut recording.toggle);
    if toggle && recording.recorder.is_some() {
        recording.stop("recorded");
        return;
    }
    let Some(id) = show.0 else {
        if toggle {
            recording.message = Some("nothing to record yet: no stream is shown".into());
        }
        return;
    };
    let dir = if toggle {
        Some(std::path::Path::new(SESSIONS_FOLDER).join(stamp()))
    } else {
        recording.pending_dir.take()
    };
    if let Some(dir) = dir {
        match start(&inference, &settings, id, dir.clone()) {
            Ok(recorder) => {
                info!("recording into {}", dir.display());
                recording.message = None;
                recording.recorder = Some((id, recorder));
            }
            Err(e) => {
                error!("cannot record into {}: {e}", dir.display());
                recording.message = Some(format!("cannot record into {}: {e}", dir.display()));
            }
        }
    }
}

fn init(mut recording: ResMut<Recording>, settings: Res<AppSettings>) {
    recording.pending_dir = settings.record_dir.clone();
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Recording>()
        .add_systems(Startup, init)
        .add_systems(
            Update,
            manage_recording
                .in_set(AppSystems::Source)
                .after(crate::app::source::choose_stream),
        );
}
