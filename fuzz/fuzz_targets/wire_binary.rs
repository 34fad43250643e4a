//! The binary frame message (`"LP"`, version, kind, sequence, timestamp, image bytes): any bytes either
//! parse into a frame that encodes back to the same bytes, or give a `WireError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::server::wire::{binary_from_frame, frame_from_binary};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = frame_from_binary(bytes::Bytes::copy_from_slice(data)) {
        let again = binary_from_frame(frame.sequence, frame.timestamp_ms, &frame.image);
        assert_eq!(
            again, data,
            "a parsed binary frame encodes back to its bytes"
        );
    }
});
