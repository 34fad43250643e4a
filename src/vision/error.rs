//! Errors at the vision engine's boundary.

use std::path::PathBuf;

/// Everything that can go wrong inside the vision engine.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "frame timestamp {got_us} µs is not after the previous frame's {previous_us} µs; timestamps must increase"
    )]
    NonMonotonicTimestamp { previous_us: i64, got_us: i64 },
    #[error(
        "frame is {width}×{height}; expected a non-empty RGB image whose buffer holds width×height×3 bytes ({len} given)"
    )]
    BadFrame { width: u32, height: u32, len: usize },
}

/// Errors turning encoded bytes into RGB pixels.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt or unsupported JPEG: {0}")]
    Jpeg(String),
    #[error("cannot decode image: {0}")]
    Image(String),
    #[error("image is {width}×{height}, larger than the {max_pixels}-pixel limit")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("not a recognised image format (expected JPEG, PNG or WebP)")]
    UnknownFormat,
    #[error("MJPEG stream is truncated or damaged at byte {offset}: {reason}")]
    Mjpeg { offset: usize, reason: &'static str },
}

/// Errors loading or running an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found (looked in: {searched}). Run `make setup` (or `scripts/setup.sh`) to fetch \
         libonnxruntime.so.1.31.1 from the onnxruntime==1.31.1 wheel, or set ORT_DYLIB_PATH to it"
    )]
    RuntimeMissing { searched: String },
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error(
        "model file {path} is missing. Run `models/make_models.sh` to produce it (see models/README.md)"
    )]
    Missing { path: PathBuf },
    #[error(
        "model file {path} has SHA-256 {actual}, expected {expected} (see models/SHA256SUMS); the file is damaged or a different model"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model {name}: {what}")]
    Contract { name: &'static str, what: String },
    #[error("ONNX Runtime error in {name}: {source}")]
    Ort {
        name: &'static str,
        source: ort::Error,
    },
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
