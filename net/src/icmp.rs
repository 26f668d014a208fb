//! The `icmp` pulse: ICMP echo (ping) to an IPv4 or IPv6 address, `count` echoes, success on
//! any reply.
//!
//! What it is for: "is the host up at all" when there is no port to check. What it is not for:
//! path MTU, loss statistics or jitter (one reply is enough).
//!
//! One [`IcmpClient`] per shard, created on the shard's thread, owns one socket per address
//! family for all of the shard's ICMP checks. Which socket is decided once, at creation:
//! 1. a raw socket (`SOCK_RAW`, needs root or `CAP_NET_RAW`), filtered in the kernel to echo
//!    replies only (`ICMP_FILTER`), matching replies by our identifier and sequence;
//! 2. else a ping socket (`SOCK_DGRAM`, `IPPROTO_ICMP`), allowed for groups listed in
//!    `net.ipv4.ping_group_range`; the kernel sets the identifier and hands us only our replies;
//! 3. else every check fails at once with `permission` and a message saying how to grant it;
//!    the check makes no syscall, so a host without the privilege pays nothing per check.
//!
//! How readability is awaited without blocking the shard: glommio has no raw-socket type, but
//! its `UdpSocket` is a thin wrapper over any datagram-style fd (`FromRawFd`) whose `send_to`
//! and `recv_from` are io_uring `sendmsg`/`recvmsg` (after one non-blocking attempt). Those
//! work unchanged on raw and ping ICMP sockets, so the shard awaits replies in the same ring as
//! every other socket: no polling loop, no timer backoff, no extra thread. One reader task per
//! client receives every reply and hands it to the waiting check by sequence number.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::FromRawFd;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;

use crate::deadline::{saturating_us, until, Deadline};
use crate::limits::{ICMP_RECV_READ_BYTES, MAX_ICMP_COUNT, MAX_ICMP_IN_FLIGHT};
use crate::outcome::{Detail, FailureKind, Outcome};
use crate::udp::io_outcome;

/// The payload carried in each echo request (and echoed back). 16 bytes: recognisable in a
/// packet capture, small enough to never fragment.
const PAYLOAD: &[u8; 16] = b"cpra-icmp-probe!";

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
/// `ICMP_FILTER` socket option of raw ICMP sockets (linux/icmp.h), level `SOL_RAW`.
const ICMP_FILTER: libc::c_int = 1;
/// `ICMP6_FILTER` socket option of raw ICMPv6 sockets (linux/icmpv6.h), level IPPROTO_ICMPV6.
const ICMP6_FILTER: libc::c_int = 1;

/// What every check returns when neither socket is allowed.
pub const PERMISSION_HELP: &str = "ICMP needs a raw socket (run as root, or grant it: \
setcap cap_net_raw+ep /path/to/cpra) or ping sockets for our group \
(sysctl -w net.ipv4.ping_group_range='0 2147483647')";

/// An `icmp` monitor.
#[derive(Clone, Copy, Debug)]
pub struct IcmpConfig {
    pub addr: IpAddr,
    /// Echo requests per attempt, 1..=[`MAX_ICMP_COUNT`]; the check succeeds on the first reply.
    pub count: u8,
    /// The manifest's `retries`: each adds `count` more echoes to the check (a lost echo is
    /// the one failure of a ping that another try can undo), within the same deadline.
    pub retries: u32,
}

impl IcmpConfig {
    pub fn new(addr: IpAddr, count: u8) -> Result<IcmpConfig, String> {
        if count == 0 || count > MAX_ICMP_COUNT {
            return Err(format!("icmp count is {count}; it must be 1 to {MAX_ICMP_COUNT}"));
        }
        Ok(IcmpConfig { addr, count, retries: 0 })
    }

    /// The same check with `retries` (see the field).
    pub fn with_retries(self, retries: u32) -> IcmpConfig {
        IcmpConfig { retries, ..self }
    }

    /// Echo requests one check sends at most: `count` per attempt.
    pub fn echoes(&self) -> u32 {
        u32::from(self.count) * crate::retry::attempts(self.retries)
    }
}

/// Which kind of socket this shard got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpMode {
    Raw,
    Ping,
    /// Neither is permitted; checks fail with `permission`.
    Denied,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Free,
    Waiting(Option<Waker>),
    Replied,
}

