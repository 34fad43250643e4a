//! The MJPEG splitter (an `.mjpeg` file or a camera's stream of concatenated JPEGs): every frame it
//! yields is a slice of the input that starts with SOI and ends with EOI, in order, without overlap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::vision::image::MjpegFrames;

fuzz_target!(|data: &[u8]| {
    let base = data.as_ptr() as usize;
    let mut next_free = 0_usize;
    for frame in MjpegFrames::new(data) {
        let Ok(frame) = frame else {
            continue;
        };
        let start = frame.as_ptr() as usize - base;
        assert!(start >= next_free, "frames overlap");
        assert!(frame.starts_with(&[0xFF, 0xD8]));
        assert!(frame.ends_with(&[0xFF, 0xD9]));
        next_free = start + frame.len();
        assert!(next_free <= data.len());
    }
});
