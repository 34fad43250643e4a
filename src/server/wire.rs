//! The livepose WebSocket protocol, version 1 (`docs/PROTOCOL.md`): parsing what clients send and
//! building what the server answers. Pure functions, no sockets, so every rule is unit-tested here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::frame::EncodedFormat;
use crate::schema::{
    AngleJson, HandJson, PersonJson, PoseJson, angles_json, hand_json, people_json, pose_json,
};
use crate::vision::FrameResult;
use crate::vision::timings::StageTimings;

/// The protocol version this server speaks (`hello.protocol`).
pub const PROTOCOL_VERSION: u8 = 1;
/// First two bytes of a binary frame message.
pub const BINARY_MAGIC: [u8; 2] = *b"LP";
/// Message kind byte of a binary frame.
pub const BINARY_KIND_FRAME: u8 = 1;
/// Size of the binary frame header: magic (2), version (1), kind (1), sequence (u64 LE), capture
/// timestamp in ms (f64 LE).
pub const BINARY_HEADER_LEN: usize = 20;

/// One frame from a client, not yet decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameMessage {
    pub sequence: u64,
    /// The client's capture time in milliseconds (any monotonic clock of the client's).
    pub timestamp_ms: f64,
    /// Encoded image bytes (JPEG, PNG or WebP), shared with the WebSocket message they came in.
    pub image: bytes::Bytes,
}

/// Why a client message was rejected. Each becomes an `error` message with [`WireError::code`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("binary message too short for the {BINARY_HEADER_LEN}-byte frame header ({0} bytes)")]
    ShortHeader(usize),
    #[error("binary message does not start with the \"LP\" magic")]
    BadMagic,
    #[error("protocol version {0} is not supported (this server speaks {PROTOCOL_VERSION})")]
    Version(u8),
    #[error("unknown binary message kind {0}")]
    BinaryKind(u8),
    #[error("malformed JSON message: {0}")]
    Json(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("the image is not valid base64: {0}")]
    Base64(String),
    #[error("timestamp must be a finite number of milliseconds")]
    BadTimestamp,
    #[error("message has no image bytes")]
    EmptyImage,
    #[error("not a JPEG, PNG or WebP image")]
    NotAnImage,
    #[error("cannot read the image header: {0}")]
    BadImageHeader(String),
}

impl WireError {
    /// The `error.code` sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::NotAnImage | WireError::BadImageHeader(_) | WireError::EmptyImage => {
                ErrorCode::BadImage
            }
            WireError::UnknownType(_) => ErrorCode::UnknownType,
            _ => ErrorCode::BadMessage,
        }
    }
}

/// Machine-readable error codes (`error.code`), listed in `docs/PROTOCOL.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    UnknownType,
    BadImage,
    ImageTooLarge,
    MessageTooLarge,
    SequenceBackwards,
    TimestampBackwards,
    RateLimited,
    InferenceFailed,
    TooManyClients,
}

impl ErrorCode {
    /// The code as it appears in `error.code` (and as the `reason` label of the rejected-frames metric).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadImage => "bad_image",
            ErrorCode::ImageTooLarge => "image_too_large",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::SequenceBackwards => "sequence_backwards",
            ErrorCode::TimestampBackwards => "timestamp_backwards",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InferenceFailed => "inference_failed",
            ErrorCode::TooManyClients => "too_many_clients",
        }
    }
}

/// Parses a binary frame message: the 20-byte header, then the encoded image (not copied).
pub fn frame_from_binary(bytes: bytes::Bytes) -> Result<FrameMessage, WireError> {
    if bytes.len() < BINARY_HEADER_LEN {
        return Err(WireError::ShortHeader(bytes.len()));
    }
    if bytes[0..2] != BINARY_MAGIC {
        return Err(WireError::BadMagic);
    }
    if bytes[2] != PROTOCOL_VERSION {
        return Err(WireError::Version(bytes[2]));
    }
    if bytes[3] != BINARY_KIND_FRAME {
        return Err(WireError::BinaryKind(bytes[3]));
    }
    let mut sequence = [0_u8; 8];
    sequence.copy_from_slice(&bytes[4..12]);
    let mut timestamp = [0_u8; 8];
    timestamp.copy_from_slice(&bytes[12..20]);
    let frame = FrameMessage {
        sequence: u64::from_le_bytes(sequence),
        timestamp_ms: f64::from_le_bytes(timestamp),
        image: bytes.slice(BINARY_HEADER_LEN..),
    };
    check_frame(frame)
}

