//! The JSON frame message (`{"type":"frame","sequence":…,"timestamp":…,"image":"data:…;base64,…"}`,
//! and the prototype's payload): any text parses or gives a `WireError`; a parsed frame has a finite
//! timestamp and image bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::server::wire::frame_from_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = frame_from_text(text) {
        assert!(frame.timestamp_ms.is_finite());
        assert!(!frame.image.is_empty());
    }
});
