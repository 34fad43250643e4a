//! Demo / file source: plays an `.mjpeg` clip, an image folder or a single image at a fixed frame rate,
//! looping, on its own named thread. Used when there is no camera.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frame::{Frame, timestamp_us};
use crate::frame_slot::FrameSlot;
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
fn load_frames(path: &Path) -> Result<Vec<Vec<u8>>, SourceError> {
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
        let frames: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
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
        return Ok(vec![bytes]);
    }
    let frames: Vec<Vec<u8>> = MjpegFrames::new(&bytes)
        .filter_map(Result::ok)
        .map(<[u8]>::to_vec)
        .collect();
    if frames.is_empty() {
        return Err(media_err("no JPEG frames found".into()));
    }
    Ok(frames)
}

/// Starts playing `path` at `fps`, looping, into `slot`.
pub fn spawn_demo(
    path: &Path,
    fps: f32,
    slot: Arc<FrameSlot>,
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
    let thread_slot = Arc::clone(&slot);
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
                match rgb_image_from_bytes(bytes) {
                    Ok(image) => {
                        let now = Instant::now();
                        thread_slot.publish(Frame {
                            seq,
                            captured_at: now,
                            timestamp_us: timestamp_us(now),
                            image: Arc::new(image),
                        });
                        seq += 1;
                        let fps = meter.tick(now);
                        thread_shared.update(|s| {
                            s.capture_fps = fps;
                            s.frames = seq;
                            s.error = None;
                        });
                    }
                    Err(e) => {
                        thread_shared.update(|s| s.error = Some(format!("frame skipped: {e}")))
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
    Ok(SourceHandle::new(shared, slot, thread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_the_bundled_clip_into_the_slot_and_stops_on_drop() {
        let slot = Arc::new(FrameSlot::new());
        let handle = spawn_demo(&bundled_demo_clip(), 100.0, Arc::clone(&slot)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let frame = slot.take().expect("a frame");
        assert_eq!((frame.image.width, frame.image.height), (640, 480));
        assert!(handle.status().name.contains("kenburns_messi"));
        drop(handle);
        let published = slot.published();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(slot.published(), published, "still publishing after drop");
        assert!(published >= 10, "{published}");
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = spawn_demo(
            Path::new("/nonexistent.mjpeg"),
            30.0,
            Arc::new(FrameSlot::new()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent.mjpeg"));
    }
}
