//! Engine.IO v4 and Socket.IO v5 packets, as the socket.io project's protocol documents define them
//! (`github.com/socketio/engine.io-protocol`, `github.com/socketio/socket.io-protocol`). Pure functions:
//! bytes in, packets out, so every rule is unit-tested here and fuzzed (`fuzz/fuzz_targets/socketio_packets.rs`).
//!
//! Engine.IO carries packets over HTTP long-polling (several per request body, separated by the record
//! separator `\x1e`, binary ones as `b` + base64) or one per WebSocket frame (binary ones as binary
//! frames). A packet is a type digit (`0` open … `6` noop) and its data.
//!
//! Socket.IO packets travel inside Engine.IO `message` packets:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, with binary attachments in the Engine.IO
//! binary messages that follow a `BINARY_EVENT` and stand in its JSON as
//! `{"_placeholder":true,"num":N}`.

use bytes::Bytes;
use serde_json::Value;

/// Separates packets in a long-polling body.
pub const RECORD_SEPARATOR: u8 = 0x1e;
/// Most binary attachments one Socket.IO packet may announce (socket.io-parser's default limit).
pub const MAX_ATTACHMENTS: usize = 10;
/// The default namespace, the only one livepose serves.
pub const DEFAULT_NAMESPACE: &str = "/";

/// One Engine.IO packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// The handshake (server → client), its JSON.
    Open(String),
    Close,
    /// A heartbeat; the data is empty except for the upgrade probe (`probe`).
    Ping(String),
    Pong(String),
    /// A `message` packet with text: one Socket.IO packet.
    Text(String),
    /// A `message` packet with binary data: one Socket.IO attachment.
    Binary(Bytes),
    Upgrade,
    Noop,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("empty Engine.IO packet")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownType(char),
    #[error("a long-polling body must be UTF-8 text")]
    NotUtf8,
    #[error("binary packet is not valid base64: {0}")]
    Base64(String),
    #[error("empty Socket.IO packet")]
    SocketIoEmpty,
    #[error("unknown Socket.IO packet type {0:?}")]
    SocketIoType(char),
    #[error("malformed attachment count")]
    AttachmentCount,
    #[error("more than {MAX_ATTACHMENTS} binary attachments")]
    TooManyAttachments,
    #[error("malformed acknowledgement id")]
    AckId,
    #[error("malformed Socket.IO payload: {0}")]
    Json(String),
    #[error("invalid payload for a {0:?} packet")]
    Payload(SocketIoType),
}

impl Packet {
    fn type_digit(&self) -> char {
        match self {
            Packet::Open(_) => '0',
            Packet::Close => '1',
            Packet::Ping(_) => '2',
            Packet::Pong(_) => '3',
            Packet::Text(_) | Packet::Binary(_) => '4',
            Packet::Upgrade => '5',
            Packet::Noop => '6',
        }
    }

    /// The text form of a packet (a WebSocket text frame, or one record of a long-polling body); a
    /// binary message is `b` + base64 here (long-polling's form; over WebSocket it is a binary frame).
    pub fn encode(&self, out: &mut String) {
        match self {
            Packet::Binary(bytes) => {
                out.push('b');
                out.push_str(&data_encoding::BASE64.encode(bytes));
            }
            Packet::Open(data) | Packet::Ping(data) | Packet::Pong(data) | Packet::Text(data) => {
                out.push(self.type_digit());
                out.push_str(data);
            }
            Packet::Close | Packet::Upgrade | Packet::Noop => out.push(self.type_digit()),
        }
    }

    /// [`Packet::encode`] into a new string.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.encode(&mut out);
        out
    }
}

/// Decodes a packet in text form (a WebSocket text frame or one record of a long-polling body).
pub fn decode_text(text: &str) -> Result<Packet, PacketError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(PacketError::Empty)?;
    let data = chars.as_str();
    Ok(match kind {
        '0' => Packet::Open(data.to_owned()),
        '1' => Packet::Close,
        '2' => Packet::Ping(data.to_owned()),
        '3' => Packet::Pong(data.to_owned()),
        '4' => Packet::Text(data.to_owned()),
        '5' => Packet::Upgrade,
        '6' => Packet::Noop,
        'b' => Packet::Binary(
            data_encoding::BASE64
                .decode(data.as_bytes())
                .map_err(|e| PacketError::Base64(e.to_string()))?
                .into(),
        ),
        other => return Err(PacketError::UnknownType(other)),
    })
}