#[derive(Default)]
struct Slot {
    seq: u16,
    /// Who the echo went to: a reply from anyone else is not ours (spoofed or stray).
    peer: Option<IpAddr>,
    state: SlotState,
}

struct Shared {
    mode: IcmpMode,
    /// ICMPv6 (echo types 128/129, no IP header on raw receives) rather than ICMP.
    v6: bool,
    /// Our echo identifier (raw mode); ping sockets get theirs from the kernel.
    ident: u16,
    next_seq: Cell<u16>,
    slots: RefCell<Vec<Slot>>,
}

/// One address family's socket, reader task and table of pending echoes.
struct Family {
    shared: Rc<Shared>,
    socket: Option<Rc<UdpSocket>>,
    /// Why checks of this family cannot run, when `socket` is `None`.
    unavailable: (FailureKind, &'static str),
    /// Kept only to cancel the reader when the client is dropped.
    _reader: Option<glommio::Task<()>>,
}

impl Family {
    fn open(v6: bool) -> Family {
        match open_socket(v6) {
            Ok((mode, fd)) => {
                // SAFETY: `fd` is a freshly created socket we own; ownership moves into the
                // glommio socket, which closes it on drop.
                let socket = Rc::new(unsafe { UdpSocket::from_raw_fd(fd) });
                let shared = Rc::new(Shared::new(mode, v6));
                let reader =
                    glommio::spawn_local(read_replies(Rc::clone(&socket), Rc::downgrade(&shared)));
                Family {
                    shared,
                    socket: Some(socket),
                    unavailable: (FailureKind::Permission, PERMISSION_HELP),
                    _reader: Some(reader),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => Family::closed(
                v6,
                (FailureKind::Unsupported, "this host has no IPv6 (address family not supported)"),
            ),
            Err(_) => Family::closed(v6, (FailureKind::Permission, PERMISSION_HELP)),
        }
    }

    fn closed(v6: bool, why: (FailureKind, &'static str)) -> Family {
        Family {
            shared: Rc::new(Shared::new(IcmpMode::Denied, v6)),
            socket: None,
            unavailable: why,
            _reader: None,
        }
    }
}

/// One shard's ICMP sockets (IPv4 and IPv6), reader tasks and tables of pending echoes.
pub struct IcmpClient {
    v4: Family,
    v6: Family,
}

impl IcmpClient {
    /// Opens the shard's ICMP sockets (raw, else ping, else none) and starts their reader
    /// tasks. Call on the shard's thread, inside its executor.
    pub fn new() -> IcmpClient {
        IcmpClient { v4: Family::open(false), v6: Family::open(true) }
    }

    /// A client that fails every check with `permission` (what `new` gives when unprivileged).
    pub fn denied() -> IcmpClient {
        let why = (FailureKind::Permission, PERMISSION_HELP);
        IcmpClient { v4: Family::closed(false, why), v6: Family::closed(true, why) }
    }

    /// The kind of IPv4 socket this shard got.
    pub fn mode(&self) -> IcmpMode {
        self.v4.shared.mode
    }

    /// The kind of IPv6 socket this shard got.
    pub fn mode_v6(&self) -> IcmpMode {
        self.v6.shared.mode
    }

    /// The problem to log once at shard start, if ICMP checks cannot work here.
    pub fn permission_problem(&self) -> Option<&'static str> {
        (self.v4.socket.is_none() && self.v4.unavailable.0 == FailureKind::Permission)
            .then_some(PERMISSION_HELP)
    }

    /// Runs one `icmp` check within `timeout`: up to [`IcmpConfig::echoes`] echoes, each given
    /// an equal share of the time left, stopping at the first reply.
    pub async fn check(&self, cfg: &IcmpConfig, timeout: Duration) -> Outcome {
        let start = Instant::now();
        let deadline = Deadline::new(start, timeout).end();
        let family = if cfg.addr.is_ipv6() { &self.v6 } else { &self.v4 };
        let Some(socket) = family.socket.as_ref() else {
            let (kind, text) = family.unavailable;
            return Outcome::failure(kind, 0, Detail::Text(text));
        };
        let shared = &family.shared;
        debug_assert!(cfg.count >= 1 && cfg.count <= MAX_ICMP_COUNT);
        let echoes = cfg.echoes();
        for sent in 0..echoes {
            let left = deadline.saturating_duration_since(Instant::now());
            let share = left / (echoes - sent);
            let Some(seq) = shared.claim(cfg.addr) else {
                return Outcome::failure(
                    FailureKind::Connection,
                    saturating_us(start.elapsed()),
                    Detail::Text("too many ICMP checks in flight on this shard"),
                );
            };
            let guard = SlotGuard { shared, seq };
            let packet = echo_request(shared.ident, seq, shared.v6);
            let to = SocketAddr::new(cfg.addr, 0);
            let sent_ok = until(deadline, socket.send_to(&packet, to)).await;
            match sent_ok {
                None => break,
                Some(Err(e)) => {
                    return io_outcome(&io::Error::from(e), saturating_us(start.elapsed()))
                }
                Some(Ok(_)) => {}
            }
            let echo_deadline = Instant::now() + share;
            if until(echo_deadline.min(deadline), guard.replied()).await.is_some() {
                return Outcome::success(saturating_us(start.elapsed()));
            }
        }
        Outcome::failure(
            FailureKind::Timeout,
            saturating_us(start.elapsed()),
            Detail::Text("no echo reply"),
        )
    }
}

impl Default for IcmpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    fn new(mode: IcmpMode, v6: bool) -> Shared {
        let mut slots = Vec::with_capacity(MAX_ICMP_IN_FLIGHT);
        slots.resize_with(MAX_ICMP_IN_FLIGHT, Slot::default);
        Shared { mode, v6, ident: echo_ident(), next_seq: Cell::new(0), slots: RefCell::new(slots) }
    }

    /// A sequence number whose slot is free, marked waiting; `None` only when every slot is
    /// in use. A slot still held by a slow echo is skipped (its sequence number with it), so
    /// one long wait cannot make later checks fail while the table has room.
    fn claim(&self, peer: IpAddr) -> Option<u16> {
        let mut slots = self.slots.borrow_mut();
        for _ in 0..MAX_ICMP_IN_FLIGHT {
            let seq = self.next_seq.get();
            self.next_seq.set(seq.wrapping_add(1));
            let slot = &mut slots[usize::from(seq) % MAX_ICMP_IN_FLIGHT];
            if matches!(slot.state, SlotState::Free) {
                *slot = Slot { seq, peer: Some(peer), state: SlotState::Waiting(None) };
                return Some(seq);
            }
        }
        None
    }

    /// Called by the reader for each echo reply it matched to us.
    fn deliver(&self, seq: u16, from: IpAddr) {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[usize::from(seq) % MAX_ICMP_IN_FLIGHT];
        if slot.seq != seq || slot.peer != Some(from) {
            return; // a late reply for a finished check
        }
        match std::mem::replace(&mut slot.state, SlotState::Replied) {
            SlotState::Waiting(Some(waker)) => waker.wake(),
            SlotState::Waiting(None) | SlotState::Replied => {}
            // No check waits on this slot any more: leave it free for the next claim.
            SlotState::Free => slot.state = SlotState::Free,
        }
    }
}

/// Frees the echo's slot however the check ends (reply, timeout, cancellation).
struct SlotGuard<'a> {
    shared: &'a Shared,
    seq: u16,
}

impl SlotGuard<'_> {
    async fn replied(&self) {
        std::future::poll_fn(|cx| {
            let mut slots = self.shared.slots.borrow_mut();
            let slot = &mut slots[usize::from(self.seq) % MAX_ICMP_IN_FLIGHT];
            debug_assert_eq!(slot.seq, self.seq);
            match &mut slot.state {
                SlotState::Replied => Poll::Ready(()),
                SlotState::Waiting(waker) => {
                    *waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                SlotState::Free => unreachable!("slot freed while its check waits"),
            }
        })
        .await
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut slots = self.shared.slots.borrow_mut();
        let slot = &mut slots[usize::from(self.seq) % MAX_ICMP_IN_FLIGHT];
        debug_assert_eq!(slot.seq, self.seq);
        slot.state = SlotState::Free;
    }
}

/// The shard's one receive loop: every echo reply goes to the check waiting on its sequence.
/// Ends when the client is dropped (its task is cancelled) or the socket fails for good.
async fn read_replies(socket: Rc<UdpSocket>, shared: Weak<Shared>) {
    let mut buf = [0u8; ICMP_RECV_READ_BYTES];
    let mut pause_ms = 0u64;
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => {
                pause_ms = 0;
                received
            }
            // An error queued on the socket (an ICMP error for an earlier send) is transient;
            // a socket that keeps failing must not spin the shard, so back off, doubling up to
            // MAX_READ_ERROR_PAUSE_MS, until a receive works again.
            Err(_) => {
                pause_ms = (pause_ms * 2).clamp(1, MAX_READ_ERROR_PAUSE_MS);
                glommio::timer::sleep(Duration::from_millis(pause_ms)).await;
                continue;
            }
        };
        let Some(shared) = shared.upgrade() else { return };
        let raw = shared.mode == IcmpMode::Raw;
        // Raw IPv4 sockets hand us the IP header; IPv6 raw sockets and ping sockets do not.
        if let Some((ident, seq)) = parse_echo_reply(&buf[..n], raw && !shared.v6, shared.v6) {
            // Ping sockets rewrite the identifier and deliver only our own replies.
            if !raw || ident == shared.ident {
                shared.deliver(seq, from.ip());
            }
        }
    }
}

