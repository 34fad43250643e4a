//! HTTPS and WSS: the server's certificate and the connection type that is either plain TCP or TLS.
//!
//! rustls (with the `ring` provider: builds fast, no cmake or nasm of its own) does the TLS. The
//! certificate is the user's (`--cert`/`--key`, PEM) or a self-signed one that livepose makes with rcgen
//! on first start and keeps in the config folder (`$XDG_CONFIG_HOME/livepose/tls/`, key readable by the
//! user only). The self-signed one names `localhost`, the host name and every address of the machine's
//! interfaces, and is made again when an address it does not name appears or when it is within 30 days of
//! its end. Its SHA-256 fingerprint is printed so a user can check what the phone's browser shows.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest as _;

/// A self-signed certificate is valid this long, and made again this long before its end.
const SELF_SIGNED_DAYS: i64 = 365;
const RENEW_DAYS_BEFORE: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate ({reason})")]
    NoCertificate { path: PathBuf, reason: String },
    #[error("{path} holds no PEM private key ({reason})")]
    NoKey { path: PathBuf, reason: String },
    #[error("the certificate in {path} cannot be parsed: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "the certificate in {path} expired on {not_after} (valid from {not_before}); renew it, or drop \
         --cert/--key to use a self-signed one"
    )]
    Expired {
        path: PathBuf,
        not_before: String,
        not_after: String,
    },
    #[error("the certificate in {path} is not valid before {not_before}")]
    NotYetValid { path: PathBuf, not_before: String },
    #[error("the key does not belong to the certificate, or is of a kind rustls cannot use: {0}")]
    KeyMismatch(String),
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error(
        "no config folder to keep the certificate in (set HOME or XDG_CONFIG_HOME, or pass --cert/--key)"
    )]
    NoConfigDir,
}

/// Where the certificate came from, for the start-up lines.
#[derive(Clone, Debug)]
pub struct CertificateInfo {
    pub cert_path: PathBuf,
    /// True for the one livepose made.
    pub self_signed: bool,
    /// Just made (first start, or renewed).
    pub generated: bool,
    /// SHA-256 of the leaf certificate's DER, as colon-separated hex (what browsers show).
    pub fingerprint_sha256: String,
    /// The names and addresses the certificate is valid for.
    pub names: Vec<String>,
    pub not_after: String,
}

/// A loaded server certificate: the rustls configuration every TLS connection uses.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub info: CertificateInfo,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsSetup {
    fn eq(&self, other: &Self) -> bool {
        self.info.fingerprint_sha256 == other.info.fingerprint_sha256
    }
}

/// The machine's config folder for livepose's certificate.
pub fn default_tls_dir() -> Result<PathBuf, TlsError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or(TlsError::NoConfigDir)?;
    Ok(base.join("livepose").join("tls"))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads `--cert` and `--key` (PEM: the certificate chain, leaf first, and its private key).
pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsSetup, TlsError> {
    load_checked(cert_path, key_path, false, false)
}

fn load_checked(
    cert_path: &Path,
    key_path: &Path,
    self_signed: bool,
    generated: bool,
) -> Result<TlsSetup, TlsError> {
    let cert_pem = read(cert_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
            reason: "no CERTIFICATE section".into(),
        });
    };
    let (names, not_after) = check_validity(cert_path, leaf)?;
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|e| TlsError::NoKey {
        path: key_path.to_owned(),
        reason: e.to_string(),
    })?;
    let fingerprint_sha256 = fingerprint(leaf);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::KeyMismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::KeyMismatch(e.to_string()))?;
    Ok(TlsSetup {
        config: Arc::new(config),
        info: CertificateInfo {
            cert_path: cert_path.to_owned(),
            self_signed,
            generated,
            fingerprint_sha256,
            names,
            not_after,
        },
    })
}

/// The leaf's names, and its validity checked against the clock.
fn check_validity(
    path: &Path,
    leaf: &CertificateDer<'_>,
) -> Result<(Vec<String>, String), TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| {
        TlsError::BadCertificate {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let validity = cert.validity();
    let not_before = validity.not_before.to_string();
    let not_after = validity.not_after.to_string();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        return Err(TlsError::Expired {
            path: path.to_owned(),
            not_before,
            not_after,
        });
    }
    if now < validity.not_before {
        return Err(TlsError::NotYetValid {
            path: path.to_owned(),
            not_before,
        });
    }
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok((names, not_after))
}

/// SHA-256 of a certificate's DER, `AB:CD:…`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = sha2::Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// This machine's names and addresses: `localhost`, the host name, and every interface address.
pub fn machine_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if !host.is_empty() && !names.contains(&host) {
        names.push(host);
    }
    let mut addresses: Vec<IpAddr> = vec![
        IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    addresses.extend(interface_addresses());
    for address in addresses {
        let text = address.to_string();
        if !names.contains(&text) {
            names.push(text);
        }
    }
    names
}

/// Every address of the machine's network interfaces (IPv6 link-local ones left out: a browser cannot
/// use them in a URL without a zone).
pub fn interface_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces
            .iter()
            .map(|i| i.ip())
            .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .collect(),
        Err(e) => {
            tracing::warn!("cannot list the network interfaces: {e}");
            Vec::new()
        }
    }
}

/// The self-signed certificate in `dir`, made (again) when missing, unreadable, near its end, or
/// not naming every one of `names`.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.is_file() && key_path.is_file() {
        match load_checked(&cert_path, &key_path, true, false) {
            Ok(setup)
                if names.iter().all(|n| setup.info.names.contains(n)) && !near_end(&setup) =>
            {
                return Ok(setup);
            }
            Ok(_) => tracing::info!(
                "making a new self-signed certificate: the machine has a name or address the old one \
                 lacks, or it ends soon"
            ),
            Err(e) => tracing::warn!("making a new self-signed certificate: {e}"),
        }
    }
    generate(dir, names)?;
    load_checked(&cert_path, &key_path, true, true)
}

fn near_end(setup: &TlsSetup) -> bool {
    let Ok(pem) = std::fs::read(&setup.info.cert_path) else {
        return true;
    };
    let Some(Ok(leaf)) = CertificateDer::pem_slice_iter(&pem).next() else {
        return true;
    };
    match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => {
            let left = cert.validity().not_after.timestamp()
                - x509_parser::time::ASN1Time::now().timestamp();
            left < RENEW_DAYS_BEFORE * 86_400
        }
        Err(_) => true,
    }
}

fn generate(dir: &Path, names: &[String]) -> Result<(), TlsError> {
    let generate_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(generate_err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "livepose (self-signed)");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    let key = rcgen::KeyPair::generate().map_err(generate_err)?;
    let cert = params.self_signed(&key).map_err(generate_err)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    write_private(&dir.join("key.pem"), key.serialize_pem().as_bytes())?;
    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path,
        source,
    })
}

/// Writes a file only its owner can read (the private key).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    // A file left from before is replaced (created anew below with owner-only permissions).
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// A connection after its request head: plain TCP, or TLS over TCP.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Sends TLS's close_notify (nothing for plain TCP).
    pub fn close_notify(&mut self) {
        if let Conn::Tls(s) = self {
            s.conn.send_close_notify();
            super::best_effort(s.conn.write_tls(&mut s.sock), "TLS close_notify");
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tcp().as_fd()
    }
}
