//! The first stop of every request whose head has arrived: `/socket.io/` goes to a Socket.IO session
//! (`super::socketio`), `/healthz` and `/metrics` are answered here, a WebSocket upgrade anywhere else
//! becomes a livepose client (`super::websocket`), and everything else is a file of the page
//! (`super::http`). The router sits above both transports; neither knows the other.

use std::net::SocketAddr;
use std::sync::Arc;

use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::ServerShared;
use super::client::{Client, Protocol};
use super::http::{self, Request};
use super::signal::Signal;
use super::tls::Conn;
use super::websocket::{ConnError, NativeEndpoint, pump, upgrade};

/// One connection whose request head has arrived (`rest`: the bytes that came after it).
/// `set_cookie`: a `Set-Cookie` header line for a page answer (a browser pairing with the token).
pub(crate) fn handle_connection(
    mut stream: Conn,
    peer: SocketAddr,
    request: Request,
    rest: Vec<u8>,
    set_cookie: Option<String>,
    shared: &Arc<ServerShared>,
) {
    let path = request.path.split('?').next().unwrap_or_default();
    if matches!(path, "/socket.io/" | "/socket.io") {
        super::socketio::handle_request(stream, peer, &request, rest, shared);
        return;
    }
    if !request.upgrade_websocket && matches!(path, "/healthz" | "/metrics") {
        super::best_effort(serve_status(&mut stream, &request, path, shared), path);
        stream.close_notify();
        return;
    }
    if !request.upgrade_websocket {
        super::best_effort(
            http::serve_file(&mut stream, &request, set_cookie.as_deref().unwrap_or("")),
            "serving a file",
        );
        stream.close_notify();
        return;
    }
    if let Err(e) = serve_websocket(stream, peer, &request, rest, shared) {
        tracing::info!("client {peer}: {e}");
    }
}

/// `/healthz` (200 ready, 503 starting or draining) and `/metrics` (Prometheus text format).
fn serve_status(
    stream: &mut Conn,
    request: &Request,
    path: &str,
    shared: &ServerShared,
) -> std::io::Result<()> {
    if request.method != "GET" && request.method != "HEAD" {
        return http::respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n",
        );
    }
    if path == "/healthz" {
        return match shared.health() {
            Ok(()) => http::respond(stream, "200 OK", "text/plain", b"ok\n"),
            Err(why) => http::respond(
                stream,
                "503 Service Unavailable",
                "text/plain",
                format!("{why}\n").as_bytes(),
            ),
        };
    }
    match shared.metrics.render(
        &shared.service.stats(),
        shared.clients_connected(),
        shared.people_in_view(),
        shared.socketio.len(),
    ) {
        Ok(body) => http::respond(stream, "200 OK", super::metrics::CONTENT_TYPE, &body),
        Err(e) => http::respond(
            stream,
            "500 Internal Server Error",
            "text/plain",
            format!("{e}\n").as_bytes(),
        ),
    }
}

fn serve_websocket(
    mut stream: Conn,
    peer: SocketAddr,
    request: &Request,
    rest: Vec<u8>,
    shared: &Arc<ServerShared>,
) -> Result<(), ConnError> {
    let key = match http::check_upgrade(request, shared.draining(), |origin, host| {
        shared.origin_allowed(origin, host)
    }) {
        Ok(key) => key,
        Err(refusal) => {
            return Ok(http::respond(
                &mut stream,
                refusal.status,
                "text/plain",
                format!("{}\n", refusal.why).as_bytes(),
            )?);
        }
    };
    let mut ws = upgrade(stream, key, rest, shared.config.limits)?;
    let signal = Arc::new(Signal::new()?);
    let core = match Client::open(shared, peer, Protocol::Livepose, &signal) {
        Ok(core) => core,
        Err(refused) => {
            super::best_effort(ws.send(Message::text(refused.error_json())), "refusal");
            super::best_effort(
                ws.close(Some(CloseFrame {
                    code: CloseCode::Again,
                    reason: "too many clients".into(),
                })),
                "close after a refusal",
            );
            super::best_effort(ws.flush(), "close after a refusal");
            return Ok(());
        }
    };
    pump(&mut ws, &signal, shared, &mut NativeEndpoint { core })
}
