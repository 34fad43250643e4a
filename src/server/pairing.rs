//! Pairing: who may use a server that other machines can reach. Loopback clients always may (as
//! before). Any other client must present the server's **pairing token**, a random 160-bit value made
//! at start (or given with `--token`), printed with the page's full address and as a QR code:
//! - in the query string (`/?token=…`, `/ws?token=…`): the address a phone scans, and what clients that
//!   are not browsers send;
//! - or in the `livepose_token` cookie, which the server sets when the page is loaded with the token in
//!   its query (`HttpOnly; SameSite=Strict`, and `Secure` over TLS). A browser then sends it with every
//!   request of the page, its script and its WebSocket handshake, without the page's script ever
//!   holding it; the page drops the token from the address bar so it stays out of history and
//!   screenshots;
//! - or as `Authorization: Bearer …`.
//!
//! A request without the right token is answered `401` by the accept thread: no connection thread,
//! nothing decoded. Failures are counted per address: after [`MAX_FAILURES`] within [`FAILURE_WINDOW`],
//! that address gets `429` until the window ends, whatever it sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::http::Request;

/// The cookie that carries the token for a page's requests.
pub const TOKEN_COOKIE: &str = "livepose_token";
/// Random bytes in a generated token (160 bits).
const TOKEN_BYTES: usize = 20;
/// Shortest token accepted from `--token` (128 bits of base64: 22 characters).
pub const MIN_TOKEN_CHARS: usize = 22;
/// Failed attempts allowed per address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (the oldest window is forgotten first).
const MAX_ADDRESSES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("cannot make a pairing token: the system's random source failed ({0})")]
    Random(String),
    #[error(
        "the pairing token must be at least {MIN_TOKEN_CHARS} characters of A-Z, a-z, 0-9, '-' or '_' \
         (128 bits); got {0} characters"
    )]
    TooShort(usize),
    #[error(
        "the pairing token may only hold A-Z, a-z, 0-9, '-' and '_' (it goes into URLs and cookies)"
    )]
    BadCharacter,
}

/// A new random token: 160 bits, base64url without padding (27 characters).
pub fn generate_token() -> Result<String, PairingError> {
    let mut bytes = [0_u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| PairingError::Random(e.to_string()))?;
    Ok(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

/// Checks a token given with `--token`.
pub fn validate_token(token: &str) -> Result<(), PairingError> {
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PairingError::BadCharacter);
    }
    if token.len() < MIN_TOKEN_CHARS {
        return Err(PairingError::TooShort(token.len()));
    }
    Ok(())
}

/// How a request presented its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenVia {
    Query,
    Cookie,
    Bearer,
}

/// The value of `name` in a request target's query string (`/ws?a=1&token=…`), undecoded.
pub fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Every token a request presents, in the order they are tried.
pub fn presented_tokens(request: &Request) -> impl Iterator<Item = (&str, TokenVia)> {
    let query = query_param(&request.path, "token").map(|t| (t, TokenVia::Query));
    let bearer = request
        .authorization
        .as_deref()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| (t.trim(), TokenVia::Bearer));
    let cookies = request
        .cookies
        .iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| (value.trim(), TokenVia::Cookie));
    query.into_iter().chain(bearer).chain(cookies)
}

/// Equal, in time that depends only on the lengths.
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the accept thread does with a complete request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Loopback, or no token in force.
    Open,
    /// The right token; `set_cookie` when it came in the query string of a page load.
    Paired { set_cookie: bool },
    /// 401: no token or a wrong one.
    Refused,
    /// 429: this address failed too often.
    Limited,
}

/// Counts failed attempts per address.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    windows: HashMap<IpAddr, (Instant, u32)>,
}

impl FailureLimiter {
    fn limited(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.windows.get(&ip) {
            Some(&(since, _)) if now.saturating_duration_since(since) >= FAILURE_WINDOW => {
                self.windows.remove(&ip);
                false
            }
            Some(&(_, failures)) => failures >= MAX_FAILURES,
            None => false,
        }
    }

    fn fail(&mut self, ip: IpAddr, now: Instant) {
        if self.windows.len() >= MAX_ADDRESSES && !self.windows.contains_key(&ip) {
            self.windows
                .retain(|_, (since, _)| now.saturating_duration_since(*since) < FAILURE_WINDOW);
            if self.windows.len() >= MAX_ADDRESSES {
                let oldest = self.windows.iter().min_by_key(|(_, (since, _))| *since);
                if let Some(oldest) = oldest.map(|(ip, _)| *ip) {
                    self.windows.remove(&oldest);
                }
            }
        }
        self.windows.entry(ip).or_insert((now, 0)).1 += 1;
    }

    /// Addresses with a failure window open.
    pub fn addresses(&self) -> usize {
        self.windows.len()
    }
}

