//! The `http` and `https` pulses: one HTTP/1.1 exchange (or a few retries) inside one deadline.
//!
//! What it is for: a health check. The request is rendered once per compiled config
//! ([`HttpConfig::compile`]) or, for a plain `http://` check, per check into a reused buffer
//! ([`HttpClient::check_plain`], so a shard keeps nothing per such monitor), by one function
//! for both. A check writes it, parses the response head with httparse, reads the body only
//! when an assertion needs it (at most [`MAX_BODY_BYTES`]) or a kept-alive connection must be
//! drained, and closes otherwise. Each shard owns one [`HttpClient`]: its reusable buffers and
//! its keep-alive pool (one connection per target). What it is not for: redirects, compression,
//! HTTP/2, cookies; a health endpoint needs none of them.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustc_hash::FxHashMap;
use rustls::client::ClientSessionMemoryCache;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::conn::Conn;
use crate::deadline::{retry_pause, saturating_us, until_from, Deadline};
use crate::http_response::{
    check_headers, dechunk, parse_head, status_ok, status_retryable, ExpectedHeader, Framing,
    HeadError,
};
use crate::limits::{
    Size, MAX_ATTEMPTS, MAX_BODY_BYTES, MAX_HEADERS, MAX_HEADER_BLOCK_BYTES,
    MAX_KEPT_REQUEST_BYTES, MAX_POOLED_CONNECTIONS, MAX_REQUEST_BYTES, MAX_SPARE_BUFFERS,
    REQUEST_BUFFER_BYTES,
};
use crate::outcome::{Detail, FailureKind, Outcome, Warning};
use crate::tcp::{self, Failure};
use crate::tls::{self, TlsConfigError, TlsOptions};
// Message starts shared with the unix-socket client, so both say the same about a bound.
use crate::unix_http::{HEAD_TOO_LARGE, TOO_MANY_HEADERS};

/// One check's buffer: the head, then the body right after it.
const CHECK_BUFFER_BYTES: usize = MAX_HEADER_BLOCK_BYTES + MAX_BODY_BYTES;

// The bounds as the `u32`s an `Outcome`'s detail carries (the bounds are far below u32::MAX).
const HEAD_BOUND: u32 = MAX_HEADER_BLOCK_BYTES as u32;
const BODY_BOUND: u32 = MAX_BODY_BYTES as u32;
const HEADERS_BOUND: u32 = MAX_HEADERS as u32;

/// What the manifest says about an `http`/`https` monitor, with its target already resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSpec {
    pub addr: SocketAddr,
    /// The host name: `Host` header and, with TLS, SNI and the name the certificate must match.
    pub host: String,
    /// `https`.
    pub tls: bool,
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Accepted statuses; empty means any 2xx.
    pub expected_status: Vec<u16>,
    pub body_contains: Option<String>,
    pub body_regex: Option<String>,
    /// `expected_headers`: name and exact value or `/regex/` (see [`ExpectedHeader`]).
    pub expected_headers: Vec<(String, String)>,
    pub max_response_time: Option<Duration>,
    pub keep_alive: bool,
    pub cert_warn_days: Option<i32>,
    pub tls_options: TlsOptions,
    /// Retries after the first attempt (GET/HEAD/OPTIONS only); capped by `MAX_ATTEMPTS`.
    pub retries: u32,
}

impl HttpSpec {
    /// A plain `GET /` spec with the defaults of the manifest (no retries: one attempt, as in
    /// the Go CPRA).
    pub fn get(addr: SocketAddr, host: &str, path: &str) -> Self {
        HttpSpec {
            addr,
            host: host.to_owned(),
            tls: false,
            method: "GET".to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            expected_status: Vec::new(),
            body_contains: None,
            body_regex: None,
            expected_headers: Vec::new(),
            max_response_time: None,
            keep_alive: false,
            cert_warn_days: None,
            tls_options: TlsOptions::default(),
            retries: 0,
        }
    }
}

/// A configuration error found at load, written for the person who wrote the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfigError(pub String);

impl fmt::Display for HttpConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpConfigError {}

impl From<TlsConfigError> for HttpConfigError {
    fn from(e: TlsConfigError) -> Self {
        HttpConfigError(e.0)
    }
}

/// Identifies "the same target" for the keep-alive pool: address, scheme and host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    addr: SocketAddr,
    tls: bool,
    host_hash: u64,
}

#[derive(Clone, Debug)]
struct TlsTarget {
    /// Resumes sessions from `sessions` (see [`tls::FULL_TLS_HANDSHAKE_EVERY`]).
    config: Arc<ClientConfig>,
    /// Resumes a session whose full handshake was TLS 1.2 ([`tls::resuming_client_configs`]).
    config_tls12: Arc<ClientConfig>,
    sessions: Arc<ClientSessionMemoryCache>,
    name: ServerName<'static>,
    /// When this monitor last made a full handshake (a check of the certificate). A `Cell`:
    /// a compiled monitor is used by its own shard only.
    last_full_handshake: Cell<Option<Instant>>,
    /// The certificate's days left as that full handshake read them; resumed handshakes
    /// report these rather than parse the same certificate again.
    full_handshake_days_left: Cell<Option<i32>>,
    /// That full handshake was TLS 1.2.
    full_handshake_tls12: Cell<bool>,
}

/// A compiled `http`/`https` monitor: everything a check needs. [`HttpConfig::compile`] makes
/// an owned one (`'static`), kept while its address holds; [`HttpConfig::plain`] one borrowing
/// the monitor's config and a request buffer, made per check.
#[derive(Clone, Debug)]
pub struct HttpConfig<'a> {
    addr: SocketAddr,
    request: Cow<'a, [u8]>,
    expected_status: Cow<'a, [u16]>,
    /// What few monitors set, apart: a shard holds one config per compiled monitor, so at
    /// a million monitors each byte here is a MB (120 bytes with them apart, 288 inline).
    extras: Option<Box<HttpExtras>>,
    /// Hash of the Host, for the keep-alive pool's key (0 without keep-alive).
    host_hash: u64,
    attempts: u32,
    head_request: bool,
    retryable_method: bool,
    keep_alive: bool,
}

/// The parts of an [`HttpConfig`] a plain check does not set.
#[derive(Clone, Debug, Default)]
struct HttpExtras {
    tls: Option<TlsTarget>,
    /// `body_contains` compiled as an escaped literal regex (a fast substring search).
    body_contains: Option<regex::bytes::Regex>,
    body_regex: Option<regex::bytes::Regex>,
    expected_headers: Box<[ExpectedHeader]>,
    max_response_time: Option<Duration>,
    cert_warn_days: Option<i32>,
}

/// Shares rustls client configs between monitors with the same TLS options (building one
/// copies the root store; a manifest has few distinct option sets). Each option set has a
/// config resuming sessions (https checks) with its session store, and one never resuming
/// (`tls` checks), with the same roots and verifier.
#[derive(Default)]
pub struct TlsConfigCache {
    configs: HashMap<TlsOptions, TlsConfigs>,
    /// The never-resuming config offering ALPN `h2` (grpc over TLS: every handshake checks the
    /// certificate, whose days left the check reports).
    h2: HashMap<TlsOptions, Arc<ClientConfig>>,
}

struct TlsConfigs {
    resuming: Arc<ClientConfig>,
    resuming_tls12: Arc<ClientConfig>,
    sessions: Arc<ClientSessionMemoryCache>,
    full: Arc<ClientConfig>,
}

