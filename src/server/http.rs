//! The HTTP side of the port: read one request head, serve the web client's files, or hand a WebSocket
//! upgrade back to the caller. Only what the page needs: `GET`, no keep-alive, bounded heads.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// A client gets this long to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

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
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection closed before a full request head")]
    Closed,
    #[error("no complete request head within {HEAD_TIMEOUT:?}")]
    Timeout,
    #[error("request head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads and parses a request head (and nothing after it).
pub fn read_request(stream: &mut TcpStream) -> Result<Request, HttpError> {
    // One deadline for the whole head, so a client trickling bytes cannot hold the thread.
    let deadline = std::time::Instant::now() + HEAD_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0_u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        stream.set_read_timeout(Some(left))?;
        // Peek, then consume only up to the end of the head, so WebSocket bytes are never swallowed.
        let n = stream.peek(&mut byte)?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        let before = head.len();
        head.extend_from_slice(&byte[..n]);
        if let Some(end) = find_head_end(&head) {
            let consume = end - before;
            stream.read_exact(&mut byte[..consume])?;
            head.truncate(end);
            break;
        }
        stream.read_exact(&mut byte[..n])?;
        if head.len() > MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge);
        }
    }
    parse_head(&head)
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
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
            _ => {}
        }
    }
    request.upgrade_websocket = connection_upgrade && upgrade;
    Ok(request)
}

/// Writes a complete response and lets the connection close.
pub fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Serves a page request (anything but the WebSocket upgrade).
pub fn serve_file(stream: &mut TcpStream, request: &Request) -> std::io::Result<()> {
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
    respond(stream, "200 OK", content_type, body)
}

/// Completes the WebSocket handshake (RFC 6455 §4.2.2).
pub fn accept_websocket(stream: &mut TcpStream, key: &str) -> std::io::Result<()> {
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
