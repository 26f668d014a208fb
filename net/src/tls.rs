//! TLS for the `https` and `tls` pulses: the rustls client configuration (built once at load,
//! shared by a shard's checks), the handshake on a glommio socket, and the certificate's days
//! left read with x509-parser.
//!
//! What it is for: verifying the peer like a browser would (webpki-roots plus an optional
//! `ca_file`), or, with `insecure_skip_verify`, not verifying but still reading the certificate
//! so its expiry is reported. What it is not for: client certificates or pinning.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::deadline::{within, Deadline};
use crate::limits::{Size, MAX_CA_FILE_BYTES, TLS_SESSION_HOSTS};
use crate::outcome::{Detail, FailureKind};
use crate::tcp::Failure;

const SECONDS_PER_DAY: i64 = 86_400;

/// The longest an `https` monitor goes without a full TLS handshake. In between, its checks
/// resume the session (TLS 1.3 tickets, or TLS 1.2 session ids, from rustls's in-memory store
/// shared by the shard's monitors of that host): a resumed handshake skips the certificate and
/// its signature check (a TLS 1.3 one still runs an x25519 exchange; a TLS 1.2 one, offered
/// TLS 1.2 only, none), half or more of the client's CPU per handshake. Once a minute is the trade: a certificate the server started presenting (an
/// expired one, one for another name, one from an unknown issuer) fails the check within a
/// minute of its deployment, sooner than most monitors' alerting thresholds, while a monitor
/// checked every few seconds pays for a full handshake on one check in twenty or more. The
/// `tls` pulse, whose whole point is the certificate, never resumes.
pub const FULL_TLS_HANDSHAKE_EVERY: Duration = Duration::from_secs(60);

/// TLS 1.3 tickets rustls's memory store keeps per host (its `MAX_TLS13_TICKETS_PER_SERVER`):
/// sizes the store and bounds [`forget_sessions`]'s loop.
const TLS13_TICKETS_PER_HOST: usize = 8;

/// How a monitor wants the peer verified. Monitors with equal options share one config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Extra trusted roots (PEM), added to webpki-roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate (still reads it, so days left are reported).
    pub insecure_skip_verify: bool,
}

/// A load-time error, written for the person at the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError(pub String);

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client config for `opts`. Call at load (reads `ca_file`), never per check.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError(format!("TLS: {e}")))?;
    let config = if opts.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &opts.ca_file {
            add_ca_file(&mut roots, path)?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The same client config without session resumption: every handshake is a full one, so the
/// certificate is seen and checked each time (the `tls` pulse).
pub fn without_resumption(config: &ClientConfig) -> Arc<ClientConfig> {
    let mut full = config.clone();
    full.resumption = rustls::client::Resumption::disabled();
    Arc::new(full)
}

/// The configs an `https` monitor resumes sessions with, over one session store the caller
/// keeps (so that it can [`forget_sessions`] of a host before a check that must make a full
/// handshake): the default one, and one offering TLS 1.2 only, for resuming a session whose
/// full handshake the server answered with TLS 1.2. Offering TLS 1.3 too makes rustls
/// generate an x25519 key share for the ClientHello (a quarter of the client's CPU per resumed
/// check against such a server, measured) that a TLS 1.2 abbreviated handshake never uses. A
/// server that moved to TLS 1.3 since refuses the TLS 1.2-only hello; the caller then makes a
/// full handshake with the default config. Both share one verifier and one (empty) client
/// certificate resolver: rustls resumes a session only under the same ones it was made with.
pub fn resuming_client_configs(opts: &TlsOptions) -> Result<ResumingConfigs, TlsConfigError> {
    let sessions =
        Arc::new(ClientSessionMemoryCache::new(TLS_SESSION_HOSTS * TLS13_TICKETS_PER_HOST));
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if opts.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate { provider: provider.clone() })
    } else {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &opts.ca_file {
            add_ca_file(&mut roots, path)?;
        }
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsConfigError(format!("TLS: {e}")))?
    };
    let no_client_cert: Arc<dyn ResolvesClientCert> = Arc::new(NoClientCertificate);
    let build = |versions: &[&'static rustls::SupportedProtocolVersion]| {
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsConfigError(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_cert_resolver(no_client_cert.clone());
        config.resumption = rustls::client::Resumption::store(sessions.clone());
        Ok::<_, TlsConfigError>(Arc::new(config))
    };
    Ok(ResumingConfigs {
        default: build(rustls::DEFAULT_VERSIONS)?,
        tls12: build(&[&rustls::version::TLS12])?,
        sessions,
    })
}

