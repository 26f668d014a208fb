//! Host-name resolution off the shards: a few resolver threads (4 by default) doing blocking
//! `getaddrinfo`, fed through one bounded queue, answering each shard through a reply slot that
//! wakes the waiting tasks; each shard keeps its own TTL cache, so a cached name never leaves
//! the shard, and merges concurrent misses for one name into one lookup.
//!
//! What it is for: turning the names in monitors (`api.example.com`) into the `IpAddr` every
//! probe config holds, without ever blocking a shard thread (glommio's own
//! `TcpStream::connect(name)` resolves on the calling thread and would stall every monitor on
//! the shard). What it is not for: DNS *checks* (that is `dns.rs`, which speaks the wire
//! protocol to a chosen server), nor honouring record TTLs: `getaddrinfo` does not report them,
//! so the cache uses one configured TTL for answers and a shorter one for failures.
//!
//! Shape: [`Resolver`] owns the threads and is shared (`Send + Sync`, cheap to clone);
//! each shard calls [`Resolver::shard_client`] once on its own thread and keeps the
//! [`ShardResolver`] (not `Send`), whose cache is touched only by that shard.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::limits::{
    MAX_HOST_NAME_BYTES, MAX_RESOLVER_THREADS, MAX_WAITERS_PER_LOOKUP,
    RESOLVER_CACHE_CAPACITY_PER_SHARD, RESOLVER_QUEUE_CAPACITY,
};
use crate::outcome::{is_local_resource_errno, Detail, FailureKind, Outcome};

/// How long the resolver thread sleeps when idle before checking for shutdown. It is woken
/// immediately by `unpark` when work arrives, so this only bounds shutdown latency.
const IDLE_PARK: Duration = Duration::from_millis(200);

/// Settings for the resolver and its caches.
#[derive(Clone, Copy, Debug)]
pub struct ResolverConfig {
    /// How long a successful answer is reused. `getaddrinfo` gives no TTL, so this is the
    /// policy; 60 s keeps a fleet of a million checks from re-resolving on every check while
    /// still following a DNS change within a minute.
    pub ttl: Duration,
    /// How long a failure (unknown name, resolver error) is reused. Short, so a fixed typo or
    /// a recovered DNS server is noticed quickly, but long enough that a broken name checked
    /// every second does not hammer the system resolver.
    pub negative_ttl: Duration,
    /// Resolver threads, 1..=[`MAX_RESOLVER_THREADS`]. More than one, so that a name whose
    /// DNS server is dead (getaddrinfo then blocks for its whole retry schedule, 10 s or more)
    /// does not hold up every other lookup behind it.
    pub threads: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            threads: 4,
        }
    }
}

/// Why a name did not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The request queue to the resolver thread was full.
    Overloaded,
    /// The name does not exist, or has no address.
    NotFound,
    /// The system resolver failed for another reason (no network, server failure).
    Failed,
    /// The deadline passed while waiting for the resolver thread.
    Timeout,
    /// The name is empty or longer than [`MAX_HOST_NAME_BYTES`].
    InvalidName,
    /// The resolver thread has stopped.
    Stopped,
    /// The system resolver ran out of a local resource (no file descriptor for its socket, no
    /// memory): nothing about the name. Not cached; the check is delayed, never failed.
    LocalResource,
}

impl ResolveError {
    /// The failed check this error turns into: always `dns`, with a message saying which case.
    pub const fn to_outcome(self, latency_us: u32) -> Outcome {
        let text = match self {
            ResolveError::Overloaded => "resolver overloaded (request queue full)",
            ResolveError::NotFound => "name not found",
            ResolveError::Failed => "system resolver failed",
            ResolveError::Timeout => "no answer from the resolver within the timeout",
            ResolveError::InvalidName => {
                let detail = Detail::SizeText(
                    "invalid host name: empty or longer than",
                    MAX_HOST_NAME_BYTES as u32,
                );
                return Outcome::failure(FailureKind::Dns, latency_us, detail);
            }
            ResolveError::Stopped => "resolver thread stopped",
            ResolveError::LocalResource => {
                let text = Detail::Text("the system resolver had no descriptor or memory");
                return Outcome::failure(FailureKind::LocalResource, latency_us, text);
            }
        };
        Outcome::failure(FailureKind::Dns, latency_us, Detail::Text(text))
    }
}

