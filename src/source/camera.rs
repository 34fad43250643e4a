//! Native webcam through `nokhwa` (V4L2 on Linux), on its own named thread. MJPEG is preferred and published
//! as the camera's own JPEG bytes (inference decodes them with libjpeg-turbo, and a recording keeps them
//! unchanged); YUYV, NV12, grey and raw RGB are converted to RGB here. When the camera disappears the
//! thread reports it and retries every second. No camera is not an error for the app: it falls back to
//! the demo source.

use std::sync::Arc;
use std::time::Duration;

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};

use crate::frame::{EncodedFormat, FrameInput, FrameMeta, Payload};
use crate::service::StreamHandle;
use crate::source::{FpsMeter, SourceError, SourceHandle, SourceShared};
use crate::vision::RgbImage;
use crate::vision::image::rgb_image_from_jpeg;

/// What to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraRequest {
    pub index: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for CameraRequest {
    fn default() -> Self {
        Self {
            index: 0,
            width: 640,
            height: 480,
            fps: 30,
        }
    }
}

/// A camera the system reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraDevice {
    pub index: String,
    pub name: String,
}

/// Lists cameras; an empty list when there are none.
pub fn list_cameras() -> Result<Vec<CameraDevice>, SourceError> {
    let cameras =
        nokhwa::query(ApiBackend::Auto).map_err(|e| SourceError::Camera(e.to_string()))?;
    Ok(cameras
        .iter()
        .map(|c| CameraDevice {
            index: c.index().to_string(),
            name: c.human_name(),
        })
        .collect())
}

const RETRY_EVERY: Duration = Duration::from_secs(1);

fn open(request: CameraRequest) -> Result<Camera, SourceError> {
    let wanted = CameraFormat::new(
        Resolution::new(request.width, request.height),
        FrameFormat::MJPEG,
        request.fps,
    );
    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
    let mut camera = Camera::new(CameraIndex::Index(request.index), format)
        .map_err(|e| SourceError::Camera(e.to_string()))?;
    camera
        .open_stream()
        .map_err(|e| SourceError::Camera(e.to_string()))?;
    Ok(camera)
}

/// Opens camera `request.index` and streams it into `stream` on a named thread. Fails when the camera
/// cannot be opened (so the caller can fall back); later losses are retried on the thread. Blocks until
/// the camera opened (up to 10 s): call it off the main thread.
pub fn spawn_camera(
    request: CameraRequest,
    stream: Arc<StreamHandle>,
) -> Result<SourceHandle, SourceError> {
    let shared = Arc::new(SourceShared::default());
    // The camera object may not be `Send`: open it on the thread and report the first result back.
    let (opened_tx, opened_rx) = crossbeam_channel::bounded::<Result<String, SourceError>>(1);
    let thread_shared = Arc::clone(&shared);
    let thread_stream = Arc::clone(&stream);
    let thread = std::thread::Builder::new()
        .name("livepose-camera".into())
        .spawn(move || {
            let mut camera = match open(request) {
                Ok(camera) => {
                    let f = camera.camera_format();
                    let name = format!(
                        "camera {}: {} ({}×{} {} @ {} fps)",
                        request.index,
                        camera.info().human_name(),
                        f.width(),
                        f.height(),
                        f.format(),
                        f.frame_rate()
                    );
                    // The opener may have stopped waiting (its timeout): then nobody is to be told.
                    let _ = opened_tx.send(Ok(name));
                    Some(camera)
                }
                Err(e) => {
                    // As above: a failure nobody waits for any more is not reported twice.
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let mut meter = FpsMeter::default();
            let mut seq = 0_u64;
            while !thread_shared.stopping() {
                let Some(cam) = camera.as_mut() else {
                    std::thread::sleep(RETRY_EVERY);
                    match open(request) {
                        Ok(c) => {
                            camera = Some(c);
                            thread_shared.update(|s| s.error = None);
                        }
                        Err(e) => thread_shared
                            .update(|s| s.error = Some(format!("camera lost, retrying: {e}"))),
                    }
                    continue;
                };
                match cam.frame() {
                    Ok(buffer) => {
                        let meta = FrameMeta::captured_now(seq);
                        let res = buffer.resolution();
                        let payload = match buffer.source_frame_format() {
                            FrameFormat::MJPEG => Ok(Payload::Encoded {
                                format: EncodedFormat::Jpeg,
                                bytes: bytes::Bytes::copy_from_slice(buffer.buffer()),
                            }),
                            format => {
                                rgb_from_camera(buffer.buffer(), format, res.width(), res.height())
                                    .map(|image| Payload::Decoded(Arc::new(image)))
                            }
                        };
                        match payload {
                            Ok(payload) => {
                                if let Err(e) = thread_stream.publish(FrameInput { meta, payload })
                                {
                                    thread_shared.update(|s| s.error = Some(format!("{e}")));
                                    break;
                                }
                                seq += 1;
                                let fps = meter.tick(meta.captured_at);
                                thread_shared.update(|s| {
                                    s.capture_fps = fps;
                                    s.frames = seq;
                                });
                            }
                            Err(e) => thread_shared
                                .update(|s| s.error = Some(format!("frame skipped: {e}"))),
                        }
                    }
                    Err(e) => {
                        thread_shared
                            .update(|s| s.error = Some(format!("camera lost, retrying: {e}")));
                        if let Err(e) = cam.stop_stream() {
                            tracing::debug!("camera lost: stopping its stream: {e}");
                        }
                        camera = None;
                    }
                }
            }
            if let Some(mut cam) = camera
                && let Err(e) = cam.stop_stream()
            {
                tracing::warn!("camera: cannot stop its stream: {e}");
            }
        })?;
    match opened_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(name)) => {
            shared.update(|s| s.name = name);
            Ok(SourceHandle::new(shared, stream, thread))
        }
        Ok(Err(e)) => {
            crate::sync::join(thread);
            Err(e)
        }
        Err(_) => {
            shared
                .stop
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Err(SourceError::Camera(
                "the camera did not open within 10 s".into(),
            ))
        }
    }
}

