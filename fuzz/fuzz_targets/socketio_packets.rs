//! Socket.IO over Engine.IO (`/socket.io/`): a long-polling body (`decode_payload`: packets split on
//! `\x1e`, binary ones as `b` + base64), each text message as a Socket.IO packet (`decode_socketio`), and
//! a `frame` event's payload with the binary packets as its attachments (`frame_from_event`). Any bytes
//! give packets or an error; decoded Engine.IO packets encode back to a body that decodes to the same
//! packets; a decoded Socket.IO packet announces at most `MAX_ATTACHMENTS`; a parsed frame has a finite
//! timestamp and an image.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::server::socketio::packet::{
    MAX_ATTACHMENTS, Packet, decode_payload, decode_socketio, encode_payload,
};
use livepose::server::wire::frame_from_event;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = decode_payload(data) else {
        return;
    };
    assert_eq!(decode_payload(encode_payload(&packets).as_bytes()).as_ref(), Ok(&packets));
    let attachments: Vec<bytes::Bytes> = packets
        .iter()
        .filter_map(|p| match p {
            Packet::Binary(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect();
    for packet in &packets {
        let Packet::Text(text) = packet else {
            continue;
        };
        let Ok(decoded) = decode_socketio(text) else {
            continue;
        };
        assert!(decoded.attachments <= MAX_ATTACHMENTS);
        let args = decoded.data.as_ref().and_then(|d| d.as_array());
        if let Some(args) = args
            && args.first().and_then(|name| name.as_str()) == Some("frame")
            && let Ok(frame) = frame_from_event(args.get(1), &attachments)
        {
            assert!(frame.timestamp_ms.is_finite());
            assert!(!frame.image.is_empty());
        }
    }
});