type Answer = Result<IpAddr, ResolveError>;

/// Where a resolver thread leaves one answer and wakes every shard task waiting for it (all
/// the checks on one shard that missed the cache for the same name share one lookup).
/// A `Mutex` is fine here: it is held for a few instructions, contended only by one resolver
/// thread, and only on cache misses (never on the per-check fast path).
#[derive(Default)]
struct ReplySlot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    answer: Option<Answer>,
    /// Tasks to wake; at most [`MAX_WAITERS_PER_LOOKUP`].
    wakers: Vec<Waker>,
}

impl ReplySlot {
    fn fulfil(&self, answer: Answer) {
        let wakers = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.answer = Some(answer);
            std::mem::take(&mut state.wakers)
        };
        // glommio accepts wakes from foreign threads: it queues the waker on the owning
        // executor's notifier and wakes its reactor.
        for waker in wakers {
            waker.wake();
        }
    }

    fn answer(&self) -> Option<Answer> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).answer
    }

    fn answered(&self) -> bool {
        self.answer().is_some()
    }
}

/// The future a shard task awaits for one answer.
struct AwaitReply(Arc<ReplySlot>);

impl Future for AwaitReply {
    type Output = Answer;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = state.answer {
            return Poll::Ready(answer);
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            if state.wakers.len() >= MAX_WAITERS_PER_LOOKUP {
                return Poll::Ready(Err(ResolveError::Overloaded));
            }
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

struct Request {
    host: Box<str>,
    reply: Arc<ReplySlot>,
}

struct Shared {
    queue: ArrayQueue<Request>,
    stop: AtomicBool,
    /// Calls to the system resolver so far (observability, and tests prove cache hits).
    lookups: AtomicU64,
    config: ResolverConfig,
}

/// The resolver threads and their queue; clone it to hand to each shard.
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Shared>,
    /// The resolver threads, to `unpark` them when a request is queued.
    workers: Arc<[thread::Thread]>,
    /// Held only so that the threads are stopped and joined when the last clone is dropped.
    _threads: Arc<ThreadGuard>,
}

/// Stops and joins the resolver threads when the last `Resolver` clone goes away.
struct ThreadGuard {
    shared: Arc<Shared>,
    handles: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl ThreadGuard {
    fn stop_and_join(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl Resolver {
    /// Starts the resolver threads (named `cpra-resolver`).
    pub fn start(config: ResolverConfig) -> io::Result<Resolver> {
        assert!(config.negative_ttl <= config.ttl, "negative TTL longer than positive TTL");
        assert!(
            (1..=MAX_RESOLVER_THREADS).contains(&config.threads),
            "resolver threads out of range"
        );
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(RESOLVER_QUEUE_CAPACITY),
            stop: AtomicBool::new(false),
            lookups: AtomicU64::new(0),
            config,
        });
        let mut handles = Vec::with_capacity(config.threads);
        for _ in 0..config.threads {
            let state = Arc::clone(&shared);
            let spawned =
                thread::Builder::new().name("cpra-resolver".into()).spawn(move || run(&state));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    ThreadGuard { shared: Arc::clone(&shared), handles: Mutex::new(handles) }
                        .stop_and_join();
                    return Err(e);
                }
            }
        }
        let workers: Arc<[thread::Thread]> = handles.iter().map(|h| h.thread().clone()).collect();
        let threads =
            Arc::new(ThreadGuard { shared: Arc::clone(&shared), handles: Mutex::new(handles) });
        Ok(Resolver { shared, workers, _threads: threads })
    }

    /// How many times the resolver threads have called the system resolver.
    pub fn lookups(&self) -> u64 {
        self.shared.lookups.load(Ordering::Relaxed)
    }

    /// A per-shard client with its own cache. Call once per shard, on the shard's thread.
    pub fn shard_client(&self) -> ShardResolver {
        ShardResolver {
            resolver: self.clone(),
            cache: RefCell::new(DnsCache::new(RESOLVER_CACHE_CAPACITY_PER_SHARD)),
            inflight: RefCell::new(HashMap::new()),
        }
    }

