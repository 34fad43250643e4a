//! The HTTP side of the port: parse one request head (read by `accept`), serve the web client's files,
//! or hand a WebSocket upgrade back to the caller. Only what the page needs: `GET`, no keep-alive, bounded heads.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// Largest request head accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

const INDEX_HTML: &str = include_str!("../../assets/web/index.html");
const CLIENT_JS: &str = include_str!("../../assets/web/client.js");

/// The parts of a request the server looks at.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub upgrade_websocket: bool,
    pub websocket_key: Option<String>,
    pub websocket_version: Option<String>,
    /// Every `Cookie` header (the pairing token may be one of the cookies).
    pub cookies: Vec<String>,
    pub authorization: Option<String>,
    /// The body's length (`Content-Length`), for requests with a body (Socket.IO's long-polling `POST`).
    pub content_length: Option<usize>,
    /// `Transfer-Encoding` other than identity (a chunked body, which the server does not read).
    pub transfer_encoded: bool,
    /// A CORS preflight's `Access-Control-Request-Headers`.
    pub cors_request_headers: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Where a request head ends (just past its blank line), if it is complete.
pub(crate) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// Parses a complete request head (up to and including its blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HttpError::Malformed("incomplete".into())),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    }
    let mut request = Request {
        method: parsed.method.unwrap_or_default().to_owned(),
        path: parsed.path.unwrap_or("/").to_owned(),
        ..Request::default()
    };
    let mut connection_upgrade = false;
    let mut upgrade = false;
    for header in parsed.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_owned();
        match header.name.to_ascii_lowercase().as_str() {
            "host" => request.host = Some(value),
            "origin" => request.origin = Some(value),
            "connection" => {
                connection_upgrade = value
                    .split(',')
                    .any(|v| v.trim().eq_ignore_ascii_case("upgrade"));
            }
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "sec-websocket-key" => request.websocket_key = Some(value),
            "sec-websocket-version" => request.websocket_version = Some(value),
            "cookie" => request.cookies.push(value),
            "authorization" => request.authorization = Some(value),
            "content-length" => {
                let length = value
                    .parse()
                    .map_err(|_| HttpError::Malformed(format!("Content-Length {value:?}")))?;
                if request.content_length.is_some_and(|l| l != length) {
                    return Err(HttpError::Malformed("two different Content-Length".into()));
                }
                request.content_length = Some(length);
            }
            "transfer-encoding" => {
                request.transfer_encoded |= !value.eq_ignore_ascii_case("identity");
            }
            "access-control-request-headers" => request.cors_request_headers = Some(value),
            _ => {}
        }
    }
    request.upgrade_websocket = connection_upgrade && upgrade;
    Ok(request)
}

/// Why a WebSocket upgrade is refused: the status line and a sentence for people.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: &'static str,
    pub why: String,
}

/// The checks of a WebSocket upgrade request, in the order the server applies them: not while draining,
/// only at `/ws` (livepose's protocol) and `/socket.io/` (Socket.IO's WebSocket transport), only from an
/// allowed `Origin` (`origin_ok`), and a key with version 13 (RFC 6455 §4.2.1). Gives the
/// `Sec-WebSocket-Key` to answer.
pub fn check_upgrade(
    request: &Request,
    draining: bool,
    origin_ok: impl FnOnce(Option<&str>, Option<&str>) -> bool,
) -> Result<&str, Refusal> {
    let refuse = |status, why: &str| Refusal {
        status,
        why: why.to_owned(),
    };
    if draining {
        return Err(refuse(
            "503 Service Unavailable",
            "the server is shutting down; connect again (another server may take you)",
        ));
    }
    if !matches!(
        request.path.split('?').next(),
        Some("/ws" | "/socket.io/" | "/socket.io")
    ) {
        return Err(refuse(
            "404 Not Found",
            "the WebSocket endpoints are /ws and /socket.io/",
        ));
    }
    if !origin_ok(request.origin.as_deref(), request.host.as_deref()) {
        return Err(refuse(
            "403 Forbidden",
            &format!(
                "origin {} is not allowed (start the server with --allow-origin to allow it)",
                request.origin.as_deref().unwrap_or("")
            ),
        ));
    }
    match (&request.websocket_key, request.websocket_version.as_deref()) {
        (Some(key), Some("13")) if !key.is_empty() => Ok(key),
        _ => Err(refuse(
            "400 Bad Request",
            "a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
        )),
    }
}