impl TlsConfigCache {
    fn configs(&mut self, opts: &TlsOptions) -> Result<&TlsConfigs, TlsConfigError> {
        if !self.configs.contains_key(opts) {
            let tls::ResumingConfigs { default: resuming, tls12: resuming_tls12, sessions } =
                tls::resuming_client_configs(opts)?;
            let full = tls::without_resumption(&resuming);
            self.configs
                .insert(opts.clone(), TlsConfigs { resuming, resuming_tls12, sessions, full });
        }
        Ok(&self.configs[opts])
    }

    /// The config that resumes sessions (https checks).
    pub fn get(&mut self, opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
        Ok(self.configs(opts)?.resuming.clone())
    }

    /// The config that never resumes: every handshake checks the certificate (`tls` checks).
    pub fn get_full(&mut self, opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
        Ok(self.configs(opts)?.full.clone())
    }

    /// The config for `opts` offering ALPN `h2`, for grpc over TLS.
    pub fn get_h2(&mut self, opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsConfigError> {
        if let Some(config) = self.h2.get(opts) {
            return Ok(config.clone());
        }
        let config = crate::grpc::h2_client_config(&*self.get_full(opts)?);
        self.h2.insert(opts.clone(), config.clone());
        Ok(config)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// What a request is rendered from, borrowed from an [`HttpSpec`] or a [`PlainHttp`].
struct RequestParts<'s> {
    host: &'s str,
    /// The port the request goes to: named in `Host` unless it is the scheme's default.
    port: u16,
    tls: bool,
    method: &'s str,
    path: &'s str,
    headers: &'s [(String, String)],
    body: Option<&'s [u8]>,
    keep_alive: bool,
}

/// Checks `parts` and renders its request into `out` (cleared first): the one rendering of a
/// request, for compiled and plain configs alike. Allocates only to grow `out` (and to word an
/// error). Errors say which field is wrong.
fn render_request(parts: &RequestParts<'_>, out: &mut Vec<u8>) -> Result<(), HttpConfigError> {
    use std::io::Write;
    let err = |m: String| Err(HttpConfigError(m));
    if !is_token(parts.method) {
        return err(format!("method `{}` is not a valid HTTP method", parts.method));
    }
    if !parts.path.starts_with('/') || !parts.path.bytes().all(|b| b.is_ascii_graphic()) {
        // The path is not repeated: its query may hold a token.
        return err("the path must start with `/` and contain no spaces".to_owned());
    }
    if parts.host.is_empty() || !is_field_value(parts.host) || parts.host.contains(' ') {
        return err(format!("host `{}` is not a valid host name", parts.host));
    }
    out.clear();
    // Writing to a `Vec` cannot fail: the `write!`s below are infallible.
    out.extend(parts.method.bytes().map(|b| b.to_ascii_uppercase()));
    out.push(b' ');
    out.extend_from_slice(parts.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let user_sets = |name: &str| parts.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !user_sets("host") {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(parts.host.as_bytes());
        let default_port = if parts.tls { 443 } else { 80 };
        if parts.port != default_port {
            let _ = write!(out, ":{}", parts.port);
        }
        out.extend_from_slice(b"\r\n");
    }
    if !user_sets("user-agent") {
        out.extend_from_slice(b"User-Agent: cpra\r\n");
    }
    for (name, value) in parts.headers {
        if !is_token(name) || !is_field_value(value) {
            // The value is not repeated: it is often a credential.
            return err(format!("header `{name}` is not a valid HTTP header"));
        }
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("content-length") {
            return err(format!("header `{name}` is set by CPRA (use keep_alive / body instead)"));
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let connection: &[u8] = if parts.keep_alive { b"keep-alive" } else { b"close" };
    out.extend_from_slice(b"Connection: ");
    out.extend_from_slice(connection);
    out.extend_from_slice(b"\r\n");
    if let Some(body) = parts.body {
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    if out.len() > MAX_REQUEST_BYTES {
        return err(format!(
            "request is {} bytes, more than the {} allowed",
            out.len(),
            Size::bytes(MAX_REQUEST_BYTES)
        ));
    }
    Ok(())
}

/// A plain `http://` check, borrowed from a manifest monitor: no TLS, body, body or header
/// assertion, maximum response time or keep-alive; anything else is an [`HttpSpec`] compiled
/// once ([`HttpConfig::compile`]).
#[derive(Clone, Copy, Debug)]
pub struct PlainHttp<'s> {
    pub addr: SocketAddr,
    /// `Host` header.
    pub host: &'s str,
    pub method: &'s str,
    /// Path and query, starting with `/`.
    pub path: &'s str,
    pub headers: &'s [(String, String)],
    /// Accepted statuses; empty means any 2xx.
    pub expected_status: &'s [u16],
    /// Retries after the first attempt, as [`HttpSpec::retries`].
    pub retries: u32,
}

impl HttpConfig<'static> {
    /// Validates `spec` and renders its request. Errors say which field is wrong.
    pub fn compile(
        spec: &HttpSpec,
        tls_cache: &mut TlsConfigCache,
    ) -> Result<Self, HttpConfigError> {
        let err = |m: String| Err(HttpConfigError(m));
        let parts = RequestParts {
            host: &spec.host,
            port: spec.addr.port(),
            tls: spec.tls,
            method: &spec.method,
            path: &spec.path,
            headers: &spec.headers,
            body: spec.body.as_deref(),
            keep_alive: spec.keep_alive,
        };
        let mut request = Vec::with_capacity(256);
        render_request(&parts, &mut request)?;
        let compile_regex = |what: &str, pattern: &str| {
            regex::bytes::Regex::new(pattern)
                .map_err(|e| HttpConfigError(format!("{what} `{pattern}` does not compile: {e}")))
        };
        let body_contains = match &spec.body_contains {
            Some(s) if s.is_empty() => return err("body_contains is empty".to_owned()),
            Some(s) => Some(compile_regex("body_contains", &regex::escape(s))?),
            None => None,
        };
        let body_regex = match &spec.body_regex {
            Some(p) => Some(compile_regex("body_regex", p)?),
            None => None,
        };
        let expected_headers = spec
            .expected_headers
            .iter()
            .map(|(name, value)| ExpectedHeader::compile(name, value).map_err(HttpConfigError))
            .collect::<Result<Box<[_]>, _>>()?;
        check_statuses(&spec.expected_status)?;
        let tls = if spec.tls {
            let configs = tls_cache.configs(&spec.tls_options)?;
            Some(TlsTarget {
                config: configs.resuming.clone(),
                config_tls12: configs.resuming_tls12.clone(),
                sessions: configs.sessions.clone(),
                name: tls::server_name(&spec.host)?,
                last_full_handshake: Cell::new(None),
                full_handshake_days_left: Cell::new(None),
                full_handshake_tls12: Cell::new(false),
            })
        } else {
            None
        };
        let extras = HttpExtras {
            tls,
            body_contains,
            body_regex,
            expected_headers,
            max_response_time: spec.max_response_time,
            cert_warn_days: spec.cert_warn_days,
        };
        let plain = extras.tls.is_none()
            && extras.body_contains.is_none()
            && extras.body_regex.is_none()
            && extras.expected_headers.is_empty()
            && extras.max_response_time.is_none()
            && extras.cert_warn_days.is_none();
        Ok(HttpConfig::assemble(
            &parts,
            spec.addr,
            Cow::Owned(request),
            Cow::Owned(spec.expected_status.clone()),
            (!plain).then(|| Box::new(extras)),
            spec.retries,
        ))
    }
}

/// Each accepted status must be one (100-599).
fn check_statuses(statuses: &[u16]) -> Result<(), HttpConfigError> {
    match statuses.iter().find(|s| !(100..600).contains(*s)) {
        Some(bad) => {
            Err(HttpConfigError(format!("expected_status {bad} is not an HTTP status (100-599)")))
        }
        None => Ok(()),
    }
}

impl<'a> HttpConfig<'a> {
    /// The config of one check of `plain`, its request rendered into `request` (a buffer the
    /// caller reuses: nothing is allocated once it is large enough), borrowing both. The bytes
    /// are those [`HttpConfig::compile`] renders for the same monitor.
    pub fn plain(
        plain: &PlainHttp<'a>,
        request: &'a mut Vec<u8>,
    ) -> Result<HttpConfig<'a>, HttpConfigError> {
        let parts = RequestParts {
            host: plain.host,
            port: plain.addr.port(),
            tls: false,
            method: plain.method,
            path: plain.path,
            headers: plain.headers,
            body: None,
            keep_alive: false,
        };
        render_request(&parts, request)?;
        check_statuses(plain.expected_status)?;
        let request: &'a Vec<u8> = request;
        Ok(HttpConfig::assemble(
            &parts,
            plain.addr,
            Cow::Borrowed(request.as_slice()),
            Cow::Borrowed(plain.expected_status),
            None,
            plain.retries,
        ))
    }

    fn assemble(
        parts: &RequestParts<'_>,
        addr: SocketAddr,
        request: Cow<'a, [u8]>,
        expected_status: Cow<'a, [u16]>,
        extras: Option<Box<HttpExtras>>,
        retries: u32,
    ) -> HttpConfig<'a> {
        // Only a kept-alive connection is pooled (and looked up) by its key.
        let host_hash = if parts.keep_alive {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            parts.host.hash(&mut hasher);
            hasher.finish()
        } else {
            0
        };
        let method = parts.method;
        HttpConfig {
            addr,
            request,
            expected_status,
            extras,
            host_hash,
            attempts: crate::retry::attempts(retries),
            head_request: method.eq_ignore_ascii_case("HEAD"),
            retryable_method: ["GET", "HEAD", "OPTIONS"]
                .iter()
                .any(|m| method.eq_ignore_ascii_case(m)),
            keep_alive: parts.keep_alive,
        }
    }

    fn tls(&self) -> Option<&TlsTarget> {
        self.extras.as_ref().and_then(|e| e.tls.as_ref())
    }

    fn body_contains(&self) -> Option<&regex::bytes::Regex> {
        self.extras.as_ref().and_then(|e| e.body_contains.as_ref())
    }

    fn body_regex(&self) -> Option<&regex::bytes::Regex> {
        self.extras.as_ref().and_then(|e| e.body_regex.as_ref())
    }

    fn expected_headers(&self) -> &[ExpectedHeader] {
        self.extras.as_ref().map_or(&[], |e| &e.expected_headers)
    }

    fn max_response_time(&self) -> Option<Duration> {
        self.extras.as_ref().and_then(|e| e.max_response_time)
    }

    fn cert_warn_days(&self) -> Option<i32> {
        self.extras.as_ref().and_then(|e| e.cert_warn_days)
    }

    fn pool_key(&self) -> PoolKey {
        PoolKey { addr: self.addr, tls: self.tls().is_some(), host_hash: self.host_hash }
    }

    /// The rendered request bytes (for tests and debugging).
    pub fn request_bytes(&self) -> &[u8] {
        &self.request
    }

    fn needs_body(&self) -> bool {
        self.body_contains().is_some() || self.body_regex().is_some()
    }
}

/// Where an attempt was when the deadline hit: decides `ConnectTimeout` vs `Timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connect,
    Handshake,
    Exchange,
}

/// What one attempt ended with, before the latency and warnings are added.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    result: Result<u16, Failure>,
    cert_days_left: Option<i32>,
}