    fn submit(&self, host: &str) -> Result<Arc<ReplySlot>, ResolveError> {
        if self.shared.stop.load(Ordering::Acquire) {
            return Err(ResolveError::Stopped);
        }
        let reply = Arc::new(ReplySlot::default());
        let request = Request { host: host.into(), reply: Arc::clone(&reply) };
        self.shared.queue.push(request).map_err(|_| ResolveError::Overloaded)?;
        // `unpark` is a futex wake: a syscall that never blocks the caller. Wake them all:
        // misses are rare, and an idle thread takes the request at once.
        for worker in self.workers.iter() {
            worker.unpark();
        }
        Ok(reply)
    }
}

fn run(shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        match shared.queue.pop() {
            Some(request) => {
                shared.lookups.fetch_add(1, Ordering::Relaxed);
                request.reply.fulfil(lookup(&request.host));
            }
            None => thread::park_timeout(IDLE_PARK),
        }
    }
    // Answer whoever is still waiting, so no shard task waits for its full timeout.
    while let Some(request) = shared.queue.pop() {
        request.reply.fulfil(Err(ResolveError::Stopped));
    }
}

/// One blocking lookup on the resolver thread, with `getaddrinfo(3)` called directly: std's
/// `ToSocketAddrs` folds its error codes into one error kind, and we need to tell "no such
/// name" (cached, reported as such) from "the resolver failed" (transient). Prefers IPv4:
/// loopback and most monitored services answer on it, and a v6 address on a host without v6
/// routing would fail every check.
fn lookup(host: &str) -> Answer {
    let Ok(c_host) = std::ffi::CString::new(host) else {
        return Err(ResolveError::InvalidName);
    };
    // SAFETY: addrinfo is integers and raw pointers, for which all-zero bytes are valid (null
    // pointers); zero is also getaddrinfo's "no hint" for every field we do not set.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    // One entry per address instead of one per socket type.
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `c_host` is a NUL-terminated string alive for the call, the service may be null,
    // and `hints` and `list` are live locals the call reads and writes.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if rc != 0 {
        // errno is this thread's, set by the failed call: read before anything else runs.
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(classify_gai_error(rc, errno));
    }
    let mut first = None;
    let mut v4 = None;
    let mut node = list;
    while !node.is_null() && v4.is_none() {
        // SAFETY: `node` is an element of the list getaddrinfo returned, not yet freed.
        let info = unsafe { &*node };
        // SAFETY: sockaddr_ip's contract: getaddrinfo sets `ai_addr` to an address of the
        // family `ai_family` names (POSIX), and the list is not freed until after the loop.
        let ip = unsafe { sockaddr_ip(info) };
        if let Some(ip) = ip {
            if ip.is_ipv4() {
                v4 = Some(ip);
            }
            first.get_or_insert(ip);
        }
        node = info.ai_next;
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    v4.or(first).ok_or(ResolveError::NotFound)
}

/// glibc's "name has no address of the requested family" (netdb.h, `__USE_GNU`); the libc
/// crate does not export it for linux-gnu.
const EAI_NODATA_GLIBC: libc::c_int = -5;

/// Which `ResolveError` a `getaddrinfo` error code means. Pure.
/// `errno` matters only for `EAI_SYSTEM` (a system call failed, e.g. no descriptor for the
/// resolver's socket).
fn classify_gai_error(code: libc::c_int, errno: i32) -> ResolveError {
    match code {
        libc::EAI_NONAME | EAI_NODATA_GLIBC => ResolveError::NotFound,
        libc::EAI_MEMORY => ResolveError::LocalResource,
        libc::EAI_SYSTEM if is_local_resource_errno(errno) => ResolveError::LocalResource,
        _ => ResolveError::Failed,
    }
}

