//! The mock fleet: loopback servers on ephemeral ports, healthy and hostile, for end-to-end
//! tests and benchmarks of the probes.
//!
//! Plain std threads (one per listener, one per connection), so the fleet shares nothing with
//! the glommio shard under test and a hostile server cannot slow the client by sharing its
//! executor. Every connection thread ends when its peer closes (a write or read fails), so the
//! fleet's load is bounded by the client's own bounds. Not for production use.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::limits::{HUGE_HEADER_BYTES, MAX_REQUEST_HEAD_BYTES};

/// The healthy servers' answer body.
pub const HEALTHY_BODY: &[u8] = b"healthy";

/// How a fleet server behaves on each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 OK`, body "healthy", honours keep-alive.
    Healthy,
    /// Accepts, reads, never answers; holds the connection until the client closes.
    Silent,
    /// Answers one byte per second.
    Drip,
    /// A 1 MiB header block.
    HugeHeader,
    /// A chunked body that never ends.
    EndlessBody,
    /// Part of a response head, then a reset (SO_LINGER 0 close).
    ResetMidResponse,
    /// Bytes that are not TLS in answer to a ClientHello.
    GarbageTls,
}

/// One running fleet server.
pub struct Server {
    pub addr: SocketAddr,
    pub behaviour: Behaviour,
    /// Requests answered (healthy) or connections served (hostile).
    pub served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the listener thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A certificate for the healthy HTTPS server, with its PEM so clients can trust it.
pub struct FleetCert {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl FleetCert {
    /// A self-signed certificate for `localhost` and `127.0.0.1`, valid for rcgen's default
    /// span (to 4096), generated with rcgen.
    pub fn localhost() -> Self {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("rcgen self-signed certificate");
        FleetCert {
            cert_pem: ck.cert.pem(),
            key_pem: ck.key_pair.serialize_pem(),
            cert_der: ck.cert.der().to_vec(),
            key_der: ck.key_pair.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls_pki_types::CertificateDer::from(self.cert_der.clone())],
                rustls_pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
            )
            .expect("fleet certificate");
        Arc::new(config)
    }
}

/// Starts a plain server with `behaviour` on 127.0.0.1, an ephemeral port.
pub fn spawn(behaviour: Behaviour) -> Server {
    spawn_inner(behaviour, None)
}

/// Starts a healthy HTTPS server presenting `cert`.
pub fn spawn_https(cert: &FleetCert) -> Server {
    spawn_inner(Behaviour::Healthy, Some(cert.server_config()))
}

fn spawn_inner(behaviour: Behaviour, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let (stop2, served2) = (stop.clone(), served.clone());
    let thread = std::thread::Builder::new()
        .name(format!("fleet-{behaviour:?}"))
        .spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let (tls, served, stop) = (tls.clone(), served2.clone(), stop2.clone());
                // Detached: ends when the peer closes or the fleet stops.
                let _ = std::thread::Builder::new().spawn(move || match tls {
                    None if matches!(
                        behaviour,
                        Behaviour::ResetMidResponse | Behaviour::GarbageTls
                    ) =>
                    {
                        serve_raw(behaviour, stream, &served)
                    }
                    None => serve(behaviour, stream, &served, &stop),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                        let tls_stream = rustls::StreamOwned::new(conn, stream);
                        serve(behaviour, tls_stream, &served, &stop)
                    }
                });
            }
        })
        .expect("spawn fleet listener");
    Server { addr, behaviour, served, stop, thread: Some(thread) }
}

