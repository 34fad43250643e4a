//! Engine.IO's WebSocket transport: a session over WebSocket only, or the upgrade of a long-polling
//! session (`2probe`/`3probe`, then `5`), each Engine.IO packet one WebSocket message, run by the
//! server's one WebSocket loop ([`crate::server::websocket::pump`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use super::packet::{self, Packet};
use super::session::{EngineIoSession, Transport};
use super::{Answer, Next, SHUTTING_DOWN, WsUpgrade, max_sessions};
use crate::server::ServerShared;
use crate::server::http::{self, Request};
use crate::server::tls::Conn;
use crate::server::websocket::{self, Closing, ConnError, Endpoint, pump};
use crate::sync::lock;

/// A WebSocket to `/socket.io/`: a new session over WebSocket only (no `sid`), or the upgrade of a
/// long-polling session. Checks the upgrade and claims the session; [`run_websocket`] does the rest.
pub(super) fn websocket_session(
    answer: &mut Answer<'_>,
    peer: SocketAddr,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
    existing: Option<Arc<EngineIoSession>>,
) -> Result<Next, ConnError> {
    let key = match http::check_upgrade(request, shared.draining(), |origin, host| {
        shared.origin_allowed(origin, host)
    }) {
        Ok(key) => key.to_owned(),
        Err(refusal) => {
            answer.status(refusal.status, &refusal.why)?;
            return Ok(Next::Done);
        }
    };
    let (session, phase) = match existing {
        Some(session) => {
            let mut state = lock(&session.state);
            if state.transport != Transport::Polling || state.websocket_attached {
                drop(state);
                answer.error(3)?;
                return Ok(Next::Done);
            }
            state.websocket_attached = true;
            drop(state);
            (
                session,
                Phase::Probing {
                    answered: false,
                    until: Instant::now() + shared.config.socketio.upgrade_timeout,
                },
            )
        }
        None => {
            let session = Arc::new(EngineIoSession::new(
                shared,
                peer,
                Transport::WebSocket,
                Instant::now(),
            )?);
            if !shared
                .socketio
                .insert(Arc::clone(&session), max_sessions(shared))
            {
                answer.status(
                    "503 Service Unavailable",
                    "too many Socket.IO sessions; try again later",
                )?;
                return Ok(Next::Done);
            }
            let open = session.open_packet(shared, &[]);
            lock(&session.state).queue.push_front(open);
            (session, Phase::Open)
        }
    };
    Ok(Next::WebSocket(Box::new(WsUpgrade {
        key,
        rest,
        session,
        phase,
    })))
}

/// Answers the upgrade and runs the session's WebSocket until it closes.
pub(super) fn run_websocket(
    stream: Conn,
    upgrade: WsUpgrade,
    shared: &Arc<ServerShared>,
) -> Result<(), ConnError> {
    let WsUpgrade {
        key,
        rest,
        session,
        phase,
    } = upgrade;
    let mut ws = match websocket::upgrade(stream, &key, rest, shared.config.limits) {
        Ok(ws) => ws,
        Err(e) => {
            release_websocket(shared, &session, phase);
            return Err(e);
        }
    };
    let mut transport = WsTransport {
        shared: Arc::clone(shared),
        session: Arc::clone(&session),
        phase,
    };
    let outcome = pump(&mut ws, &session.signal, shared, &mut transport);
    release_websocket(shared, &session, transport.phase);
    outcome
}

/// After a session's WebSocket ends: an upgraded (or WebSocket-only) session ends with it; a probe
/// that did not complete leaves the session on long-polling.
pub(super) fn release_websocket(shared: &ServerShared, session: &EngineIoSession, phase: Phase) {
    {
        let mut state = lock(&session.state);
        state.websocket_attached = false;
        match phase {
            Phase::Open => state.close("transport close"),
            Phase::Probing { .. } => {
                if state.transport == Transport::Upgrading {
                    state.transport = Transport::Polling;
                }
            }
        }
    }
    session.forget_if_closed(shared);
}

