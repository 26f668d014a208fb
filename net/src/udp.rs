//! The `udp` pulse: send one datagram (`payload`) to the target and succeed on any non-empty
//! reply, on a glommio (io_uring) UDP socket on the shard's thread.
//!
//! What it is for: services that answer a datagram (syslog relays with echo, game servers,
//! custom health ports). What it is not for: DNS (see `dns.rs`, which checks the answer), or
//! proving a silent UDP service is up: UDP has no handshake, so "no reply" can only ever be
//! reported as `timeout`. A connected UDP socket does learn of ICMP port-unreachable from the
//! kernel, which is reported as `connect_refused`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;

use crate::deadline::{saturating_us, until, Deadline};
use crate::limits::{Size, MAX_UDP_PAYLOAD_BYTES, UDP_REPLY_READ_BYTES};
use crate::outcome::{is_local_resource_errno, Detail, FailureKind, Outcome};

/// A `udp` monitor, with its address already resolved.
#[derive(Clone, Debug)]
pub struct UdpConfig {
    pub addr: SocketAddr,
    pub payload: Box<[u8]>,
}

impl UdpConfig {
    /// Builds a config, refusing payloads over [`MAX_UDP_PAYLOAD_BYTES`].
    pub fn new(addr: SocketAddr, payload: &[u8]) -> Result<UdpConfig, String> {
        if payload.len() > MAX_UDP_PAYLOAD_BYTES {
            return Err(format!(
                "udp payload is {} bytes; at most {} fit in one datagram",
                payload.len(),
                Size::bytes(MAX_UDP_PAYLOAD_BYTES)
            ));
        }
        Ok(UdpConfig { addr, payload: payload.into() })
    }
}

/// Runs one `udp` check within `timeout`.
pub async fn check(cfg: &UdpConfig, timeout: Duration) -> Outcome {
    debug_assert!(cfg.payload.len() <= MAX_UDP_PAYLOAD_BYTES);
    let start = Instant::now();
    let deadline = Deadline::new(start, timeout).end();
    match until(deadline, exchange(cfg)).await {
        None => Outcome::failure(
            FailureKind::Timeout,
            saturating_us(start.elapsed()),
            Detail::Text("no reply"),
        ),
        Some(Ok(())) => Outcome::success(saturating_us(start.elapsed())),
        Some(Err(Failure::Empty)) => Outcome::failure(
            FailureKind::Protocol,
            saturating_us(start.elapsed()),
            Detail::Text("empty datagram in reply"),
        ),
        Some(Err(Failure::Io(e))) => io_outcome(&e, saturating_us(start.elapsed())),
    }
}

enum Failure {
    Io(io::Error),
    Empty,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

async fn exchange(cfg: &UdpConfig) -> Result<(), Failure> {
    let socket = bind_for(cfg.addr)?;
    // Connecting filters out datagrams from anyone else and lets the kernel report ICMP
    // port-unreachable as ECONNREFUSED on the next receive. The address is a SocketAddr, so
    // no name resolution happens here.
    socket.connect(cfg.addr).await.map_err(io::Error::from)?;
    socket.send(&cfg.payload).await.map_err(io::Error::from)?;
    let mut reply = [0u8; UDP_REPLY_READ_BYTES];
    let n = socket.recv(&mut reply).await.map_err(io::Error::from)?;
    if n == 0 {
        return Err(Failure::Empty);
    }
    Ok(())
}

/// A fresh UDP socket of the target's address family, not yet bound: `connect` binds it to a
/// port of its own.
///
/// Not `glommio::net::UdpSocket::bind`: that sets `SO_REUSEPORT`, and with it Linux may give
/// two concurrent checks the same ephemeral port; both connected to the same server, each
/// then receives some of the other's replies (seen as DNS checks timing out under load).
pub(crate) fn bind_for(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) takes no pointers and touches no memory of ours; a negative result is
    // an error (returned below), anything else is a new descriptor that only we own.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a valid datagram socket (checked above) that nothing else holds, so
    // handing it to the glommio socket, which closes it on drop, gives it exactly one owner.
    Ok(unsafe { UdpSocket::from_raw_fd(fd) })
}