/// Builds a binary frame message (used by the load benchmark and tests; the page builds its own).
pub fn binary_from_frame(sequence: u64, timestamp_ms: f64, image: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BINARY_HEADER_LEN + image.len());
    out.extend_from_slice(&BINARY_MAGIC);
    out.push(PROTOCOL_VERSION);
    out.push(BINARY_KIND_FRAME);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(image);
    out
}

#[derive(Deserialize)]
struct JsonEnvelope {
    #[serde(rename = "type")]
    kind: String,
}

/// The prototype's frame message: `{"type":"frame","image":<data URL or base64>,"timestamp","sequence"}`.
#[derive(Deserialize)]
struct JsonFrame {
    image: String,
    timestamp: f64,
    sequence: u64,
}

/// Parses a text message. The only type a client sends is `frame` (the prototype's JSON form).
pub fn frame_from_text(text: &str) -> Result<FrameMessage, WireError> {
    let envelope: JsonEnvelope =
        serde_json::from_str(text).map_err(|e| WireError::Json(e.to_string()))?;
    if envelope.kind != "frame" {
        return Err(WireError::UnknownType(envelope.kind));
    }
    let frame: JsonFrame =
        serde_json::from_str(text).map_err(|e| WireError::Json(e.to_string()))?;
    check_frame(FrameMessage {
        sequence: frame.sequence,
        timestamp_ms: frame.timestamp,
        image: image_from_text(&frame.image)?,
    })
}

/// A Socket.IO `frame` event's payload: the prototype's object `{image, timestamp, sequence}`, where
/// `image` is a data URL or bare base64, or a binary attachment (`{"_placeholder":true,"num":N}`, the
/// form socket.io clients give an `ArrayBuffer`, `Blob` data or a `Buffer`, and python-socketio `bytes`).
pub fn frame_from_event(
    payload: Option<&serde_json::Value>,
    attachments: &[bytes::Bytes],
) -> Result<FrameMessage, WireError> {
    use crate::server::socketio::packet::placeholder_index;
    let fields = payload
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| {
            WireError::Json("a frame event carries one object: {image, timestamp, sequence}".into())
        })?;
    let image = match fields.get("image") {
        Some(serde_json::Value::String(text)) => image_from_text(text)?,
        Some(value) => match placeholder_index(value, attachments.len()) {
            Some(Ok(index)) => attachments[index].clone(),
            _ => {
                return Err(WireError::Json(
                    "image must be a data URL, base64 or a binary attachment".into(),
                ));
            }
        },
        None => return Err(WireError::Json("missing field `image`".into())),
    };
    let timestamp_ms = match fields.get("timestamp") {
        Some(value) => value.as_f64().ok_or(WireError::BadTimestamp)?,
        None => return Err(WireError::Json("missing field `timestamp`".into())),
    };
    let sequence = fields
        .get("sequence")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| WireError::Json("sequence must be a whole number ≥ 0".into()))?;
    check_frame(FrameMessage {
        sequence,
        timestamp_ms,
        image,
    })
}

/// The image of a text frame: a data URL (`data:image/jpeg;base64,...`) or bare base64.
pub fn image_from_text(image: &str) -> Result<bytes::Bytes, WireError> {
    let encoded = match image.split_once(',') {
        Some((prefix, data)) if prefix.starts_with("data:") => data,
        _ => image,
    };
    data_encoding::BASE64
        .decode(encoded.trim().as_bytes())
        .map(bytes::Bytes::from)
        .map_err(|e| WireError::Base64(e.to_string()))
}

/// The checks every parsed frame passes, whatever carried it: a finite timestamp and some image bytes.
pub fn check_frame(frame: FrameMessage) -> Result<FrameMessage, WireError> {
    if !frame.timestamp_ms.is_finite() {
        return Err(WireError::BadTimestamp);
    }
    if frame.image.is_empty() {
        return Err(WireError::EmptyImage);
    }
    Ok(frame)
}

/// The image's size read from its header only, so oversized images are rejected before decoding.
pub fn image_dimensions(bytes: &[u8]) -> Result<(EncodedFormat, u32, u32), WireError> {
    let kind = EncodedFormat::sniff(bytes).ok_or(WireError::NotAnImage)?;
    let (width, height) = match kind {
        EncodedFormat::Jpeg => crate::vision::image::jpeg_dimensions(bytes)
            .map_err(|e| WireError::BadImageHeader(e.to_string()))?,
        EncodedFormat::Png | EncodedFormat::Webp => {
            let format = if kind == EncodedFormat::Png {
                image::ImageFormat::Png
            } else {
                image::ImageFormat::WebP
            };
            image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
                .into_dimensions()
                .map_err(|e| WireError::BadImageHeader(e.to_string()))?
        }
    };
    Ok((kind, width, height))
}