/// Where a session's WebSocket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Upgrading from long-polling: `answered` once `3probe` is due (until it is sent); the upgrade must
    /// be complete `until` then.
    Probing { answered: bool, until: Instant },
    /// The session's transport.
    Open,
}

/// A session's WebSocket transport, for [`client::pump`]: each Engine.IO packet one frame (binary
/// attachments as binary frames).
pub(super) struct WsTransport {
    shared: Arc<ServerShared>,
    session: Arc<EngineIoSession>,
    phase: Phase,
}

impl WsTransport {
    pub(super) fn on_probe_packet(&mut self, packet: Packet) -> Result<(), Closing> {
        let mut state = lock(&self.session.state);
        match packet {
            Packet::Ping(data) if data == "probe" => {
                state.transport = Transport::Upgrading;
                if let Phase::Probing { answered, .. } = &mut self.phase {
                    *answered = true;
                }
                drop(state);
                // The pending GET answers `6` (noop) and the client stops polling.
                self.session.signal.notify();
                Ok(())
            }
            Packet::Upgrade if state.transport == Transport::Upgrading => {
                state.transport = Transport::WebSocket;
                self.phase = Phase::Open;
                Ok(())
            }
            _ => Err(Closing {
                code: CloseCode::Protocol,
                reason: "expected the upgrade probe",
            }),
        }
    }
}

impl Endpoint for WsTransport {
    fn on_message(&mut self, message: Message, now: Instant) -> Result<(), Closing> {
        let packet = match message {
            Message::Text(text) => packet::decode_text(text.as_str()),
            Message::Binary(bytes) => Ok(Packet::Binary(bytes)),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                return Ok(());
            }
        };
        let protocol_error = |reason| Closing {
            code: CloseCode::Protocol,
            reason,
        };
        let packet = match packet {
            Ok(packet) => packet,
            Err(_) => {
                self.session.close(&self.shared, "invalid Engine.IO packet");
                return Err(protocol_error("invalid Engine.IO packet"));
            }
        };
        if let Phase::Probing { .. } = self.phase {
            return self.on_probe_packet(packet);
        }
        let result = {
            let mut state = lock(&self.session.state);
            let result = state.on_packet(
                &self.shared,
                self.session.peer,
                &self.session.signal,
                packet,
                now,
            );
            if let Err(reason) = result {
                state.close(reason);
            }
            result
        };
        self.session.forget_if_closed(&self.shared);
        result.map_err(|reason| Closing {
            code: CloseCode::Normal,
            reason,
        })
    }

    fn outgoing(&mut self, now: Instant) -> Vec<Message> {
        match self.phase {
            Phase::Probing {
                answered: true,
                until,
            } => {
                self.phase = Phase::Probing {
                    answered: false,
                    until,
                };
                vec![Message::text(Packet::Pong("probe".into()).to_text())]
            }
            Phase::Probing {
                answered: false, ..
            } => Vec::new(),
            Phase::Open => {
                let mut state = lock(&self.session.state);
                state.tick(now);
                state
                    .take_outgoing()
                    .into_iter()
                    .map(|packet| match packet {
                        Packet::Binary(bytes) => Message::Binary(bytes),
                        other => Message::text(other.to_text()),
                    })
                    .collect()
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open => Some(lock(&self.session.state).deadline()),
            Phase::Probing { until, .. } => Some(until),
        }
    }

    fn finished(&mut self, now: Instant) -> Option<Closing> {
        if let Phase::Probing { until, .. } = self.phase
            && now >= until
        {
            // The session goes on over long-polling (`release_websocket`).
            return Some(Closing {
                code: CloseCode::Normal,
                reason: "upgrade timeout",
            });
        }
        let mut state = lock(&self.session.state);
        if self.phase == Phase::Open {
            state.tick(now);
        }
        let reason = state.closed?;
        drop(state);
        self.session.forget_if_closed(&self.shared);
        Some(Closing {
            code: if reason == SHUTTING_DOWN {
                CloseCode::Away
            } else {
                CloseCode::Normal
            },
            reason,
        })
    }
}
