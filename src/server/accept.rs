//! The accept path: one thread (`livepose-accept`) accepts connections and reads their request heads,
//! all of them at once, non-blocking, in one `poll(2)`. A connection gets a thread of its own only once
//! its head is complete, so connections that are slow or never finish their head (slowloris) hold a
//! few hundred bytes here instead of a thread and cannot keep real clients out:
//! - every pending head has a deadline: [`HEAD_TIMEOUT`], tightened to [`HEAD_TIMEOUT_UNDER_PRESSURE`]
//!   while more than [`PRESSURE_PENDING`] heads are pending;
//! - at most [`MAX_PENDING`] heads are pending; beyond that the oldest is dropped (a real client sends
//!   its head at once, so it is never the oldest for long);
//! - a head larger than `http::MAX_HEAD_BYTES` is answered with 400.
//!
//! With TLS on, the handshake happens here too (rustls driven by the same poll), and a connection whose
//! first byte is not a TLS handshake is plain HTTP on the HTTPS port: it is answered with a redirect to
//! the `https://` address. The pairing check (`pairing`) is made here as well, before any thread.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::http::{self, HttpError};
use super::pairing::{self, Admission, FailureLimiter};
use super::tls::Conn;
use super::{EXTRA_CONNECTIONS, STOP_POLL, ServerShared, router, websocket};
use crate::sync::lock;

/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// A client gets this long to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// … and this long while many heads are pending.
pub const HEAD_TIMEOUT_UNDER_PRESSURE: Duration = Duration::from_secs(1);
/// Pending heads above which the deadline tightens.
pub const PRESSURE_PENDING: usize = 64;
/// Pending heads kept at most (the oldest is dropped beyond).
pub const MAX_PENDING: usize = 1024;

/// What a pending connection speaks.
enum Mode {
    Plain,
    /// TLS is on and the first byte has not arrived yet.
    Undecided,
    Tls(Box<rustls::ServerConnection>),
    /// Plain HTTP to the TLS port: read its head, then redirect.
    PlainOnTls,
}

/// A connection whose request head is still arriving.
struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    head: Vec<u8>,
    since: Instant,
    mode: Mode,
}