/// The limits a client must respect, announced in `hello`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Limits {
    /// Largest accepted message in bytes (larger ones get `message_too_large`).
    pub max_message_bytes: usize,
    pub max_width: u32,
    pub max_height: u32,
    /// Frames per second per client; frames above the rate get `rate_limited` and are dropped.
    pub max_fps: f32,
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            max_width: 1920,
            max_height: 1920,
            max_fps: 60.0,
            max_clients: 16,
        }
    }
}

/// Sent once on connect.
#[derive(Serialize)]
pub struct HelloMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub protocol: u8,
    pub server: &'a str,
    pub client_id: u64,
    pub limits: Limits,
    pub model: &'a str,
    pub hands: bool,
}

/// Sent for every rejected message or failed frame.
#[derive(Serialize)]
pub struct ErrorMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: ErrorCode,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// Serialises an `error` message.
pub fn error_json(code: ErrorCode, message: &str, sequence: Option<u64>) -> String {
    let message = ErrorMessage {
        kind: "error",
        code,
        message,
        sequence,
    };
    serde_json::to_string(&message).unwrap_or_else(|_| r#"{"type":"error"}"#.to_owned())
}

/// Server-side times of one frame, in ms since the server started (one clock, so differences are exact).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ServerTimes {
    pub received_ms: f64,
    /// When inference took the frame from the client's slot.
    pub started_ms: f64,
    /// When the result was handed to the client's connection.
    pub sent_ms: f64,
    /// JPEG/PNG/WebP decoding.
    pub decode_ms: f64,
}

/// Per-client counters sent with every result.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ResultCounters {
    pub received: u64,
    /// Frames overwritten in the client's latest-wins slot before inference took them.
    pub dropped: u64,
    /// Frames rejected (bad input, limits).
    pub rejected: u64,
    /// Results replaced by a newer one before the client read them.
    pub results_skipped: u64,
}

/// The answer to one frame.
#[derive(Serialize)]
pub struct PoseResultMessage {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sequence: u64,
    /// The client's capture timestamp, echoed.
    pub timestamp: f64,
    pub width: u32,
    pub height: u32,
    /// The pose model that produced the result (`lite`, `full`, `heavy`).
    pub model: &'static str,
    /// The person with the lowest id in view.
    pub pose: Option<PoseJson>,
    pub hands: Vec<HandJson>,
    pub angles: BTreeMap<&'static str, AngleJson>,
    /// Everyone in view, by id.
    pub people: Vec<PersonJson>,
    pub timings_ms: StageTimings,
    pub server: ServerTimes,
    pub counters: ResultCounters,
}