/// Decodes a long-polling body: packets separated by `\x1e`.
pub fn decode_payload(body: &[u8]) -> Result<Vec<Packet>, PacketError> {
    let text = std::str::from_utf8(body).map_err(|_| PacketError::NotUtf8)?;
    text.split(char::from(RECORD_SEPARATOR))
        .map(decode_text)
        .collect()
}

/// Encodes packets as one long-polling body.
pub fn encode_payload(packets: &[Packet]) -> String {
    let mut out = String::new();
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(char::from(RECORD_SEPARATOR));
        }
        packet.encode(&mut out);
    }
    out
}

/// Socket.IO packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketIoType {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl SocketIoType {
    fn from_digit(c: char) -> Result<Self, PacketError> {
        Ok(match c {
            '0' => SocketIoType::Connect,
            '1' => SocketIoType::Disconnect,
            '2' => SocketIoType::Event,
            '3' => SocketIoType::Ack,
            '4' => SocketIoType::ConnectError,
            '5' => SocketIoType::BinaryEvent,
            '6' => SocketIoType::BinaryAck,
            other => return Err(PacketError::SocketIoType(other)),
        })
    }

    fn digit(self) -> char {
        match self {
            SocketIoType::Connect => '0',
            SocketIoType::Disconnect => '1',
            SocketIoType::Event => '2',
            SocketIoType::Ack => '3',
            SocketIoType::ConnectError => '4',
            SocketIoType::BinaryEvent => '5',
            SocketIoType::BinaryAck => '6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, SocketIoType::BinaryEvent | SocketIoType::BinaryAck)
    }
}

/// One Socket.IO packet (its binary attachments, if any, arrive in the Engine.IO messages after it).
#[derive(Clone, Debug, PartialEq)]
pub struct SocketIoPacket {
    pub kind: SocketIoType,
    /// Binary attachments that follow (`BINARY_EVENT`, `BINARY_ACK`).
    pub attachments: usize,
    pub namespace: String,
    pub ack_id: Option<u64>,
    pub data: Option<Value>,
}

/// Event names a client may not emit (socket.io-parser's `RESERVED_EVENTS`).
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Decodes a Socket.IO packet (the data of an Engine.IO text message), checking its payload the way
/// socket.io-parser does: CONNECT carries an object or nothing, DISCONNECT nothing, CONNECT_ERROR an
/// object or a string, events a non-empty array whose first item is a name (not a reserved one) or
/// a number, acks an array.
pub fn decode_socketio(text: &str) -> Result<SocketIoPacket, PacketError> {
    let mut rest = text;
    let first = rest.chars().next().ok_or(PacketError::SocketIoEmpty)?;
    let kind = SocketIoType::from_digit(first)?;
    rest = &rest[first.len_utf8()..];

    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = rest.split_once('-').ok_or(PacketError::AttachmentCount)?;
        if count.is_empty() || count.len() > 3 || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PacketError::AttachmentCount);
        }
        attachments = count.parse().map_err(|_| PacketError::AttachmentCount)?;
        if attachments > MAX_ATTACHMENTS {
            return Err(PacketError::TooManyAttachments);
        }
        rest = after;
    }

    let mut namespace = DEFAULT_NAMESPACE.to_owned();
    if rest.starts_with('/') {
        match rest.split_once(',') {
            Some((nsp, after)) => {
                namespace = nsp.to_owned();
                rest = after;
            }
            None => {
                namespace = rest.to_owned();
                rest = "";
            }
        }
    }

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        let id = rest[..digits].parse().map_err(|_| PacketError::AckId)?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };

    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(rest).map_err(|e| PacketError::Json(e.to_string()))?)
    };
    let valid = match (kind, &data) {
        (SocketIoType::Connect, None | Some(Value::Object(_))) => true,
        (SocketIoType::Disconnect, None) => true,
        (SocketIoType::ConnectError, Some(Value::Object(_) | Value::String(_))) => true,
        (SocketIoType::Event | SocketIoType::BinaryEvent, Some(Value::Array(items))) => {
            match items.first() {
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                Some(Value::Number(_)) => true,
                _ => false,
            }
        }
        (SocketIoType::Ack | SocketIoType::BinaryAck, Some(Value::Array(_))) => true,
        _ => false,
    };
    if !valid {
        return Err(PacketError::Payload(kind));
    }
    Ok(SocketIoPacket {
        kind,
        attachments,
        namespace,
        ack_id,
        data,
    })
}