fn io_failure(err: &std::io::Error, what: &'static str) -> Failure {
    match err.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => {
            (FailureKind::Protocol, Detail::Text(what))
        }
        _ => {
            (FailureKind::Connection, err.raw_os_error().map_or(Detail::Text(what), Detail::Errno))
        }
    }
}

/// A shard's HTTP client: reusable buffers and the keep-alive pool. Create one per shard, on
/// the shard's thread; it is not `Send` (the pooled sockets belong to that shard's ring).
#[derive(Default)]
pub struct HttpClient {
    spare_buffers: RefCell<Vec<Box<[u8]>>>,
    /// Request buffers of plain checks ([`check_plain`](Self::check_plain)), rendered into per
    /// check and kept for the next (at most [`MAX_SPARE_BUFFERS`]).
    spare_requests: RefCell<Vec<Vec<u8>>>,
    /// Idle kept-alive connections, with the days left of the certificate seen at handshake.
    /// Fx rather than SipHash: taken from and put back on every keep-alive check, and its keys
    /// come from the operator's manifest (the host already hashed at load), not from peers.
    pool: RefCell<FxHashMap<PoolKey, (Conn, Option<i32>)>>,
}

impl HttpClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// Idle pooled connections now held.
    pub fn pooled_connections(&self) -> usize {
        self.pool.borrow().len()
    }

    fn take_buffer(&self) -> Box<[u8]> {
        self.spare_buffers
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| vec![0u8; CHECK_BUFFER_BYTES].into_boxed_slice())
    }

    fn give_buffer(&self, buf: Box<[u8]>) {
        debug_assert_eq!(buf.len(), CHECK_BUFFER_BYTES);
        let mut spare = self.spare_buffers.borrow_mut();
        if spare.len() < MAX_SPARE_BUFFERS {
            spare.push(buf);
        }
    }

    fn take_request_buffer(&self) -> Vec<u8> {
        self.spare_requests
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(REQUEST_BUFFER_BYTES))
    }

    fn give_request_buffer(&self, buf: Vec<u8>) {
        let mut spare = self.spare_requests.borrow_mut();
        if spare.len() < MAX_SPARE_BUFFERS && buf.capacity() <= MAX_KEPT_REQUEST_BYTES {
            spare.push(buf);
        }
    }

    fn pool_put(&self, key: PoolKey, conn: Conn, cert_days_left: Option<i32>) {
        let mut pool = self.pool.borrow_mut();
        // One per target: a second concurrent connection to the same target is closed. At the
        // total bound the new one is closed rather than evicting (no LRU bookkeeping per check).
        if pool.len() < MAX_POOLED_CONNECTIONS && !pool.contains_key(&key) {
            pool.insert(key, (conn, cert_days_left));
        }
    }

    /// Runs one check of `cfg` within `timeout` (retries and pauses included).
    pub async fn check(&self, cfg: &HttpConfig<'_>, timeout: Duration) -> Outcome {
        self.check_within(cfg, Deadline::after(timeout)).await
    }

    /// A check of `plain` bounded by `deadline` (as [`check_within`](Self::check_within)), its
    /// request rendered into one of this client's request buffers: nothing is kept, and, once
    /// the client has as many buffers as checks in flight, nothing allocated. An error (a field
    /// [`HttpConfig::compile`] would refuse too) comes before any I/O.
    pub async fn check_plain(
        &self,
        plain: &PlainHttp<'_>,
        deadline: Deadline,
    ) -> Result<Outcome, HttpConfigError> {
        let mut request = self.take_request_buffer();
        let outcome = match HttpConfig::plain(plain, &mut request) {
            Ok(cfg) => Ok(self.check_within(&cfg, deadline).await),
            Err(e) => Err(e),
        };
        self.give_request_buffer(request);
        outcome
    }

    /// [`check`](Self::check) bounded by `deadline`, which must start now: a caller that has
    /// just read the clock saves a reading. Its start is the start of the latency measured.
    pub async fn check_within(&self, cfg: &HttpConfig<'_>, deadline: Deadline) -> Outcome {
        // The one clock reading of a check that succeeds at once (the other is its latency).
        let mut now = deadline.start();
        let mut buf = self.take_buffer();
        let mut attempts_left = cfg.attempts;
        debug_assert!((1..=MAX_ATTEMPTS).contains(&attempts_left));
        let outcome = loop {
            attempts_left -= 1;
            let attempt = self.attempt_within(cfg, &deadline, now, &mut buf).await;
            let outcome = finish(cfg, &deadline, attempt);
            let retry = cfg.retryable_method
                && attempts_left > 0
                && match attempt.result {
                    Ok(status) => {
                        status_retryable(status) && outcome.failure == Some(FailureKind::Status)
                    }
                    Err((kind, _)) => matches!(
                        kind,
                        FailureKind::ConnectRefused
                            | FailureKind::Connection
                            | FailureKind::Protocol
                    ),
                };
            if !retry {
                break outcome;
            }
            let pause = retry_pause(deadline.remaining(), attempts_left);
            if pause.is_zero() {
                break outcome;
            }
            glommio::timer::Timer::new(pause).await;
            now = Instant::now();
        };
        self.give_buffer(buf);
        outcome
    }

    async fn attempt_within(
        &self,
        cfg: &HttpConfig<'_>,
        deadline: &Deadline,
        now: Instant,
        buf: &mut [u8],
    ) -> Attempt {
        let phase = Cell::new(Phase::Connect);
        let cert_days = Cell::new(None);
        // Pinned in place and raced by reference: the attempt's future is large (it holds the
        // exchange's state), and moving it into the race costs a memcpy per check.
        let work = std::pin::pin!(self.attempt(cfg, deadline, buf, &phase, &cert_days));
        // The one timer of the attempt: connect, handshake and exchange run unbounded inside it,
        // and `phase` says which one the deadline interrupted.
        match until_from(deadline.end(), now, work).await {
            Some(result) => Attempt { result, cert_days_left: cert_days.get() },
            None => {
                let kind = match phase.get() {
                    Phase::Connect => (FailureKind::ConnectTimeout, Detail::None),
                    Phase::Handshake => tls::HANDSHAKE_TIMEOUT,
                    Phase::Exchange => (FailureKind::Timeout, Detail::None),
                };
                Attempt { result: Err(kind), cert_days_left: cert_days.get() }
            }
        }
    }

    async fn connect(
        &self,
        cfg: &HttpConfig<'_>,
        deadline: &Deadline,
        phase: &Cell<Phase>,
        cert_days: &Cell<Option<i32>>,
    ) -> Result<Conn, Failure> {
        phase.set(Phase::Connect);
        let tcp = tcp::connect_unbounded(cfg.addr).await?;
        match cfg.tls() {
            None => Ok(Conn::Plain(tcp)),
            Some(target) => {
                // Boxed: the rustls handshake state is kilobytes; kept out of every plain
                // check's future (a TLS handshake allocates anyway).
                // The deadline's start stands for "now": one clock read fewer per check.
                let now = deadline.start();
                let full_due = target.last_full_handshake.get().is_none_or(|last| {
                    now.saturating_duration_since(last) >= tls::FULL_TLS_HANDSHAKE_EVERY
                });
                if full_due {
                    // No session to resume: a full handshake, whose tickets (and certificate)
                    // the next checks resume from.
                    tls::forget_sessions(&target.sessions, &target.name);
                }
                phase.set(Phase::Handshake);
                let known_days =
                    if full_due { None } else { target.full_handshake_days_left.get() };
                let tls12_only = !full_due && target.full_handshake_tls12.get();
                let config = if tls12_only { &target.config_tls12 } else { &target.config };
                let hs =
                    match Box::pin(tls::handshake_unbounded(tcp, config, &target.name, known_days))
                        .await
                    {
                        Ok(hs) => hs,
                        Err(_) if tls12_only => {
                            // The server no longer takes what its last full handshake agreed
                            // (TLS 1.2): a full handshake now, on a new connection, rather than a
                            // failure that only our shortcut caused. Its own failure is reported.
                            tls::forget_sessions(&target.sessions, &target.name);
                            target.full_handshake_tls12.set(false);
                            phase.set(Phase::Connect);
                            let tcp = tcp::connect_unbounded(cfg.addr).await?;
                            phase.set(Phase::Handshake);
                            Box::pin(tls::handshake_unbounded(
                                tcp,
                                &target.config,
                                &target.name,
                                None,
                            ))
                            .await?
                        }
                        Err(failure) => return Err(failure),
                    };
                if !hs.resumed {
                    // Also when there was no ticket yet (or the server declined one).
                    target.last_full_handshake.set(Some(now));
                    target.full_handshake_days_left.set(hs.cert_days_left);
                    target.full_handshake_tls12.set(hs.tls12);
                }
                cert_days.set(hs.cert_days_left);
                Ok(Conn::Tls(Box::new(hs.stream)))
            }
        }
    }

    async fn attempt(
        &self,
        cfg: &HttpConfig<'_>,
        deadline: &Deadline,
        buf: &mut [u8],
        phase: &Cell<Phase>,
        cert_days: &Cell<Option<i32>>,
    ) -> Result<u16, Failure> {
        let pooled =
            if cfg.keep_alive { self.pool.borrow_mut().remove(&cfg.pool_key()) } else { None };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some((conn, days)) => {
                cert_days.set(days);
                conn
            }
            None => self.connect(cfg, deadline, phase, cert_days).await?,
        };
        phase.set(Phase::Exchange);
        let mut result = exchange(cfg, &mut conn, buf).await;
        if reused && matches!(result, Err(Stale)) {
            // The server closed the idle connection before our request reached it: that is
            // not the target failing, so reconnect once without spending an attempt.
            conn = self.connect(cfg, deadline, phase, cert_days).await?;
            phase.set(Phase::Exchange);
            result = exchange(cfg, &mut conn, buf).await;
        }
        match result {
            Ok((status, reusable)) => {
                if cfg.keep_alive && reusable {
                    self.pool_put(cfg.pool_key(), conn, cert_days.get());
                } else {
                    // The answer is in: we close first, so a reset rather than a TIME_WAIT
                    // on one of our ephemeral ports per check.
                    conn.reset_on_close();
                }
                Ok(status)
            }
            Err(Stale) => {
                Err((FailureKind::Protocol, Detail::Text("connection closed before the response")))
            }
            Err(ExchangeError::Failed(f)) => Err(f),
        }
    }
}

