//! Engine.IO's long-polling transport: a `GET` waits for packets (or a heartbeat), a `POST` brings
//! packets; each kind at most once at a time per session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::packet::{self, Packet};
use super::session::{EngineIoSession, Transport};
use super::{Answer, BODY_TIMEOUT, CLIENT_CLOSED};
use crate::server::http::Request;
use crate::server::tls::Conn;
use crate::server::websocket::ConnError;
use crate::server::websocket::HARD_LIMIT_FACTOR;
use crate::server::{STOP_POLL, ServerShared};
use crate::sync::lock;

/// The two kinds of long-polling request, each allowed once at a time per session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Polling {
    Get,
    Post,
}

/// Marks a long-polling request of `which` kind as in progress. False when the session is on WebSocket
/// already, or when one of that kind is in progress (then the protocol ends the session).
pub(super) fn claim(shared: &ServerShared, session: &EngineIoSession, which: Polling) -> bool {
    let mut state = lock(&session.state);
    if state.transport == Transport::WebSocket {
        return false;
    }
    let active = match which {
        Polling::Get => &mut state.get_active,
        Polling::Post => &mut state.post_active,
    };
    if *active {
        state.close(match which {
            Polling::Get => "two long-polling GETs at once",
            Polling::Post => "two long-polling POSTs at once",
        });
        drop(state);
        session.forget_if_closed(shared);
        return false;
    }
    *active = true;
    true
}

/// A long-polling `GET`: waits until there is something to send (or a heartbeat is due), then sends
/// every packet waiting. A second `GET` while one waits ends the session (the protocol's rule).
pub(super) fn poll(
    answer: &mut Answer<'_>,
    shared: &Arc<ServerShared>,
    session: &Arc<EngineIoSession>,
) -> Result<(), ConnError> {
    if !claim(shared, session, Polling::Get) {
        return Ok(answer.error(3)?);
    }
    let packets = loop {
        let seen = session.signal.generation();
        let wait = {
            let mut state = lock(&session.state);
            let now = Instant::now();
            state.tick(now);
            if state.closed.is_some() {
                break vec![Packet::Close];
            }
            let packets = state.take_outgoing();
            if !packets.is_empty() {
                break packets;
            }
            if state.transport != Transport::Polling {
                // Upgrading: let the client's long-polling go.
                break vec![Packet::Noop];
            }
            state.deadline().saturating_duration_since(now)
        };
        if shared.stopping() {
            break vec![Packet::Close];
        }
        session
            .signal
            .wait_past(seen, wait.clamp(Duration::from_millis(1), STOP_POLL));
    };
    lock(&session.state).get_active = false;
    session.forget_if_closed(shared);
    Ok(answer.text(&packet::encode_payload(&packets))?)
}

/// A long-polling `POST`: reads the body (bounded in size and time), then hands its packets to the
/// session. A malformed body, or a second `POST` while one is read, ends the session.
pub(super) fn post(
    answer: &mut Answer<'_>,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
    session: &Arc<EngineIoSession>,
) -> Result<(), ConnError> {
    if request.transfer_encoded {
        return Ok(answer.status("411 Length Required", "send the body with a Content-Length")?);
    }
    let length = request.content_length.unwrap_or(rest.len());
    let hard_limit = shared
        .config
        .limits
        .max_message_bytes
        .saturating_mul(HARD_LIMIT_FACTOR);
    if length > hard_limit {
        session.close(shared, "POST body over the hard limit");
        return Ok(answer.status(
            "413 Payload Too Large",
            &format!("a body may hold at most {hard_limit} bytes"),
        )?);
    }
    if !claim(shared, session, Polling::Post) {
        return Ok(answer.error(3)?);
    }
    let body = read_body(answer.stream, rest, length);
    let outcome = body.map(|body| {
        let packets = packet::decode_payload(&body);
        let mut state = lock(&session.state);
        state.post_active = false;
        let result = packets
            .map_err(|e| {
                tracing::debug!("socket.io: {e}");
                "invalid Engine.IO packet"
            })
            .and_then(|packets| {
                let now = Instant::now();
                packets.into_iter().try_for_each(|packet| {
                    state.on_packet(shared, session.peer, &session.signal, packet, now)
                })
            });
        if let Err(reason) = result {
            state.close(reason);
        }
        result
    });
    if outcome.is_err() {
        lock(&session.state).post_active = false;
    }
    // The GET may have something to send now (a CONNECT answer, an error, an acknowledgement).
    session.signal.notify();
    session.forget_if_closed(shared);
    match outcome? {
        Ok(()) => Ok(answer.text("ok")?),
        Err(CLIENT_CLOSED) => Ok(answer.text("ok")?),
        Err(_) => Ok(answer.error(3)?),
    }
}

/// The body of a request: `rest` (read with the head) and the remaining bytes up to `length`.
pub(super) fn read_body(
    stream: &mut Conn,
    mut rest: Vec<u8>,
    length: usize,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    stream.tcp().set_read_timeout(Some(BODY_TIMEOUT))?;
    rest.truncate(length);
    let have = rest.len();
    rest.resize(length, 0);
    stream.read_exact(&mut rest[have..])?;
    Ok(rest)
}
