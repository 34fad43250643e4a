//! One line of the results schema (`analyze`'s JSONL, `results.jsonl` of a session, read back for
//! replay, export and report): parses into a result or gives a `SchemaError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::schema::{parse_frame, read_jsonl};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_frame(text);
    let _ = read_jsonl(text);
});