#[derive(Debug)]
enum ExchangeError {
    /// Nothing of a response arrived and the connection ended: on a reused connection, retry.
    Stale,
    Failed(Failure),
}
use ExchangeError::Stale;

impl From<Failure> for ExchangeError {
    fn from(f: Failure) -> Self {
        ExchangeError::Failed(f)
    }
}

/// Writes the request and reads the response as far as needed. Returns the status and whether
/// the connection may be reused (the whole response was consumed and the server keeps it open).
/// Body assertions are judged here, while the body is in `buf`.
async fn exchange(
    cfg: &HttpConfig<'_>,
    conn: &mut Conn,
    buf: &mut [u8],
) -> Result<(u16, bool), ExchangeError> {
    debug_assert_eq!(buf.len(), CHECK_BUFFER_BYTES);
    if let Err(e) = conn.write_all(&cfg.request).await {
        return Err(match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => Stale,
            _ => ExchangeError::Failed(io_failure(&e, "request write failed")),
        });
    }
    if let Err(e) = conn.flush().await {
        return Err(ExchangeError::Failed(io_failure(&e, "request write failed")));
    }

    // The head: read until httparse sees the blank line, at most MAX_HEADER_BLOCK_BYTES.
    let mut filled = 0usize;
    let head = loop {
        let n = match conn.read(&mut buf[filled..MAX_HEADER_BLOCK_BYTES]).await {
            Ok(n) => n,
            Err(e) if filled == 0 && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Stale)
            }
            Err(e) => {
                return Err(
                    io_failure(&e, "connection broken while reading the response head").into()
                )
            }
        };
        if n == 0 {
            if filled == 0 {
                return Err(Stale);
            }
            return Err((
                FailureKind::Protocol,
                Detail::Text("connection closed inside the response head"),
            )
                .into());
        }
        filled += n;
        match parse_head(&buf[..filled], cfg.head_request) {
            Ok(Some(head)) => break head,
            Ok(None) if filled == MAX_HEADER_BLOCK_BYTES => {
                return Err(
                    (FailureKind::TooLarge, Detail::SizeText(HEAD_TOO_LARGE, HEAD_BOUND)).into()
                )
            }
            Ok(None) => continue,
            Err(HeadError::TooManyHeaders) => {
                return Err((
                    FailureKind::TooLarge,
                    Detail::CountText(TOO_MANY_HEADERS, HEADERS_BOUND),
                )
                    .into())
            }
            Err(HeadError::Invalid(why)) => {
                return Err((FailureKind::Protocol, Detail::Text(why)).into())
            }
        }
    };
    debug_assert!(head.len <= filled && filled <= MAX_HEADER_BLOCK_BYTES);
    let status_good = status_ok(head.status, &cfg.expected_status);
    if status_good {
        if let Err((name, missing)) = check_headers(&buf[..head.len], cfg.expected_headers()) {
            return Err((FailureKind::Assertion, Detail::Header { name, missing }).into());
        }
    }
    let judge_body = status_good && cfg.needs_body();
    let drain = cfg.keep_alive && !head.closes;
    if !judge_body && !drain {
        // Nothing needs the body: stop reading; dropping the connection closes it.
        return Ok((head.status, false));
    }

    // The body goes right after the head in `buf`; at most MAX_BODY_BYTES of it are read.
    let body_start = head.len;
    let body_end_max = body_start + MAX_BODY_BYTES;
    let mut raw_end = filled; // bytes of body received (raw, possibly chunked) end here
    let (body_len, complete) = match head.framing {
        Framing::Empty => (0, true),
        Framing::Length(total) => {
            let want = (total.min(MAX_BODY_BYTES as u64)) as usize;
            while raw_end - body_start < want {
                let n = read_body(conn, &mut buf[raw_end..body_start + want]).await?;
                if n == 0 {
                    return Err((
                        FailureKind::Protocol,
                        Detail::Text("connection closed inside the body"),
                    )
                        .into());
                }
                raw_end += n;
            }
            (want, total <= MAX_BODY_BYTES as u64 && raw_end - body_start == want)
        }
        Framing::Chunked => {
            let mut consumed = body_start;
            let mut decoded_end = body_start;
            loop {
                let d = dechunk(&mut buf[..raw_end], consumed, decoded_end)
                    .map_err(|why| (FailureKind::Protocol, Detail::Text(why)))?;
                consumed = d.consumed;
                decoded_end = d.body_len;
                if d.complete {
                    break (decoded_end - body_start, consumed == raw_end);
                }
                if raw_end == body_end_max {
                    break (decoded_end - body_start, false);
                }
                let n = read_body(conn, &mut buf[raw_end..body_end_max]).await?;
                if n == 0 {
                    return Err((
                        FailureKind::Protocol,
                        Detail::Text("connection closed inside the body"),
                    )
                        .into());
                }
                raw_end += n;
            }
        }
        Framing::UntilClose => {
            if !judge_body {
                return Ok((head.status, false));
            }
            while raw_end < body_end_max {
                let n = read_body(conn, &mut buf[raw_end..body_end_max]).await?;
                if n == 0 {
                    break;
                }
                raw_end += n;
            }
            (raw_end - body_start, false)
        }
    };
    let body_len = body_len.min(MAX_BODY_BYTES);
    if judge_body {
        let body = &buf[body_start..body_start + body_len];
        let truncated = !complete && !matches!(head.framing, Framing::UntilClose | Framing::Empty);
        if let Some(re) = cfg.body_contains() {
            if !re.is_match(body) {
                let why = if truncated {
                    Detail::SizeText("body_contains not found in the first", BODY_BOUND)
                } else {
                    Detail::Text("body_contains not found")
                };
                return Err((FailureKind::Assertion, why).into());
            }
        }
        if let Some(re) = cfg.body_regex() {
            if !re.is_match(body) {
                let why = if truncated {
                    Detail::SizeText("body_regex did not match the first", BODY_BOUND)
                } else {
                    Detail::Text("body_regex did not match")
                };
                return Err((FailureKind::Assertion, why).into());
            }
        }
    }
    Ok((head.status, drain && complete))
}

