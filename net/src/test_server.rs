//! Small real servers on 127.0.0.1 for the probe tests: plain or TLS (rustls with rcgen
//! certificates), answering each request with a scripted response. Test-only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What the server does with one request (given its head bytes): the bytes to write back, and
/// whether to keep the connection for another request.
pub type Script = fn(&[u8]) -> (Vec<u8>, bool);

pub struct Server {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    /// TLS handshakes that resumed an earlier session (no certificate sent).
    pub resumed: Arc<AtomicUsize>,
}

/// A certificate and its key, PEM and DER.
pub struct TestCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// Civil date (y, m, d) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// A self-signed certificate for `localhost` and 127.0.0.1 whose notAfter is midnight UTC
/// `expires_in_days + 1` days from today, so its days left are `expires_in_days` (floor).
pub fn cert_expiring_in(expires_in_days: i64) -> TestCert {
    let today =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            as i64
            / 86_400;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (y, m, d) = civil_from_days(today + expires_in_days + 1);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(today + expires_in_days.min(0) - 30);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCert { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), key_der: key.serialize_der() }
}

/// A request head read byte by byte (so nothing after it is consumed); `None` when the peer
/// closes first or sends more than 64 KiB without ending the head.
pub(crate) fn read_head(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(head)
}

fn serve_conn(mut stream: impl Read + Write, script: Script, requests: &AtomicUsize) {
    while let Some(head) = read_head(&mut stream) {
        requests.fetch_add(1, Ordering::SeqCst);
        let (response, keep) = script(&head);
        if stream.write_all(&response).is_err() || stream.flush().is_err() || !keep {
            return;
        }
    }
}

fn start(tls: Option<Arc<rustls::ServerConfig>>, script: Script) -> Server {
    start_dropping(tls, script, 0)
}

/// A server that closes its first `dropped` connections at once, unanswered (a target
/// failing, then healthy), and serves the rest.
fn start_dropping(
    tls: Option<Arc<rustls::ServerConfig>>,
    script: Script,
    dropped: usize,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let resumed = Arc::new(AtomicUsize::new(0));
    let (c, r, resumed_count) = (connections.clone(), requests.clone(), resumed.clone());
    // Detached: the thread ends with the test process; each connection gets its own thread so
    // a slow test client never blocks another.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if c.fetch_add(1, Ordering::SeqCst) < dropped {
                continue;
            }
            let (tls, r, resumed_count) = (tls.clone(), r.clone(), resumed_count.clone());
            std::thread::spawn(move || match tls {
                None => serve_conn(stream, script, &r),
                Some(config) => {
                    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    while tls.conn.is_handshaking() {
                        if tls.conn.complete_io(&mut tls.sock).is_err() {
                            return;
                        }
                    }
                    if tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                        resumed_count.fetch_add(1, Ordering::SeqCst);
                    }
                    serve_conn(tls, script, &r);
                }
            });
        }
    });
    Server { addr, connections, requests, resumed }
}

/// A plain HTTP server.
pub fn http(script: Script) -> Server {
    start(None, script)
}

/// An HTTPS server presenting `cert`.
pub fn https(cert: &TestCert, script: Script) -> Server {
    https_dropping(cert, script, 0)
}

/// An HTTPS server presenting `cert` that closes its first `dropped` connections unanswered.
pub fn https_dropping(cert: &TestCert, script: Script, dropped: usize) -> Server {
    https_with(cert, script, dropped, rustls::DEFAULT_VERSIONS)
}

/// An HTTPS server presenting `cert` that speaks TLS 1.2 only (as nginx before 1.23.4 does by
/// default).
pub fn https_tls12(cert: &TestCert, script: Script) -> Server {
    https_with(cert, script, 0, &[&rustls::version::TLS12])
}

fn https_with(
    cert: &TestCert,
    script: Script,
    dropped: usize,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Server {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls_pki_types::CertificateDer::from(cert.cert_der.clone())],
            rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    start_dropping(Some(Arc::new(config)), script, dropped)
}

/// A listener that accepts and never answers (holds the sockets open).
pub fn silent() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A listener that answers every connection with bytes that are not TLS, then holds it open.
pub fn garbage() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"220 smtp.example ESMTP ready\r\n");
            held.push(s);
        }
    });
    addr
}

pub fn ok_close(_: &[u8]) -> (Vec<u8>, bool) {
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhealthy".to_vec(), false)
}

pub fn ok_keep_alive(_: &[u8]) -> (Vec<u8>, bool) {
    (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy".to_vec(), true)
}

/// A loopback address that refuses connections for as long as the returned socket lives. The
/// socket is bound and never listens, so it holds the port: a port bound and dropped again
/// (the obvious way to find a closed one) can be taken at once by a server of a test running
/// in parallel, which then answers instead of refusing.
pub fn refused() -> (SocketAddr, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) takes no pointers; a negative result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: `sockaddr_in` is plain integers, for which all zeroes is a valid value.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let sockaddr = (&mut addr as *mut libc::sockaddr_in).cast::<libc::sockaddr>();
    // SAFETY: `sockaddr` points to a live `sockaddr_in` of `len` bytes.
    let rc = unsafe { libc::bind(fd, sockaddr, len) };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    // SAFETY: getsockname writes at most `len` bytes into the live `sockaddr_in` behind it.
    let rc = unsafe { libc::getsockname(fd, sockaddr, &mut len) };
    assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
    let port = u16::from_be(addr.sin_port);
    (SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)), owned)
}