/// Whether `request` from `ip` may be served, with `token` in force (None: every client may).
pub fn admit(
    request: &Request,
    ip: IpAddr,
    token: Option<&str>,
    failures: &mut FailureLimiter,
    now: Instant,
) -> Admission {
    let Some(token) = token else {
        return Admission::Open;
    };
    if ip.is_loopback() || ip.to_canonical().is_loopback() {
        return Admission::Open;
    }
    if failures.limited(ip, now) {
        return Admission::Limited;
    }
    match presented_tokens(request).find(|(t, _)| tokens_match(t, token)) {
        Some((_, via)) => Admission::Paired {
            set_cookie: via == TokenVia::Query && !request.upgrade_websocket,
        },
        None => {
            failures.fail(ip, now);
            Admission::Refused
        }
    }
}

/// The `Set-Cookie` header line (with its CRLF) that pairs a browser.
pub fn cookie_header(token: &str, secure: bool) -> String {
    format!(
        "Set-Cookie: {TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000{}\r\n",
        if secure { "; Secure" } else { "" }
    )
}

/// `url` as a QR code of Unicode half blocks, for a terminal (dark modules on a light background, with
/// the quiet zone), or why it cannot be drawn.
pub fn qr_for_terminal(url: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::L)?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// `url` as a QR code's modules (true: dark), row by row, with its side length; for the app's panel.
pub fn qr_modules(url: &str) -> Result<(usize, Vec<bool>), qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::L)?;
    let width = code.width();
    let modules = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Ok((width, modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, cookie: Option<&str>, authorization: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            cookies: cookie.map(str::to_owned).into_iter().collect(),
            authorization: authorization.map(str::to_owned),
            ..Request::default()
        }
    }

    #[test]
    fn generated_tokens_are_long_random_and_url_safe() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 27, "{a}");
        validate_token(&a).unwrap();
        assert!(matches!(
            validate_token("short"),
            Err(PairingError::TooShort(5))
        ));
        assert!(matches!(
            validate_token("a token with spaces in it!!"),
            Err(PairingError::BadCharacter)
        ));
    }

    #[test]
    fn the_token_is_found_in_query_cookie_or_bearer() {
        let token = "abcdefghijklmnopqrstuvwxyz0";
        let lan: IpAddr = "192.168.1.7".parse().unwrap();
        let now = Instant::now();
        let mut failures = FailureLimiter::default();
        let mut check = |r: &Request| admit(r, lan, Some(token), &mut failures, now);
        assert_eq!(
            check(&request(&format!("/?x=1&token={token}"), None, None)),
            Admission::Paired { set_cookie: true }
        );
        assert_eq!(
            check(&request(
                "/client.js",
                Some(&format!("theme=dark; {TOKEN_COOKIE}={token}")),
                None
            )),
            Admission::Paired { set_cookie: false }
        );
        assert_eq!(
            check(&request("/ws", None, Some(&format!("Bearer {token}")))),
            Admission::Paired { set_cookie: false }
        );
        assert_eq!(check(&request("/", None, None)), Admission::Refused);
        assert_eq!(
            check(&request(&format!("/?token={token}x"), None, None)),
            Admission::Refused
        );
        // Loopback needs no token; no token in force lets everyone in.
        let loopback: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            admit(
                &request("/", None, None),
                loopback,
                Some(token),
                &mut failures,
                now
            ),
            Admission::Open
        );
        assert_eq!(
            admit(&request("/", None, None), lan, None, &mut failures, now),
            Admission::Open
        );
    }

    #[test]
    fn failures_are_limited_per_address_and_forgotten_after_the_window() {
        let token = "abcdefghijklmnopqrstuvwxyz0";
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let now = Instant::now();
        let mut failures = FailureLimiter::default();
        let wrong = request("/?token=nope", None, None);
        let right = request(&format!("/?token={token}"), None, None);
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                admit(&wrong, a, Some(token), &mut failures, now),
                Admission::Refused
            );
        }
        // Limited now, even with the right token; another address is not.
        assert_eq!(
            admit(&right, a, Some(token), &mut failures, now),
            Admission::Limited
        );
        assert!(matches!(
            admit(&right, b, Some(token), &mut failures, now),
            Admission::Paired { .. }
        ));
        let later = now + FAILURE_WINDOW;
        assert!(matches!(
            admit(&right, a, Some(token), &mut failures, later),
            Admission::Paired { .. }
        ));
    }

    #[test]
    fn the_qr_code_holds_the_url() {
        let url = "https://192.168.1.7:8000/?token=abcdefghijklmnopqrstuvwxyz0";
        let text = qr_for_terminal(url).unwrap();
        let (width, modules) = qr_modules(url).unwrap();
        assert_eq!(modules.len(), width * width);
        // Two module rows per text line, plus the quiet zone (4 modules each side).
        assert_eq!(text.lines().count(), (width + 8).div_ceil(2));
    }
}