/// What became of a pending connection after a read.
enum Progress {
    Waiting,
    /// The head is complete: the request and any bytes that came after it.
    Complete(Box<http::Request>, Vec<u8>),
    /// Answer with this status and reason, then close.
    Refuse(&'static str, String),
    Gone,
}

fn read_more(
    pending: &mut Pending,
    buf: &mut [u8],
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Progress {
    if matches!(pending.mode, Mode::Undecided) {
        let mut first = [0_u8; 1];
        match pending.stream.peek(&mut first) {
            Ok(0) => return Progress::Gone,
            Ok(_) if first[0] == TLS_HANDSHAKE => {
                let Some(config) = tls else {
                    return Progress::Gone;
                };
                match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(conn) => pending.mode = Mode::Tls(Box::new(conn)),
                    Err(e) => {
                        tracing::warn!("cannot start a TLS connection: {e}");
                        return Progress::Gone;
                    }
                }
            }
            Ok(_) => pending.mode = Mode::PlainOnTls,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Waiting,
            Err(_) => return Progress::Gone,
        }
    }
    if let Mode::Tls(conn) = &mut pending.mode {
        return read_tls(&mut pending.stream, conn, &mut pending.head, buf);
    }
    loop {
        match std::io::Read::read(&mut pending.stream, buf) {
            Ok(0) => return Progress::Gone,
            Ok(n) => {
                if let Some(progress) = add_bytes(&mut pending.head, &buf[..n]) {
                    return progress;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Waiting,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Progress::Gone,
        }
    }
}

/// Adds bytes to a head; `Some` once it is complete, malformed or too large.
fn add_bytes(head: &mut Vec<u8>, bytes: &[u8]) -> Option<Progress> {
    let before = head.len();
    head.extend_from_slice(bytes);
    // The blank line may straddle two reads: look from 3 bytes before the new ones.
    let from = before.saturating_sub(3);
    if let Some(end) = http::find_head_end(&head[from..]) {
        let end = from + end;
        let rest = head.split_off(end);
        return Some(match http::parse_head(head) {
            Ok(request) => Progress::Complete(Box::new(request), rest),
            Err(e) => Progress::Refuse("400 Bad Request", e.to_string()),
        });
    }
    if head.len() > http::MAX_HEAD_BYTES {
        return Some(Progress::Refuse(
            "400 Bad Request",
            HttpError::TooLarge.to_string(),
        ));
    }
    None
}

/// Drives the TLS handshake and reads decrypted bytes of the head.
fn read_tls(
    stream: &mut TcpStream,
    conn: &mut rustls::ServerConnection,
    head: &mut Vec<u8>,
    buf: &mut [u8],
) -> Progress {
    let mut closed = false;
    loop {
        match conn.read_tls(stream) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Progress::Gone,
        }
        if let Err(e) = conn.process_new_packets() {
            // The alert for the client (unknown CA, bad record, …), then give up.
            super::best_effort(conn.write_tls(stream), "TLS alert");
            tracing::debug!("TLS handshake failed: {e}");
            return Progress::Gone;
        }
        loop {
            match std::io::Read::read(&mut conn.reader(), buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    if let Some(progress) = add_bytes(head, &buf[..n]) {
                        flush_tls(stream, conn);
                        return progress;
                    }
                }
                Err(_) => break,
            }
        }
    }
    flush_tls(stream, conn);
    if closed {
        Progress::Gone
    } else {
        Progress::Waiting
    }
}

/// Writes what rustls has for the client (handshake messages; small enough for the socket's buffer).
fn flush_tls(stream: &mut TcpStream, conn: &mut rustls::ServerConnection) {
    while conn.wants_write() {
        match conn.write_tls(stream) {
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// A short answer on a connection that is given up (over TLS when it speaks TLS); never blocks for
/// long.
fn answer(p: &mut Pending, status: &str, extra_headers: &str, why: &str) {
    super::best_effort(p.stream.set_nonblocking(false), "blocking mode");
    super::best_effort(
        p.stream.set_write_timeout(Some(Duration::from_millis(100))),
        "write timeout",
    );
    let body = format!("{why}\n");
    match &mut p.mode {
        Mode::Tls(conn) => {
            let mut tls = rustls::Stream::new(conn.as_mut(), &mut p.stream);
            super::best_effort(
                http::respond_with(
                    &mut tls,
                    status,
                    "text/plain",
                    extra_headers,
                    body.as_bytes(),
                ),
                status,
            );
            conn.send_close_notify();
            super::best_effort(conn.write_tls(&mut p.stream), "TLS close_notify");
        }
        _ => {
            super::best_effort(
                http::respond_with(
                    &mut p.stream,
                    status,
                    "text/plain",
                    extra_headers,
                    body.as_bytes(),
                ),
                status,
            );
        }
    }
}

pub(crate) fn accept_loop(listener: &TcpListener, shared: &Arc<ServerShared>) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut failures = FailureLimiter::default();
    let tls = shared.config.tls.as_ref().map(|t| Arc::clone(&t.config));
    let mut buf = vec![0_u8; 4096];
    let mut connection_index = 0_u64;
    while !shared.stopping() {
        // Sleep until a connection arrives, a pending head has bytes, or the nearest deadline.
        let timeout = head_timeout(pending.len());
        let now = Instant::now();
        let wait = pending
            .iter()
            .map(|p| (p.since + timeout).saturating_duration_since(now))
            .min()
            .unwrap_or(STOP_POLL)
            .min(STOP_POLL);
        let readable: Vec<bool> = {
            let mut fds = Vec::with_capacity(pending.len() + 1);
            fds.push(PollFd::new(listener, PollFlags::IN));
            for p in &pending {
                fds.push(PollFd::new(&p.stream, PollFlags::IN));
            }
            websocket::poll_wait(&mut fds, wait);
            fds.iter().map(|fd| !fd.revents().is_empty()).collect()
        };

        // Heads that have bytes: read them; complete ones get a connection thread.
        let mut index = pending.len();
        while index > 0 {
            index -= 1;
            if !readable.get(index + 1).copied().unwrap_or(false) {
                continue;
            }
            match read_more(&mut pending[index], &mut buf, tls.as_ref()) {
                Progress::Waiting => {}
                Progress::Gone => {
                    pending.swap_remove(index);
                }
                Progress::Refuse(status, why) => {
                    let mut p = pending.swap_remove(index);
                    answer(&mut p, status, "", &why);
                }
                Progress::Complete(request, rest) => {
                    let p = pending.swap_remove(index);
                    connection_index += 1;
                    admit_and_start(shared, p, *request, rest, connection_index, &mut failures);
                }
            }
        }

        // Heads past their deadline.
        let timeout = head_timeout(pending.len());
        let now = Instant::now();
        pending.retain_mut(|p| {
            let late = now.saturating_duration_since(p.since) >= timeout;
            if late {
                shared.metrics.rejected("head_timeout");
                answer(
                    p,
                    "408 Request Timeout",
                    "",
                    &format!("no complete request head within {timeout:?}"),
                );
            }
            !late
        });

        // New connections.
        if readable.first().copied().unwrap_or(false) {
            accept_ready(listener, shared, &mut pending);
        }
    }
}

fn head_timeout(pending: usize) -> Duration {
    if pending > PRESSURE_PENDING {
        HEAD_TIMEOUT_UNDER_PRESSURE
    } else {
        HEAD_TIMEOUT
    }
}

/// Drops the pending head that has waited longest; false when there is none.
fn drop_oldest(pending: &mut Vec<Pending>) -> bool {
    let oldest = pending
        .iter()
        .enumerate()
        .min_by_key(|(_, p)| p.since)
        .map(|(i, _)| i);
    oldest.map(|i| pending.swap_remove(i)).is_some()
}

/// Accepts every connection waiting on the listener into `pending`.
fn accept_ready(listener: &TcpListener, shared: &ServerShared, pending: &mut Vec<Pending>) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                // The oldest pending head is the likeliest to be an attacker's.
                if pending.len() >= MAX_PENDING && drop_oldest(pending) {
                    shared.metrics.rejected("too_many_pending");
                }
                let mode = if shared.config.tls.is_some() {
                    Mode::Undecided
                } else {
                    Mode::Plain
                };
                pending.push(Pending {
                    stream,
                    peer,
                    head: Vec::with_capacity(512),
                    since: Instant::now(),
                    mode,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors (EMFILE) or memory: free the oldest pending head and try later.
                tracing::warn!("accept failed: {e}");
                if drop_oldest(pending) {
                    shared.metrics.rejected("too_many_pending");
                }
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
    }
}

/// A complete request: plain HTTP on the TLS port is redirected; off loopback the pairing token is
/// checked (401 or 429 without it); then the request gets its own thread (bounded: WebSocket clients
/// are bounded again, with a `too_many_clients` message, when they register).
fn admit_and_start(
    shared: &Arc<ServerShared>,
    mut p: Pending,
    request: http::Request,
    rest: Vec<u8>,
    index: u64,
    failures: &mut FailureLimiter,
) {
    if matches!(p.mode, Mode::PlainOnTls) {
        shared.metrics.rejected("plain_http_on_tls");
        let host = request.host.as_deref().unwrap_or("");
        let location = if host.is_empty() {
            String::new()
        } else {
            format!("Location: https://{host}{}\r\n", request.path)
        };
        answer(
            &mut p,
            "301 Moved Permanently",
            &location,
            "this port speaks HTTPS: open the https:// address",
        );
        return;
    }
    let token = shared.config.token.as_deref();
    let set_cookie = match pairing::admit(&request, p.peer.ip(), token, failures, Instant::now()) {
        Admission::Open => None,
        Admission::Paired { set_cookie } => set_cookie
            .then(|| token.map(|t| pairing::cookie_header(t, shared.config.tls.is_some())))
            .flatten(),
        Admission::Refused => {
            shared.metrics.rejected("unauthorized");
            answer(
                &mut p,
                "401 Unauthorized",
                "",
                "this server needs its pairing token: open the address it printed (or scan its QR code)",
            );
            return;
        }
        Admission::Limited => {
            shared.metrics.rejected("too_many_failures");
            answer(
                &mut p,
                "429 Too Many Requests",
                &format!("Retry-After: {}\r\n", pairing::FAILURE_WINDOW.as_secs()),
                "too many attempts with a wrong pairing token from this address; wait a minute",
            );
            return;
        }
    };
    let Pending {
        stream, peer, mode, ..
    } = p;
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let mut conn = match mode {
        Mode::Tls(tls) => Conn::Tls(Box::new(rustls::StreamOwned::new(*tls, stream))),
        _ => Conn::Plain(stream),
    };
    let mut connections = lock(&shared.connections);
    connections.retain(|t| !t.is_finished());
    let max_connections = 2 * shared.config.limits.max_clients + EXTRA_CONNECTIONS;
    if connections.len() >= max_connections {
        shared.metrics.rejected("too_many_connections");
        super::best_effort(
            conn.tcp()
                .set_write_timeout(Some(Duration::from_millis(100))),
            "write timeout",
        );
        super::best_effort(
            http::respond(
                &mut conn,
                "503 Service Unavailable",
                "text/plain",
                b"too many connections\n",
            ),
            "503 too many connections",
        );
        conn.close_notify();
        return;
    }
    let conn_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name(format!("livepose-conn-{index}"))
        .spawn(move || {
            router::handle_connection(conn, peer, request, rest, set_cookie, &conn_shared)
        });
    match spawned {
        Ok(thread) => connections.push(thread),
        Err(e) => tracing::error!("cannot start a connection thread: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_tightens_under_pressure() {
        assert_eq!(head_timeout(0), HEAD_TIMEOUT);
        assert_eq!(head_timeout(PRESSURE_PENDING), HEAD_TIMEOUT);
        assert_eq!(
            head_timeout(PRESSURE_PENDING + 1),
            HEAD_TIMEOUT_UNDER_PRESSURE
        );
    }
}
