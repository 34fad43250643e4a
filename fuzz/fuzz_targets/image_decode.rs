//! Image bytes as a client sends them: the header sniffing that enforces the size limits before any
//! decode (`wire::image_dimensions`), then the decode path of inference (`FrameDecoder`: JPEG through
//! libjpeg-turbo, PNG and WebP through `image`). A decoded image has the size its header announced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::server::wire::image_dimensions;
use livepose::vision::image::FrameDecoder;

fuzz_target!(|data: &[u8]| {
    let header = image_dimensions(data);
    let mut decoder = FrameDecoder::new();
    if let Ok(image) = decoder.decode(data) {
        assert!(image.is_valid());
        if let Ok((_, width, height)) = header {
            assert_eq!(
                (image.width, image.height),
                (width, height),
                "decoded size differs from the header's"
            );
        }
    }
});