/// What [`resuming_client_configs`] builds.
pub struct ResumingConfigs {
    pub default: Arc<ClientConfig>,
    pub tls12: Arc<ClientConfig>,
    pub sessions: Arc<ClientSessionMemoryCache>,
}

/// No client certificate (what `with_no_client_auth` sets, as a value both resuming configs
/// can share).
#[derive(Debug)]
struct NoClientCertificate;

impl ResolvesClientCert for NoClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Removes what `sessions` holds for `name` (its TLS 1.2 session and TLS 1.3 tickets), so the
/// next handshake with `name` is a full one whose tickets replace them. Bounded by the store's
/// own bound per host.
pub fn forget_sessions(sessions: &ClientSessionMemoryCache, name: &ServerName<'static>) {
    sessions.remove_tls12_session(name);
    for _ in 0..TLS13_TICKETS_PER_HOST {
        if sessions.take_tls13_ticket(name).is_none() {
            break;
        }
    }
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsConfigError> {
    let shown = path.display();
    let size =
        std::fs::metadata(path).map_err(|e| TlsConfigError(format!("ca_file {shown}: {e}")))?.len();
    if size > MAX_CA_FILE_BYTES {
        return Err(TlsConfigError(format!(
            "ca_file {shown}: {size} bytes, more than the {} allowed; is it the right file?",
            Size(MAX_CA_FILE_BYTES)
        )));
    }
    let pem = std::fs::read(path).map_err(|e| TlsConfigError(format!("ca_file {shown}: {e}")))?;
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsConfigError(format!("ca_file {shown}: bad PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| TlsConfigError(format!("ca_file {shown}: unusable certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(TlsConfigError(format!(
            "ca_file {shown}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(())
}

/// Parses the name sent as SNI and checked against the certificate (a DNS name or an IP).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| TlsConfigError(format!("TLS: `{host}` is not a valid server name")))
}

/// Days from `now` until `not_after_unix` (negative once expired), rounded down, so a
/// certificate expiring in 23 hours has 0 days left and one expired an hour ago has -1.
pub fn days_until(not_after_unix: i64, now_unix: i64) -> i32 {
    let days = (not_after_unix - now_unix).div_euclid(SECONDS_PER_DAY);
    days.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Days left on a DER certificate, or `None` when it does not parse.
pub fn cert_days_left(der: &[u8], now_unix: i64) -> Option<i32> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(days_until(cert.validity().not_after.timestamp(), now_unix))
}

/// A completed handshake: the stream and the peer certificate's days left.
pub struct Handshake {
    pub stream: TlsStream<TcpStream>,
    pub cert_days_left: Option<i32>,
    /// The session was resumed: the certificate (and its days left) is the one the full
    /// handshake that started the session saw, not checked again by this one.
    pub resumed: bool,
    /// The server answered with TLS 1.2.
    pub tls12: bool,
}

/// What a handshake that did not finish before the deadline reports.
pub const HANDSHAKE_TIMEOUT: Failure =
    (FailureKind::Timeout, Detail::Text("TLS handshake did not finish"));

/// Runs the TLS handshake on `tcp` before the deadline. A deadline hit reports `Timeout`.
pub async fn handshake(
    tcp: TcpStream,
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    deadline: &Deadline,
) -> Result<Handshake, Failure> {
    within(deadline, handshake_unbounded(tcp, config, name, None))
        .await
        .unwrap_or(Err(HANDSHAKE_TIMEOUT))
}

/// [`handshake`] for a caller that races the whole check against its deadline (the HTTP
/// probe: one timer per check). `resumed_days_left` is the days left its last full handshake
/// read: a resumed session carries the certificate that full handshake saw, so parsing it
/// again on every check (x509-parser) tells nothing new; the figure is then at most
/// [`FULL_TLS_HANDSHAKE_EVERY`] old.
pub async fn handshake_unbounded(
    tcp: TcpStream,
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    resumed_days_left: Option<i32>,
) -> Result<Handshake, Failure> {
    let connector = TlsConnector::from(config.clone());
    // Boxed: the session's state (kilobytes) inline would be in the future of every check
    // that can run a handshake, so in every probe task; a handshake allocates anyway.
    match Box::pin(connector.connect(name.clone(), tcp)).await {
        Ok(stream) => {
            let resumed =
                stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            let days = match resumed_days_left {
                Some(days) if resumed => Some(days),
                _ => stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| cert_days_left(leaf, now_unix())),
            };
            let tls12 =
                stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_2);
            Ok(Handshake { stream, cert_days_left: days, resumed, tls12 })
        }
        Err(err) => Err(classify_handshake_error(&err)),
    }
}

/// Maps a handshake error to `Certificate` (the peer's certificate is the problem) or `Tls`.
pub fn classify_handshake_error(err: &std::io::Error) -> Failure {
    let Some(rustls_err) = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return match err.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                (FailureKind::Tls, Detail::Text("peer closed the connection during the handshake"))
            }
            std::io::ErrorKind::ConnectionReset => {
                (FailureKind::Tls, Detail::Text("peer reset the connection during the handshake"))
            }
            _ => (FailureKind::Tls, err.raw_os_error().map_or(Detail::None, Detail::Errno)),
        };
    };
    match rustls_err {
        rustls::Error::InvalidCertificate(cert_err) => {
            (FailureKind::Certificate, certificate_detail(cert_err))
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            (FailureKind::Tls, Detail::Text("peer does not speak TLS"))
        }
        rustls::Error::AlertReceived(_) => {
            (FailureKind::Tls, Detail::Text("peer sent a TLS alert"))
        }
        rustls::Error::PeerIncompatible(_) => {
            (FailureKind::Tls, Detail::Text("no TLS version or cipher in common"))
        }
        _ => (FailureKind::Tls, Detail::Text("TLS protocol error")),
    }
}

