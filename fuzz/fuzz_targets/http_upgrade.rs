//! The HTTP request head and the WebSocket upgrade checks (path, Origin against the server's address and
//! `--allow-origin`, key and version), as the server applies them to every connection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livepose::server::http::{check_upgrade, origin_allowed, parse_head};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_head(data) else {
        return;
    };
    let allowed = ["http://allowed.example".to_owned()];
    for (local, tls) in [
        ("0.0.0.0:8000", false),
        ("127.0.0.1:8000", false),
        ("[::]:8443", true),
    ] {
        let Ok(local) = local.parse() else {
            return;
        };
        let verdict = check_upgrade(&request, false, |origin, host| {
            origin_allowed(origin, host, local, tls, &allowed)
        });
        if let Ok(key) = verdict {
            assert!(!key.is_empty());
            assert_eq!(request.websocket_version.as_deref(), Some("13"));
        }
    }
    // While draining every upgrade is refused, whatever the request says.
    assert!(check_upgrade(&request, true, |_, _| true).is_err());
});