/// Longest pause of the reply reader after repeated receive errors: short enough that replies
/// are read again soon after the socket recovers, long enough that a broken socket costs
/// nothing measurable.
const MAX_READ_ERROR_PAUSE_MS: u64 = 100;

/// Creates the best ICMP (or ICMPv6) socket this process may open.
fn open_socket(v6: bool) -> io::Result<(IcmpMode, libc::c_int)> {
    let (family, protocol) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: socket(2) takes no pointers and touches no memory of ours; a negative result is
    // an error (handled below), anything else is a new descriptor that only we own.
    let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    if raw >= 0 {
        // Only echo replies reach us: without the filter every ICMP packet on the host (our
        // own echo requests on loopback included) would wake the reader.
        let rc = if v6 {
            // icmp6_filter: a set bit blocks that type; block all but echo reply (129).
            let mut filter = [u32::MAX; 8];
            filter[usize::from(ICMP6_ECHO_REPLY >> 5)] &= !(1u32 << (ICMP6_ECHO_REPLY & 31));
            set_filter(raw, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)
        } else {
            // ICMP_FILTER: a set bit blocks that type.
            let filter: u32 = !(1u32 << ICMP_ECHO_REPLY);
            set_filter(raw, libc::SOL_RAW, ICMP_FILTER, &filter)
        };
        debug_assert_eq!(rc, 0, "ICMP filter: {}", io::Error::last_os_error());
        return Ok((IcmpMode::Raw, raw));
    }
    let raw_error = io::Error::last_os_error();
    if raw_error.raw_os_error() == Some(libc::EAFNOSUPPORT) {
        return Err(raw_error);
    }
    // SAFETY: as for the raw socket: no pointers; the result is checked, and a new descriptor
    // is owned by us alone.
    let ping = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, protocol) };
    if ping >= 0 {
        return Ok((IcmpMode::Ping, ping));
    }
    Err(io::Error::last_os_error())
}