async fn read_body(conn: &mut Conn, into: &mut [u8]) -> Result<usize, ExchangeError> {
    conn.read(into).await.map_err(|e| io_failure(&e, "connection broken inside the body").into())
}

/// Turns an attempt into the outcome: status rule, response time, certificate warning.
fn finish(cfg: &HttpConfig<'_>, deadline: &Deadline, attempt: Attempt) -> Outcome {
    let latency_us = deadline.elapsed_us();
    let mut outcome = match attempt.result {
        Err((kind, detail)) => Outcome::failure(kind, latency_us, detail),
        Ok(status) if !status_ok(status, &cfg.expected_status) => {
            Outcome::failure(FailureKind::Status, latency_us, Detail::HttpStatus(status))
        }
        Ok(_) => match cfg.max_response_time() {
            Some(max) if latency_us > saturating_us(max) => Outcome::failure(
                FailureKind::Assertion,
                latency_us,
                Detail::Text("slower than max_response_time"),
            ),
            _ => Outcome::success(latency_us),
        },
    };
    outcome.cert_days_left = attempt.cert_days_left;
    if let (Some(days), Some(warn)) = (attempt.cert_days_left, cfg.cert_warn_days()) {
        if outcome.is_success() && days <= warn {
            outcome.warning = Some(Warning::CertificateExpiring { days_left: days });
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_executor::run;
    use crate::test_server::{self, cert_expiring_in, ok_close, ok_keep_alive};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const T: Duration = Duration::from_secs(3);

    fn compile(spec: &HttpSpec) -> HttpConfig<'static> {
        HttpConfig::compile(spec, &mut TlsConfigCache::default()).expect("compile")
    }

    fn check_once(cfg: HttpConfig<'static>, timeout: Duration) -> Outcome {
        run(move || async move { HttpClient::new().check(&cfg, timeout).await })
    }

    #[test]
    fn request_is_rendered_once_with_host_and_connection() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut spec = HttpSpec::get(addr, "api.example.com", "/health?x=1");
        spec.method = "post".into();
        spec.headers.push(("X-Token".into(), "abc".into()));
        spec.body = Some(b"{}".to_vec());
        let cfg = compile(&spec);
        assert_eq!(
            std::str::from_utf8(cfg.request_bytes()).unwrap(),
            "POST /health?x=1 HTTP/1.1\r\nHost: api.example.com:8080\r\nUser-Agent: cpra\r\n\
             X-Token: abc\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert!(!cfg.retryable_method);
    }

    /// A plain check renders per check exactly what `compile` renders once: one function
    /// renders both, and this pins it (default and other ports, headers, methods, statuses).
    #[test]
    fn a_plain_check_renders_the_request_compile_renders() {
        let headers = vec![("X-Token".to_owned(), "abc".to_owned())];
        let host_set = vec![("host".to_owned(), "other".to_owned())];
        let mut buf = Vec::new();
        for (port, method, path, headers, statuses) in [
            (80, "GET", "/", &Vec::new(), &[][..]),
            (8080, "get", "/health?x=1", &headers, &[200, 204][..]),
            (80, "HEAD", "/h", &host_set, &[][..]),
        ] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut spec = HttpSpec::get(addr, "api.example.com", path);
            spec.method = method.into();
            spec.headers = headers.clone();
            spec.expected_status = statuses.to_vec();
            spec.retries = 2;
            let compiled = compile(&spec);
            let plain = PlainHttp {
                addr,
                host: "api.example.com",
                method,
                path,
                headers,
                expected_status: statuses,
                retries: 2,
            };
            let borrowed = HttpConfig::plain(&plain, &mut buf).unwrap();
            assert_eq!(borrowed.request_bytes(), compiled.request_bytes(), "{method} {path}");
            assert_eq!(borrowed.expected_status, compiled.expected_status);
            assert_eq!(
                (borrowed.attempts, borrowed.head_request, borrowed.retryable_method),
                (compiled.attempts, compiled.head_request, compiled.retryable_method)
            );
            assert_eq!(borrowed.pool_key(), compiled.pool_key());
            assert!(borrowed.extras.is_none() && compiled.extras.is_none());
        }
        let bad = PlainHttp {
            addr: "127.0.0.1:80".parse().unwrap(),
            host: "h",
            method: "GE T",
            path: "/",
            headers: &[],
            expected_status: &[],
            retries: 0,
        };
        assert!(HttpConfig::plain(&bad, &mut buf).unwrap_err().0.contains("method"));
        let bad = PlainHttp { method: "GET", expected_status: &[999], ..bad };
        assert!(HttpConfig::plain(&bad, &mut buf).unwrap_err().0.contains("expected_status"));
    }

    /// A plain check against a real server: its request arrives as rendered, and its request
    /// buffer goes back to the client for the next check.
    #[test]
    fn a_plain_check_reuses_its_request_buffer() {
        fn echo_ok(head: &[u8]) -> (Vec<u8>, bool) {
            let ok = head.starts_with(b"GET /p?q=1 HTTP/1.1\r\nHost: localhost:")
                && head.ends_with(b"\r\nX-A: b\r\nConnection: close\r\n\r\n");
            let status = if ok { "204 No Content" } else { "400 Bad Request" };
            (format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").into_bytes(), false)
        }
        let server = test_server::http(echo_ok);
        let headers = vec![("X-A".to_owned(), "b".to_owned())];
        let addr = server.addr;
        let (outcomes, spare) = run(move || async move {
            let client = HttpClient::new();
            let plain = PlainHttp {
                addr,
                host: "localhost",
                method: "GET",
                path: "/p?q=1",
                headers: &headers,
                expected_status: &[204],
                retries: 0,
            };
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(client.check_plain(&plain, Deadline::after(T)).await.unwrap());
            }
            let spare = client.spare_requests.borrow().len();
            (outcomes, spare)
        });
        for outcome in &outcomes {
            assert!(outcome.is_success(), "{outcome:?}");
        }
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
        assert_eq!(spare, 1, "one request buffer, taken and given back by each check");
    }

    #[test]
    fn bad_specs_are_rejected_with_the_field_named() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let bad = |f: fn(&mut HttpSpec)| {
            let mut spec = HttpSpec::get(addr, "h", "/");
            f(&mut spec);
            HttpConfig::compile(&spec, &mut TlsConfigCache::default()).unwrap_err().0
        };
        assert!(bad(|s| s.method = "GE T".into()).contains("method"));
        assert!(bad(|s| s.path = "health".into()).contains("path"));
        assert!(bad(|s| s.body_regex = Some("(".into())).contains("body_regex"));
        assert!(bad(|s| s.expected_status = vec![999]).contains("expected_status"));
        assert!(bad(|s| s.headers.push(("Bad Name".into(), "v".into()))).contains("header"));
        assert!(bad(|s| s.headers.push(("Connection".into(), "x".into()))).contains("keep_alive"));
    }

    #[test]
    fn healthy_2xx_succeeds() {
        let server = test_server::http(ok_close);
        let o = check_once(compile(&HttpSpec::get(server.addr, "localhost", "/")), T);
        assert!(o.is_success(), "{o:?}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    }

    /// Serves one connection: reads the request head, answers 200 with the connection left
    /// open, then reports whether the client ended it with a reset (not a FIN).
    fn answer_then_see_reset(listener: std::net::TcpListener) -> std::thread::JoinHandle<bool> {
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before its request was complete");
                head.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(_) => continue,
                    Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
                }
            }
        })
    }

    #[test]
    fn a_check_that_closes_first_ends_with_a_reset_and_a_kept_alive_one_does_not() {
        for keep_alive in [false, true] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut spec = HttpSpec::get(listener.local_addr().unwrap(), "localhost", "/");
            spec.keep_alive = keep_alive;
            let server = answer_then_see_reset(listener);
            let cfg = compile(&spec);
            // The pooled connection is dropped with the client, at the end of `run`.
            let o = check_once(cfg, T);
            assert!(o.is_success(), "{o:?}");
            let reset = server.join().unwrap();
            assert_eq!(reset, !keep_alive, "keep_alive {keep_alive}: reset {reset}");
        }
    }

    #[test]
    fn https_checks_resume_the_session_and_make_a_full_handshake_every_interval() {
        let cert = cert_expiring_in(200);
        let server = test_server::https(&cert, ok_close);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.tls = true;
        spec.tls_options.insecure_skip_verify = true;
        spec.cert_warn_days = Some(30);
        let cfg = compile(&spec);
        let (outcomes, cfg) = run(move || async move {
            let client = HttpClient::new();
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(client.check(&cfg, T).await);
            }
            // The last full handshake as if it were an interval ago: the next one is full.
            let target = cfg.tls().unwrap();
            let long_ago =
                target.last_full_handshake.get().unwrap() - tls::FULL_TLS_HANDSHAKE_EVERY;
            target.last_full_handshake.set(Some(long_ago));
            outcomes.push(client.check(&cfg, T).await);
            outcomes.push(client.check(&cfg, T).await);
            (outcomes, cfg)
        });
        for o in &outcomes {
            assert!(o.is_success(), "{o:?}");
            // A resumed session still reports the certificate its full handshake saw.
            assert!(o.cert_days_left.is_some_and(|d| (199..=200).contains(&d)), "{o:?}");
        }
        // Full, resumed, resumed, full (the interval passed), resumed.
        assert_eq!(server.connections.load(Ordering::SeqCst), 5);
        assert_eq!(server.resumed.load(Ordering::SeqCst), 3);
        drop(cfg);
    }

    #[test]
    fn a_tls12_server_is_resumed_with_tls12_offered_only() {
        let cert = cert_expiring_in(200);
        let server = test_server::https_tls12(&cert, ok_close);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.tls = true;
        spec.tls_options.insecure_skip_verify = true;
        let cfg = compile(&spec);
        let (outcomes, cfg) = run(move || async move {
            let client = HttpClient::new();
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(client.check(&cfg, T).await);
            }
            (outcomes, cfg)
        });
        for o in &outcomes {
            assert!(o.is_success(), "{o:?}");
            assert!(o.cert_days_left.is_some_and(|d| (199..=200).contains(&d)), "{o:?}");
        }
        let target = cfg.tls().unwrap();
        assert!(target.full_handshake_tls12.get());
        // Full, then two resumed with the TLS 1.2-only config.
        assert_eq!(server.connections.load(Ordering::SeqCst), 3);
        assert_eq!(server.resumed.load(Ordering::SeqCst), 2);
        drop(cfg);
    }

    fn unavailable(_: &[u8]) -> (Vec<u8>, bool) {
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec(), false)
    }

    #[test]
    fn a_5xx_on_get_is_retried_within_the_deadline_then_reported() {
        let server = test_server::http(unavailable);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.retries = 10;
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Status));
        assert_eq!(o.detail, Detail::HttpStatus(503));
        assert_eq!(server.requests.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
    }

    /// 503 to the first request of each pair, 200 to the second: a target failing once.
    fn unavailable_once(_: &[u8]) -> (Vec<u8>, bool) {
        static SEEN: AtomicUsize = AtomicUsize::new(0);
        if SEEN.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            unavailable(&[])
        } else {
            ok_close(&[])
        }
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        let server = test_server::http(unavailable_once);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        let o = check_once(compile(&spec), T);
        assert_eq!(o.detail, Detail::HttpStatus(503), "the default is one attempt: {o:?}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 1);
        // The server's next answer is a 200: take it, then start the pair again.
        assert!(check_once(compile(&spec), T).is_success());
        spec.retries = 1;
        let o = check_once(compile(&spec), T);
        assert!(o.is_success(), "{o:?}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_post_is_never_retried() {
        let server = test_server::http(unavailable);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.retries = 2;
        spec.method = "POST".into();
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Status));
        assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn expected_status_replaces_the_2xx_rule() {
        fn moved(_: &[u8]) -> (Vec<u8>, bool) {
            (b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n".to_vec(), false)
        }
        let server = test_server::http(moved);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.expected_status = vec![301];
        assert!(check_once(compile(&spec), T).is_success());
        spec.expected_status = vec![200];
        assert_eq!(check_once(compile(&spec), T).failure, Some(FailureKind::Status));
    }

    fn chunked(_: &[u8]) -> (Vec<u8>, bool) {
        let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     7\r\n{\"statu\r\n8\r\ns\":\"up\"}\r\n0\r\n\r\n";
        (body.to_vec(), false)
    }

    #[test]
    fn body_assertions_on_plain_and_chunked_bodies() {
        let plain = test_server::http(ok_close);
        let mut spec = HttpSpec::get(plain.addr, "localhost", "/");
        spec.body_contains = Some("healthy".into());
        assert!(check_once(compile(&spec), T).is_success());
        spec.body_contains = Some("sick".into());
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Assertion));
        assert_eq!(o.detail, Detail::Text("body_contains not found"));

        let chunks = test_server::http(chunked);
        let mut spec = HttpSpec::get(chunks.addr, "localhost", "/");
        spec.body_regex = Some(r#"^\{"status":"up"\}$"#.into());
        assert!(check_once(compile(&spec), T).is_success());
        spec.body_regex = Some("down".into());
        assert_eq!(check_once(compile(&spec), T).failure, Some(FailureKind::Assertion));
    }

    #[test]
    fn expected_headers_against_a_local_server_over_http_and_https() {
        fn versioned(_: &[u8]) -> (Vec<u8>, bool) {
            let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Version: 2.4.1\r\n\
                      Content-Length: 2\r\n\r\n{}";
            (r.to_vec(), true)
        }
        let cert = cert_expiring_in(90);
        let plain = test_server::http(versioned);
        let tls = test_server::https(&cert, versioned);
        for (server, https) in [(&plain, false), (&tls, true)] {
            let mut spec = HttpSpec::get(server.addr, "localhost", "/");
            spec.tls = https;
            spec.tls_options.insecure_skip_verify = true;
            spec.keep_alive = true;
            spec.expected_headers = vec![
                ("content-type".into(), "application/json".into()),
                ("X-Version".into(), r"/^2\.\d+/".into()),
            ];
            assert!(check_once(compile(&spec), T).is_success(), "https {https}");
            spec.expected_headers[1].1 = "/^3/".into();
            let o = check_once(compile(&spec), T);
            assert_eq!(o.failure, Some(FailureKind::Assertion), "{o:?}");
            assert_eq!(
                o.describe("x"),
                "response assertion failed for x: header X-Version does not have the expected value"
            );
            spec.expected_headers[1] = ("X-Request-Id".into(), "/./".into());
            let o = check_once(compile(&spec), T);
            assert_eq!(o.detail, Detail::Header { name: "X-Request-Id", missing: true });
            assert!(o.describe("x").ends_with("header X-Request-Id is missing"), "{o:?}");
        }
        // A status that fails is reported as the status, before any header.
        let mut spec = HttpSpec::get(plain.addr, "localhost", "/");
        spec.expected_status = vec![204];
        spec.expected_headers = vec![("X-Other".into(), "1".into())];
        assert_eq!(check_once(compile(&spec), T).failure, Some(FailureKind::Status));
        spec.expected_headers = vec![("X-Other".into(), "/(/".into())];
        assert!(HttpConfig::compile(&spec, &mut TlsConfigCache::default()).is_err());
    }

    #[test]
    fn header_block_over_its_bound_is_too_large() {
        fn huge(_: &[u8]) -> (Vec<u8>, bool) {
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            r.extend_from_slice(b"X-Big: ");
            r.resize(r.len() + MAX_HEADER_BLOCK_BYTES + 1024, b'a');
            r.extend_from_slice(b"\r\n\r\n");
            (r, false)
        }
        let server = test_server::http(huge);
        let o = check_once(compile(&HttpSpec::get(server.addr, "localhost", "/")), T);
        assert_eq!(o.failure, Some(FailureKind::TooLarge), "{o:?}");
        assert_eq!(o.detail, Detail::SizeText(HEAD_TOO_LARGE, HEAD_BOUND));
        let bound = Size::bytes(MAX_HEADER_BLOCK_BYTES);
        assert!(o.describe("x").ends_with(&format!("response head larger than {bound}")), "{o:?}");
    }

    fn big_body(_: &[u8]) -> (Vec<u8>, bool) {
        // 1 MiB body whose marker sits past the read bound.
        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 1 << 20).into_bytes();
        let start = r.len();
        r.resize(start + (1 << 20), b'.');
        let marker = start + MAX_BODY_BYTES + 1024;
        r[marker..marker + 6].copy_from_slice(b"MARKER");
        (r, false)
    }

    #[test]
    fn body_is_read_only_up_to_its_bound() {
        let server = test_server::http(big_body);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        assert!(check_once(compile(&spec), T).is_success(), "no assertion: head is enough");
        spec.body_contains = Some("MARKER".into());
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Assertion), "{o:?}");
        let bound = Size::bytes(MAX_BODY_BYTES);
        let want = format!("body_contains not found in the first {bound}");
        assert!(o.describe("x").ends_with(&want), "{}", o.describe("x"));
    }

    #[test]
    fn garbage_response_is_a_protocol_error() {
        fn garbage(_: &[u8]) -> (Vec<u8>, bool) {
            (b"SSH-2.0-OpenSSH_9.0\r\n\r\n".to_vec(), false)
        }
        let server = test_server::http(garbage);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.retries = 0;
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Protocol), "{o:?}");
    }

    #[test]
    fn silent_server_times_out_after_connecting() {
        let addr = test_server::silent();
        let o =
            check_once(compile(&HttpSpec::get(addr, "localhost", "/")), Duration::from_millis(300));
        assert_eq!(o.failure, Some(FailureKind::Timeout), "{o:?}");
        assert!(o.latency_us >= 300_000, "{o:?}");
    }

    #[test]
    fn silent_server_times_out_in_the_tls_handshake_with_the_handshake_named() {
        // Connect, handshake and exchange share one timer: the phase still names the step.
        let addr = test_server::silent();
        let mut spec = HttpSpec::get(addr, "localhost", "/");
        spec.tls = true;
        spec.tls_options.insecure_skip_verify = true;
        let o = check_once(compile(&spec), Duration::from_millis(300));
        assert_eq!(o.failure, Some(FailureKind::Timeout), "{o:?}");
        assert!(o.describe("x").contains("TLS handshake did not finish"), "{}", o.describe("x"));
        assert!(o.latency_us >= 300_000, "{o:?}");
    }

    #[test]
    fn refused_is_retried_then_reported() {
        let (addr, _held) = crate::test_server::refused();
        let o = check_once(compile(&HttpSpec::get(addr, "localhost", "/")), T);
        assert_eq!(o.failure, Some(FailureKind::ConnectRefused), "{o:?}");
    }

    #[test]
    fn max_response_time_is_an_assertion() {
        let server = test_server::http(ok_close);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.max_response_time = Some(Duration::ZERO);
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Assertion));
        assert_eq!(o.detail, Detail::Text("slower than max_response_time"));
    }

    #[test]
    fn keep_alive_reuses_one_connection_per_target() {
        let server = test_server::http(ok_keep_alive);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.keep_alive = true;
        let cfg = compile(&spec);
        let pooled = run(move || async move {
            let client = HttpClient::new();
            for _ in 0..5 {
                let o = client.check(&cfg, T).await;
                assert!(o.is_success(), "{o:?}");
            }
            client.pooled_connections()
        });
        assert_eq!(pooled, 1);
        assert_eq!(server.requests.load(Ordering::SeqCst), 5);
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn keep_alive_survives_a_server_closing_idle_connections() {
        fn one_per_conn(_: &[u8]) -> (Vec<u8>, bool) {
            // Says keep-alive but closes after each response, like a server whose idle
            // timeout passed between two checks.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), false)
        }
        let server = test_server::http(one_per_conn);
        let mut spec = HttpSpec::get(server.addr, "localhost", "/");
        spec.keep_alive = true;
        spec.retries = 0;
        let cfg = compile(&spec);
        run(move || async move {
            let client = HttpClient::new();
            for _ in 0..3 {
                let o = client.check(&cfg, T).await;
                assert!(o.is_success(), "{o:?}");
            }
        });
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
    }

    fn https_spec(addr: SocketAddr) -> HttpSpec {
        let mut spec = HttpSpec::get(addr, "localhost", "/");
        spec.tls = true;
        spec
    }

    #[test]
    fn https_with_ca_file_reports_days_left_and_warns() {
        let cert = cert_expiring_in(20);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let server = test_server::https(&cert, ok_close);
        let mut spec = https_spec(server.addr);
        spec.tls_options.ca_file = Some(ca);
        let o = check_once(compile(&spec), T);
        assert!(o.is_success(), "{o:?}");
        let days = o.cert_days_left.expect("days left");
        assert!((19..=20).contains(&days), "{days}");
        assert_eq!(o.warning, None);
        spec.cert_warn_days = Some(30);
        let o = check_once(compile(&spec), T);
        assert!(o.is_success(), "{o:?}");
        assert_eq!(o.warning, Some(Warning::CertificateExpiring { days_left: days }));
    }

    #[test]
    fn https_untrusted_certificate_fails_unless_skip_verify() {
        let cert = cert_expiring_in(90);
        let server = test_server::https(&cert, ok_close);
        let mut spec = https_spec(server.addr);
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Certificate), "{o:?}");
        assert_eq!(o.detail, Detail::Text("certificate signed by an unknown issuer"));
        spec.tls_options.insecure_skip_verify = true;
        let o = check_once(compile(&spec), T);
        assert!(o.is_success(), "{o:?}");
        assert!(o.cert_days_left.is_some_and(|d| (89..=90).contains(&d)), "{o:?}");
    }

    #[test]
    fn https_expired_certificate_says_how_long_ago() {
        let cert = cert_expiring_in(-4);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let server = test_server::https(&cert, ok_close);
        let mut spec = https_spec(server.addr);
        spec.tls_options.ca_file = Some(ca);
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Certificate), "{o:?}");
        assert!(matches!(o.detail, Detail::CertDaysLeft(-4..=-3)), "{o:?}");
        assert!(
            o.describe("https://localhost/").contains("certificate expired"),
            "{}",
            o.describe("x")
        );
    }

    #[test]
    fn https_wrong_name_is_a_certificate_failure() {
        let cert = cert_expiring_in(90);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let server = test_server::https(&cert, ok_close);
        let mut spec = https_spec(server.addr);
        spec.host = "other.example".into();
        spec.tls_options.ca_file = Some(ca);
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Certificate), "{o:?}");
    }

    #[test]
    fn https_keep_alive_reuses_the_tls_session() {
        let cert = cert_expiring_in(90);
        let server = test_server::https(&cert, ok_keep_alive);
        let mut spec = https_spec(server.addr);
        spec.keep_alive = true;
        spec.tls_options.insecure_skip_verify = true;
        spec.cert_warn_days = Some(100);
        let cfg = compile(&spec);
        run(move || async move {
            let client = HttpClient::new();
            for _ in 0..3 {
                let o = client.check(&cfg, T).await;
                assert!(o.is_success(), "{o:?}");
                // Reused connections still report the certificate seen at the handshake.
                assert!(
                    matches!(o.warning, Some(Warning::CertificateExpiring { days_left: 89..=90 })),
                    "{o:?}"
                );
            }
        });
        assert_eq!(server.connections.load(Ordering::SeqCst), 1);
        assert_eq!(server.requests.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn garbage_instead_of_tls_is_a_tls_failure() {
        let addr = test_server::garbage();
        let mut spec = https_spec(addr);
        spec.tls_options.insecure_skip_verify = true;
        spec.retries = 0;
        let o = check_once(compile(&spec), T);
        assert_eq!(o.failure, Some(FailureKind::Tls), "{o:?}");
    }
}
