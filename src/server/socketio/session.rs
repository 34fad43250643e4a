//! One Engine.IO session: its state machine (transport, heartbeat, the namespace's socket, packets
//! waiting, attachments arriving), behind one mutex that each request of the session takes in turn.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::packet::{self, Packet, SocketIoPacket, SocketIoType};
use super::{CLIENT_CLOSED, CloseReason, MAX_QUEUED_PACKETS, SID_BYTES, SocketIoConfig};
use crate::server::ServerShared;
use crate::server::client::{Client, Protocol};
use crate::server::signal::Signal;
use crate::server::websocket::HARD_LIMIT_FACTOR;
use crate::server::wire::{self, ErrorCode};
use crate::sync::lock;

/// How the session's packets travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    Polling,
    /// A WebSocket answered the probe; long-polling is being let go.
    Upgrading,
    WebSocket,
}

/// The default namespace's socket.
pub(super) enum Socket {
    AwaitingConnect { deadline: Instant },
    Connected(Box<Client>),
    Closed,
}

/// A `BINARY_EVENT` (or `BINARY_ACK`) whose attachments are still arriving.
pub(super) struct PartialPacket {
    pub(super) packet: SocketIoPacket,
    pub(super) attachments: Vec<Bytes>,
    /// Bytes of the packet's text and its attachments so far.
    pub(super) bytes: usize,
}

/// One Engine.IO session.
pub(crate) struct EngineIoSession {
    pub(super) sid: String,
    pub(super) peer: SocketAddr,
    pub(super) signal: Arc<Signal>,
    pub(super) state: Mutex<State>,
}

pub(super) struct State {
    pub(super) config: SocketIoConfig,
    /// The most bytes one packet may hold with its attachments (four times the message limit, as a
    /// WebSocket message or a long-polling body).
    pub(super) max_packet_bytes: usize,
    pub(super) transport: Transport,
    pub(super) get_active: bool,
    pub(super) post_active: bool,
    /// A WebSocket connection holds the session (probing or upgraded).
    pub(super) websocket_attached: bool,
    pub(super) queue: VecDeque<Packet>,
    pub(super) next_ping_at: Instant,
    pub(super) pong_deadline: Option<Instant>,
    pub(super) socket: Socket,
    pub(super) partial: Option<PartialPacket>,
    pub(super) closed: Option<CloseReason>,
}