fn set_filter<T>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    filter: &T,
) -> libc::c_int {
    // SAFETY: setsockopt(2) reads `size_of::<T>()` bytes from `filter`, a live reference for
    // the whole call, so the read stays inside it; the kernel rejects a bad fd with an error.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            filter as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    }
}

/// An echo request: type 8 (ICMPv6: 128), code 0, checksum, identifier, sequence, then
/// [`PAYLOAD`]. For ICMPv6 the kernel computes the checksum (it covers a pseudo-header with
/// addresses only the kernel knows), overwriting ours.
fn echo_request(ident: u16, seq: u16, v6: bool) -> [u8; 8 + PAYLOAD.len()] {
    let mut packet = [0u8; 8 + PAYLOAD.len()];
    packet[0] = if v6 { ICMP6_ECHO_REQUEST } else { ICMP_ECHO_REQUEST };
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(PAYLOAD);
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The Internet checksum (RFC 1071) over `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The (identifier, sequence) of an echo reply, skipping the IPv4 header that raw IPv4 sockets
/// include; `None` for anything else or anything truncated.
fn parse_echo_reply(packet: &[u8], has_ip_header: bool, v6: bool) -> Option<(u16, u16)> {
    let icmp = if has_ip_header {
        let ihl_bytes = usize::from(packet.first()? & 0x0f) * 4;
        if ihl_bytes < 20 {
            return None;
        }
        packet.get(ihl_bytes..)?
    } else {
        packet
    };
    let header = icmp.get(..8)?;
    let reply_type = if v6 { ICMP6_ECHO_REPLY } else { ICMP_ECHO_REPLY };
    if header[0] != reply_type || header[1] != 0 {
        return None;
    }
    Some((u16::from_be_bytes([header[4], header[5]]), u16::from_be_bytes([header[6], header[7]])))
}

/// This shard's echo identifier: the process id mixed with the executor id, so two shards (or
/// two cpra processes) sharing the host's raw ICMP traffic tell their replies apart.
fn echo_ident() -> u16 {
    let pid = std::process::id();
    let shard = glommio::executor().id() as u32;
    ((pid ^ shard.wrapping_mul(0x9e37_79b9)) & 0xffff) as u16 ^ ((pid >> 16) as u16)
}

/// The loopback address, for tests and self-checks.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    use super::*;

    fn on_shard<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
        f: impl FnOnce() -> F + Send + 'static,
    ) -> T {
        crate::test_executor::run(move || async move { f().await })
    }

    /// Why the loopback tests are ignored by default: an unprivileged runner (CI, a container
    /// without CAP_NET_RAW) may allow neither socket, and a test that passes there without
    /// sending anything proves nothing. Where either is allowed, run them with `--ignored`.
    const NEEDS_SOCKETS: &str = "needs raw or ping sockets";

    #[test]
    #[ignore = "needs raw or ping sockets: run as root, with CAP_NET_RAW, or with \
                net.ipv4.ping_group_range covering your group"]
    fn loopback_answers_concurrent_echoes() {
        let (mode, outcomes) = on_shard(|| async {
            let client = Rc::new(IcmpClient::new());
            let cfg = IcmpConfig::new(LOOPBACK, 3).unwrap();
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let client = Rc::clone(&client);
                    glommio::spawn_local(async move {
                        client.check(&cfg, Duration::from_secs(10)).await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            (client.mode(), out)
        });
        assert_ne!(mode, IcmpMode::Denied, "{NEEDS_SOCKETS}: {PERMISSION_HELP}");
        eprintln!("icmp mode: {mode:?}");
        for o in outcomes {
            assert!(o.is_success(), "{o:?}");
        }
    }

    #[test]
    fn denied_client_fails_with_permission_and_help() {
        let (o, o6, problem) = on_shard(|| async {
            let client = IcmpClient::denied();
            let cfg = IcmpConfig::new(LOOPBACK, 1).unwrap();
            let cfg6 = IcmpConfig::new("::1".parse().unwrap(), 1).unwrap();
            (
                client.check(&cfg, Duration::from_secs(1)).await,
                client.check(&cfg6, Duration::from_secs(1)).await,
                client.permission_problem(),
            )
        });
        assert_eq!(o.failure, Some(FailureKind::Permission));
        assert_eq!(o6.failure, Some(FailureKind::Permission));
        let text = o.describe("127.0.0.1");
        assert!(
            text.contains("setcap cap_net_raw+ep") && text.contains("ping_group_range"),
            "{text}"
        );
        assert_eq!(problem, Some(PERMISSION_HELP));
    }

    #[test]
    #[ignore = "needs raw or ping sockets and an IPv6 loopback: run as root, with \
                CAP_NET_RAW, or with net.ipv4.ping_group_range covering your group"]
    fn ipv6_loopback_answers() {
        let (mode, o) = on_shard(|| async {
            let client = IcmpClient::new();
            let cfg = IcmpConfig::new("::1".parse().unwrap(), 2).unwrap();
            let o = client.check(&cfg, Duration::from_secs(10)).await;
            (client.mode_v6(), o)
        });
        assert_ne!(mode, IcmpMode::Denied, "{NEEDS_SOCKETS} for IPv6: {o:?}");
        eprintln!("icmpv6 mode: {mode:?}");
        assert!(o.is_success(), "{o:?}");
    }

    #[test]
    fn replies_reach_only_the_echo_waiting_for_them() {
        let (stale_free, claimed_after) = on_shard(|| async {
            let shared = Shared::new(IcmpMode::Raw, false);
            let seq = shared.claim(LOOPBACK).unwrap();
            // A reply for a sequence nobody waits on changes nothing, nor one from elsewhere.
            shared.deliver(seq.wrapping_add(1), LOOPBACK);
            shared.deliver(seq, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
            let idx = usize::from(seq) % MAX_ICMP_IN_FLIGHT;
            assert!(matches!(shared.slots.borrow()[idx].state, SlotState::Waiting(_)));
            let guard = SlotGuard { shared: &shared, seq };
            shared.deliver(seq, LOOPBACK);
            // Already replied: the wait ends at once.
            guard.replied().await;
            drop(guard);
            // A duplicate or late reply after the check ended leaves the slot free.
            shared.deliver(seq, LOOPBACK);
            let stale_free = matches!(shared.slots.borrow()[idx].state, SlotState::Free);
            // The table wraps: MAX_ICMP_IN_FLIGHT more claims reuse the freed slot.
            let mut claimed = 0;
            for _ in 0..MAX_ICMP_IN_FLIGHT {
                if shared.claim(LOOPBACK).is_some() {
                    claimed += 1;
                }
            }
            (stale_free, claimed)
        });
        assert!(stale_free);
        assert_eq!(claimed_after, MAX_ICMP_IN_FLIGHT);
    }

    #[test]
    fn each_retry_adds_count_echoes_up_to_the_attempt_bound() {
        let cfg = IcmpConfig::new(Ipv4Addr::LOCALHOST.into(), 3).unwrap();
        assert_eq!(cfg.echoes(), 3);
        assert_eq!(cfg.with_retries(1).echoes(), 6);
        let most = u32::from(MAX_ICMP_COUNT) * crate::limits::MAX_ATTEMPTS;
        let cfg = IcmpConfig::new(Ipv4Addr::LOCALHOST.into(), MAX_ICMP_COUNT).unwrap();
        assert_eq!(cfg.with_retries(u32::MAX).echoes(), most);
    }

    #[test]
    fn count_is_bounded_at_config_time() {
        assert!(IcmpConfig::new(LOOPBACK, 0).is_err());
        assert!(IcmpConfig::new(LOOPBACK, MAX_ICMP_COUNT + 1)
            .unwrap_err()
            .contains(&format!("1 to {MAX_ICMP_COUNT}")));
    }

    #[test]
    fn echo_request_checksums_to_zero_and_parses_back() {
        let packet = echo_request(0x1234, 7, false);
        // A correct checksum makes the sum over the whole packet 0xffff, i.e. checksum() == 0.
        assert_eq!(checksum(&packet), 0);
        // Turn it into a reply as the peer would, behind a 20-byte IPv4 header.
        let mut reply = packet;
        reply[0] = ICMP_ECHO_REPLY;
        let mut with_ip = vec![0x45u8];
        with_ip.extend_from_slice(&[0; 19]);
        with_ip.extend_from_slice(&reply);
        assert_eq!(parse_echo_reply(&with_ip, true, false), Some((0x1234, 7)));
        assert_eq!(parse_echo_reply(&reply, false, false), Some((0x1234, 7)));
        // Requests, truncated packets and bad header lengths are not replies.
        assert_eq!(parse_echo_reply(&packet, false, false), None);
        assert_eq!(parse_echo_reply(&with_ip[..25], true, false), None);
        assert_eq!(parse_echo_reply(&[0x41, 0, 0], true, false), None);
        assert_eq!(parse_echo_reply(&[], true, false), None);
        // ICMPv6: type 129 is the reply, an ICMPv4 reply is not one.
        let mut v6_reply = echo_request(0x1234, 9, true);
        assert_eq!(v6_reply[0], ICMP6_ECHO_REQUEST);
        v6_reply[0] = ICMP6_ECHO_REPLY;
        assert_eq!(parse_echo_reply(&v6_reply, false, true), Some((0x1234, 9)));
        assert_eq!(parse_echo_reply(&reply, false, true), None);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the sum of these bytes is 0xddf2 (one's complement 0x220d).
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
        assert_eq!(checksum(&[0xff]), !0xff00u16);
    }
}
