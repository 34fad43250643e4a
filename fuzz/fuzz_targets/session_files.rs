//! A session folder's recorded text (`session.json`, `frames.jsonl`, `results.jsonl`) against the length
//! of `frames.bin`, as `RecordedSession::open` reads it. Input: 4 bytes of `frames.bin` length (u32 LE), then
//! the three files separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::session::reader::SessionIndex;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let frames_len = u64::from(u32::from_le_bytes(*len));
    let mut parts = rest.splitn(3, |&b| b == 0);
    let info = parts.next().unwrap_or_default();
    let index = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let results = String::from_utf8_lossy(parts.next().unwrap_or_default());
    if let Ok(session) = SessionIndex::parse(
        std::path::Path::new("session"),
        Ok(info),
        &index,
        &results,
        frames_len,
    ) {
        for frame in &session.frames {
            assert!(frame.offset + frame.len <= frames_len);
        }
        for result in &session.results {
            assert!(result.frame < session.frames.len());
        }
    }
});
