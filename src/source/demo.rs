//! Demo / file source: plays an `.mjpeg` clip, an image folder or a single image at a fixed frame rate,
//! looping, on its own named thread. Used when there is no camera. Frames are published as the encoded
//! bytes of the file; inference decodes them (so frames dropped by the latest-wins slot cost nothing).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frame::{EncodedFormat, FrameInput, FrameMeta, Payload};
use crate::service::StreamHandle;
use crate::source::{FpsMeter, SourceError, SourceHandle, SourceShared};
use crate::vision::image::{MjpegFrames, rgb_image_from_bytes};

/// The clip shipped in `assets/demo/` (see its README).
pub fn bundled_demo_clip() -> PathBuf {
    let local = Path::new("assets/demo/kenburns_messi.mjpeg");
    if local.is_file() {
        return local.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/kenburns_messi.mjpeg")
}

/// Encoded frames of a clip, kept in memory and decoded as they are played.
fn load_frames(path: &Path) -> Result<Vec<bytes::Bytes>, SourceError> {
    let media_err = |reason: String| SourceError::Media {
        path: path.to_owned(),
        reason,
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| media_err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let ext = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp")
            })
            .collect();
        files.sort();
        let frames: Vec<bytes::Bytes> = files
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .map(bytes::Bytes::from)
            .collect();
        if frames.is_empty() {
            return Err(media_err("folder has no images".into()));
        }
        return Ok(frames);
    }
    let bytes = std::fs::read(path).map_err(|e| media_err(e.to_string()))?;
    let is_mjpeg = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mjpeg"));
    if !is_mjpeg {
        return Ok(vec![bytes.into()]);
    }
    let frames: Vec<bytes::Bytes> = MjpegFrames::new(&bytes)
        .filter_map(Result::ok)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    if frames.is_empty() {
        return Err(media_err("no JPEG frames found".into()));
    }
    Ok(frames)
}

/// Starts playing `path` at `fps`, looping, into `stream`.
pub fn spawn_demo(
    path: &Path,
    fps: f32,
    stream: Arc<StreamHandle>,
) -> Result<SourceHandle, SourceError> {
    let frames = load_frames(path)?;
    // Check the first frame decodes, so a bad file is reported now rather than on the thread.
    rgb_image_from_bytes(&frames[0]).map_err(|e| SourceError::Media {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let shared = Arc::new(SourceShared::default());
    let name = format!(
        "demo: {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    shared.update(|s| s.name = name);
    let period = Duration::from_secs_f32(1.0 / fps.clamp(0.1, 240.0));
    let thread_shared = Arc::clone(&shared);
    let thread_stream = Arc::clone(&stream);
    let thread = std::thread::Builder::new()
        .name("livepose-demo-source".into())
        .spawn(move || {
            let mut next = Instant::now();
            let mut meter = FpsMeter::default();
            let mut seq = 0_u64;
            for bytes in frames.iter().cycle() {
                if thread_shared.stopping() {
                    break;
                }
                let Some(format) = EncodedFormat::sniff(bytes) else {
                    thread_shared.update(|s| s.error = Some("frame skipped: not an image".into()));
                    continue;
                };
                let meta = FrameMeta::captured_now(seq);
                let published = thread_stream.publish(FrameInput {
                    meta,
                    payload: Payload::Encoded {
                        format,
                        bytes: bytes.clone(),
                    },
                });
                match published {
                    Ok(_) => {
                        seq += 1;
                        let fps = meter.tick(meta.captured_at);
                        thread_shared.update(|s| {
                            s.capture_fps = fps;
                            s.frames = seq;
                            s.error = None;
                        });
                    }
                    Err(e) => {
                        thread_shared.update(|s| s.error = Some(format!("stopped: {e}")));
                        break;
                    }
                }
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now; // fell behind: do not try to catch up
                }
            }
        })?;
    Ok(SourceHandle::new(shared, stream, thread))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Delivery, Service, ServiceConfig, StreamKind, StreamSpec};
    use crate::vision::{EngineConfig, TrackerConfig};

    fn service() -> Service {
        let engine = EngineConfig {
            hands: false,
            ..EngineConfig::default()
        };
        Service::start(ServiceConfig::new(engine, 1, 1)).unwrap()
    }

    fn stream(service: &Service) -> Arc<StreamHandle> {
        Arc::new(service.open_stream(StreamSpec {
            name: "demo".into(),
            kind: StreamKind::File,
            tracker: TrackerConfig::VIDEO,
            delivery: Delivery::LatestWins,
        }))
    }

    #[test]
    fn plays_the_bundled_clip_into_its_stream_and_stops_on_drop() {
        let service = service();
        let stream = stream(&service);
        let results = stream.subscribe(1);
        let handle = spawn_demo(&bundled_demo_clip(), 100.0, Arc::clone(&stream)).unwrap();
        let result = results
            .recv_timeout(Duration::from_secs(20))
            .expect("a result");
        let image = result.image.expect("decoded");
        assert_eq!((image.width, image.height), (640, 480));
        assert!(handle.status().name.contains("kenburns_messi"));
        drop(handle);
        let received = stream.stats().received;
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            stream.stats().received,
            received,
            "still publishing after drop"
        );
        assert!(received >= 2, "{received}");
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let service = service();
        let err = spawn_demo(Path::new("/nonexistent.mjpeg"), 30.0, stream(&service)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.mjpeg"));
    }
}