fn certificate_detail(err: &CertificateError) -> Detail {
    match err {
        CertificateError::ExpiredContext { time, not_after } => {
            Detail::CertDaysLeft(days_until(not_after.as_secs() as i64, time.as_secs() as i64))
        }
        CertificateError::Expired => Detail::Text("certificate expired"),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Detail::Text("certificate not valid yet")
        }
        CertificateError::UnknownIssuer => Detail::Text("certificate signed by an unknown issuer"),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Detail::Text("certificate not valid for this name")
        }
        CertificateError::Revoked => Detail::Text("certificate revoked"),
        CertificateError::BadSignature => Detail::Text("certificate has a bad signature"),
        _ => Detail::Text("certificate rejected"),
    }
}

/// `insecure_skip_verify`: accepts any certificate chain but still checks that the handshake
/// signatures are made by the presented key (so the session is at least with that key's owner).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_down_and_go_negative() {
        let now = 1_700_000_000;
        assert_eq!(days_until(now + 10 * SECONDS_PER_DAY, now), 10);
        assert_eq!(days_until(now + 23 * 3600, now), 0);
        assert_eq!(days_until(now - 3600, now), -1);
        assert_eq!(days_until(now - 3 * SECONDS_PER_DAY, now), -3);
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let opts = TlsOptions { ca_file: Some(path.clone()), insecure_skip_verify: false };
        let err = client_config(&opts).unwrap_err();
        assert!(err.0.contains("ca.pem") && err.0.contains("no PEM certificate"), "{err}");
        let missing = TlsOptions { ca_file: Some(dir.path().join("nope.pem")), ..opts };
        assert!(client_config(&missing).unwrap_err().0.contains("nope.pem"));
    }

    #[test]
    fn ca_file_with_a_certificate_loads() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, cert.cert.pem()).unwrap();
        let opts = TlsOptions { ca_file: Some(path), insecure_skip_verify: false };
        assert!(client_config(&opts).is_ok());
    }

    #[test]
    fn server_names_accept_dns_and_ip() {
        assert!(server_name("api.example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("bad name!").is_err());
    }
}