/// Reads one request head; `None` when the peer closed or sent too much.
fn read_request_head(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return Some(head);
        }
        if buf.len() > MAX_REQUEST_HEAD_BYTES {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn wants_close(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("\r\nconnection: close")
}

fn serve(
    behaviour: Behaviour,
    mut stream: impl Read + Write,
    served: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut pending = Vec::with_capacity(1024);
    match behaviour {
        Behaviour::Healthy => {
            while let Some(head) = read_request_head(&mut stream, &mut pending) {
                served.fetch_add(1, Ordering::Relaxed);
                let close = wants_close(&head);
                let response: &[u8] = if close {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhealthy"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy"
                };
                if stream.write_all(response).is_err() || stream.flush().is_err() || close {
                    return;
                }
            }
        }
        Behaviour::Silent => {
            served.fetch_add(1, Ordering::Relaxed);
            let mut sink = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                match stream.read(&mut sink) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        }
        Behaviour::Drip => {
            if read_request_head(&mut stream, &mut pending).is_none() {
                return;
            }
            served.fetch_add(1, Ordering::Relaxed);
            let response = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy";
            for byte in response.iter().cycle() {
                if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                let _ = stream.flush();
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Behaviour::HugeHeader => {
            if read_request_head(&mut stream, &mut pending).is_none() {
                return;
            }
            served.fetch_add(1, Ordering::Relaxed);
            if stream.write_all(b"HTTP/1.1 200 OK\r\n").is_err() {
                return;
            }
            // 1 MiB of 1 KiB headers, written header by header until the client hangs up.
            let mut line = b"X-Padding: ".to_vec();
            line.resize(1022, b'p');
            line.extend_from_slice(b"\r\n");
            for _ in 0..HUGE_HEADER_BYTES / line.len() {
                if stop.load(Ordering::Relaxed) || stream.write_all(&line).is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"Content-Length: 0\r\n\r\n");
        }
        Behaviour::EndlessBody => {
            if read_request_head(&mut stream, &mut pending).is_none() {
                return;
            }
            served.fetch_add(1, Ordering::Relaxed);
            if stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err() {
                return;
            }
            let mut chunk = b"1000\r\n".to_vec();
            chunk.resize(chunk.len() + 0x1000, b'z');
            chunk.extend_from_slice(b"\r\n");
            while !stop.load(Ordering::Relaxed) {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        Behaviour::ResetMidResponse | Behaviour::GarbageTls => {
            unreachable!("served by serve_raw")
        }
    }
}

/// Sets SO_LINGER to 0 so that closing the socket sends a reset instead of a FIN.
fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt(2) reads `size_of::<linger>()` bytes from `linger`, a live local, so
    // the read stays inside it; the fd belongs to `stream`, which outlives the call.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Behaviours that need the raw `TcpStream` (socket options) rather than a byte stream.
fn serve_raw(behaviour: Behaviour, mut stream: TcpStream, served: &AtomicU64) {
    let mut pending = Vec::new();
    match behaviour {
        Behaviour::ResetMidResponse => {
            if read_request_head(&mut stream, &mut pending).is_none() {
                return;
            }
            served.fetch_add(1, Ordering::Relaxed);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
            let _ = stream.flush();
            // Give the partial head a moment to leave before the reset overtakes it.
            std::thread::sleep(Duration::from_millis(20));
            set_linger_zero(&stream);
            drop(stream);
        }
        Behaviour::GarbageTls => {
            served.fetch_add(1, Ordering::Relaxed);
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.shutdown(Shutdown::Write);
            let mut sink = [0u8; 512];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
        _ => unreachable!("served by serve"),
    }
}

/// All the fleet's servers, started together.
pub struct Fleet {
    pub cert: FleetCert,
    pub healthy_http: Server,
    pub healthy_https: Server,
    pub silent: Server,
    pub drip: Server,
    pub huge_header: Server,
    pub endless_body: Server,
    pub reset_mid_response: Server,
    pub garbage_tls: Server,
}

impl Fleet {
    pub fn start() -> Self {
        let cert = FleetCert::localhost();
        let healthy_https = spawn_https(&cert);
        Fleet {
            healthy_http: spawn(Behaviour::Healthy),
            healthy_https,
            cert,
            silent: spawn(Behaviour::Silent),
            drip: spawn(Behaviour::Drip),
            huge_header: spawn(Behaviour::HugeHeader),
            endless_body: spawn(Behaviour::EndlessBody),
            reset_mid_response: spawn(Behaviour::ResetMidResponse),
            garbage_tls: spawn(Behaviour::GarbageTls),
        }
    }
}