/// Encodes a Socket.IO packet without attachments: `data` is JSON text already (the server's payloads
/// are serialised once, where they are made).
pub fn encode_socketio(
    kind: SocketIoType,
    namespace: &str,
    ack_id: Option<u64>,
    data: Option<&str>,
) -> String {
    let mut out = String::with_capacity(16 + data.map_or(0, str::len));
    out.push(kind.digit());
    if namespace != DEFAULT_NAMESPACE {
        out.push_str(namespace);
        out.push(',');
    }
    if let Some(id) = ack_id {
        out.push_str(&id.to_string());
    }
    if let Some(data) = data {
        out.push_str(data);
    }
    out
}

/// An `EVENT` in the default namespace: `2["<name>",<json>]`.
pub fn encode_event(name: &str, json: &str) -> String {
    let mut out = String::with_capacity(8 + name.len() + json.len());
    out.push(SocketIoType::Event.digit());
    out.push_str("[\"");
    out.push_str(name);
    out.push_str("\",");
    out.push_str(json);
    out.push(']');
    out
}

/// Replaces every `{"_placeholder":true,"num":N}` in `value` by the index `N` it names, checked against
/// `attachments`; the caller looks the bytes up (placeholders stay `Value`s so the JSON tree is not
/// rebuilt). Returns the placeholder's index when `value` itself is one.
pub fn placeholder_index(value: &Value, attachments: usize) -> Option<Result<usize, PacketError>> {
    let object = value.as_object()?;
    if object.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    let index = object
        .get("num")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n < attachments);
    Some(index.ok_or(PacketError::Payload(SocketIoType::BinaryEvent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_packets_round_trip_in_text_and_payloads() {
        // The examples of the Engine.IO v4 document.
        assert_eq!(decode_text("2probe"), Ok(Packet::Ping("probe".into())));
        assert_eq!(decode_text("4hello"), Ok(Packet::Text("hello".into())));
        assert_eq!(decode_text("6"), Ok(Packet::Noop));
        assert_eq!(
            decode_payload(b"4hello\x1e2\x1e4world"),
            Ok(vec![
                Packet::Text("hello".into()),
                Packet::Ping(String::new()),
                Packet::Text("world".into())
            ])
        );
        let mixed = vec![
            Packet::Text("hello".into()),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        assert_eq!(encode_payload(&mixed), "4hello\x1ebAQIDBA==");
        assert_eq!(decode_payload(b"4hello\x1ebAQIDBA=="), Ok(mixed));
        assert_eq!(
            encode_payload(&[Packet::Open("{}".into()), Packet::Close, Packet::Upgrade]),
            "0{}\x1e1\x1e5"
        );
        // Text keeps its characters (UTF-8, not counted in UTF-16 units as v3 did).
        assert_eq!(decode_text("4€"), Ok(Packet::Text("€".into())));
    }

    #[test]
    fn malformed_engine_io_packets_are_named() {
        assert_eq!(decode_text(""), Err(PacketError::Empty));
        assert_eq!(decode_text("abc"), Err(PacketError::UnknownType('a')));
        assert_eq!(decode_text("9"), Err(PacketError::UnknownType('9')));
        assert!(matches!(decode_text("b@@"), Err(PacketError::Base64(_))));
        assert_eq!(decode_payload(b"4a\x1e"), Err(PacketError::Empty));
        assert_eq!(decode_payload(&[b'4', 0xff]), Err(PacketError::NotUtf8));
    }

    #[test]
    fn socket_io_packets_decode_as_the_protocol_examples() {
        let connect = decode_socketio("0").unwrap();
        assert_eq!(
            (connect.kind, connect.namespace.as_str(), connect.data),
            (SocketIoType::Connect, "/", None)
        );
        let connect = decode_socketio("0/admin,{\"token\":\"123\"}").unwrap();
        assert_eq!(connect.namespace, "/admin");
        assert_eq!(connect.data, Some(serde_json::json!({"token": "123"})));
        let event = decode_socketio("2[\"foo\"]").unwrap();
        assert_eq!(event.kind, SocketIoType::Event);
        assert_eq!(event.data, Some(serde_json::json!(["foo"])));
        let with_ack = decode_socketio("212[\"foo\"]").unwrap();
        assert_eq!(with_ack.ack_id, Some(12));
        let ack = decode_socketio("3/admin,13[\"bar\"]").unwrap();
        assert_eq!(
            (ack.kind, ack.namespace.as_str(), ack.ack_id),
            (SocketIoType::Ack, "/admin", Some(13))
        );
        let binary = decode_socketio("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")
            .unwrap();
        assert_eq!(
            (binary.kind, binary.attachments, binary.namespace.as_str()),
            (SocketIoType::BinaryEvent, 2, "/admin")
        );
        let items = binary.data.as_ref().unwrap().as_array().unwrap();
        assert_eq!(placeholder_index(&items[1], 2), Some(Ok(0)));
        assert_eq!(placeholder_index(&items[2], 2), Some(Ok(1)));
        assert_eq!(placeholder_index(&items[0], 2), None);
        assert!(matches!(placeholder_index(&items[2], 1), Some(Err(_))));
        let disconnect = decode_socketio("1/admin,").unwrap();
        assert_eq!(
            (disconnect.kind, disconnect.namespace.as_str()),
            (SocketIoType::Disconnect, "/admin")
        );
        assert_eq!(
            decode_socketio("4{\"message\":\"Not authorized\"}")
                .unwrap()
                .kind,
            SocketIoType::ConnectError
        );
    }

    #[test]
    fn invalid_socket_io_payloads_are_refused() {
        assert_eq!(decode_socketio(""), Err(PacketError::SocketIoEmpty));
        assert_eq!(decode_socketio("9"), Err(PacketError::SocketIoType('9')));
        assert_eq!(
            decode_socketio("5[\"a\"]"),
            Err(PacketError::AttachmentCount)
        );
        assert_eq!(
            decode_socketio("5x-[\"a\"]"),
            Err(PacketError::AttachmentCount)
        );
        assert_eq!(
            decode_socketio("511-[\"a\"]"),
            Err(PacketError::TooManyAttachments)
        );
        assert!(matches!(
            decode_socketio("2[\"a\""),
            Err(PacketError::Json(_))
        ));
        for bad in [
            "2",
            "2[]",
            "2{}",
            "2[\"connect\"]",
            "2[null]",
            "0[1]",
            "1{}",
            "3{}",
        ] {
            assert!(
                matches!(decode_socketio(bad), Err(PacketError::Payload(_))),
                "{bad}"
            );
        }
        assert!(decode_socketio("99999999999999999999999[\"a\"]").is_err());
    }

    #[test]
    fn server_packets_encode_as_the_protocol_examples() {
        assert_eq!(
            encode_socketio(
                SocketIoType::Connect,
                "/admin",
                None,
                Some("{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}")
            ),
            "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"
        );
        assert_eq!(
            encode_socketio(SocketIoType::Ack, "/admin", Some(13), Some("[\"bar\"]")),
            "3/admin,13[\"bar\"]"
        );
        assert_eq!(
            encode_socketio(SocketIoType::Disconnect, "/", None, None),
            "1"
        );
        let event = encode_event("pose_result", "{\"sequence\":1}");
        assert_eq!(event, "2[\"pose_result\",{\"sequence\":1}]");
        let decoded = decode_socketio(&event).unwrap();
        assert_eq!(
            decoded.data,
            Some(serde_json::json!(["pose_result", {"sequence": 1}]))
        );
        assert_eq!(
            Packet::Text(event).to_text(),
            "42[\"pose_result\",{\"sequence\":1}]"
        );
    }
}