impl EngineIoSession {
    pub(super) fn new(
        shared: &ServerShared,
        peer: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> std::io::Result<EngineIoSession> {
        let config = shared.config.socketio;
        Ok(EngineIoSession {
            sid: new_sid()?,
            peer,
            signal: Arc::new(Signal::new()?),
            state: Mutex::new(State::new(
                config,
                shared
                    .config
                    .limits
                    .max_message_bytes
                    .saturating_mul(HARD_LIMIT_FACTOR),
                transport,
                now,
            )),
        })
    }

    pub(super) fn open_packet(&self, shared: &ServerShared, upgrades: &[&str]) -> Packet {
        let config = shared.config.socketio;
        let open = serde_json::json!({
            "sid": self.sid,
            "upgrades": upgrades,
            "pingInterval": config.ping_interval.as_millis(),
            "pingTimeout": config.ping_timeout.as_millis(),
            "maxPayload": shared.config.limits.max_message_bytes,
        });
        Packet::Open(open.to_string())
    }

    /// Closes the session (if `reason`), forgets it and wakes whoever waits on it.
    pub(super) fn close(&self, shared: &ServerShared, reason: CloseReason) {
        lock(&self.state).close(reason);
        self.forget_if_closed(shared);
    }

    /// Takes a closed session out of the registry (its requests then get `400 EngineIoSession ID unknown`) and
    /// wakes its waiting request.
    pub(super) fn forget_if_closed(&self, shared: &ServerShared) {
        let closed = lock(&self.state).closed;
        if let Some(reason) = closed {
            shared.socketio.remove(&self.sid);
            tracing::debug!("socket.io session {} ({}): {reason}", self.sid, self.peer);
            self.signal.notify();
        }
    }
}

pub(super) fn new_sid() -> std::io::Result<String> {
    let mut bytes = [0_u8; SID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

impl State {
    pub(super) fn new(
        config: SocketIoConfig,
        max_packet_bytes: usize,
        transport: Transport,
        now: Instant,
    ) -> State {
        State {
            config,
            max_packet_bytes,
            transport,
            get_active: false,
            post_active: false,
            websocket_attached: transport == Transport::WebSocket,
            queue: VecDeque::new(),
            next_ping_at: now + config.ping_interval,
            pong_deadline: None,
            socket: Socket::AwaitingConnect {
                deadline: now + config.connect_timeout,
            },
            partial: None,
            closed: None,
        }
    }

    pub(super) fn close(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            self.closed = Some(reason);
        }
        // Unregisters the client and closes its stream (its recording is completed).
        self.socket = Socket::Closed;
        self.queue.clear();
        self.partial = None;
    }

    pub(super) fn push(&mut self, packet: Packet) {
        if self.queue.len() >= MAX_QUEUED_PACKETS {
            self.close("too many packets waiting for a client that does not poll");
            return;
        }
        self.queue.push_back(packet);
    }

    /// Timers: a `ping` when one is due, and the end of a session whose `pong` or `CONNECT` is late.
    /// True when something changed that a waiting request should see.
    pub(super) fn tick(&mut self, now: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        if let Socket::AwaitingConnect { deadline } = self.socket
            && now >= deadline
        {
            self.close("no CONNECT to the namespace within the connect timeout");
            return true;
        }
        match self.pong_deadline {
            Some(deadline) if now >= deadline => {
                self.close("ping timeout");
                true
            }
            Some(_) => false,
            None if now >= self.next_ping_at => {
                self.push(Packet::Ping(String::new()));
                self.pong_deadline = Some(now + self.config.ping_timeout);
                true
            }
            None => false,
        }
    }

    /// When the timers next need looking at.
    pub(super) fn deadline(&self) -> Instant {
        let heartbeat = self.pong_deadline.unwrap_or(self.next_ping_at);
        match self.socket {
            Socket::AwaitingConnect { deadline } => heartbeat.min(deadline),
            _ => heartbeat,
        }
    }

    /// Everything waiting for the client: queued packets, then the socket's messages as events.
    pub(super) fn take_outgoing(&mut self) -> Vec<Packet> {
        let mut packets: Vec<Packet> = self.queue.drain(..).collect();
        if let Socket::Connected(core) = &mut self.socket {
            packets.extend(
                core.take_outgoing()
                    .into_iter()
                    .map(|(event, json)| Packet::Text(packet::encode_event(event.name(), &json))),
            );
        }
        packets
    }

    /// A packet from the client (over either transport). `Err`: a protocol error, which ends the session.
    pub(super) fn on_packet(
        &mut self,
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        signal: &Arc<Signal>,
        packet: Packet,
        now: Instant,
    ) -> Result<(), CloseReason> {
        match packet {
            Packet::Pong(_) => {
                self.pong_deadline = None;
                self.next_ping_at = now + self.config.ping_interval;
                Ok(())
            }
            Packet::Close => Err(CLIENT_CLOSED),
            Packet::Noop => Ok(()),
            Packet::Text(text) => self.on_socketio_text(shared, peer, signal, &text),
            Packet::Binary(bytes) => self.on_attachment(bytes),
            // The probe and the upgrade belong to the WebSocket transport ([`WsTransport`]).
            Packet::Open(_) | Packet::Ping(_) | Packet::Upgrade => {
                Err("unexpected Engine.IO packet from the client")
            }
        }
    }

    pub(super) fn on_socketio_text(
        &mut self,
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        signal: &Arc<Signal>,
        text: &str,
    ) -> Result<(), CloseReason> {
        if self.partial.is_some() {
            return Err("text packet while binary attachments were due");
        }
        let packet = packet::decode_socketio(text).map_err(|e| {
            tracing::debug!("socket.io parse error: {e}");
            "Socket.IO parse error"
        })?;
        if packet.namespace != packet::DEFAULT_NAMESPACE {
            if packet.kind == SocketIoType::Connect {
                self.push(Packet::Text(packet::encode_socketio(
                    SocketIoType::ConnectError,
                    &packet.namespace,
                    None,
                    Some(r#"{"message":"Invalid namespace"}"#),
                )));
            }
            // Packets for a namespace the client could not join are ignored, as socket.io does.
            return Ok(());
        }
        match packet.kind {
            SocketIoType::Connect => {
                if matches!(self.socket, Socket::AwaitingConnect { .. }) {
                    self.connect(shared, peer, signal);
                }
                Ok(())
            }
            SocketIoType::Disconnect => {
                self.socket = Socket::AwaitingConnect {
                    deadline: Instant::now() + self.config.connect_timeout,
                };
                Ok(())
            }
            SocketIoType::Event | SocketIoType::Ack => {
                self.on_complete(packet, Vec::new(), text.len())
            }
            SocketIoType::BinaryEvent | SocketIoType::BinaryAck => {
                if packet.attachments == 0 {
                    return self.on_complete(packet, Vec::new(), text.len());
                }
                self.partial = Some(PartialPacket {
                    attachments: Vec::with_capacity(packet.attachments),
                    packet,
                    bytes: text.len(),
                });
                Ok(())
            }
            SocketIoType::ConnectError => Err("CONNECT_ERROR from a client"),
        }
    }

    pub(super) fn on_attachment(&mut self, bytes: Bytes) -> Result<(), CloseReason> {
        let Some(mut partial) = self.partial.take() else {
            return Err("binary data without a binary event");
        };
        partial.bytes += bytes.len();
        if partial.bytes > self.max_packet_bytes {
            return Err("binary attachments over the hard limit");
        }
        partial.attachments.push(bytes);
        if partial.attachments.len() < partial.packet.attachments {
            self.partial = Some(partial);
            return Ok(());
        }
        self.on_complete(partial.packet, partial.attachments, partial.bytes)
    }

    pub(super) fn connect(
        &mut self,
        shared: &Arc<ServerShared>,
        peer: SocketAddr,
        signal: &Arc<Signal>,
    ) {
        match Client::open(shared, peer, Protocol::SocketIo, signal) {
            Ok(core) => {
                let sid = new_sid().unwrap_or_else(|_| format!("client-{}", core.id()));
                self.push(Packet::Text(packet::encode_socketio(
                    SocketIoType::Connect,
                    packet::DEFAULT_NAMESPACE,
                    None,
                    Some(&serde_json::json!({ "sid": sid }).to_string()),
                )));
                self.socket = Socket::Connected(Box::new(core));
            }
            Err(refused) => {
                // The client gets `connect_error` with the native error in `err.data`; the session
                // ends at the connect timeout unless the client closes it first.
                let message = serde_json::json!({
                    "message": "too many clients",
                    "data": serde_json::from_str::<serde_json::Value>(&refused.error_json())
                        .unwrap_or_default(),
                });
                self.push(Packet::Text(packet::encode_socketio(
                    SocketIoType::ConnectError,
                    packet::DEFAULT_NAMESPACE,
                    None,
                    Some(&message.to_string()),
                )));
            }
        }
    }

    /// A whole event (or acknowledgement) of the default namespace, with its attachments; `bytes`: its
    /// size on the wire.
    pub(super) fn on_complete(
        &mut self,
        packet: SocketIoPacket,
        attachments: Vec<Bytes>,
        bytes: usize,
    ) -> Result<(), CloseReason> {
        if matches!(packet.kind, SocketIoType::Ack | SocketIoType::BinaryAck) {
            // The server asks for no acknowledgements; one that comes is dropped.
            return Ok(());
        }
        let Socket::Connected(core) = &mut self.socket else {
            return Err("an event before CONNECT");
        };
        let args = packet
            .data
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let outcome = match args.first().and_then(serde_json::Value::as_str) {
            Some("frame") => {
                let parsed = core.check_size(bytes).and_then(|()| {
                    wire::frame_from_event(args.get(1), &attachments)
                        .map_err(|e| (e.code(), e.to_string()))
                });
                core.on_frame(parsed)
            }
            name => core.on_frame(Err((
                ErrorCode::UnknownType,
                format!(
                    "unknown event {:?}: the server takes `frame` events",
                    name.unwrap_or_default()
                ),
            ))),
        };
        if let Some(id) = packet.ack_id {
            let answer = match outcome {
                Ok(sequence) => serde_json::json!([{ "accepted": true, "sequence": sequence }]),
                Err((code, message)) => {
                    serde_json::json!([{ "accepted": false, "code": code.name(), "message": message }])
                }
            };
            self.push(Packet::Text(packet::encode_socketio(
                SocketIoType::Ack,
                packet::DEFAULT_NAMESPACE,
                Some(id),
                Some(&answer.to_string()),
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn state(now: Instant) -> State {
        let config = SocketIoConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(1),
            upgrade_timeout: Duration::from_secs(1),
        };
        State::new(config, 1 << 20, Transport::Polling, now)
    }

    #[test]
    fn the_heartbeat_pings_then_closes_without_a_pong() {
        let t0 = Instant::now();
        let mut s = state(t0);
        assert!(!s.tick(t0 + Duration::from_millis(299)));
        assert!(s.tick(t0 + Duration::from_millis(300)));
        assert_eq!(s.take_outgoing(), vec![Packet::Ping(String::new())]);
        assert_eq!(s.deadline(), t0 + Duration::from_millis(500));
        // No second ping while one is unanswered; the pong deadline closes the session.
        assert!(!s.tick(t0 + Duration::from_millis(450)));
        assert!(s.tick(t0 + Duration::from_millis(500)));
        assert_eq!(s.closed, Some("ping timeout"));
        assert!(s.take_outgoing().is_empty());
    }

    #[test]
    fn a_session_that_never_connects_its_socket_ends() {
        let t0 = Instant::now();
        let mut s = state(t0);
        // Heartbeats answered, but no CONNECT.
        for k in 1..=3 {
            s.pong_deadline = None;
            s.next_ping_at = t0 + Duration::from_millis(300 * k);
            s.tick(t0 + Duration::from_millis(300 * k));
        }
        assert!(s.closed.is_none());
        assert!(s.tick(t0 + Duration::from_secs(1)));
        assert_eq!(
            s.closed,
            Some("no CONNECT to the namespace within the connect timeout")
        );
    }

    #[test]
    fn a_client_that_never_polls_cannot_queue_without_bound() {
        let t0 = Instant::now();
        let mut s = state(t0);
        for _ in 0..MAX_QUEUED_PACKETS {
            s.push(Packet::Noop);
        }
        assert!(s.closed.is_none());
        s.push(Packet::Noop);
        assert!(s.closed.is_some());
        assert!(s.queue.is_empty());
    }
}
