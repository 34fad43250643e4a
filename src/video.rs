//! Video files (MP4, MOV, MKV, WebM, AVI, …) through FFmpeg's libraries (`ffmpeg-next` over Debian's
//! FFmpeg 5.1): the container's demuxer, its decoder, then swscale to packed RGB24 with `SWS_BICUBIC`,
//! the path OpenCV's `cv2.VideoCapture` takes (it asks swscale for BGR24 with the same flag, and a
//! MediaPipe user then swaps the channels), so frames are the pixels MediaPipe users feed.
//!
//! Frames come one at a time (nothing is held beyond the decoder's own buffers), each with its
//! presentation time from the container (`best_effort_timestamp` × the stream's time base), so a
//! variable frame rate is kept. A damaged file is read as far as it decodes: bad packets are skipped
//! and counted ([`VideoReader::damaged_packets`]), a read error ends the file early
//! ([`VideoReader::read_error`]), and every frame that decoded is delivered.

use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;

use crate::vision::RgbImage;
use crate::vision::image::MAX_DECODE_PIXELS;

/// File extensions read as video (the formats the issue tracker and users ask for, and FFmpeg's
/// usual others). Anything FFmpeg can open works through [`VideoReader::open`]; the list only decides
/// what `analyze` and the app's file source treat as a video when given a path.
pub const VIDEO_EXTENSIONS: [&str; 9] = [
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts",
];

/// True when `path` has one of [`VIDEO_EXTENSIONS`].
pub fn is_video_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Why a video cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("cannot open {path} as a video: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path} has no video stream")]
    NoVideoStream { path: PathBuf },
    #[error("{path}: frames of {width}×{height} are larger than {MAX_DECODE_PIXELS} pixels")]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("{path}: cannot convert a decoded frame to RGB: {reason}")]
    Convert { path: PathBuf, reason: String },
}

/// One decoded frame.
#[derive(Debug)]
pub struct VideoFrame {
    /// 0-based, in presentation order.
    pub index: u64,
    /// Presentation time from the container, µs from the stream's start (strictly increasing: a
    /// repeated or missing timestamp is placed 1 µs after the previous frame's).
    pub pts_us: i64,
    pub image: RgbImage,
}

/// What the container says about the video stream before decoding (estimates: a variable-rate or
/// damaged file may have fewer or more frames).
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Frames the container announces, or duration × average rate; `None` when neither is known.
    pub frames_estimate: Option<u64>,
    pub duration_us: Option<i64>,
    /// Average frame rate, frames/s.
    pub avg_fps: Option<f64>,
    pub codec: String,
    pub container: String,
}

/// Reads the best video stream of a file, frame by frame.
pub struct VideoReader {
    path: PathBuf,
    input: ffmpeg::format::context::Input,
    stream_index: usize,
    time_base: ffmpeg::Rational,
    start_pts: Option<i64>,
    decoder: ffmpeg::decoder::Video,
    scaler: Option<(
        ffmpeg::format::Pixel,
        u32,
        u32,
        ffmpeg::software::scaling::Context,
    )>,
    decoded: ffmpeg::frame::Video,
    rgb: ffmpeg::frame::Video,
    info: VideoInfo,
    eof_sent: bool,
    finished: bool,
    next_index: u64,
    last_pts_us: Option<i64>,
    damaged_packets: u64,
    read_error: Option<String>,
}

impl std::fmt::Debug for VideoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn rational_f64(r: ffmpeg::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0)
        .then(|| f64::from(r.numerator()) / f64::from(r.denominator()))
}