/// Serialises a `pose_result` for the frame `sequence` the client stamped `timestamp_ms`.
pub fn pose_result_json(
    sequence: u64,
    timestamp_ms: f64,
    result: &FrameResult,
    model: &'static str,
    server: ServerTimes,
    counters: ResultCounters,
) -> Result<String, serde_json::Error> {
    let message = PoseResultMessage {
        kind: "pose_result",
        sequence,
        timestamp: timestamp_ms,
        width: result.width,
        height: result.height,
        model,
        pose: result.pose.as_ref().map(pose_json),
        hands: result.hands.iter().map(hand_json).collect(),
        angles: angles_json(result),
        people: people_json(result),
        timings_ms: result.timings,
        server,
        counters,
    };
    serde_json::to_string(&message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = include_bytes!("../../tests/fixtures/messi5.jpg");

    #[test]
    fn error_code_names_are_their_json() {
        for code in [
            ErrorCode::BadMessage,
            ErrorCode::UnknownType,
            ErrorCode::BadImage,
            ErrorCode::ImageTooLarge,
            ErrorCode::MessageTooLarge,
            ErrorCode::SequenceBackwards,
            ErrorCode::TimestampBackwards,
            ErrorCode::RateLimited,
            ErrorCode::InferenceFailed,
            ErrorCode::TooManyClients,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.name())
            );
        }
    }

    #[test]
    fn binary_frames_round_trip_and_bad_headers_are_named() {
        let bytes = bytes::Bytes::from(binary_from_frame(42, 1234.5, JPEG));
        let parse = |b: &[u8]| frame_from_binary(bytes::Bytes::copy_from_slice(b));
        let frame = parse(&bytes).unwrap();
        assert_eq!(
            (frame.sequence, frame.timestamp_ms, frame.image.len()),
            (42, 1234.5, JPEG.len())
        );
        assert_eq!(parse(&bytes[..10]), Err(WireError::ShortHeader(10)));
        let mut bad = bytes.to_vec();
        bad[0] = b'X';
        assert_eq!(parse(&bad), Err(WireError::BadMagic));
        let mut bad = bytes.to_vec();
        bad[2] = 9;
        assert_eq!(parse(&bad), Err(WireError::Version(9)));
        let mut bad = bytes.to_vec();
        bad[3] = 7;
        assert_eq!(parse(&bad), Err(WireError::BinaryKind(7)));
        assert_eq!(
            parse(&binary_from_frame(1, f64::NAN, JPEG)),
            Err(WireError::BadTimestamp)
        );
        assert_eq!(
            parse(&binary_from_frame(1, 0.0, &[])),
            Err(WireError::EmptyImage)
        );
    }

    #[test]
    fn the_prototype_json_frame_is_accepted() {
        let b64 = data_encoding::BASE64.encode(JPEG);
        for image in [format!("data:image/jpeg;base64,{b64}"), b64.clone()] {
            let text = serde_json::json!({"type": "frame", "image": image, "timestamp": 17.0, "sequence": 3})
                .to_string();
            let frame = frame_from_text(&text).unwrap();
            assert_eq!((frame.sequence, frame.timestamp_ms), (3, 17.0));
            assert_eq!(frame.image, JPEG);
        }
        assert_eq!(
            frame_from_text(r#"{"type":"subscribe"}"#),
            Err(WireError::UnknownType("subscribe".into()))
        );
        assert!(matches!(
            frame_from_text("{not json"),
            Err(WireError::Json(_))
        ));
        assert!(matches!(
            frame_from_text(
                r#"{"type":"frame","image":"data:image/jpeg;base64,@@@","timestamp":1,"sequence":1}"#
            ),
            Err(WireError::Base64(_))
        ));
        assert!(matches!(
            frame_from_text(r#"{"type":"frame","image":"","timestamp":"soon","sequence":1}"#),
            Err(WireError::Json(_))
        ));
    }

    #[test]
    fn socket_io_frame_events_take_a_data_url_or_an_attachment() {
        let b64 = data_encoding::BASE64.encode(JPEG);
        let attachments = [bytes::Bytes::from_static(JPEG)];
        for payload in [
            serde_json::json!({"image": format!("data:image/jpeg;base64,{b64}"), "timestamp": 17.5, "sequence": 3}),
            serde_json::json!({"image": {"_placeholder": true, "num": 0}, "timestamp": 17.5, "sequence": 3}),
        ] {
            let frame = frame_from_event(Some(&payload), &attachments).unwrap();
            assert_eq!((frame.sequence, frame.timestamp_ms), (3, 17.5));
            assert_eq!(frame.image, JPEG);
        }
        let refused = |payload: serde_json::Value| frame_from_event(Some(&payload), &attachments);
        assert!(matches!(
            refused(
                serde_json::json!({"image": {"_placeholder": true, "num": 1}, "timestamp": 1, "sequence": 1})
            ),
            Err(WireError::Json(_))
        ));
        assert_eq!(
            refused(serde_json::json!({"image": b64, "timestamp": "soon", "sequence": 1})),
            Err(WireError::BadTimestamp)
        );
        assert!(matches!(
            refused(serde_json::json!({"image": b64, "timestamp": 1, "sequence": -1})),
            Err(WireError::Json(_))
        ));
        assert!(matches!(
            refused(serde_json::json!("just a string")),
            Err(WireError::Json(_))
        ));
        assert!(frame_from_event(None, &attachments).is_err());
        assert_eq!(
            refused(serde_json::json!({"image": "", "timestamp": 1, "sequence": 1})),
            Err(WireError::EmptyImage)
        );
    }

    #[test]
    fn image_sizes_come_from_headers_and_non_images_are_refused() {
        assert_eq!(image_dimensions(JPEG), Ok((EncodedFormat::Jpeg, 548, 342)));
        let mut png = Vec::new();
        image::RgbImage::new(33, 21)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(image_dimensions(&png), Ok((EncodedFormat::Png, 33, 21)));
        assert_eq!(image_dimensions(b"hello world"), Err(WireError::NotAnImage));
        assert!(matches!(
            image_dimensions(&JPEG[..2.min(JPEG.len())]),
            Err(WireError::NotAnImage)
        ));
        assert!(matches!(
            image_dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]),
            Err(WireError::BadImageHeader(_))
        ));
    }

    #[test]
    fn errors_serialise_with_their_code() {
        let json: serde_json::Value =
            serde_json::from_str(&error_json(ErrorCode::SequenceBackwards, "nope", Some(4)))
                .unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(json["code"], "sequence_backwards");
        assert_eq!(json["sequence"], 4);
    }
}