/// Whether a WebSocket with this `Origin` (and `Host`) may connect to a server listening on
/// `local_addr` (over TLS when `tls`) with `--allow-origin` values `allowed_origins`.
pub fn origin_allowed(
    origin: Option<&str>,
    host: Option<&str>,
    local_addr: SocketAddr,
    tls: bool,
    allowed_origins: &[String],
) -> bool {
    let Some(origin) = origin else {
        // Not a browser: the Origin check protects browsers' users from other sites' pages.
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed_origins
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/') == origin)
    {
        return true;
    }
    let port = local_addr.port();
    let scheme = if tls { "https" } else { "http" };
    let mut own: BTreeSet<String> = [
        format!("{scheme}://127.0.0.1:{port}"),
        format!("{scheme}://localhost:{port}"),
        format!("{scheme}://[::1]:{port}"),
    ]
    .into_iter()
    .collect();
    if !local_addr.ip().is_unspecified() {
        own.insert(format!("{scheme}://{local_addr}"));
    }
    // Listening on all interfaces: the page loaded through one of this machine's addresses. Only an IP
    // literal counts; a host name could be an attacker's DNS name rebound to this machine.
    if let Some(host) = host
        && local_addr.ip().is_unspecified()
        && host_is_ip_literal(host)
    {
        own.insert(format!("{scheme}://{host}"));
    }
    own.contains(origin)
}

fn host_is_ip_literal(host: &str) -> bool {
    host.parse::<SocketAddr>().is_ok() || host.parse::<IpAddr>().is_ok()
}

/// Writes a complete response and lets the connection close.
pub fn respond(
    stream: &mut impl Write,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    respond_with(stream, status, content_type, "", body)
}

/// [`respond`] with more header lines (each ending in CRLF).
pub fn respond_with(
    stream: &mut impl Write,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{extra_headers}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Serves a page request (anything but the WebSocket upgrade); `extra_headers` go on a page answer
/// (the pairing cookie).
pub fn serve_file(
    stream: &mut impl Write,
    request: &Request,
    extra_headers: &str,
) -> std::io::Result<()> {
    if request.method != "GET" && request.method != "HEAD" {
        return respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n",
        );
    }
    let path = request.path.split('?').next().unwrap_or("/");
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/client.js" => ("text/javascript; charset=utf-8", CLIENT_JS),
        "/ws" => {
            return respond(
                stream,
                "426 Upgrade Required",
                "text/plain",
                b"this is the WebSocket endpoint\n",
            );
        }
        _ => return respond(stream, "404 Not Found", "text/plain", b"not found\n"),
    };
    let body = if request.method == "HEAD" {
        &b""[..]
    } else {
        body.as_bytes()
    };
    respond_with(stream, "200 OK", content_type, extra_headers, body)
}

/// Completes the WebSocket handshake (RFC 6455 §4.2.2).
pub fn accept_websocket(stream: &mut impl Write, key: &str) -> std::io::Result<()> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_requests_are_recognised() {
        let head = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: keep-alive, Upgrade\r\n\
                     Upgrade: websocket\r\nOrigin: http://127.0.0.1:8000\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\n\r\n";
        let request = parse_head(head).unwrap();
        assert!(request.upgrade_websocket);
        assert_eq!(request.path, "/ws");
        assert_eq!(request.origin.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(
            request.websocket_key.as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        let plain = parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(!plain.upgrade_websocket);
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_err());
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nXYZ"), Some(18));
    }
}