/// The failure a socket error means for a datagram check.
pub(crate) fn io_outcome(e: &io::Error, latency_us: u32) -> Outcome {
    let detail = e.raw_os_error().map_or(Detail::Text("socket error"), Detail::Errno);
    let kind = match e.raw_os_error() {
        Some(errno) if is_local_resource_errno(errno) => FailureKind::LocalResource,
        Some(libc::ECONNREFUSED) => FailureKind::ConnectRefused,
        Some(libc::EACCES) | Some(libc::EPERM) => FailureKind::Permission,
        _ => FailureKind::Connection,
    };
    Outcome::failure(kind, latency_us, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket as StdUdp;

    #[test]
    fn a_socket_without_a_local_resource_is_not_the_targets_failure() {
        for errno in crate::outcome::tests::LOCAL_ERRNOS {
            let o = io_outcome(&io::Error::from_raw_os_error(errno), 5);
            assert_eq!(o.failure, Some(FailureKind::LocalResource), "{errno}");
            assert_eq!(o.detail, Detail::Errno(errno));
        }
    }

    fn run_check(cfg: UdpConfig, timeout: Duration) -> Outcome {
        crate::test_executor::run(move || async move { check(&cfg, timeout).await })
    }

    /// A one-shot echo server on a std thread: answers the first datagram with `reply`.
    fn echo_once(reply: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let server = StdUdp::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(reply, from).unwrap();
            buf[..n].to_vec()
        });
        (addr, handle)
    }

    #[test]
    fn reply_means_success_and_payload_is_sent() {
        let (addr, server) = echo_once(b"pong");
        let cfg = UdpConfig::new(addr, b"ping").unwrap();
        let o = run_check(cfg, Duration::from_secs(10));
        assert!(o.is_success(), "{o:?}");
        assert_eq!(server.join().unwrap(), b"ping");
    }

    #[test]
    fn empty_reply_is_a_protocol_failure() {
        let (addr, server) = echo_once(b"");
        let cfg = UdpConfig::new(addr, b"ping").unwrap();
        let o = run_check(cfg, Duration::from_secs(10));
        assert_eq!(o.failure, Some(FailureKind::Protocol), "{o:?}");
        server.join().unwrap();
    }

    /// Answers `answers` datagrams: the first with an empty datagram (a failure), the rest
    /// with `pong`.
    fn empty_then_pong(answers: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = StdUdp::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            for i in 0..answers {
                let (_, from) = socket.recv_from(&mut buf).unwrap();
                let reply: &[u8] = if i == 0 { b"" } else { b"pong" };
                socket.send_to(reply, from).unwrap();
            }
        });
        (addr, handle)
    }

    fn check_with_retries(addr: SocketAddr, retries: u32) -> Outcome {
        let cfg = UdpConfig::new(addr, b"ping").unwrap();
        crate::test_executor::run(move || async move {
            crate::retry::with_retries(retries, Duration::from_secs(10), |t| check(&cfg, t)).await
        })
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        let (addr, server) = empty_then_pong(1);
        let o = check_with_retries(addr, 0);
        assert_eq!(o.failure, Some(FailureKind::Protocol), "{o:?}");
        server.join().unwrap();
        let (addr, server) = empty_then_pong(2);
        let o = check_with_retries(addr, 1);
        assert!(o.is_success(), "{o:?}");
        server.join().unwrap();
    }

    #[test]
    fn silence_is_a_timeout() {
        // Bound and kept open, never answering: no ICMP error, so only the deadline ends it.
        let silent = StdUdp::bind("127.0.0.1:0").unwrap();
        let cfg = UdpConfig::new(silent.local_addr().unwrap(), b"ping").unwrap();
        let o = run_check(cfg, Duration::from_millis(200));
        assert_eq!(o.failure, Some(FailureKind::Timeout), "{o:?}");
        drop(silent);
    }

    #[test]
    fn closed_port_is_connect_refused() {
        // Bind then drop to get a port nobody listens on; loopback answers with ICMP
        // port-unreachable, which the connected socket reports as ECONNREFUSED.
        let addr = StdUdp::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let cfg = UdpConfig::new(addr, b"ping").unwrap();
        let o = run_check(cfg, Duration::from_secs(10));
        assert_eq!(o.failure, Some(FailureKind::ConnectRefused), "{o:?}");
        assert_eq!(o.detail, Detail::Errno(libc::ECONNREFUSED));
    }

    #[test]
    fn concurrent_checks_never_share_a_port() {
        // With SO_REUSEPORT, sockets bound to port 0 may share a port and steal each other's
        // replies; ours must each get their own.
        let server = StdUdp::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let ports = crate::test_executor::run(move || async move {
            let mut sockets = Vec::new();
            for _ in 0..512 {
                let s = bind_for(addr).unwrap();
                s.connect(addr).await.unwrap();
                sockets.push(s);
            }
            sockets.iter().map(|s| s.local_addr().unwrap().port()).collect::<Vec<_>>()
        });
        let unique: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), ports.len());
    }

    #[test]
    fn oversized_payload_is_refused_at_config_time() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let err = UdpConfig::new(addr, &[0u8; MAX_UDP_PAYLOAD_BYTES + 1]).unwrap_err();
        assert!(err.contains("1233 bytes"), "{err}");
    }
}