impl VideoReader {
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let open_err = |reason: String| VideoError::Open {
            path: path.to_owned(),
            reason,
        };
        ffmpeg::init().map_err(|e| open_err(e.to_string()))?;
        // FFmpeg's own log lines would go to stderr unasked; livepose reports damage itself.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
        if !path.is_file() {
            return Err(open_err("no such file".into()));
        }
        let input = ffmpeg::format::input(&path).map_err(|e| open_err(e.to_string()))?;
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| VideoError::NoVideoStream {
                path: path.to_owned(),
            })?;
        let stream_index = stream.index();
        let time_base = stream.time_base();
        let mut context = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| open_err(e.to_string()))?;
        // Frame threads, FFmpeg's choice of count (as OpenCV asks): long HD files decode several
        // times faster, and H.264/VP9 decoding stays bit-exact whatever the thread count.
        context.set_threading(ffmpeg::codec::threading::Config {
            kind: ffmpeg::codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = context
            .decoder()
            .video()
            .map_err(|e| open_err(format!("no decoder: {e}")))?;
        let (width, height) = (decoder.width(), decoder.height());
        if width == 0 || height == 0 {
            return Err(open_err("the video stream has no frame size".into()));
        }
        if u64::from(width) * u64::from(height) > MAX_DECODE_PIXELS {
            return Err(VideoError::TooLarge {
                path: path.to_owned(),
                width,
                height,
            });
        }
        let tb = rational_f64(time_base).unwrap_or(0.0);
        let stream_duration_us = (stream.duration() > 0 && tb > 0.0)
            .then(|| (stream.duration() as f64 * tb * 1e6).round() as i64);
        let container_duration_us = (input.duration() > 0)
            .then(|| input.duration() * 1_000_000 / i64::from(ffmpeg::ffi::AV_TIME_BASE));
        let duration_us = stream_duration_us.or(container_duration_us);
        let avg_fps = rational_f64(stream.avg_frame_rate()).or_else(|| rational_f64(stream.rate()));
        let frames_estimate = u64::try_from(stream.frames())
            .ok()
            .filter(|&n| n > 0)
            .or_else(|| {
                let (d, fps) = (duration_us?, avg_fps?);
                Some((d as f64 / 1e6 * fps).round() as u64)
            });
        let info = VideoInfo {
            width,
            height,
            frames_estimate,
            duration_us,
            avg_fps,
            codec: decoder
                .codec()
                .map(|c| c.name().to_owned())
                .unwrap_or_default(),
            container: input.format().name().to_owned(),
        };
        Ok(Self {
            path: path.to_owned(),
            input,
            stream_index,
            time_base,
            start_pts: None,
            decoder,
            scaler: None,
            decoded: ffmpeg::frame::Video::empty(),
            rgb: ffmpeg::frame::Video::empty(),
            info,
            eof_sent: false,
            finished: false,
            next_index: 0,
            last_pts_us: None,
            damaged_packets: 0,
            read_error: None,
        })
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Packets the decoder rejected (or the demuxer could not read) and skipped.
    pub fn damaged_packets(&self) -> u64 {
        self.damaged_packets
    }

    /// The error that ended reading before the end of the file, if one did.
    pub fn read_error(&self) -> Option<&str> {
        self.read_error.as_deref()
    }

    /// Frames delivered so far.
    pub fn frames_read(&self) -> u64 {
        self.next_index
    }

    /// The next frame in presentation order; `None` at the end (or after a read error: see
    /// [`Self::read_error`]). A frame that cannot be converted is an error, and reading can go on.
    pub fn next_frame(&mut self) -> Option<Result<VideoFrame, VideoError>> {
        loop {
            if self.decoder.receive_frame(&mut self.decoded).is_ok() {
                return Some(self.convert());
            }
            if self.eof_sent {
                self.finished = true;
                return None;
            }
            self.feed();
        }
    }

    /// Reads packets until one of the video stream went to the decoder, or the file ended.
    fn feed(&mut self) {
        let mut packet = ffmpeg::Packet::empty();
        loop {
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    if self.decoder.send_packet(&packet).is_err() {
                        self.damaged_packets += 1;
                        continue;
                    }
                    return;
                }
                Err(ffmpeg::Error::Eof) => break,
                Err(ffmpeg::Error::InvalidData) => self.damaged_packets += 1,
                Err(e) => {
                    self.read_error = Some(e.to_string());
                    break;
                }
            }
        }
        // Flush: the decoder hands out the frames it still holds.
        if let Err(e) = self.decoder.send_eof() {
            // The frames the decoder still holds are lost; the ones read so far stay.
            tracing::warn!("video decoder: cannot flush at the end of the file: {e}");
        }
        self.eof_sent = true;
    }

    fn convert(&mut self) -> Result<VideoFrame, VideoError> {
        let convert_err = |reason: String| VideoError::Convert {
            path: self.path.clone(),
            reason,
        };
        let (format, width, height) = (
            self.decoded.format(),
            self.decoded.width(),
            self.decoded.height(),
        );
        if u64::from(width) * u64::from(height) > MAX_DECODE_PIXELS || width == 0 || height == 0 {
            return Err(VideoError::TooLarge {
                path: self.path.clone(),
                width,
                height,
            });
        }
        let stale = !matches!(&self.scaler, Some((f, w, h, _)) if *f == format && *w == width && *h == height);
        if stale {
            let scaler = ffmpeg::software::scaling::Context::get(
                format,
                width,
                height,
                ffmpeg::format::Pixel::RGB24,
                width,
                height,
                ffmpeg::software::scaling::Flags::BICUBIC,
            )
            .map_err(|e| convert_err(e.to_string()))?;
            self.scaler = Some((format, width, height, scaler));
        }
        let Some((_, _, _, scaler)) = &mut self.scaler else {
            return Err(convert_err("no scaler".into()));
        };
        scaler
            .run(&self.decoded, &mut self.rgb)
            .map_err(|e| convert_err(e.to_string()))?;
        let row = width as usize * 3;
        let stride = self.rgb.stride(0);
        let plane = self.rgb.data(0);
        let mut data = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            let start = y * stride;
            let Some(line) = plane.get(start..start + row) else {
                return Err(convert_err("short RGB plane".into()));
            };
            data.extend_from_slice(line);
        }
        let image = RgbImage::from_raw(width, height, data)
            .ok_or_else(|| convert_err("RGB buffer of the wrong size".into()))?;
        let pts_us = self.pts_us();
        let index = self.next_index;
        self.next_index += 1;
        Ok(VideoFrame {
            index,
            pts_us,
            image,
        })
    }

    /// The decoded frame's presentation time, µs from the first frame's, kept strictly increasing.
    fn pts_us(&mut self) -> i64 {
        let tb = rational_f64(self.time_base).unwrap_or(0.0);
        let from_container = self.decoded.timestamp().filter(|_| tb > 0.0).map(|pts| {
            let start = *self.start_pts.get_or_insert(pts);
            ((pts - start) as f64 * tb * 1e6).round() as i64
        });
        let fallback = || {
            // No timestamp: one average frame interval after the previous frame (33 ms if unknown).
            let step = self
                .info
                .avg_fps
                .map_or(33_333, |fps| (1e6 / fps).round() as i64);
            self.last_pts_us.map_or(0, |last| last + step)
        };
        let mut pts = from_container.unwrap_or_else(fallback);
        if let Some(last) = self.last_pts_us
            && pts <= last
        {
            pts = last + 1;
        }
        self.last_pts_us = Some(pts);
        pts
    }

    /// True once every frame has been delivered.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// After the last frame: why the file ended before its announced end, if it did (a read error, or
    /// the last frame more than two frame intervals and 0.1 s before the container's duration: a
    /// truncated download, a recording that was cut off).
    pub fn ended_early(&self) -> Option<String> {
        if let Some(e) = &self.read_error {
            return Some(format!("reading stopped: {e}"));
        }
        let (duration_us, last_us) = (self.info.duration_us?, self.last_pts_us?);
        let interval_us = self.info.avg_fps.map_or(33_333.0, |fps| 1e6 / fps);
        let slack_us = (2.0 * interval_us + 100_000.0) as i64;
        (self.finished && last_us + slack_us < duration_us).then(|| {
            format!(
                "the file ends at {:.2} s of its {:.2} s (truncated?)",
                last_us as f64 / 1e6,
                duration_us as f64 / 1e6
            )
        })
    }
}