/// The IP address in one `addrinfo` entry, for IPv4 and IPv6 entries.
///
/// # Safety
/// `info.ai_addr` must point to a socket address of the family `info.ai_family` says.
unsafe fn sockaddr_ip(info: &libc::addrinfo) -> Option<IpAddr> {
    if info.ai_addr.is_null() {
        return None;
    }
    match info.ai_family {
        libc::AF_INET => {
            // SAFETY: not null (checked above), and by the caller's contract it points to an
            // AF_INET address, i.e. a `sockaddr_in` that getaddrinfo allocated and aligned.
            let sin = unsafe { &*(info.ai_addr as *const libc::sockaddr_in) };
            Some(IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: as for AF_INET: an AF_INET6 entry's address is a `sockaddr_in6`.
            let sin6 = unsafe { &*(info.ai_addr as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// A per-shard cache of answers with expiry times; time comes in from the caller so the
/// expiry rules are testable with a virtual clock.
pub struct DnsCache {
    entries: HashMap<Box<str>, CacheEntry>,
    capacity: usize,
}

#[derive(Clone, Copy, Debug)]
struct CacheEntry {
    answer: Answer,
    expires: Instant,
}

impl DnsCache {
    pub fn new(capacity: usize) -> DnsCache {
        assert!(capacity > 0);
        DnsCache { entries: HashMap::with_capacity(capacity.min(1024)), capacity }
    }

    /// The cached answer for `host` if it has not expired at `now`.
    pub fn get(&self, host: &str, now: Instant) -> Option<Result<IpAddr, ResolveError>> {
        self.entries.get(host).filter(|e| now < e.expires).map(|e| e.answer)
    }

    /// Records an answer, evicting to stay within capacity.
    pub fn insert(&mut self, host: &str, answer: Answer, now: Instant, config: &ResolverConfig) {
        let ttl = if answer.is_ok() { config.ttl } else { config.negative_ttl };
        if !self.entries.contains_key(host) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| now < e.expires);
            if self.entries.len() >= self.capacity {
                let soonest =
                    self.entries.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| k.clone());
                if let Some(key) = soonest {
                    self.entries.remove(&key);
                }
            }
        }
        self.entries.insert(host.into(), CacheEntry { answer, expires: now + ttl });
        debug_assert!(self.entries.len() <= self.capacity);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One shard's view of the resolver: a local cache in front of the shared thread.
pub struct ShardResolver {
    resolver: Resolver,
    cache: RefCell<DnsCache>,
    /// Lookups queued and not yet taken into the cache, by name, so that checks missing the
    /// cache for the same name together wait for one lookup (a TTL expiry on a host with
    /// thousands of monitors would otherwise fill the request queue at once). An entry leaves
    /// when a waiter takes its answer into the cache; an answered entry nobody took (all its
    /// waiters timed out) is stale and replaced by a fresh lookup. Bounded by the distinct
    /// names with a lookup in flight, which the request queue bounds.
    inflight: RefCell<HashMap<Box<str>, Arc<ReplySlot>>>,
}

impl ShardResolver {
    /// Resolves `host` to one address, from the cache when fresh, else through the resolver
    /// thread, waiting at most `timeout`. IP literals are parsed here and never queued.
    /// Transient errors that were not the name's fault (`Overloaded`, `Timeout`, `Stopped`)
    /// are not cached.
    pub async fn resolve(&self, host: &str, timeout: Duration) -> Result<IpAddr, ResolveError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(ip);
        }
        // Bracketed IPv6 literal as written in URLs: `[::1]`.
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if let Ok(ip) = inner.parse::<IpAddr>() {
                return Ok(ip);
            }
        }
        if host.is_empty() || host.len() > MAX_HOST_NAME_BYTES {
            return Err(ResolveError::InvalidName);
        }
        if let Some(answer) = self.cache.borrow().get(host, Instant::now()) {
            return answer;
        }
        // The resolver thread may have answered a lookup whose waiters have not run yet: take
        // that answer rather than submit the same name again.
        if let Some(answer) = self.harvest(host) {
            return answer;
        }
        let slot = self.join_or_submit(host)?;
        let timer = async {
            glommio::timer::sleep(timeout).await;
            Err(ResolveError::Timeout)
        };
        let answer = futures_lite::future::or(AwaitReply(Arc::clone(&slot)), timer).await;
        if slot.answered() {
            let mut inflight = self.inflight.borrow_mut();
            if inflight.get(host).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                inflight.remove(host);
            }
        }
        self.remember(host, answer);
        answer
    }

    /// Caches `answer` unless it was a transient failure not of the name's making.
    fn remember(&self, host: &str, answer: Answer) {
        match answer {
            Ok(_) | Err(ResolveError::NotFound) | Err(ResolveError::Failed) => {
                self.cache.borrow_mut().insert(
                    host,
                    answer,
                    Instant::now(),
                    &self.resolver.shared.config,
                );
            }
            Err(_) => {}
        }
    }

    /// The answer of an in-flight lookup for `host` that has come back, moved into the cache.
    fn harvest(&self, host: &str) -> Option<Answer> {
        let answer = self.inflight.borrow().get(host).and_then(|slot| slot.answer())?;
        self.inflight.borrow_mut().remove(host);
        self.remember(host, answer);
        Some(answer)
    }

    /// The pending lookup for `host`, or a new one.
    fn join_or_submit(&self, host: &str) -> Result<Arc<ReplySlot>, ResolveError> {
        // An answered slot still here (answered since `harvest` looked) resolves at once.
        if let Some(slot) = self.inflight.borrow().get(host) {
            return Ok(Arc::clone(slot));
        }
        let slot = self.resolver.submit(host)?;
        self.inflight.borrow_mut().insert(host.into(), Arc::clone(&slot));
        Ok(slot)
    }

    /// Lookups this shard is waiting for.
    pub fn in_flight(&self) -> usize {
        self.inflight.borrow().len()
    }

    /// Resolves `host` and pairs it with `port`: what a probe config holds.
    pub async fn resolve_socket_addr(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<SocketAddr, ResolveError> {
        self.resolve(host, timeout).await.map(|ip| SocketAddr::new(ip, port))
    }

    /// Names currently cached on this shard.
    pub fn cached(&self) -> usize {
        self.cache.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::rc::Rc;

    fn on_shard<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
    where
        F: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        crate::test_executor::run(move || async move { f().await })
    }

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn resolves_localhost_and_caches_it() {
        let resolver = Resolver::start(ResolverConfig::default()).unwrap();
        let r = resolver.clone();
        let (first, second, cached) = on_shard(move || async move {
            let shard = r.shard_client();
            let first = shard.resolve("localhost", LONG).await;
            let second = shard.resolve("localhost", LONG).await;
            (first, second, shard.cached())
        });
        let ip = first.unwrap();
        assert!(ip.is_loopback(), "{ip}");
        assert_eq!(second, first);
        assert_eq!(cached, 1);
        // The second resolve was a cache hit: one lookup only on the thread.
        assert_eq!(resolver.lookups(), 1);
    }

    #[test]
    fn concurrent_misses_for_one_name_share_one_lookup() {
        let resolver = Resolver::start(ResolverConfig::default()).unwrap();
        let r = resolver.clone();
        let (answers, in_flight) = on_shard(move || async move {
            let shard = Rc::new(r.shard_client());
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let shard = Rc::clone(&shard);
                    glommio::spawn_local(async move { shard.resolve("localhost", LONG).await })
                })
                .collect();
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await);
            }
            (answers, shard.in_flight())
        });
        assert!(answers.iter().all(|a| a.is_ok_and(|ip| ip.is_loopback())), "{answers:?}");
        assert_eq!(resolver.lookups(), 1);
        assert_eq!(in_flight, 0);
    }

    #[test]
    fn ip_literals_never_reach_the_thread() {
        let resolver = Resolver::start(ResolverConfig::default()).unwrap();
        let r = resolver.clone();
        let (v4, v6) = on_shard(move || async move {
            let shard = r.shard_client();
            (shard.resolve("127.0.0.1", LONG).await, shard.resolve("[::1]", LONG).await)
        });
        assert_eq!(v4, Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(v6, Ok("::1".parse().unwrap()));
        assert_eq!(resolver.lookups(), 0);
    }

    #[test]
    fn unknown_name_is_an_error_and_negatively_cached() {
        let resolver = Resolver::start(ResolverConfig::default()).unwrap();
        let r = resolver.clone();
        let (first, second) = on_shard(move || async move {
            let shard = r.shard_client();
            // `.invalid` is reserved (RFC 2606) and never resolves.
            let first = shard.resolve("no-such-host.invalid", LONG).await;
            let second = shard.resolve("no-such-host.invalid", LONG).await;
            (first, second)
        });
        // NotFound where a DNS server answers; Failed on a host with no DNS server at all.
        assert!(matches!(first, Err(ResolveError::NotFound | ResolveError::Failed)), "{first:?}");
        assert_eq!(second, first);
        assert_eq!(resolver.lookups(), 1);
        let o = first.unwrap_err().to_outcome(5);
        assert_eq!(o.failure, Some(FailureKind::Dns));
    }

    #[test]
    fn bad_names_are_rejected_before_the_queue() {
        let resolver = Resolver::start(ResolverConfig::default()).unwrap();
        let r = resolver.clone();
        let (empty, long) = on_shard(move || async move {
            let shard = r.shard_client();
            (shard.resolve("", LONG).await, shard.resolve(&"a".repeat(300), LONG).await)
        });
        assert_eq!(empty, Err(ResolveError::InvalidName));
        assert_eq!(long, Err(ResolveError::InvalidName));
        assert_eq!(resolver.lookups(), 0);
    }

    #[test]
    fn full_queue_fails_fast_with_overloaded() {
        // A resolver whose thread is already stopped never drains the queue; fill it by hand
        // and check that the next request fails at once instead of blocking.
        let resolver = Resolver::start(ResolverConfig::default()).unwrap();
        let shared = Arc::clone(&resolver.shared);
        // Stop the threads without marking the resolver stopped to the shard side.
        resolver._threads.stop_and_join();
        shared.stop.store(false, Ordering::Release);
        for i in 0..RESOLVER_QUEUE_CAPACITY {
            let host = format!("h{i}.example");
            assert!(resolver.submit(&host).is_ok());
        }
        assert_eq!(resolver.submit("one-more.example").err(), Some(ResolveError::Overloaded));
        let o = ResolveError::Overloaded.to_outcome(0);
        assert!(o.describe("x.example").contains("resolver overloaded"), "{}", o.describe("x"));
    }

    #[test]
    fn gai_error_codes_are_classified() {
        assert_eq!(classify_gai_error(libc::EAI_NONAME, 0), ResolveError::NotFound);
        assert_eq!(classify_gai_error(EAI_NODATA_GLIBC, 0), ResolveError::NotFound);
        assert_eq!(classify_gai_error(libc::EAI_AGAIN, 0), ResolveError::Failed);
        assert_eq!(classify_gai_error(libc::EAI_FAIL, 0), ResolveError::Failed);
        // Out of descriptors or memory: this host's, not the name's; the check is delayed.
        for errno in crate::outcome::tests::LOCAL_ERRNOS {
            assert_eq!(classify_gai_error(libc::EAI_SYSTEM, errno), ResolveError::LocalResource);
        }
        assert_eq!(classify_gai_error(libc::EAI_MEMORY, 0), ResolveError::LocalResource);
        assert_eq!(classify_gai_error(libc::EAI_SYSTEM, libc::EIO), ResolveError::Failed);
        assert!(ResolveError::LocalResource.to_outcome(0).is_local_resource());
    }

    #[test]
    fn cache_expiry_follows_ttls_on_a_virtual_clock() {
        let config = ResolverConfig {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            threads: 4,
        };
        let mut cache = DnsCache::new(2);
        let t0 = Instant::now();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        cache.insert("a", Ok(ip), t0, &config);
        cache.insert("b", Err(ResolveError::NotFound), t0, &config);
        assert_eq!(cache.get("a", t0 + Duration::from_secs(59)), Some(Ok(ip)));
        assert_eq!(cache.get("a", t0 + Duration::from_secs(60)), None);
        assert_eq!(cache.get("b", t0 + Duration::from_secs(4)), Some(Err(ResolveError::NotFound)));
        assert_eq!(cache.get("b", t0 + Duration::from_secs(5)), None);
        // Full: inserting a third name evicts the expired negative entry first.
        cache.insert("c", Ok(ip), t0 + Duration::from_secs(10), &config);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", t0 + Duration::from_secs(10)).is_some());
        assert!(cache.get("c", t0 + Duration::from_secs(10)).is_some());
        // Full with nothing expired: the entry closest to expiry goes.
        cache.insert("d", Ok(ip), t0 + Duration::from_secs(20), &config);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", t0 + Duration::from_secs(20)).is_none());
    }
}
