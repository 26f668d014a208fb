//! The `tcp` pulse: a TCP connect to an already-resolved address succeeds.
//!
//! Also the connect step every TCP-based probe (http, https, tls) shares, so that refused,
//! timed out and unreachable are told apart the same way everywhere.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use glommio::net::TcpStream;

use crate::deadline::{within, Deadline};
use crate::outcome::{is_local_resource_errno, Detail, FailureKind, Outcome};

/// A `tcp` monitor's target, resolved before it reaches the shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    pub addr: SocketAddr,
}

/// A failed step of a check: the kind and the detail an `Outcome` carries.
pub type Failure = (FailureKind, Detail);

/// Connects to `addr` before the deadline. Never resolves a name (`SocketAddr` only), so the
/// shard thread never blocks.
pub async fn connect(addr: SocketAddr, deadline: &Deadline) -> Result<TcpStream, Failure> {
    match within(deadline, connect_unbounded(addr)).await {
        None => Err((FailureKind::ConnectTimeout, Detail::None)),
        Some(result) => result,
    }
}

/// [`connect`] for a caller that already races the whole check against its deadline (the
/// HTTP probe): one timer per check rather than one per step.
pub async fn connect_unbounded(addr: SocketAddr) -> Result<TcpStream, Failure> {
    match TcpStream::connect(addr).await {
        Ok(stream) => {
            // Health requests are one small write; Nagle would only add latency.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Err(err) => Err(classify_connect_error(&io::Error::from(err))),
    }
}

/// Makes closing `stream` send a reset instead of a FIN (`SO_LINGER` with a zero timeout, as
/// HAProxy's `nolinger` does for its health checks). Call it when the check closes first and
/// has nothing more to say or hear.
///
/// Why: the side that closes first with a FIN keeps the connection in TIME_WAIT for 60 s. A
/// prober that closes first thousands of times a second fills its ephemeral ports with
/// TIME_WAIT entries (14 000 seen in the tcp benchmark), and every new connect then searches
/// that table for a free port (12 % of the CPU in the kernel's `__inet_hash_connect`). A reset
/// leaves no TIME_WAIT on either side. What is lost is only what TIME_WAIT protects: a late
/// duplicate segment of this connection reaching a new one on the same ports, which cannot
/// matter to a connection that carried at most one request.
pub fn reset_on_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from `&linger`, a live local of
    // exactly that type; the fd is the stream's open socket, borrowed for the call. A failure
    // leaves the ordinary close (a FIN), which is still correct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Maps a connect error to the failure kind operators see.
pub fn classify_connect_error(err: &io::Error) -> Failure {
    match err.raw_os_error() {
        Some(errno) if is_local_resource_errno(errno) => {
            (FailureKind::LocalResource, Detail::Errno(errno))
        }
        Some(libc::ECONNREFUSED) => {
            (FailureKind::ConnectRefused, Detail::Errno(libc::ECONNREFUSED))
        }
        Some(errno @ (libc::ETIMEDOUT | libc::ECANCELED)) => {
            (FailureKind::ConnectTimeout, Detail::Errno(errno))
        }
        Some(errno) => (FailureKind::Connection, Detail::Errno(errno)),
        None if err.kind() == io::ErrorKind::TimedOut => {
            (FailureKind::ConnectTimeout, Detail::None)
        }
        None => (FailureKind::Connection, Detail::Text("connect failed")),
    }
}

/// Runs one `tcp` check: success when the connection is established within `timeout`.
pub async fn check(cfg: &TcpConfig, timeout: Duration) -> Outcome {
    let deadline = Deadline::after(timeout);
    match connect(cfg.addr, &deadline).await {
        Ok(stream) => {
            let latency_us = deadline.elapsed_us();
            reset_on_close(&stream);
            drop(stream);
            Outcome::success(latency_us)
        }
        Err((kind, detail)) => Outcome::failure(kind, deadline.elapsed_us(), detail),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_executor::run;

    #[test]
    fn a_connect_without_a_local_resource_is_not_the_targets_failure() {
        for errno in crate::outcome::tests::LOCAL_ERRNOS {
            let (kind, detail) = classify_connect_error(&io::Error::from_raw_os_error(errno));
            assert_eq!((kind, detail), (FailureKind::LocalResource, Detail::Errno(errno)));
        }
        let (kind, _) = classify_connect_error(&io::Error::from_raw_os_error(libc::EHOSTUNREACH));
        assert_eq!(kind, FailureKind::Connection);
    }

    #[test]
    fn connect_to_a_listener_succeeds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let o =
            run(move || async move { check(&TcpConfig { addr }, Duration::from_secs(2)).await });
        assert!(o.is_success(), "{o:?}");
        drop(listener);
    }

    /// Whether the peer of the connection `listener` accepts next ends it with a reset (read
    /// fails with ECONNRESET) rather than a FIN (read returns 0).
    pub(crate) fn peer_resets(listener: &std::net::TcpListener) -> bool {
        use std::io::Read;
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return false,
                Ok(_) => continue,
                Err(e) => return e.kind() == io::ErrorKind::ConnectionReset,
            }
        }
    }

    #[test]
    fn a_connect_check_ends_with_a_reset_not_a_time_wait() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let o =
            run(move || async move { check(&TcpConfig { addr }, Duration::from_secs(2)).await });
        assert!(o.is_success(), "{o:?}");
        assert!(peer_resets(&listener), "the check closed with a FIN (TIME_WAIT on our side)");
    }

    #[test]
    fn closed_port_is_refused_with_errno() {
        let (addr, _held) = crate::test_server::refused();
        let o =
            run(move || async move { check(&TcpConfig { addr }, Duration::from_secs(2)).await });
        assert_eq!(o.failure, Some(FailureKind::ConnectRefused), "{o:?}");
        assert_eq!(o.detail, Detail::Errno(libc::ECONNREFUSED));
    }

    #[test]
    fn full_backlog_times_out_as_connect_timeout() {
        // A listener with backlog 0 that never accepts: once its queue is full the kernel drops
        // further SYNs, so the connect hangs until our deadline.
        let listener = socket_with_backlog_0();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                fillers.push(s);
            }
        }
        let o = run(
            move || async move { check(&TcpConfig { addr }, Duration::from_millis(300)).await },
        );
        assert_eq!(o.failure, Some(FailureKind::ConnectTimeout), "{o:?}");
        drop(listener);
    }

    /// A TCP target that refuses (bound, not listening: the kernel answers RST) until
    /// `listen` is called on it.
    struct LateListener(std::net::TcpListener);

    impl LateListener {
        fn new() -> Self {
            LateListener(bound_socket(None))
        }

        fn addr(&self) -> SocketAddr {
            self.0.local_addr().unwrap()
        }

        fn listen(&self) {
            use std::os::fd::AsRawFd;
            // SAFETY: listen(2) takes no pointers; the fd is a bound stream socket we own.
            assert_eq!(unsafe { libc::listen(self.0.as_raw_fd(), 16) }, 0);
        }
    }

    /// A check of a target that refuses the first connection and accepts from the second
    /// attempt on: it starts listening as the retry begins (the kernel, not the target
    /// process, refuses a connection, so only the check's own loop can say when that is).
    fn refused_once(retries: u32) -> Outcome {
        let target = LateListener::new();
        let addr = target.addr();
        let (o, target) = run(move || async move {
            let made = std::cell::Cell::new(0u32);
            let cfg = TcpConfig { addr };
            let o = crate::retry::with_retries(retries, Duration::from_secs(2), |t| {
                made.set(made.get() + 1);
                if made.get() == 2 {
                    target.listen();
                }
                check(&cfg, t)
            })
            .await;
            (o, target)
        });
        drop(target);
        o
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        let o = refused_once(0);
        assert_eq!(o.failure, Some(FailureKind::ConnectRefused), "{o:?}");
        let o = refused_once(1);
        assert!(o.is_success(), "{o:?}");
    }

    fn socket_with_backlog_0() -> std::net::TcpListener {
        bound_socket(Some(0))
    }

    /// A TCP socket bound to a free port of 127.0.0.1, listening with `backlog` if given.
    fn bound_socket(backlog: Option<i32>) -> std::net::TcpListener {
        use std::os::fd::FromRawFd;
        // SAFETY: socket/bind/listen take no pointers but `sa`, a live, all-zero-initialised
        // (valid for this plain-integer struct) `sockaddr_in` whose exact size is passed. The
        // fd is checked valid and is owned by nothing else, so `TcpListener` becomes its one
        // owner.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            let rc = libc::bind(
                fd,
                &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(rc, 0);
            if let Some(backlog) = backlog {
                assert_eq!(libc::listen(fd, backlog), 0);
            }
            std::net::TcpListener::from_raw_fd(fd)
        }
    }
}