/// Converts one camera buffer into RGB.
pub fn rgb_from_camera(
    data: &[u8],
    format: FrameFormat,
    width: u32,
    height: u32,
) -> Result<RgbImage, String> {
    let (w, h) = (width as usize, height as usize);
    let short = |need: usize| {
        format!(
            "{format} frame has {} bytes, {need} expected for {width}×{height}",
            data.len()
        )
    };
    match format {
        FrameFormat::MJPEG => rgb_image_from_jpeg(data).map_err(|e| e.to_string()),
        FrameFormat::RAWRGB => {
            let need = w * h * 3;
            let bytes = data.get(..need).ok_or_else(|| short(need))?;
            RgbImage::from_raw(width, height, bytes.to_vec()).ok_or_else(|| short(need))
        }
        FrameFormat::RAWBGR => {
            let need = w * h * 3;
            let bytes = data.get(..need).ok_or_else(|| short(need))?;
            let rgb = bytes
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect();
            RgbImage::from_raw(width, height, rgb).ok_or_else(|| short(need))
        }
        FrameFormat::GRAY => {
            let need = w * h;
            let bytes = data.get(..need).ok_or_else(|| short(need))?;
            RgbImage::from_raw(
                width,
                height,
                bytes.iter().flat_map(|&v| [v, v, v]).collect(),
            )
            .ok_or_else(|| short(need))
        }
        FrameFormat::YUYV => {
            let need = w * h * 2;
            let bytes = data.get(..need).ok_or_else(|| short(need))?;
            let mut rgb = Vec::with_capacity(w * h * 3);
            for px in bytes.chunks_exact(4) {
                let (y0, u, y1, v) = (px[0], px[1], px[2], px[3]);
                rgb.extend_from_slice(&yuv_to_rgb(y0, u, v));
                rgb.extend_from_slice(&yuv_to_rgb(y1, u, v));
            }
            RgbImage::from_raw(width, height, rgb).ok_or_else(|| short(need))
        }
        FrameFormat::NV12 => {
            let need = w * h + w * h / 2;
            let bytes = data.get(..need).ok_or_else(|| short(need))?;
            let (luma, chroma) = bytes.split_at(w * h);
            let mut rgb = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    let c = (y / 2) * w + (x / 2) * 2;
                    rgb.extend_from_slice(&yuv_to_rgb(luma[y * w + x], chroma[c], chroma[c + 1]));
                }
            }
            RgbImage::from_raw(width, height, rgb).ok_or_else(|| short(need))
        }
    }
}

/// BT.601 limited-range YCbCr to RGB, as webcams send it.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16).max(0) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_grey_and_colour_convert() {
        // Two pixels of mid grey (Y=126, neutral chroma) and the limits.
        let img = rgb_from_camera(&[126, 128, 126, 128], FrameFormat::YUYV, 2, 1).unwrap();
        assert!(
            img.data.iter().all(|&v| v.abs_diff(128) <= 1),
            "{:?}",
            img.data
        );
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        // Strong red: V high.
        let [r, g, b] = yuv_to_rgb(81, 90, 240);
        assert!(r > 240 && g < 10 && b < 10, "{r} {g} {b}");
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        for format in [
            FrameFormat::YUYV,
            FrameFormat::NV12,
            FrameFormat::GRAY,
            FrameFormat::RAWRGB,
            FrameFormat::RAWBGR,
            FrameFormat::MJPEG,
        ] {
            assert!(
                rgb_from_camera(&[1, 2, 3], format, 64, 48).is_err(),
                "{format}"
            );
        }
    }

    #[test]
    fn no_camera_is_reported_cleanly() {
        // These machines have no camera: listing works (empty) and opening fails with an error.
        if list_cameras().map(|l| l.is_empty()).unwrap_or(true) {
            use crate::service::{Delivery, Service, ServiceConfig, StreamKind, StreamSpec};
            let engine = crate::vision::EngineConfig {
                hands: false,
                ..Default::default()
            };
            let service = Service::start(ServiceConfig::new(engine, 1, 1)).unwrap();
            let stream = Arc::new(service.open_stream(StreamSpec {
                name: "camera".into(),
                kind: StreamKind::Camera,
                tracker: crate::vision::TrackerConfig::VIDEO,
                delivery: Delivery::LatestWins,
            }));
            let err = spawn_camera(CameraRequest::default(), stream).unwrap_err();
            assert!(matches!(err, SourceError::Camera(_)), "{err}");
        }
    }
}
